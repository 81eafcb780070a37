package stack

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// startTimeout bounds how long a command may take to serve.
const startTimeout = 15 * time.Second

// ModuleRoot returns the root directory of the Go module that holds the
// working directory (go test runs in the package's directory).
func ModuleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("stack: go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("stack: not inside the tether module")
	}
	return filepath.Dir(gomod), nil
}

// Binaries are the paths of the tether and devprovider commands that Build
// compiled.
type Binaries struct {
	Tether      string
	DevProvider string
}

// Build compiles ./bff/cmd/tether and ./bff/cmd/devprovider of the module
// that holds the working directory into dir. It needs the Go toolchain on
// PATH.
func Build(ctx context.Context, dir string) (Binaries, error) {
	root, err := ModuleRoot(ctx)
	if err != nil {
		return Binaries{}, err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(filepath.Separator), "./bff/cmd/tether", "./bff/cmd/devprovider")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return Binaries{}, fmt.Errorf("stack: go build: %w\n%s", err, out)
	}
	return Binaries{Tether: filepath.Join(dir, "tether"), DevProvider: filepath.Join(dir, "devprovider")}, nil
}

// StartDevProvider starts the dev provider on a loopback port it picks,
// logging JSON, with env (TETHER_DEV_* variables) on top, and returns it
// with its URL once it listens. On error nothing is left running.
func (b Binaries) StartDevProvider(env ...string) (*Proc, string, error) {
	p, err := Start("devprovider", b.DevProvider, nil,
		append([]string{"TETHER_DEV_PROVIDER_ADDR=127.0.0.1:0", "TETHER_LOG_FORMAT=json"}, env...)...)
	if err != nil {
		return nil, "", err
	}
	u, err := p.WaitListening("devprovider: listening on ", startTimeout)
	if err != nil {
		p.Kill()
		return nil, "", err
	}
	return p, u, nil
}

// StartTether starts a BFF named name on a free loopback port, logging
// JSON, with env on top and TETHER_ADDR and TETHER_PUBLIC_URL set to that
// port, and returns it with its URL once GET /readyz answers 200. A port
// found free may be taken before tether binds it: it tries a few. On error
// nothing is left running.
func (b Binaries) StartTether(name string, env ...string) (*Proc, string, error) {
	for attempt := 0; ; attempt++ {
		addr, err := FreeAddr()
		if err != nil {
			return nil, "", err
		}
		u := "http://" + addr
		// Metrics are off unless env asks for them: their default loopback
		// port would be taken by the second replica.
		p, err := Start(name, b.Tether, nil,
			append(append([]string{"TETHER_LOG_FORMAT=json", "TETHER_METRICS_ADDR=off"}, env...), "TETHER_ADDR="+addr, "TETHER_PUBLIC_URL="+u)...)
		if err != nil {
			return nil, "", err
		}
		err = p.WaitHTTP(u+"/readyz", startTimeout)
		if err == nil {
			return p, u, nil
		}
		p.Kill()
		if attempt == 2 || !strings.Contains(p.Output(), "address already in use") {
			return nil, "", err
		}
	}
}

// FreeAddr returns a loopback address, 127.0.0.1:port, whose port was free
// a moment ago.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("stack: find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// RandomKey returns 32 random bytes in standard base64, as
// TETHER_VAULT_KEY and TETHER_SESSION_KEYS take a key.
func RandomKey() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return base64.StdEncoding.EncodeToString(b)
}
