package assets

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// npmSources writes a web directory's npm/ sources and tether.js.
func npmSources(t *testing.T, web, indexJS string) {
	t.Helper()
	files := map[string]string{
		"npm/package.json": "{\n  \"name\": \"@tetherauth/tether\",\n  \"version\": \"0.1.0\"\n}\n",
		"npm/index.js":     indexJS,
		"npm/index.d.ts":   "export {};\n",
		"npm/README.md":    "# x\n",
		"tether.js":        "globalThis.Tether = {};\n",
	}
	for name, content := range files {
		p := filepath.Join(web, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPackage(t *testing.T) {
	web, m := setup(t)
	npmSources(t, web, `import "./wasm_exec.js"; const wasm = new URL("./tether.wasm", import.meta.url);`)
	out := filepath.Join(t.TempDir(), "npm")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "stale.js"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Package(web, filepath.Join(web, "dist"), out)
	if err != nil {
		t.Fatal(err)
	}
	if got.Wasm != m.Wasm {
		t.Errorf("manifest %+v", got)
	}
	var names []string
	entries, _ := os.ReadDir(out)
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"README.md", "index.d.ts", "index.js", "package.json", "tether.js", "tether.wasm", "wasm_exec.js"}; !slices.Equal(names, want) {
		t.Errorf("package files %q; want %q", names, want)
	}
	wasm, _ := os.ReadFile(filepath.Join(out, "tether.wasm"))
	exec, _ := os.ReadFile(filepath.Join(out, "wasm_exec.js"))
	if !bytes.Equal(wasm, fakeWasm) || string(exec) != fakeExec {
		t.Errorf("tether.wasm or wasm_exec.js is not the build's")
	}
	var pkg struct {
		Name   string `json:"name"`
		Tether struct {
			Go string `json:"go"`
		} `json:"tether"`
	}
	data, _ := os.ReadFile(filepath.Join(out, "package.json"))
	if err := json.Unmarshal(data, &pkg); err != nil || pkg.Name != "@tetherauth/tether" || pkg.Tether.Go != "go1.26.8" {
		t.Errorf("package.json %s (%v); want the name and the Go version", data, err)
	}
}

// The ES module must name the wasm the way bundlers emit it.
func TestPackageNeedsWasmURL(t *testing.T) {
	web, _ := setup(t)
	npmSources(t, web, `const wasm = "./tether.wasm";`)
	_, err := Package(web, filepath.Join(web, "dist"), filepath.Join(t.TempDir(), "npm"))
	if err == nil || !strings.Contains(err.Error(), `new URL("./tether.wasm", import.meta.url)`) {
		t.Errorf("Package with an index.js that hides the wasm from bundlers: %v", err)
	}
}
