package replicas

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/tetherauth/tether/e2e/stack"
)

// bins are the tether and devprovider commands TestMain builds.
var bins stack.Binaries

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
	if bins, err = stack.Build(context.Background(), dir); err != nil {
		fmt.Fprintln(os.Stderr, "replicas:", err)
		return 1
	}
	return m.Run()
}
