package replicas

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Paths of the binaries TestMain builds.
var (
	tetherBin string
	devBin    string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "tether-replicas-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "replicas:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := build(dir); err != nil {
		fmt.Fprintln(os.Stderr, "replicas:", err)
		return 1
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		if _, err := os.Stat("/usr/bin/redis-server"); err != nil {
			fmt.Fprintln(os.Stderr, "replicas: redis-server not found; install it: apt-get install -y redis-server")
			return 1
		}
	}
	return m.Run()
}

// build compiles the BFF and the dev provider into dir, from the module
// root (go test runs in the package directory).
func build(dir string) error {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return fmt.Errorf("not inside the tether module")
	}
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./bff/cmd/tether", "./bff/cmd/devprovider")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	tetherBin, devBin = filepath.Join(dir, "tether"), filepath.Join(dir, "devprovider")
	return nil
}
