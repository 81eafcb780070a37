package assets

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// spaIndex is a bundler's index.html: no placeholder, absolute asset URLs.
const spaIndex = `<!doctype html><script type="module" src="/assets/index-BbWvYbd3.js"></script><div id="app"></div>`

// spaDir lays out what `vite build` writes, plus files of the types the
// web is made of, and returns the directory.
func spaDir(t *testing.T) string {
	t.Helper()
	web := t.TempDir()
	files := map[string]string{
		"index.html":                     spaIndex,
		"about.html":                     "<p>about</p>",
		"assets/index-BbWvYbd3.js":       strings.Repeat("console.log('app');\n", 200),
		"legacy.js":                      strings.Repeat("console.log('legacy');\n", 200),
		"assets/index-BbWvYbd3.js.map":   `{"version":3}`,
		"assets/index-DiwrgTda.css":      "body{}",
		"assets/tether-Cq1_x-9Z.wasm":    "\x00asm\x01\x00\x00\x00",
		"assets/Inter-SemiBold.woff2":    "wOF2",
		"fonts/Inter-SemiBold.woff2":     "wOF2",
		"fonts/Inter-a1b2c3d4.woff":      "wOFF",
		"img/photo.jpg":                  "\xff\xd8\xff",
		"img/photo.webp":                 "RIFF",
		"img/photo.avif":                 "avif",
		"img/logo.svg":                   "<svg/>",
		"media/intro.mp4":                "mp4",
		"media/intro.webm":               "webm",
		"site.webmanifest":               "{}",
		"robots.txt":                     "User-agent: *\n",
		"data.tetherx":                   "x",
		"settings/index.html":            "<p>a real directory page</p>",
		"main.go":                        "package main\n",
		"src/app.ts":                     "export {}\n",
		"server.key":                     "SECRET\n",
		"assets/index-BbWvYbd3.js.gz":    "not served by name",
		"strange.unknownextensionabc123": "?",
	}
	for name, content := range files {
		p := filepath.Join(web, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return web
}

// spaReserved are the BFF's own paths, as bff passes them.
var spaReserved = []string{"/bff", "/healthz", "/readyz", "/metrics"}

// A built SPA is served without a Tether build; each file with its type
// from the built-in table (the mime package for others), hashed names
// immutable, HTML and the rest revalidated.
func TestServeSPATypes(t *testing.T) {
	if err := mime.AddExtensionType(".tetherx", "application/x-tether-test"); err != nil {
		t.Fatal(err)
	}
	h, err := New(spaDir(t))
	if err != nil {
		t.Fatalf("New of a built SPA (no Tether build): %v", err)
	}
	const immutable, revalidate = "public, max-age=31536000, immutable", "no-cache"
	cases := []struct {
		path, ctype, cache string
	}{
		{"/", "text/html; charset=utf-8", revalidate},
		{"/index.html", "text/html; charset=utf-8", revalidate},
		{"/assets/index-BbWvYbd3.js", "text/javascript; charset=utf-8", immutable},
		{"/assets/index-BbWvYbd3.js.map", "application/json", immutable},
		{"/assets/index-DiwrgTda.css", "text/css; charset=utf-8", immutable}, // no digit, but in assets/
		{"/assets/tether-Cq1_x-9Z.wasm", "application/wasm", immutable},      // base64url, dashes in the hash
		{"/assets/Inter-SemiBold.woff2", "font/woff2", immutable},            // 8 letters in assets/: taken for a hash
		{"/fonts/Inter-SemiBold.woff2", "font/woff2", revalidate},            // outside assets/: a word
		{"/fonts/Inter-a1b2c3d4.woff", "font/woff", immutable},
		{"/img/photo.jpg", "image/jpeg", revalidate},
		{"/img/photo.webp", "image/webp", revalidate},
		{"/img/photo.avif", "image/avif", revalidate},
		{"/img/logo.svg", "image/svg+xml", revalidate},
		{"/media/intro.mp4", "video/mp4", revalidate},
		{"/media/intro.webm", "video/webm", revalidate},
		{"/site.webmanifest", "application/manifest+json", revalidate},
		{"/robots.txt", "text/plain; charset=utf-8", revalidate},
		{"/data.tetherx", "application/x-tether-test", revalidate}, // from the mime package
		{"/settings/", "text/html; charset=utf-8", revalidate},
	}
	for _, c := range cases {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", c.path, nil))
		if rec.Code != 200 {
			t.Errorf("GET %s: %d; want 200", c.path, rec.Code)
			continue
		}
		if got := rec.Header().Get("Content-Type"); got != c.ctype {
			t.Errorf("GET %s: Content-Type %q; want %q", c.path, got, c.ctype)
		}
		if got := rec.Header().Get("Cache-Control"); got != c.cache {
			t.Errorf("GET %s: Cache-Control %q; want %q", c.path, got, c.cache)
		}
		if rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", c.path)
		}
	}
	for _, p := range []string{"/main.go", "/src/app.ts", "/server.key", "/assets/index-BbWvYbd3.js.gz", "/strange.unknownextensionabc123", "/settings"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", p, nil))
		if rec.Code != 404 || strings.Contains(rec.Body.String(), "SECRET") {
			t.Errorf("GET %s: %d %q; want 404", p, rec.Code, rec.Body.String())
		}
	}
}

// The history fallback: routes get index.html with 200; files, requests
// that do not accept HTML, other methods and the reserved prefixes never do.
func TestFallback(t *testing.T) {
	web := spaDir(t)
	h, err := New(web, WithFallback("index.html", spaReserved...))
	if err != nil {
		t.Fatal(err)
	}
	const nav = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8" // Chromium's navigation
	cases := []struct {
		name, method, path, accept string
		status                     int
		body                       string // a prefix of the body; "" = do not check
	}{
		{"deep route", "GET", "/settings/profile", nav, 200, spaIndex},
		{"route", "GET", "/login-done", nav, 200, spaIndex},
		{"route with a trailing slash", "GET", "/account/", nav, 200, spaIndex},
		{"route with a query", "GET", "/settings/profile?tab=keys", nav, 200, spaIndex},
		{"route HEAD", "HEAD", "/settings/profile", nav, 200, ""},
		{"plain text/html", "GET", "/x", "text/html", 200, spaIndex},
		{"a real file still wins", "GET", "/about.html", nav, 200, "<p>about</p>"},
		{"a real directory page still wins", "GET", "/settings/", nav, 200, "<p>a real directory page</p>"},
		{"root", "GET", "/", nav, 200, spaIndex},
		{"missing script", "GET", "/app.js", nav, 404, ""},
		{"missing asset", "GET", "/assets/index-00000000.js", "*/*", 404, ""},
		{"missing image on a route", "GET", "/settings/avatar.png", nav, 404, ""},
		{"a dotted last segment", "GET", "/users/john.doe", nav, 404, ""},
		{"fetch's Accept", "GET", "/settings/profile", "*/*", 404, ""},
		{"no Accept", "GET", "/settings/profile", "", 404, ""},
		{"JSON", "GET", "/settings/profile", "application/json", 404, ""},
		{"html refused", "GET", "/settings/profile", "text/html;q=0, */*", 404, ""},
		{"POST", "POST", "/settings/profile", nav, 405, ""},
		{"bff", "GET", "/bff", nav, 404, ""},
		{"under bff", "GET", "/bff/unknown", nav, 404, ""},
		{"healthz", "GET", "/healthz/x", nav, 404, ""},
		{"readyz", "GET", "/readyz", nav, 404, ""},
		{"metrics", "GET", "/metrics/extra", nav, 404, ""},
		{"not reserved: a longer name", "GET", "/bffx", nav, 200, spaIndex},
		{"a source file", "GET", "/main.go", nav, 404, ""},
		{"traversal", "GET", "/../secret", nav, 404, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(c.method, c.path, nil)
			if c.accept != "" {
				req.Header.Set("Accept", c.accept)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != c.status {
				t.Fatalf("%s %s (Accept %q): %d; want %d; body %.80q", c.method, c.path, c.accept, rec.Code, c.status, rec.Body.String())
			}
			if c.status == 404 && strings.Contains(rec.Body.String(), "<div id=\"app\">") {
				t.Errorf("a 404 carries the SPA's page")
			}
			if c.status != 200 {
				return
			}
			if !strings.HasPrefix(rec.Body.String(), c.body) {
				t.Errorf("body %.80q; want %.80q", rec.Body.String(), c.body)
			}
			if ct, cc := rec.Header().Get("Content-Type"), rec.Header().Get("Cache-Control"); ct != "text/html; charset=utf-8" || cc != "no-cache" {
				t.Errorf("Content-Type %q, Cache-Control %q; want HTML, no-cache", ct, cc)
			}
		})
	}
	// A route's answer depends on Accept, its 404 to fetch included:
	// caches are told. A file's answer does not.
	for _, c := range []struct {
		path, accept string
		vary         bool
	}{{"/settings/profile", nav, true}, {"/settings/profile", "*/*", true}, {"/app.js", nav, false}, {"/bff/x", nav, false}} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", c.path, nil)
		req.Header.Set("Accept", c.accept)
		h.ServeHTTP(rec, req)
		if got := slices.Contains(rec.Header().Values("Vary"), "Accept"); got != c.vary {
			t.Errorf("GET %s (Accept %q): Vary %q; want Accept: %v", c.path, c.accept, rec.Header().Values("Vary"), c.vary)
		}
	}
}

// The fallback page is checked at New: an HTML file in the directory.
func TestFallbackMustExist(t *testing.T) {
	web := spaDir(t)
	for _, page := range []string{"missing.html", "robots.txt", "../index.html", ".hidden.html", "assets"} {
		if _, err := New(web, WithFallback(page)); !errors.Is(err, ErrFallback) {
			t.Errorf("WithFallback(%q): %v; want ErrFallback", page, err)
		}
	}
	if _, err := New(web, WithFallback("settings/index.html")); err != nil {
		t.Errorf("WithFallback of a nested page: %v", err)
	}
}

// The demo's page as the fallback: its placeholder becomes an absolute
// path to the binary, which resolves at any depth.
func TestFallbackWithTetherBuild(t *testing.T) {
	web, m := setup(t)
	h, err := New(web, WithFallback("index.html"))
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/deep/route", nil)
	req.Header.Set("Accept", "text/html")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if want := `data-wasm="/dist/` + m.Wasm + `"`; rec.Code != 200 || !strings.Contains(rec.Body.String(), want) {
		t.Errorf("GET /deep/route: %d %q; want 200 with %s", rec.Code, rec.Body.String(), want)
	}
}

// Compress writes variants for what gains from them; the handler serves
// them by Accept-Encoding, and never a variant older than its file.
func TestCompress(t *testing.T) {
	web := spaDir(t)
	sum, err := Compress(web)
	if err != nil {
		t.Fatal(err)
	}
	js := filepath.Join(web, "assets", "index-BbWvYbd3.js")
	for _, v := range []string{".gz", ".br"} {
		if _, err := os.Stat(js + v); err != nil {
			t.Errorf("no %s variant of the script: %v", v, err)
		}
	}
	for _, p := range []string{"index.html", "img/photo.jpg", "robots.txt", "assets/index-DiwrgTda.css"} { // HTML, an image, small files
		if _, err := os.Stat(filepath.Join(web, p) + ".gz"); err == nil {
			t.Errorf("%s got a variant", p)
		}
	}
	if sum.Files != 2 || sum.Gzip <= 0 || sum.Gzip >= sum.Raw {
		t.Errorf("Compress = %+v; want two files, smaller", sum)
	}
	h, err := New(web)
	if err != nil {
		t.Fatal(err)
	}
	get := func(p string) *http.Response {
		req := httptest.NewRequest("GET", p, nil)
		req.Header.Set("Accept-Encoding", "gzip")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Result()
	}
	res := get("/assets/index-BbWvYbd3.js")
	body, _ := io.ReadAll(res.Body)
	if res.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(res.Header.Get("Vary"), "Accept-Encoding") {
		t.Fatalf("headers %v; want gzip, Vary: Accept-Encoding", res.Header)
	}
	if got := decode(t, "gzip", body); !bytes.Contains(got, []byte("console.log('app')")) {
		t.Errorf("decoded %q", got)
	}
	// A file without a hash in its name is edited after its variants were
	// made: they are stale, not served.
	js = filepath.Join(web, "legacy.js")
	if res := get("/legacy.js"); res.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("GET /legacy.js: encoding %q; want gzip", res.Header.Get("Content-Encoding"))
	}
	later := time.Now().Add(time.Minute)
	if err := os.WriteFile(js, []byte("console.log('new');\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(js, later, later); err != nil {
		t.Fatal(err)
	}
	res = get("/legacy.js")
	body, _ = io.ReadAll(res.Body)
	if res.Header.Get("Content-Encoding") != "" || string(body) != "console.log('new');\n" {
		t.Errorf("after an edit: encoding %q, body %q; want the new file as is", res.Header.Get("Content-Encoding"), body)
	}
}

func TestHashedName(t *testing.T) {
	for name, want := range map[string]bool{
		"tether.3f9a1c2b4d5e6f70.wasm":           true,
		"dist/tether.3f9a1c2b4d5e6f70.wasm":      true,
		"assets/index-BbWvYbd3.js":               true,
		"assets/index-DiwrgTda.css":              true,
		"assets/index-DiwrgTda.css.map":          true,
		"assets/tether-Cq1_x-9Z.wasm":            true,
		"static/js/main.3f2a1b9c8d7e6f50a1b2.js": true,  // webpack [contenthash]
		"chunk-ABCD2EFG.js":                      true,  // esbuild
		"fonts/Inter-a1b2c3d4.woff2":             true,  // a digit: a hash anywhere
		"fonts/Inter-SemiBold.woff2":             false, // a word outside assets/
		"app-foo-bar1.js":                        false, // a dash inside: only in assets/
		"index.html":                             false,
		"tether.js":                              false,
		"wasm_exec.js":                           false,
		"settings2024.js":                        false,
		"report-2024Q1abc.js":                    false, // 9 characters
		"assets/logo.svg":                        false,
		"assets/index-Bb.js":                     false,
	} {
		if got := hashedName(name); got != want {
			t.Errorf("hashedName(%q) = %v; want %v", name, got, want)
		}
	}
}
