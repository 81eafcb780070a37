package bff

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetherauth/tether/shared/wire"
)

// builtSPA writes what `vite build` leaves in dist/ and returns the directory.
func builtSPA(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{
		"index.html":                  `<!doctype html><div id="app"></div><script type="module" src="/assets/index-BbWvYbd3.js"></script>`,
		"assets/index-BbWvYbd3.js":    "console.log(1)",
		"assets/tether-Cq1x9Zab.wasm": "\x00asm\x01\x00\x00\x00",
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// The BFF serving a built SPA with TETHER_WEB_FALLBACK: a route is the
// SPA's page; a missing file, and any path of the BFF's own, is not.
func TestWebFallback(t *testing.T) {
	dir := builtSPA(t)
	s := newStack(t, stackOptions{tune: func(c *Config) { c.WebDir, c.WebFallback = dir, "index.html" }})
	get := func(path, accept string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", s.urls[0]+path, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		res, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res, string(body)
	}
	const nav = "text/html,application/xhtml+xml,*/*;q=0.8"
	res, body := get("/settings/profile", nav)
	if res.StatusCode != 200 || !strings.Contains(body, `<div id="app">`) || res.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("GET /settings/profile: %d %q %q; want the SPA's page, no-cache", res.StatusCode, res.Header.Get("Cache-Control"), body)
	}
	res, _ = get("/assets/tether-Cq1x9Zab.wasm", "*/*")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/wasm" || !strings.Contains(res.Header.Get("Cache-Control"), "immutable") {
		t.Errorf("GET the fingerprinted wasm: %d %q %q; want application/wasm, immutable", res.StatusCode, res.Header.Get("Content-Type"), res.Header.Get("Cache-Control"))
	}
	res, body = get("/app.js", nav)
	if res.StatusCode != 404 || strings.Contains(body, `id="app"`) {
		t.Errorf("GET /app.js: %d %q; want a 404, not the page", res.StatusCode, body)
	}
	for _, p := range []string{"/bff/unknown", "/bff/settings/profile", "/bff"} {
		res, body = get(p, nav)
		var e wire.ErrorBody
		if res.StatusCode != 404 || json.Unmarshal([]byte(body), &e) != nil || e.Error != wire.ErrNotFound {
			t.Errorf("GET %s: %d %q; want 404 %s in JSON", p, res.StatusCode, body, wire.ErrNotFound)
		}
	}
	for _, p := range []string{"/healthz/x", "/metrics/x", "/readyz/x"} {
		if res, body = get(p, nav); res.StatusCode != 404 || strings.Contains(body, `id="app"`) {
			t.Errorf("GET %s: %d %q; want 404", p, res.StatusCode, body)
		}
	}
	if res, body = get("/healthz", nav); res.StatusCode != 200 || body != "ok\n" {
		t.Errorf("GET /healthz: %d %q", res.StatusCode, body)
	}
	// The BFF's routes work as before.
	if res, _ = get("/bff/login?return_to=/settings/profile", nav); res.StatusCode != http.StatusFound || !strings.HasPrefix(res.Header.Get("Location"), s.devURL) {
		t.Errorf("GET /bff/login: %d to %q; want a redirect to the provider", res.StatusCode, res.Header.Get("Location"))
	}
}

// noRedirect is a client that returns redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// With TETHER_BASE_PATH=/auth, /auth/... is the BFF's and /bff/... may be
// a route of the app.
func TestWebFallbackBasePath(t *testing.T) {
	dir := builtSPA(t)
	s := newStack(t, stackOptions{tune: func(c *Config) { c.WebDir, c.WebFallback, c.BasePath = dir, "index.html", "/auth" }})
	for path, want := range map[string]int{"/auth/unknown": 404, "/bff/settings": 200, "/settings/profile": 200} {
		req, _ := http.NewRequest("GET", s.urls[0]+path, nil)
		req.Header.Set("Accept", "text/html")
		res, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != want || (want == 200) != strings.Contains(string(body), `<div id="app">`) {
			t.Errorf("GET %s: %d %.80q; want %d", path, res.StatusCode, body, want)
		}
	}
}

func TestWebFallbackConfig(t *testing.T) {
	dir := builtSPA(t)
	for _, c := range []struct {
		env  testEnv
		want string // "" = valid
	}{
		{minimalEnv.with("TETHER_WEB_DIR", dir, "TETHER_WEB_FALLBACK", "index.html"), ""},
		{minimalEnv.with("TETHER_WEB_FALLBACK", "index.html"), "needs TETHER_WEB_DIR"},
		{minimalEnv.with("TETHER_WEB_DIR", dir, "TETHER_WEB_FALLBACK", "missing.html"), "not a file"},
		{minimalEnv.with("TETHER_WEB_DIR", dir, "TETHER_WEB_FALLBACK", "assets"), "not an .html"},
		{minimalEnv.with("TETHER_WEB_DIR", dir, "TETHER_WEB_FALLBACK", "../index.html"), "not an .html"},
		{minimalEnv.with("TETHER_WEB_DIR", dir, "TETHER_WEB_FALLBACK", "/index.html"), "not an .html"},
		{minimalEnv.with("TETHER_WEB_DIR", dir, "TETHER_WEB_FALLBACK", ".hidden.html"), "not an .html"},
	} {
		c0, err := FromEnv(c.env.get)
		if c.want == "" {
			if err != nil || c0.WebFallback != "index.html" {
				t.Errorf("FromEnv(%v): %v, WebFallback %q", c.env, err, c0.WebFallback)
			}
			continue
		}
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Var != "TETHER_WEB_FALLBACK" || !strings.Contains(err.Error(), c.want) {
			t.Errorf("FromEnv with TETHER_WEB_FALLBACK=%q: %v; want a ConfigError naming it, saying %q", c.env["TETHER_WEB_FALLBACK"], err, c.want)
		}
	}
}
