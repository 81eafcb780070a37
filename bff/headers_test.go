package bff

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tetherauth/tether/bff/assets"
	"github.com/tetherauth/tether/shared/wire"
)

// testWebDir lays out a web directory with a page and a built dist, as
// `make web` leaves it.
func testWebDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	m, _ := json.Marshal(assets.Manifest{Wasm: "tether.0123456789abcdef.wasm", WasmExec: assets.WasmExec})
	for name, content := range map[string]string{
		"index.html":                        `<!doctype html><script src="tether.js" data-wasm="{{TETHER_WASM}}"></script>`,
		"tether.js":                         "globalThis.Tether = {};\n",
		"dist/" + assets.ManifestFile:       string(m),
		"dist/tether.0123456789abcdef.wasm": "\x00asm\x01\x00\x00\x00",
		"dist/" + assets.WasmExec:           "// wasm_exec.js\n",
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

// directives splits a CSP into its directives, by name.
func directives(csp string) map[string]string {
	out := map[string]string{}
	for _, d := range strings.Split(csp, ";") {
		d = strings.TrimSpace(d)
		if d == "" {
			continue
		}
		name, value, _ := strings.Cut(d, " ")
		out[name] = value
	}
	return out
}

// serve answers one request in process.
func serveOne(h http.Handler, method, target string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, target, nil))
	return w
}

// TestSecurityHeaders: every answer carries nosniff, no-referrer and a
// refusal to be framed; pages get a CSP fit for the WASM client and COOP;
// JSON and redirects a CSP that allows nothing (issue 9 §5).
func TestSecurityHeaders(t *testing.T) {
	s := newStack(t, stackOptions{tune: func(c *Config) { c.WebDir = testWebDir(t) }})
	h := s.bffs[0]

	base := func(t *testing.T, what string, hdr http.Header) {
		t.Helper()
		for k, want := range map[string]string{
			"X-Content-Type-Options": "nosniff",
			"Referrer-Policy":        "no-referrer",
			"X-Frame-Options":        "DENY",
		} {
			if got := hdr.Get(k); got != want {
				t.Errorf("%s: %s = %q; want %q", what, k, got, want)
			}
		}
		csp := hdr.Get("Content-Security-Policy")
		d := directives(csp)
		if d["frame-ancestors"] != "'none'" {
			t.Errorf("%s: CSP %q has no frame-ancestors 'none'", what, csp)
		}
		if strings.Contains(csp, "'unsafe-inline'") || strings.Contains(csp, "'unsafe-eval'") {
			t.Errorf("%s: CSP %q allows inline code or eval", what, csp)
		}
	}

	t.Run("page", func(t *testing.T) {
		for _, path := range []string{"/", "/index.html", "/tether.js"} {
			w := serveOne(h, http.MethodGet, path)
			if w.Code != 200 {
				t.Fatalf("GET %s = %d", path, w.Code)
			}
			base(t, path, w.Header())
			d := directives(w.Header().Get("Content-Security-Policy"))
			for name, want := range map[string]string{
				"default-src": "'self'", "script-src": "'self' 'wasm-unsafe-eval'", "connect-src": "'self'",
				"base-uri": "'none'", "object-src": "'none'", "form-action": "'self'",
			} {
				if d[name] != want {
					t.Errorf("GET %s: CSP %s = %q; want %q", path, name, d[name], want)
				}
			}
			if got := w.Header().Get("Cross-Origin-Opener-Policy"); got != "same-origin" {
				t.Errorf("GET %s: Cross-Origin-Opener-Policy = %q; want same-origin", path, got)
			}
		}
	})

	t.Run("bff", func(t *testing.T) {
		for _, rq := range []struct{ method, path string }{
			{http.MethodPost, wire.PathToken}, // 403 without X-CSRF
			{http.MethodGet, wire.PathLogin},  // 302
			{http.MethodGet, wire.PathCallback},
			{http.MethodGet, "/bff/nope"},
			{http.MethodGet, "/healthz"},
			{http.MethodGet, "/readyz"},
		} {
			w := serveOne(h, rq.method, rq.path)
			base(t, rq.method+" "+rq.path, w.Header())
			if d := directives(w.Header().Get("Content-Security-Policy")); d["default-src"] != "'none'" {
				t.Errorf("%s %s: CSP %q; want default-src 'none'", rq.method, rq.path, w.Header().Get("Content-Security-Policy"))
			}
		}
	})

	t.Run("error page", func(t *testing.T) {
		// The BFF's own HTML page: its inline style is allowed by hash,
		// nothing else is.
		w := serveOne(h, http.MethodGet, wire.PathCallback+"?error=access_denied")
		if !strings.Contains(w.Header().Get("Content-Type"), "text/html") {
			t.Fatalf("not a page: %q", w.Header().Get("Content-Type"))
		}
		base(t, "error page", w.Header())
		m := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindStringSubmatch(w.Body.String())
		if m == nil {
			t.Fatalf("no <style> in %s", w.Body.String())
		}
		sum := sha256.Sum256([]byte(m[1]))
		want := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
		d := directives(w.Header().Get("Content-Security-Policy"))
		if d["style-src"] != want || d["default-src"] != "'none'" {
			t.Errorf("error page CSP %q; want default-src 'none' and style-src %s", w.Header().Get("Content-Security-Policy"), want)
		}
		if strings.Contains(w.Body.String(), "<script") {
			t.Error("the error page has a script")
		}
	})
}

// TestPageCSPConfig: TETHER_API_ORIGINS adds origins to the page's
// connect-src; TETHER_CSP replaces the page's policy (and only the page's).
func TestPageCSPConfig(t *testing.T) {
	web := testWebDir(t)
	t.Run("api origins", func(t *testing.T) {
		s := newStack(t, stackOptions{tune: func(c *Config) {
			c.WebDir, c.APIOrigins = web, []string{"https://api.example", "http://127.0.0.1:9090"}
		}})
		w := serveOne(s.bffs[0], http.MethodGet, "/")
		if d := directives(w.Header().Get("Content-Security-Policy")); d["connect-src"] != "'self' https://api.example http://127.0.0.1:9090" {
			t.Errorf("connect-src %q; want 'self' and the two API origins", d["connect-src"])
		}
	})
	t.Run("override", func(t *testing.T) {
		const custom = "default-src 'self'; frame-ancestors 'none'; img-src https://img.example"
		s := newStack(t, stackOptions{tune: func(c *Config) { c.WebDir, c.CSP = web, custom }})
		if got := serveOne(s.bffs[0], http.MethodGet, "/").Header().Get("Content-Security-Policy"); got != custom {
			t.Errorf("page CSP %q; want %q", got, custom)
		}
		if got := serveOne(s.bffs[0], http.MethodGet, "/healthz").Header().Get("Content-Security-Policy"); got == custom {
			t.Error("TETHER_CSP reached a non-page answer")
		}
	})
}

func TestFromEnvSecurityHeaders(t *testing.T) {
	c, err := FromEnv(minimalEnv.with("TETHER_API_ORIGINS", "https://api.example, http://127.0.0.1:9090", "TETHER_CSP", " default-src 'self' ").get)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.APIOrigins, []string{"https://api.example", "http://127.0.0.1:9090"}) || c.CSP != "default-src 'self'" {
		t.Errorf("APIOrigins %q, CSP %q", c.APIOrigins, c.CSP)
	}
	for _, bad := range []testEnv{
		minimalEnv.with("TETHER_API_ORIGINS", "https://api.example/v1"),
		minimalEnv.with("TETHER_API_ORIGINS", "api.example"),
		minimalEnv.with("TETHER_API_ORIGINS", "https://api.example;script-src"),
		minimalEnv.with("TETHER_API_ORIGINS", "javascript:x"),
		minimalEnv.with("TETHER_CSP", "default-src 'self'\r\nSet-Cookie: x=1"),
	} {
		_, err := FromEnv(bad.get)
		var ce *ConfigError
		if !errors.As(err, &ce) || (ce.Var != "TETHER_API_ORIGINS" && ce.Var != "TETHER_CSP") {
			t.Errorf("FromEnv(%v) = %v; want a ConfigError naming the variable", bad, err)
		}
	}
}
