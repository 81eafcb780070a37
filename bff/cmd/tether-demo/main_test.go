package main

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/assets"
)

// TestSignalStopsCleanly builds the command, starts it as `make run` does
// (on ports it picks, serving a web directory with a stand-in client), waits
// for the URL it prints, checks the page answers, then sends SIGINT (what
// Ctrl-C sends) or SIGTERM: the process must exit 0. Its log must say once,
// at Info level, that the demo uses throw-away keys, and hold no warning.
func TestSignalStopsCleanly(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "tether-demo")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	web := standInWeb(t)

	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(bin)
			cmd.Env = append(os.Environ(),
				"TETHER_ADDR=127.0.0.1:0", "TETHER_DEV_PROVIDER_ADDR=127.0.0.1:0", "TETHER_WEB_DIR="+web,
				"TETHER_VAULT_KEY=", "TETHER_SESSION_KEYS=")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			urls := make(chan string, 1)
			go func() {
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					if _, url, ok := strings.Cut(sc.Text(), "Tether demo: open "); ok {
						urls <- url
					}
				}
				io.Copy(io.Discard, stdout)
				exited <- cmd.Wait() // after stdout is drained, as Wait closes the pipe
			}()
			t.Cleanup(func() {
				if cmd.ProcessState == nil {
					cmd.Process.Kill()
					<-exited
				}
			})

			var url string
			select {
			case url = <-urls:
			case err := <-exited:
				t.Fatalf("the demo exited before printing its URL: %v\n%s", err, stderr.String())
			case <-time.After(30 * time.Second):
				t.Fatalf("no URL printed in 30 s\n%s", stderr.String())
			}
			res, err := http.Get(url + "/")
			if err != nil {
				t.Fatalf("GET %s/: %v", url, err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Fatalf("GET %s/: %d; want 200", url, res.StatusCode)
			}

			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-exited:
				if err != nil {
					t.Fatalf("after %v the demo exited with %v; want status 0\n%s", sig, err, stderr.String())
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("the demo still runs 15 s after %v\n%s", sig, stderr.String())
			}

			log := stderr.String()
			if n := strings.Count(log, "throw-away keys"); n != 1 || !strings.Contains(log, `level=INFO msg="the demo uses throw-away keys`) {
				t.Errorf("the log mentions throw-away keys %d times; want once, at INFO:\n%s", n, log)
			}
			for _, bad := range []string{"level=WARN", "level=ERROR"} {
				if strings.Contains(log, bad) {
					t.Errorf("the log holds %s:\n%s", bad, log)
				}
			}
		})
	}
}

// standInWeb is a web directory with a page and a stand-in wasm client,
// prepared by the same code as `make web` (assets.Build).
func standInWeb(t *testing.T) string {
	t.Helper()
	web := t.TempDir()
	dist := filepath.Join(web, "dist")
	if err := os.MkdirAll(dist, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(web, "index.html"), []byte("<!doctype html><title>demo</title>"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dist, assets.BuildOutput), []byte("\x00asm\x01\x00\x00\x00"), 0o644); err != nil {
		t.Fatal(err)
	}
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	if _, err := assets.Build(dist, strings.TrimSpace(string(goroot))); err != nil {
		t.Fatal(err)
	}
	return web
}

// `tether-demo -h` prints every variable the demo reads, with its
// default, one a line, and exits 0.
func TestHelp(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "tether-demo")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("tether-demo -h: %v\n%s", err, out)
	}
	for _, v := range []string{"TETHER_ADDR", "TETHER_WEB_DIR", "TETHER_VAULT_KEY", "TETHER_REFRESH_BUFFER", "TETHER_WEB_FALLBACK", "TETHER_REDIS_URL", "TETHER_DEV_ACCESS_TTL", "TETHER_DEV_QUIRKS"} {
		if n := strings.Count(string(out), "\n  "+v+" "); n != 1 {
			t.Errorf("tether-demo -h lists %s %d times; want once:\n%s", v, n, out)
		}
	}
	for _, v := range []string{"TETHER_PUBLIC_URL", "TETHER_ISSUER", "TETHER_CLIENT_SECRET"} {
		if strings.Contains(string(out), v) {
			t.Errorf("tether-demo -h lists %s, which the demo sets itself", v)
		}
	}
}
