package stack

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv makes the test binary act as a child process: its value says
// how (see TestMain).
const helperEnv = "STACK_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "serve":
		serveHelper()
	case "exit":
		fmt.Println("helper: giving up")
		os.Exit(3)
	}
}

// serveHelper prints its environment's TETHER_* variables, serves 200 on
// loopback, says where, and runs until a signal ends it; with
// STACK_TEST_STUBBORN=1 it ignores SIGTERM.
func serveHelper() {
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "TETHER_") {
			fmt.Println("env", kv)
		}
	}
	if os.Getenv("STACK_TEST_STUBBORN") == "1" {
		signal.Ignore(syscall.SIGTERM)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Printf("helper: listening on http://%s (pid %d)\n", ln.Addr(), os.Getpid())
	http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
}

// startHelper starts this test binary as a child in mode.
func startHelper(t *testing.T, mode string, env ...string) *Proc {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p, err := Start("helper", self, nil, append([]string{helperEnv + "=" + mode}, env...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p
}

// A child gets this program's environment without its TETHER_* variables,
// plus its own; WaitListening finds its URL, WaitHTTP its answer, and Stop
// ends it.
func TestStartWaitStop(t *testing.T) {
	t.Setenv("TETHER_FROM_PARENT", "leaked")
	p := startHelper(t, "serve", "TETHER_GIVEN=1", "TETHER_TWICE=first", "TETHER_TWICE=last")
	u, err := p.WaitListening("helper: listening on ", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u, "http://127.0.0.1:") {
		t.Fatalf("WaitListening = %q; want the helper's URL", u)
	}
	if err := p.WaitHTTP(u+"/", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	out := p.Output()
	for _, want := range []string{"env TETHER_GIVEN=1\n", "env TETHER_TWICE=last\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output %q lacks %q", out, want)
		}
	}
	for _, unwanted := range []string{"TETHER_FROM_PARENT", "TETHER_TWICE=first"} {
		if strings.Contains(out, unwanted) {
			t.Errorf("output %q has %s", out, unwanted)
		}
	}
	if p.Exited() {
		t.Fatal("Exited before Stop")
	}
	p.Stop()
	if !p.Exited() {
		t.Fatal("not Exited after Stop")
	}
	if _, err := http.Get(u); err == nil {
		t.Error("still serving after Stop")
	}
	p.Stop() // again: nothing to do
	p.Kill()
}

// Kill ends a process that ignores SIGTERM, at once.
func TestKill(t *testing.T) {
	p := startHelper(t, "serve", "STACK_TEST_STUBBORN=1")
	if _, err := p.WaitListening("helper: listening on ", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	p.Kill()
	if took := time.Since(start); !p.Exited() || took > time.Second {
		t.Errorf("Kill: exited %v after %v; want at once", p.Exited(), took)
	}
}

// The waits give up, with the output, when the process exits or the time
// runs out.
func TestWaitsFail(t *testing.T) {
	p := startHelper(t, "exit")
	if _, err := p.WaitListening("helper: listening on ", 10*time.Second); err == nil ||
		!strings.Contains(err.Error(), "exited") || !strings.Contains(err.Error(), "helper: giving up") {
		t.Errorf("WaitListening on a process that exits: %v; want an error quoting its output", err)
	}
	if err := p.WaitHTTP("http://127.0.0.1:1/", 10*time.Second); err == nil || !strings.Contains(err.Error(), "exited") {
		t.Errorf("WaitHTTP on a process that exited: %v", err)
	}

	p = startHelper(t, "serve")
	if _, err := p.WaitListening("never said: ", 200*time.Millisecond); err == nil || !strings.Contains(err.Error(), "within 200ms") {
		t.Errorf("WaitListening for a line that never comes: %v", err)
	}
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitHTTP("http://"+addr+"/", 200*time.Millisecond); err == nil || !strings.Contains(err.Error(), "within 200ms") {
		t.Errorf("WaitHTTP on a port nobody serves: %v", err)
	}
}

func TestRandomKey(t *testing.T) {
	a, b := RandomKey(), RandomKey()
	if len(a) != 44 || a == b {
		t.Errorf("RandomKey = %q, %q; want two different 32-byte keys in base64", a, b)
	}
}
