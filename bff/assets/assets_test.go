package assets

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
)

// fakeWasm stands for a build output: compressible, with a distinct hash.
var fakeWasm = bytes.Repeat([]byte("\x00asm\x01\x00\x00\x00 tether "), 4096)

const fakeExec = "// wasm_exec.js of the fake GOROOT\n"

// setup lays out a web directory with a built dist and returns it with the
// manifest. Outside the web directory it leaves a secret file.
func setup(t *testing.T) (string, *Manifest) {
	t.Helper()
	top := t.TempDir()
	web := filepath.Join(top, "web")
	goroot := filepath.Join(top, "goroot")
	files := map[string]string{
		filepath.Join(web, "index.html"):                              `<script src="tether.js" data-wasm="{{TETHER_WASM}}"></script>`,
		filepath.Join(web, "demo", "page.html"):                       `<a href="{{TETHER_WASM}}">x</a>`,
		filepath.Join(web, "tether.js"):                               "globalThis.Tether = {};\n",
		filepath.Join(web, "style.css"):                               "body{}\n",
		filepath.Join(web, ".env"):                                    "SECRET=1\n",
		filepath.Join(web, ".git", "hook.js"):                         "SECRET\n",
		filepath.Join(web, ".hidden.js"):                              "SECRET\n",
		filepath.Join(web, "notes.go"):                                "package x\n",
		filepath.Join(web, "dist", BuildOutput):                       string(fakeWasm),
		filepath.Join(web, "dist", "tether.0000000000000000.wasm"):    "old build",
		filepath.Join(web, "dist", "tether.0000000000000000.wasm.br"): "old build",
		filepath.Join(goroot, "lib", "wasm", WasmExec):                fakeExec,
		filepath.Join(goroot, "VERSION"):                              "go1.26.8\ntime 2026-01-01\n",
		filepath.Join(top, "secret.js"):                               "secret",
	}
	for name, content := range files {
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(top, "secret.js"), filepath.Join(web, "leak.js")); err != nil {
		t.Fatal(err)
	}
	m, err := Build(filepath.Join(web, "dist"), goroot)
	if err != nil {
		t.Fatal(err)
	}
	return web, m
}

func TestBuild(t *testing.T) {
	web, m := setup(t)
	dist := filepath.Join(web, "dist")
	if !strings.HasPrefix(m.Wasm, "tether.") || len(m.Wasm) != len("tether.0123456789abcdef.wasm") {
		t.Errorf("hashed name %q", m.Wasm)
	}
	if m.GoVersion != "go1.26.8" || m.Raw != len(fakeWasm) || m.Gzip <= 0 || m.Brotli <= 0 || m.Gzip >= m.Raw {
		t.Errorf("manifest %+v", m)
	}
	want := []string{m.Wasm, m.Wasm + ".br", m.Wasm + ".gz", ManifestFile, WasmExec, WasmExec + ".br", WasmExec + ".gz"}
	var got []string
	entries, _ := os.ReadDir(dist)
	for _, e := range entries {
		got = append(got, e.Name())
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("dist holds %q; want %q (old builds and tether.wasm removed)", got, want)
	}
	exec, _ := os.ReadFile(filepath.Join(dist, WasmExec))
	if string(exec) != fakeExec {
		t.Errorf("wasm_exec.js not copied from GOROOT: %q", exec)
	}
	if _, err := Build(dist, filepath.Join(web, "nowhere")); !errors.Is(err, ErrNoBuild) {
		t.Errorf("Build without tether.wasm: %v; want ErrNoBuild", err)
	}
}

// A web directory whose page loads the client that make web builds (it
// holds the placeholder) needs that build; New says to run make web.
func TestNewWithoutBuild(t *testing.T) {
	web := t.TempDir()
	if err := os.WriteFile(filepath.Join(web, "index.html"), []byte(`<script data-wasm="{{TETHER_WASM}}"></script>`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := New(web)
	if !errors.Is(err, ErrNoBuild) || !strings.Contains(err.Error(), "run make web") {
		t.Fatalf("New without dist: %v; want an error saying to run make web", err)
	}
	if err := os.Mkdir(filepath.Join(web, "dist"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := New(web); !errors.Is(err, ErrNoBuild) {
		t.Fatalf("New with an empty dist: %v; want ErrNoBuild", err)
	}
	if _, err := New(t.TempDir(), WithDist(filepath.Join(web, "dist"))); !errors.Is(err, ErrNoBuild) {
		t.Fatalf("New WithDist of an empty dist: %v; want ErrNoBuild", err)
	}
}

func TestServe(t *testing.T) {
	web, m := setup(t)
	h, err := New(web)
	if err != nil {
		t.Fatal(err)
	}
	wasmPath := "/dist/" + m.Wasm
	cases := []struct {
		name, method, path, accept string
		status                     int
		ctype, cache, encoding     string
		body                       string // checked when not empty
	}{
		{"index", "GET", "/", "", 200, "text/html; charset=utf-8", "no-cache", "", `data-wasm="dist/` + m.Wasm + `"`},
		{"index by name", "GET", "/index.html", "", 200, "text/html; charset=utf-8", "no-cache", "", `dist/` + m.Wasm},
		{"nested page", "GET", "/demo/page.html", "", 200, "text/html; charset=utf-8", "no-cache", "", `href="../dist/` + m.Wasm + `"`},
		{"tether.js", "GET", "/tether.js", "br, gzip", 200, "text/javascript; charset=utf-8", "no-cache", "", "globalThis.Tether"},
		{"css", "GET", "/style.css", "", 200, "text/css; charset=utf-8", "no-cache", "", "body{}"},
		{"wasm brotli", "GET", wasmPath, "gzip, deflate, br", 200, "application/wasm", "public, max-age=31536000, immutable", "br", ""},
		{"wasm gzip", "GET", wasmPath, "gzip", 200, "application/wasm", "public, max-age=31536000, immutable", "gzip", ""},
		{"wasm br refused", "GET", wasmPath, "br;q=0, gzip;q=0.5", 200, "application/wasm", "public, max-age=31536000, immutable", "gzip", ""},
		{"wasm star", "GET", wasmPath, "*", 200, "application/wasm", "public, max-age=31536000, immutable", "br", ""},
		{"wasm identity", "GET", wasmPath, "", 200, "application/wasm", "public, max-age=31536000, immutable", "", ""},
		{"wasm HEAD", "HEAD", wasmPath, "br", 200, "application/wasm", "public, max-age=31536000, immutable", "br", ""},
		{"wasm_exec", "GET", "/dist/wasm_exec.js", "gzip", 200, "text/javascript; charset=utf-8", "no-cache", "gzip", ""},
		{"manifest", "GET", "/dist/manifest.json", "br", 200, "application/json", "no-cache", "", `"wasm": "` + m.Wasm + `"`},
		{"missing", "GET", "/nope.js", "", 404, "", "", "", ""},
		{"unhashed build output", "GET", "/dist/tether.wasm", "", 404, "", "", "", ""},
		{"old build", "GET", "/dist/tether.0000000000000000.wasm", "", 404, "", "", "", ""},
		{"variant by name", "GET", wasmPath + ".br", "", 404, "", "", "", ""},
		{"dist directory", "GET", "/dist/", "", 404, "", "", "", ""},
		{"dist without slash", "GET", "/dist", "", 404, "", "", "", ""},
		{"directory", "GET", "/demo", "", 404, "", "", "", ""},
		{"directory without index", "GET", "/demo/", "", 404, "", "", "", ""},
		{"dot file", "GET", "/.env", "", 404, "", "", "", ""},
		{"dot file with a served extension", "GET", "/.hidden.js", "", 404, "", "", "", ""},
		{"dot directory", "GET", "/.git/hook.js", "", 404, "", "", "", ""},
		{"unknown extension", "GET", "/notes.go", "", 404, "", "", "", ""},
		{"traversal", "GET", "/../secret.js", "", 404, "", "", "", ""},
		{"encoded traversal", "GET", "/%2e%2e/secret.js", "", 404, "", "", "", ""},
		{"dist traversal", "GET", "/dist/../../secret.js", "", 404, "", "", "", ""},
		{"backslash", "GET", "/dist/..%5c..%5csecret.js", "", 404, "", "", "", ""},
		{"symlink out", "GET", "/leak.js", "", 404, "", "", "", ""},
		{"POST", "POST", "/tether.js", "", 405, "", "", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(c.method, c.path, nil)
			if c.accept != "" {
				req.Header.Set("Accept-Encoding", c.accept)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			res := rec.Result()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != c.status {
				t.Fatalf("%s %s: status %d; want %d", c.method, c.path, res.StatusCode, c.status)
			}
			if c.status != 200 {
				if strings.Contains(string(body), "secret") || strings.Contains(string(body), "SECRET") {
					t.Errorf("error body leaks: %q", body)
				}
				return
			}
			if got := res.Header.Get("Content-Type"); got != c.ctype {
				t.Errorf("Content-Type %q; want %q", got, c.ctype)
			}
			if got := res.Header.Get("Cache-Control"); got != c.cache {
				t.Errorf("Cache-Control %q; want %q", got, c.cache)
			}
			if got := res.Header.Get("Content-Encoding"); got != c.encoding {
				t.Errorf("Content-Encoding %q; want %q", got, c.encoding)
			}
			if res.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Error("no nosniff")
			}
			if strings.HasPrefix(c.path, "/dist/") && !strings.Contains(res.Header.Get("Vary"), "Accept-Encoding") {
				t.Error("no Vary: Accept-Encoding")
			}
			if c.method == "HEAD" {
				if len(body) != 0 {
					t.Errorf("HEAD sent %d bytes", len(body))
				}
				return
			}
			if c.body != "" && !strings.Contains(string(body), c.body) {
				t.Errorf("body %q lacks %q", body, c.body)
			}
			if c.path == wasmPath {
				if got := decode(t, c.encoding, body); !bytes.Equal(got, fakeWasm) {
					t.Errorf("decoded %s body differs from the build (%d bytes)", c.encoding, len(got))
				}
			}
		})
	}
}

func decode(t *testing.T, enc string, body []byte) []byte {
	t.Helper()
	var r io.Reader = bytes.NewReader(body)
	switch enc {
	case "br":
		r = brotli.NewReader(r)
	case "gzip":
		zr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestConditional(t *testing.T) {
	web, m := setup(t)
	h, err := New(web)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/", "/dist/" + m.Wasm} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", p, nil)
		req.Header.Set("Accept-Encoding", "br")
		h.ServeHTTP(rec, req)
		etag := rec.Header().Get("ETag")
		if etag == "" {
			t.Fatalf("%s: no ETag", p)
		}
		rec = httptest.NewRecorder()
		req = httptest.NewRequest("GET", p, nil)
		req.Header.Set("Accept-Encoding", "br")
		req.Header.Set("If-None-Match", etag)
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusNotModified {
			t.Errorf("%s with If-None-Match: %d; want 304", p, rec.Code)
		}
	}
}

func TestWithDist(t *testing.T) {
	web, m := setup(t)
	moved := filepath.Join(t.TempDir(), "out")
	if err := os.Rename(filepath.Join(web, "dist"), moved); err != nil {
		t.Fatal(err)
	}
	if _, err := New(web); !errors.Is(err, ErrNoBuild) {
		t.Fatalf("New after moving dist: %v; want ErrNoBuild", err)
	}
	h, err := New(web, WithDist(moved))
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/dist/"+m.Wasm, nil))
	if rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), fakeWasm) {
		t.Fatalf("GET the wasm from the moved dist: %d", rec.Code)
	}
}

func TestAccepts(t *testing.T) {
	cases := []struct {
		header, coding string
		want           bool
	}{
		{"", "br", false},
		{"br", "br", true},
		{"BR", "br", true},
		{"gzip, br;q=0", "br", false},
		{"gzip, br;q=0.000", "br", false},
		{"gzip, br; q=0.1", "br", true},
		{"*", "gzip", true},
		{"*;q=0", "gzip", false},
		{"*;q=0, gzip", "gzip", true},
		{"deflate", "gzip", false},
	}
	for _, c := range cases {
		if got := accepts(c.header, c.coding); got != c.want {
			t.Errorf("accepts(%q, %q) = %v; want %v", c.header, c.coding, got, c.want)
		}
	}
}
