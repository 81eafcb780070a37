package bff

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tetherauth/tether/shared/wire"
)

// TestTokenRouteOutsideGin: POST /bff/token is answered before Gin's
// router (serveToken), with everything Tether's Gin middleware gives the
// other routes: the same headers as the route has under an application's
// router (Register), the X-CSRF rule, a debug access-log line (method,
// path, status; no cookie), and a panic turned into a 500 in the
// contract's shape, logged by path. The path's other methods and its
// trailing-slash variant are still Gin's.
func TestTokenRouteOutsideGin(t *testing.T) {
	var boom atomic.Bool
	s := newStack(t, stackOptions{tune: func(c *Config) {
		now := c.Now
		c.Now = func() time.Time {
			if boom.Load() {
				panic("the clock broke")
			}
			return now()
		}
	}})
	b := s.newBrowser()
	b.login(s.urls[0], "/")
	tokenURL := s.urls[0] + wire.PathToken

	status, hdr, body := b.do("POST", tokenURL, "", wire.HeaderCSRF, wire.CSRFValue)
	if status != http.StatusOK || !strings.Contains(body, `"access_token":`) {
		t.Fatalf("POST /bff/token = %d %q; want 200 and a token", status, body)
	}
	want := map[string]string{
		"Content-Type":            "application/json; charset=utf-8",
		"Cache-Control":           "no-store",
		"Pragma":                  "no-cache",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
		"Content-Security-Policy": apiCSP,
	}
	for k, v := range want {
		if got := hdr.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("POST /bff/token: %s = %q; want exactly %q", k, got, v)
		}
	}

	// Under an application's router the route answers with the same
	// headers (and the application's own).
	app, _ := newAppStack(t, appOptions{basePath: "/auth", routes: func(_ *Handler, r *gin.Engine) {
		r.Use(func(c *gin.Context) { c.Header("X-App", "1"); c.Next() })
	}})
	ab := app.newBrowser()
	ab.loginAt(app.urls[0], "/auth", "/")
	astatus, ahdr, _ := ab.do("POST", app.urls[0]+"/auth/token", "", wire.HeaderCSRF, wire.CSRFValue)
	if astatus != http.StatusOK || ahdr.Get("X-App") != "1" {
		t.Fatalf("POST /auth/token under the app's router = %d, X-App %q; want 200 and the app's middleware", astatus, ahdr.Get("X-App"))
	}
	names := func(h http.Header, drop ...string) []string {
		var n []string
		for k := range h {
			if !slices.Contains(drop, k) {
				n = append(n, k+": "+strings.Join(h[k], ","))
			}
		}
		slices.Sort(n)
		return n
	}
	if a, b := names(hdr, "Date", "Content-Length"), names(ahdr, "Date", "Content-Length", "X-App"); !slices.Equal(a, b) {
		t.Errorf("headers differ:\n  Handler: %q\n  Register: %q", a, b)
	}

	// The X-CSRF rule, in the contract's shape.
	status, hdr, body = b.do("POST", tokenURL, "")
	var eb wire.ErrorBody
	if json.Unmarshal([]byte(body), &eb); status != http.StatusForbidden || eb.Error != wire.ErrCSRFHeaderMissing || hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("POST /bff/token without X-CSRF = %d %q, Cache-Control %q; want 403 %s, no-store", status, body, hdr.Get("Cache-Control"), wire.ErrCSRFHeaderMissing)
	}

	// Gin still answers the path's other methods and variants.
	if status, _, body := b.do("GET", tokenURL, ""); status != http.StatusMethodNotAllowed || !strings.Contains(body, wire.ErrMethodNotAllowed) {
		t.Errorf("GET /bff/token = %d %q; want 405 %s", status, body, wire.ErrMethodNotAllowed)
	}
	w := serveOne(s.bffs[0], http.MethodPost, wire.PathToken+"/")
	if w.Code != http.StatusTemporaryRedirect || w.Header().Get("Location") != wire.PathToken {
		t.Errorf("POST /bff/token/ = %d to %q; want Gin's 307 to %s", w.Code, w.Header().Get("Location"), wire.PathToken)
	}

	// The access log: a debug line per request, the path and status,
	// never the cookie.
	logs := s.logs.String()
	hasLine := func(parts ...string) bool {
		for line := range strings.Lines(logs) {
			if !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(line, p) }) {
				return true
			}
		}
		return false
	}
	for _, status := range []string{"200", "403"} {
		if !hasLine("level=DEBUG msg=request", "method=POST path=/bff/token status="+status+" duration=") {
			t.Errorf("no access-log line for the %s in:\n%s", status, logs)
		}
	}

	// A panic is a 500 in the contract's shape, with the headers, logged
	// by path alone; the next request is served.
	boom.Store(true)
	status, hdr, body = b.do("POST", tokenURL, "", wire.HeaderCSRF, wire.CSRFValue)
	boom.Store(false)
	eb = wire.ErrorBody{}
	if json.Unmarshal([]byte(body), &eb); status != http.StatusInternalServerError || eb.Error != wire.ErrInternal ||
		hdr.Get("X-Frame-Options") != "DENY" || hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("POST /bff/token with a panic = %d %q %v; want 500 %s with the headers", status, body, hdr, wire.ErrInternal)
	}
	logs = s.logs.String()
	if !hasLine(`level=ERROR msg="panic in handler"`, `path=/bff/token panic="the clock broke"`) ||
		!hasLine("level=WARN msg=request", "method=POST path=/bff/token status=500") {
		t.Errorf("the panic was not logged (a line with the path, and a warn access-log line):\n%s", logs)
	}
	for _, c := range b.c.Jar.Cookies(mustURL(s.urls[0])) {
		if strings.Contains(logs, c.Value) {
			t.Error("a log line holds the session cookie")
		}
	}
	if status, _, _ := b.do("POST", tokenURL, "", wire.HeaderCSRF, wire.CSRFValue); status != http.StatusOK {
		t.Errorf("after the panic: %d; want 200", status)
	}
}
