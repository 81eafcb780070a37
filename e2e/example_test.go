package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	proc "github.com/tetherauth/tether/e2e/stack"
)

// The Vite example (web/examples/vite): an SPA built on the npm package.
// Its node_modules come from `make example-deps` (the npm package packed
// from this tree's client, then npm ci from the committed lockfile); the
// tests run tsc and vite from there.

var (
	exampleOnce sync.Once
	exampleErr  error
)

// exampleDir returns the example's directory once its dependencies are
// installed, running `make example-deps` the first time (a no-op when
// `make test` has run it).
func exampleDir(t testing.TB) string {
	t.Helper()
	exampleOnce.Do(func() {
		cmd := exec.Command("make", "-s", "example-deps")
		cmd.Dir = repoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			exampleErr = fmt.Errorf("make example-deps (it needs Node.js 20.19+ and npm: make deps installs them): %w\n%s", err, out)
		}
	})
	if exampleErr != nil {
		t.Fatal(exampleErr)
	}
	return filepath.Join(repoRoot, "web", "examples", "vite")
}

// nodeBin is a command the example's node_modules provide (tsc, vite).
func nodeBin(dir, name string) string {
	return filepath.Join(dir, "node_modules", ".bin", name)
}

// viteBuild builds the example into a temporary directory with env (VITE_*
// variables are compiled in) and returns that directory.
func viteBuild(t testing.TB, env ...string) string {
	t.Helper()
	dir := exampleDir(t)
	out := t.TempDir()
	cmd := exec.Command(nodeBin(dir, "vite"), "build", "--outDir", out, "--emptyOutDir", "--logLevel", "warn")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("vite build: %v\n%s", err, b)
	}
	return out
}

// startVite runs the example's dev server on a free loopback port with env
// on top, and returns its origin once it answers. It stops with the test.
func startVite(t testing.TB, addr string, env ...string) string {
	t.Helper()
	dir := exampleDir(t)
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	// The root as an argument: the process runs in the test's directory.
	p, err := proc.Start("vite", nodeBin(dir, "vite"), []string{dir, "--port", port, "--strictPort", "--host", "127.0.0.1", "--clearScreen", "false"},
		append([]string{"BROWSER=none"}, env...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("vite's output:\n%s", p.Tail(4000))
		}
	})
	origin := "http://" + addr
	if err := p.WaitHTTP(origin+"/", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	return origin
}

// getHTML fetches u as a browser's navigation does (Accept: text/html).
func getHTML(ctx context.Context, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	return http.DefaultClient.Do(req)
}

// The example depends on the packed package of this tree, at the version
// web/npm/package.json gives; its lockfile records that tarball without an
// integrity hash (the tarball changes with every client build: npm ci
// would refuse it, or install a cached older one) and no registry address.
func TestExampleLockfile(t *testing.T) {
	read := func(p string, v any) {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(repoRoot, p))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, v); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
	var pkg struct{ Name, Version string }
	read("web/npm/package.json", &pkg)
	want := "file:../../dist/" + strings.NewReplacer("@", "", "/", "-").Replace(pkg.Name) + "-" + pkg.Version + ".tgz"
	var example struct{ Dependencies map[string]string }
	read("web/examples/vite/package.json", &example)
	if got := example.Dependencies[pkg.Name]; got != want {
		t.Errorf("the example depends on %s %q; want %q (npm pack's name for version %s)", pkg.Name, got, want, pkg.Version)
	}
	var lock struct {
		Packages map[string]map[string]any `json:"packages"`
	}
	read("web/examples/vite/package-lock.json", &lock)
	entry := lock.Packages["node_modules/"+pkg.Name]
	if entry["resolved"] != want || entry["version"] != pkg.Version {
		t.Errorf("the lockfile has %s as %v; want %s at %s", pkg.Name, entry, want, pkg.Version)
	}
	if _, ok := entry["integrity"]; ok {
		t.Errorf("the lockfile pins the local tarball's integrity: remove it (npm ci would fail on the next client build)")
	}
	for name, p := range lock.Packages {
		if r, _ := p["resolved"].(string); strings.Contains(r, "://") {
			t.Errorf("the lockfile names a download address for %s (keep omit-lockfile-registry-resolved in .npmrc)", name)
		}
	}
}
