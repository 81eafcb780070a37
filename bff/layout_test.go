package bff

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetherauth/tether/bff/refresh"
	"github.com/tetherauth/tether/shared/wire"
)

const module = "github.com/tetherauth/tether"

// goList runs go list in the module root with a template over ./...
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v", args, err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// TestLayoutRules keeps the house in order: the refresh engine knows no
// HTTP framework and no wire contract; only the vault (and test support)
// talks to Redis; the shipped BFF does not depend on the dev provider;
// the wire contract is standard library only. Test files may import
// anything: these are the packages' own imports.
func TestLayoutRules(t *testing.T) {
	for _, dep := range goList(t, "-deps", "./bff/refresh") {
		if strings.HasPrefix(dep, "github.com/gin-") || dep == module+"/shared/wire" || dep == module+"/bff/devprovider" {
			t.Errorf("bff/refresh depends on %s", dep)
		}
	}
	for _, dep := range goList(t, "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "./shared/wire") {
		if dep != "" && dep != module+"/shared/wire" {
			t.Errorf("shared/wire depends on %s, which is not the standard library", dep)
		}
	}
	for _, line := range goList(t, "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./...") {
		f := strings.Fields(line)
		pkg, imports := strings.TrimPrefix(f[0], module+"/"), f[1:]
		for _, imp := range imports {
			if strings.HasPrefix(imp, "github.com/redis/go-redis") &&
				pkg != "bff/vault" && pkg != "bff/vault/redistest" && !strings.HasPrefix(pkg, "e2e/") {
				t.Errorf("%s imports %s; only bff/vault talks to Redis", pkg, imp)
			}
			if imp == module+"/bff/devprovider" && strings.HasPrefix(pkg, "bff") &&
				pkg != "bff/demo" && !strings.HasPrefix(pkg, "bff/cmd/") {
				t.Errorf("%s imports the dev provider; only the demo and the commands may", pkg)
			}
		}
	}
}

// TestReasonsAreTheWireReasons: the engine's reasons go to the browser as
// they are.
func TestReasonsAreTheWireReasons(t *testing.T) {
	pairs := map[refresh.Reason]string{
		refresh.ReasonNoSession: wire.ReasonNoSession,
		refresh.ReasonRevoked:   wire.ReasonRevoked,
		refresh.ReasonExpired:   wire.ReasonExpired,
	}
	for r, w := range pairs {
		if string(r) != w {
			t.Errorf("refresh reason %q; the wire says %q", r, w)
		}
	}
}

// TestMainsAreThin: the commands wire packages together and hold no logic
// of their own (the bench, a measuring tool, is not a main of the product).
func TestMainsAreThin(t *testing.T) {
	mains, err := filepath.Glob("cmd/*/main.go")
	if err != nil || len(mains) < 4 {
		t.Fatalf("found %v (%v); want the commands' main.go files", mains, err)
	}
	for _, m := range mains {
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(b, []byte("\n")); n > 90 {
			t.Errorf("%s has %d lines; keep mains under about 80 and move the logic into a package", m, n)
		}
	}
}
