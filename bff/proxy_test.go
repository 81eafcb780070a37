package bff

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/devprovider"
	"github.com/tetherauth/tether/bff/refresh"
	"github.com/tetherauth/tether/bff/vault"
	"github.com/tetherauth/tether/shared/wire"
)

// upstream is an API behind the proxy, on loopback: it records every
// request it receives (method, path as sent, query, headers, body) and
// answers through a handler the test picks per path.
type upstream struct {
	t   testing.TB
	url string
	mu  sync.Mutex
	got []seenRequest
	// routes answer by path; the default echoes what arrived as JSON.
	routes map[string]http.HandlerFunc
}

type seenRequest struct {
	Method, RequestURI, Host, Query string
	Header                          http.Header
	Body                            string
}

func newUpstream(t testing.TB) *upstream {
	u := &upstream{t: t, routes: map[string]http.HandlerFunc{}}
	ln, base := listen(t)
	u.url = base
	srv := &http.Server{Handler: u}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return u
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	seen := seenRequest{Method: r.Method, RequestURI: r.RequestURI, Host: r.Host, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: string(body)}
	u.mu.Lock()
	u.got = append(u.got, seen)
	h := u.routes[r.URL.Path]
	u.mu.Unlock()
	if h != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
		h(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(seen)
}

func (u *upstream) handle(path string, h http.HandlerFunc) {
	u.mu.Lock()
	u.routes[path] = h
	u.mu.Unlock()
}

func (u *upstream) requests() []seenRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seenRequest(nil), u.got...)
}

// proxyStack is a stack whose BFFs proxy route "dev" to the dev
// provider's /api and the given upstreams by name.
func proxyStack(t testing.TB, replicas int, ups map[string]*upstream, tune func(*Config)) *stack {
	t.Helper()
	var devURL string
	return newStack(t, stackOptions{replicas: replicas, tune: func(c *Config) {
		if devURL == "" {
			devURL = c.Issuer
		}
		c.APIRoutes = []APIRoute{{Name: "dev", URL: devURL + "/api"}}
		for name, u := range ups {
			c.APIRoutes = append(c.APIRoutes, APIRoute{Name: name, URL: u.url + "/base"})
		}
		if tune != nil {
			tune(c)
		}
	}})
}

// apiResult is a proxied call's answer.
type apiResult struct {
	status int
	header http.Header
	body   string
	err    wire.ErrorBody // when the BFF answered itself (Tether-Error)
}

// api calls a proxied route with the browser's cookie and X-CSRF.
func (b *browser) api(method, u string, body io.Reader, hdr map[string]string) apiResult {
	b.t.Helper()
	r, err := http.NewRequest(method, u, body)
	if err != nil {
		b.t.Fatal(err)
	}
	r.Header.Set(wire.HeaderCSRF, wire.CSRFValue)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	resp, err := b.c.Do(r)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	res := apiResult{status: resp.StatusCode, header: resp.Header, body: readAll(b.t, resp)}
	if resp.Header.Get(wire.HeaderError) != "" {
		json.Unmarshal([]byte(res.body), &res.err)
	}
	return res
}

// cookieHeader is the browser's Cookie header for the BFF at u.
func (b *browser) cookieHeader(u string) string {
	var parts []string
	for _, c := range b.c.Jar.Cookies(mustURL(u)) {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; ")
}

// raw sends a request line as written (no client-side cleaning) with the
// browser's cookie and X-CSRF, and returns the status.
func (b *browser) raw(bffURL, method, target string) int {
	b.t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(bffURL, "http://"))
	if err != nil {
		b.t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nCookie: %s\r\nX-CSRF: 1\r\nConnection: close\r\n\r\n",
		method, target, strings.TrimPrefix(bffURL, "http://"), b.cookieHeader(bffURL))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, target, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestAPIProxyPathEscapes: a path that climbs out of its route, hides a
// slash or a dot segment in an escape, or names no configured route is
// refused before anything is sent upstream.
func TestAPIProxyPathEscapes(t *testing.T) {
	up, other := newUpstream(t), newUpstream(t)
	s := proxyStack(t, 1, map[string]*upstream{"echo": up, "other": other}, nil)
	b := s.newBrowser()
	b.login(s.urls[0], "/")

	cases := []struct {
		target string
		want   int
	}{
		{"/bff/api/echo/../../x", 400},
		{"/bff/api/echo/../other/x", 400},
		{"/bff/api/echo/a/../../../token", 400},
		{"/bff/api/echo/./x", 400},
		{"/bff/api/echo/%2e%2e/%2e%2e/x", 400},
		{"/bff/api/echo/.%2E/x", 400},
		{"/bff/api/echo/%2E/x", 400},
		{"/bff/api/echo/a%2fb", 400},
		{"/bff/api/echo/a%2F..%2F..%2Fx", 400},
		{"/bff/api/echo/a%5cb", 400},
		{`/bff/api/echo/a\b`, 400},
		{"/bff/api/echo//evil.example/", 400},
		{"/bff/api/echo///evil.example/x", 400},
		{"/bff/api/echo/a//b", 400},
		{"/bff/api/echo/%00", 400},
		{"/bff/api/echo/a%0d%0aHost:%20evil.example", 400},
		{"/bff/api/echo/%zz", 400},
		{"/bff/api/nosuch/x", 404},
		{"/bff/api/Echo/x", 404},
		{"/bff/api/%65cho/x", 404},
		{"/bff/api/../token", 404},
		{"/bff/api//echo/x", 404},
		{"/bff/api/", 404},
		{"/bff/api/echo%2f..%2fother/x", 404},
	}
	for _, c := range cases {
		if got := b.raw(s.urls[0], "GET", c.target); got != c.want {
			t.Errorf("GET %s = %d; want %d", c.target, got, c.want)
		}
	}
	if n := len(up.requests()) + len(other.requests()); n != 0 {
		t.Fatalf("the upstreams received %d requests for refused paths: %+v %+v", n, up.requests(), other.requests())
	}

	// Positive controls: escapes that stay inside a segment pass as sent,
	// the query verbatim; the absolute form of a request line does not
	// pick the upstream's host.
	if got := b.raw(s.urls[0], "GET", "/bff/api/echo/a%20b/c%3Ad/?q=1&r=%2F..%2F&s"); got != 200 {
		t.Fatalf("a clean escaped path = %d; want 200", got)
	}
	if got := b.raw(s.urls[0], "GET", "http://evil.example/bff/api/echo/x"); got != 200 {
		t.Fatalf("absolute-form request line = %d; want 200", got)
	}
	if got := b.raw(s.urls[0], "GET", "/bff/api/echo"); got != 200 {
		t.Fatalf("the route's root = %d; want 200", got)
	}
	got := up.requests()
	if len(got) != 3 {
		t.Fatalf("upstream received %d requests; want 3", len(got))
	}
	if got[0].RequestURI != "/base/a%20b/c%3Ad/?q=1&r=%2F..%2F&s" {
		t.Errorf("upstream request URI = %q; want /base/a%%20b/c%%3Ad/?q=1&r=%%2F..%%2F&s", got[0].RequestURI)
	}
	upHost := strings.TrimPrefix(up.url, "http://")
	if got[1].RequestURI != "/base/x" || got[1].Host != upHost {
		t.Errorf("absolute form reached %s with Host %q; want /base/x and Host %q", got[1].RequestURI, got[1].Host, upHost)
	}
	if got[2].RequestURI != "/base" {
		t.Errorf("the route's root reached %q; want /base", got[2].RequestURI)
	}
	if len(other.requests()) != 0 {
		t.Errorf("the other route's upstream received %d requests; want 0", len(other.requests()))
	}
}

// TestAPIProxyHeaders: the upstream gets the session's access token and
// its own Host, never the browser's cookies, X-CSRF, Authorization,
// forwarding or hop-by-hop headers; the browser never gets the upstream's
// cookies, CORS or Tether-* headers, and the answer is not cached. Another
// route's upstream sees nothing.
func TestAPIProxyHeaders(t *testing.T) {
	up, other := newUpstream(t), newUpstream(t)
	up.handle("/base/answer", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Add("Set-Cookie", "tether_session=planted; Path=/")
		h.Add("Set-Cookie", "other=1; Path=/")
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Allow-Credentials", "true")
		h.Set("Tether-Error", "reconnect_required")
		h.Set("Tether-Degraded", "5")
		h.Set("Cache-Control", "public, max-age=3600")
		h.Set("X-Upstream", "kept")
		h.Set("X-Frame-Options", "SAMEORIGIN")
		h.Set("Content-Security-Policy", "default-src *")
		w.WriteHeader(201)
		io.WriteString(w, "created")
	})
	s := proxyStack(t, 1, map[string]*upstream{"echo": up, "other": other}, nil)
	b := s.newBrowser()
	b.login(s.urls[0], "/")
	issued := b.mustToken(s.urls[0], nil)
	tok := issued.AccessToken
	before := b.cookieHeader(s.urls[0])

	r := b.api("POST", s.urls[0]+"/bff/api/echo/answer?x=1", strings.NewReader(`{"a":1}`), map[string]string{
		"Authorization":       "Basic dXNlcjpwYXNz",
		"X-Forwarded-For":     "203.0.113.9",
		"X-Forwarded-Host":    "evil.example",
		"Forwarded":           "for=203.0.113.9",
		"X-Real-Ip":           "203.0.113.9",
		"Connection":          "X-Hop",
		"X-Hop":               "1",
		"Proxy-Authorization": "Basic eDp5",
		"Content-Type":        "application/json",
		"X-App":               "passes",
	})
	if r.status != 201 || r.body != "created" {
		t.Fatalf("proxied POST = %d %q; want 201 created", r.status, r.body)
	}
	if got := r.header.Values(wire.HeaderExpiresAt); len(got) != 1 || got[0] != fmt.Sprint(issued.ExpiresAt) {
		t.Errorf("%s = %q; want the token's expiry %d", wire.HeaderExpiresAt, got, issued.ExpiresAt)
	}
	for _, h := range []string{"Set-Cookie", "Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Tether-Error", "Tether-Degraded", "Tether-Retried"} {
		if v := r.header.Values(h); len(v) != 0 {
			t.Errorf("the browser got %s: %q from the upstream", h, v)
		}
	}
	if cc := r.header.Values("Cache-Control"); len(cc) != 1 || cc[0] != "no-store" {
		t.Errorf("Cache-Control = %q; want no-store only", cc)
	}
	if r.header.Get("X-Upstream") != "kept" {
		t.Error("an ordinary upstream header was dropped")
	}
	if xfo, csp := r.header.Values("X-Frame-Options"), r.header.Values("Content-Security-Policy"); len(xfo) != 1 || xfo[0] != "DENY" || len(csp) != 1 || csp[0] != apiCSP {
		t.Errorf("X-Frame-Options %q, Content-Security-Policy %q; want the BFF's own, alone", xfo, csp)
	}
	if after := b.cookieHeader(s.urls[0]); after != before {
		t.Errorf("the browser's cookies changed: %q -> %q", before, after)
	}

	got := up.requests()
	if len(got) != 1 {
		t.Fatalf("upstream received %d requests; want 1", len(got))
	}
	h := got[0].Header
	if a := h.Values("Authorization"); len(a) != 1 || a[0] != "Bearer "+tok {
		t.Errorf("upstream Authorization = %q; want the session's access token", a)
	}
	for _, name := range []string{"Cookie", "X-Csrf", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded", "X-Real-Ip", "X-Hop", "Proxy-Authorization"} {
		if v := h.Values(name); len(v) != 0 {
			t.Errorf("upstream got %s: %q", name, v)
		}
	}
	if got[0].Host != strings.TrimPrefix(up.url, "http://") || got[0].Body != `{"a":1}` || h.Get("X-App") != "passes" || got[0].Query != "x=1" {
		t.Errorf("upstream got Host %q, body %q, X-App %q, query %q", got[0].Host, got[0].Body, h.Get("X-App"), got[0].Query)
	}
	if n := len(other.requests()); n != 0 {
		t.Errorf("the other route's upstream received %d requests", n)
	}
	// The session still works: the planted cookie did not replace it.
	if r := b.api("GET", s.urls[0]+"/bff/api/dev/me", nil, nil); r.status != 200 {
		t.Errorf("after the upstream tried to set cookies: %d %s", r.status, r.body)
	}
	s.assertNoSecrets(b)
}

// TestAPIProxyForwarded: X-Forwarded-* only when configured, and then the
// BFF's view, not the client's claims.
func TestAPIProxyForwarded(t *testing.T) {
	up := newUpstream(t)
	s := proxyStack(t, 1, map[string]*upstream{"echo": up}, func(c *Config) { c.APIForwarded = true })
	b := s.newBrowser()
	b.login(s.urls[0], "/")
	if r := b.api("GET", s.urls[0]+"/bff/api/echo/x", nil, map[string]string{"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Host": "evil.example"}); r.status != 200 {
		t.Fatalf("proxied GET = %d", r.status)
	}
	h := up.requests()[0].Header
	if h.Get("X-Forwarded-For") != "127.0.0.1" || h.Get("X-Forwarded-Host") != strings.TrimPrefix(s.urls[0], "http://") || h.Get("X-Forwarded-Proto") != "http" {
		t.Errorf("X-Forwarded-For/Host/Proto = %q %q %q; want the BFF's view", h.Get("X-Forwarded-For"), h.Get("X-Forwarded-Host"), h.Get("X-Forwarded-Proto"))
	}
}

// TestAPIProxyRedirects: a redirect is returned, never followed with the
// token; one inside the route comes back through the BFF.
func TestAPIProxyRedirects(t *testing.T) {
	up := newUpstream(t)
	up.handle("/base/away", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://evil.example/steal?x=1", http.StatusFound)
	})
	up.handle("/base/inside", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/base/next?page=2", http.StatusTemporaryRedirect)
	})
	up.handle("/base/outside", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	})
	s := proxyStack(t, 1, map[string]*upstream{"echo": up}, nil)
	b := s.newBrowser()
	b.login(s.urls[0], "/")
	b.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	cases := []struct{ path, status, location string }{
		{"/away", "302", "https://evil.example/steal?x=1"},
		{"/inside", "307", "/bff/api/echo/next?page=2"},
		{"/outside", "302", up.url + "/elsewhere"},
	}
	for _, c := range cases {
		r := b.api("GET", s.urls[0]+"/bff/api/echo"+c.path, nil, nil)
		if fmt.Sprint(r.status) != c.status || r.header.Get("Location") != c.location {
			t.Errorf("%s: %d Location %q; want %s %q", c.path, r.status, r.header.Get("Location"), c.status, c.location)
		}
	}
	if n := len(up.requests()); n != 3 {
		t.Errorf("upstream received %d requests; want 3 (no redirect followed)", n)
	}
}

// TestAPIProxyCSRFAndSession: no X-CSRF → 403, no session → 401
// reconnect_required; neither reaches the upstream.
func TestAPIProxyCSRFAndSession(t *testing.T) {
	up := newUpstream(t)
	s := proxyStack(t, 1, map[string]*upstream{"echo": up}, nil)
	b := s.newBrowser()
	b.login(s.urls[0], "/")
	req, _ := http.NewRequest("GET", s.urls[0]+"/bff/api/echo/x", nil)
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("without X-CSRF: %d; want 403", resp.StatusCode)
	}
	anon := s.newBrowser()
	var sess wire.SessionResponse
	if code := anon.jsonCall("GET", s.urls[0]+wire.PathSession, &sess); code != 200 || sess.Authenticated || sess.Reason != wire.ReasonNoSession {
		t.Errorf("GET /bff/session without a cookie = %d %+v; want reason no_session", code, sess)
	}
	r := anon.api("GET", s.urls[0]+"/bff/api/echo/x", nil, nil)
	if r.status != 401 || r.err.Error != wire.ErrReconnectRequired || r.err.Reason != wire.ReasonNoSession || r.header.Get(wire.HeaderError) != wire.ErrReconnectRequired {
		t.Errorf("without a session: %d %+v; want 401 reconnect_required no_session", r.status, r.err)
	}
	if n := len(up.requests()); n != 0 {
		t.Errorf("upstream received %d requests; want 0", n)
	}
}

// TestAPIProxyRefreshStorm: 300 concurrent proxied calls over 3 replicas
// across a refresh point cost exactly one refresh; after the provider
// expired every token, 300 calls that each meet a 401 cost one refresh
// too, and every call is retried and answered 200.
func TestAPIProxyRefreshStorm(t *testing.T) {
	s := proxyStack(t, 3, nil, nil)
	b := s.newBrowser()
	b.login(s.urls[0], "/")
	if r := b.api("GET", s.urls[1]+"/bff/api/dev/me", nil, nil); r.status != 200 {
		t.Fatalf("first call = %d %s", r.status, r.body)
	}
	storm := func(t *testing.T) (apiOK, api401 int64) {
		before := s.dev.Stats()
		var wg sync.WaitGroup
		status := make([]int, 300)
		for i := range status {
			wg.Go(func() { status[i] = b.api("GET", s.urls[i%3]+"/bff/api/dev/me", nil, nil).status })
		}
		wg.Wait()
		after := s.dev.Stats()
		for i, st := range status {
			if st != 200 {
				t.Fatalf("call %d = %d; want 200", i, st)
			}
		}
		if d := after.RefreshToken - before.RefreshToken; d != 1 {
			t.Errorf("provider refreshes = %d; want exactly 1", d)
		}
		if after.RefreshReuse != 0 {
			t.Errorf("refresh token reuse = %d", after.RefreshReuse)
		}
		return after.APIOK - before.APIOK, after.API401 - before.API401
	}
	t.Run("inside the buffer", func(t *testing.T) {
		s.clock.Advance(45 * time.Second)
		ok, unauth := storm(t)
		if ok != 300 || unauth != 0 {
			t.Errorf("API answered %d ok, %d 401; want 300, 0", ok, unauth)
		}
	})
	t.Run("after the provider expired the token", func(t *testing.T) {
		s.expire()
		ok, unauth := storm(t)
		if ok != 300 || unauth < 1 || unauth > 300 {
			t.Errorf("API answered %d ok, %d 401; want 300 ok after 1–300 refusals", ok, unauth)
		}
	})
	s.assertNoSecrets(b)
}

// TestAPIProxy401Retry: an upstream 401 costs one forced refresh and one
// retry with the same body; a body too large to keep is not retried (the
// 401 goes back) but the refresh is made, so the next call works.
func TestAPIProxy401Retry(t *testing.T) {
	up := newUpstream(t)
	var mu sync.Mutex
	rejected := map[string]bool{}
	up.handle("/base/orders", func(w http.ResponseWriter, r *http.Request) {
		tok := r.Header.Get("Authorization")
		mu.Lock()
		refuse := rejected[tok]
		mu.Unlock()
		if refuse {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			http.Error(w, "expired", 401)
			return
		}
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "stored %d bytes", len(body))
	})
	s := proxyStack(t, 1, map[string]*upstream{"orders": up}, func(c *Config) { c.APIRetryBody = 1 << 10 })
	b := s.newBrowser()
	b.login(s.urls[0], "/")
	tok := b.mustToken(s.urls[0], nil).AccessToken
	mu.Lock()
	rejected["Bearer "+tok] = true
	mu.Unlock()

	t.Run("small body: refresh and retry", func(t *testing.T) {
		before := s.dev.Stats().RefreshToken
		body := strings.Repeat("x", 1000)
		r := b.api("POST", s.urls[0]+"/bff/api/orders/orders", strings.NewReader(body), nil)
		if r.status != 200 || r.body != "stored 1000 bytes" {
			t.Fatalf("POST = %d %q; want 200 stored 1000 bytes", r.status, r.body)
		}
		if r.header.Get(wire.HeaderRetried) != "1" || r.header.Get(wire.HeaderExpiresAt) == "" {
			t.Errorf("%s %q, %s %q; want 1 and the new token's expiry", wire.HeaderRetried, r.header.Get(wire.HeaderRetried), wire.HeaderExpiresAt, r.header.Get(wire.HeaderExpiresAt))
		}
		if d := s.dev.Stats().RefreshToken - before; d != 1 {
			t.Errorf("refreshes = %d; want 1", d)
		}
		got := up.requests()
		if len(got) != 2 || got[0].Body != body || got[1].Body != body || got[0].Header.Get("Authorization") == got[1].Header.Get("Authorization") {
			t.Fatalf("upstream saw %d requests; want 2 with the same body and different tokens", len(got))
		}
		mu.Lock()
		rejected[got[1].Header.Get("Authorization")] = true
		mu.Unlock()
	})
	// A token a forced refresh issued is not force-replaced before its
	// minimum age (refresh.Config.ForceMinAge): let it pass each time.
	t.Run("chunked body over the retry buffer: the 401 goes back, the refresh is made", func(t *testing.T) {
		s.clock.Advance(6 * time.Second)
		before, n := s.dev.Stats().RefreshToken, len(up.requests())
		body := strings.Repeat("y", 4000)
		r := b.api("POST", s.urls[0]+"/bff/api/orders/orders", struct{ io.Reader }{strings.NewReader(body)}, nil)
		if r.status != 401 || r.header.Get(wire.HeaderError) != "" {
			t.Fatalf("POST = %d (Tether-Error %q); want the upstream's own 401", r.status, r.header.Get(wire.HeaderError))
		}
		if d := s.dev.Stats().RefreshToken - before; d != 1 {
			t.Errorf("refreshes = %d; want 1", d)
		}
		got := up.requests()[n:]
		if len(got) != 1 || got[0].Body != body {
			t.Fatalf("upstream saw %d requests; want 1 with the whole body", len(got))
		}
		r = b.api("POST", s.urls[0]+"/bff/api/orders/orders", struct{ io.Reader }{strings.NewReader(body)}, nil)
		if r.status != 200 || r.body != "stored 4000 bytes" {
			t.Fatalf("next POST = %d %q; want 200 with the new token", r.status, r.body)
		}
	})
	t.Run("a second 401 goes back to the caller", func(t *testing.T) {
		s.clock.Advance(6 * time.Second)
		before := s.dev.Stats().RefreshToken
		up.handle("/base/never", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", 401) })
		n := len(up.requests())
		r := b.api("GET", s.urls[0]+"/bff/api/orders/never", nil, nil)
		if r.status != 401 || r.header.Get(wire.HeaderError) != "" {
			t.Fatalf("GET = %d; want the upstream's 401", r.status)
		}
		if got := len(up.requests()) - n; got != 2 {
			t.Errorf("upstream saw %d requests; want 2 (one retry)", got)
		}
		if d := s.dev.Stats().RefreshToken - before; d != 1 {
			t.Errorf("refreshes = %d; want 1", d)
		}
	})
	t.Run("again at once: the engine keeps the new token, the API's 401 goes back", func(t *testing.T) {
		before, n := s.dev.Stats().RefreshToken, len(up.requests())
		r := b.api("GET", s.urls[0]+"/bff/api/orders/never", nil, nil)
		if r.status != 401 || r.header.Get(wire.HeaderError) != "" {
			t.Fatalf("GET = %d; want the upstream's 401", r.status)
		}
		if got := len(up.requests()) - n; got != 1 {
			t.Errorf("upstream saw %d requests; want 1 (no retry with the same token)", got)
		}
		if d := s.dev.Stats().RefreshToken - before; d != 0 {
			t.Errorf("refreshes = %d; want 0 within the forced token's minimum age", d)
		}
	})
	t.Run("over the size limit: 413, nothing sent", func(t *testing.T) {
		n := len(up.requests())
		r := b.api("POST", s.urls[0]+"/bff/api/orders/orders", strings.NewReader(strings.Repeat("z", DefaultAPIMaxBody+1)), nil)
		if r.status != 413 || r.err.Error != wire.ErrRequestTooLarge {
			t.Fatalf("POST = %d %+v; want 413 request_too_large", r.status, r.err)
		}
		if got := len(up.requests()) - n; got != 0 {
			t.Errorf("upstream saw %d requests; want 0", got)
		}
	})
}

// TestAPIProxyRevoked: a revoked grant ends in 401 reconnect_required (the
// cookie is cleared), and no call reaches the upstream after that.
func TestAPIProxyRevoked(t *testing.T) {
	for _, inBuffer := range []bool{false, true} {
		t.Run(fmt.Sprintf("inside the buffer %v", inBuffer), func(t *testing.T) {
			s := proxyStack(t, 1, nil, nil)
			b := s.newBrowser()
			b.login(s.urls[0], "/")
			sid := s.sid(b)
			if r := b.api("GET", s.urls[0]+"/bff/api/dev/me", nil, nil); r.status != 200 {
				t.Fatalf("before: %d", r.status)
			}
			if inBuffer {
				s.clock.Advance(45 * time.Second)
			}
			s.revoke("alice")
			before := s.dev.Stats()
			r := b.api("GET", s.urls[0]+"/bff/api/dev/me", nil, nil)
			if r.status != 401 || r.err.Error != wire.ErrReconnectRequired || r.err.Reason != wire.ReasonRevoked {
				t.Fatalf("after revoke: %d %+v; want 401 reconnect_required revoked", r.status, r.err)
			}
			mid := s.dev.Stats()
			upstream := (mid.APIOK + mid.API401) - (before.APIOK + before.API401)
			if want := map[bool]int64{false: 1, true: 0}[inBuffer]; upstream != want {
				t.Errorf("upstream calls to find out = %d; want %d", upstream, want)
			}
			if s.hasRecord(sid) {
				t.Error("the record survived the revocation")
			}
			var sess wire.SessionResponse
			if code := b.jsonCall("GET", s.urls[0]+wire.PathSession, &sess); code != 200 || sess.Authenticated || sess.Reason != wire.ReasonRevoked {
				t.Errorf("GET /bff/session after the revocation = %d %+v; want not authenticated, reason revoked", code, sess)
			}
			for range 5 {
				if r := b.api("GET", s.urls[0]+"/bff/api/dev/me", nil, nil); r.status != 401 || r.err.Error != wire.ErrReconnectRequired {
					t.Fatalf("later call: %d %+v", r.status, r.err)
				}
			}
			after := s.dev.Stats()
			if n := (after.APIOK + after.API401) - (mid.APIOK + mid.API401); n != 0 {
				t.Errorf("%d upstream calls after reconnect_required; want 0", n)
			}
			if after.RefreshToken-mid.RefreshToken != 0 {
				t.Error("refresh attempts after reconnect_required")
			}
		})
	}
}

// TestAPIProxyOutage: while the provider fails, a still-valid token is
// used and the answer says degraded; an expired one gets 503
// provider_unavailable with Retry-After and no upstream call; the session
// is kept.
func TestAPIProxyOutage(t *testing.T) {
	s := proxyStack(t, 1, nil, func(c *Config) { c.ProviderTimeout = 300 * time.Millisecond })
	b := s.newBrowser()
	b.login(s.urls[0], "/")
	sid := s.sid(b)
	s.outage(devprovider.Outage503, 0)
	s.clock.Advance(40 * time.Second)
	r := b.api("GET", s.urls[0]+"/bff/api/dev/me", nil, nil)
	if r.status != 200 || r.header.Get(wire.HeaderDegraded) == "" {
		t.Fatalf("valid token during outage: %d, %s=%q; want 200 and degraded", r.status, wire.HeaderDegraded, r.header.Get(wire.HeaderDegraded))
	}
	s.clock.Advance(25 * time.Second)
	before := s.dev.Stats()
	r = b.api("GET", s.urls[0]+"/bff/api/dev/me", nil, nil)
	if r.status != 503 || r.err.Error != wire.ErrProviderUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("expired token during outage: %d %+v Retry-After %q; want 503 provider_unavailable", r.status, r.err, r.header.Get("Retry-After"))
	}
	if after := s.dev.Stats(); after.APIOK+after.API401 != before.APIOK+before.API401 {
		t.Error("an expired token was sent upstream")
	}
	if !s.hasRecord(sid) {
		t.Fatal("the outage deleted the session")
	}
	s.outage(devprovider.OutageNone, 0)
	s.clock.Advance(5 * time.Second)
	if r := b.api("GET", s.urls[0]+"/bff/api/dev/me", nil, nil); r.status != 200 || r.header.Get(wire.HeaderDegraded) != "" {
		t.Fatalf("after the outage: %d degraded=%q", r.status, r.header.Get(wire.HeaderDegraded))
	}
}

// TestTokenEndpointOff: with the endpoint off, POST /bff/token is 404 and
// the proxy and the session still work. With it on, one deployment serves
// both modes: a proxied route and the token for another API.
func TestTokenEndpointOff(t *testing.T) {
	t.Run("off", func(t *testing.T) {
		s := proxyStack(t, 1, nil, func(c *Config) { c.TokenEndpointOff = true })
		b := s.newBrowser()
		b.login(s.urls[0], "/")
		if r := b.token(s.urls[0], nil); r.status != 404 || r.tok.AccessToken != "" {
			t.Fatalf("POST /bff/token = %d; want 404", r.status)
		}
		var sess wire.SessionResponse
		if code := b.jsonCall("GET", s.urls[0]+wire.PathSession, &sess); code != 200 || !sess.Authenticated {
			t.Fatalf("GET /bff/session = %d %+v", code, sess)
		}
		if r := b.api("GET", s.urls[0]+"/bff/api/dev/me", nil, nil); r.status != 200 || !strings.Contains(r.body, `"subject":"alice"`) {
			t.Fatalf("proxied call = %d %s", r.status, r.body)
		}
		if strings.Contains(b.received(), devprovider.PrefixAccessToken) {
			t.Error("an access token reached the browser")
		}
	})
	t.Run("on: both modes", func(t *testing.T) {
		s := proxyStack(t, 1, nil, nil)
		b := s.newBrowser()
		b.login(s.urls[0], "/")
		tok := b.mustToken(s.urls[0], nil)
		if code := s.callAPI(tok.AccessToken); code != 200 {
			t.Errorf("token-mediated call = %d", code)
		}
		if r := b.api("GET", s.urls[0]+"/bff/api/dev/me", nil, nil); r.status != 200 {
			t.Errorf("proxied call = %d", r.status)
		}
	})
}

// TestAPIProxyUpstreamFailures: an upstream that cannot be reached is 502,
// one that does not answer in time 504; neither leaks its URL or query.
func TestAPIProxyUpstreamFailures(t *testing.T) {
	slow := newUpstream(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	slow.handle("/base/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	ln, closed := listen(t)
	ln.Close()
	s := newStack(t, stackOptions{tune: func(c *Config) {
		c.APIRoutes = []APIRoute{{Name: "closed", URL: closed}, {Name: "slow", URL: slow.url + "/base"}}
		c.APITimeout = 300 * time.Millisecond
	}})
	b := s.newBrowser()
	b.login(s.urls[0], "/")
	if r := b.api("GET", s.urls[0]+"/bff/api/closed/x?secret=Qmarker-closed-7f3a", nil, nil); r.status != 502 || r.err.Error != wire.ErrUpstreamUnavailable {
		t.Errorf("closed port: %d %+v; want 502 upstream_unavailable", r.status, r.err)
	}
	if r := b.api("GET", s.urls[0]+"/bff/api/slow/slow?secret=Qmarker-slow-7f3a", nil, nil); r.status != 504 || r.err.Error != wire.ErrUpstreamTimeout {
		t.Errorf("slow upstream: %d %+v; want 504 upstream_timeout", r.status, r.err)
	}
	for _, q := range []string{"Qmarker-closed-7f3a", "Qmarker-slow-7f3a"} {
		if strings.Contains(s.logs.String(), q) || strings.Contains(b.received(), q) {
			t.Errorf("the query (%s) was logged or echoed", q)
		}
	}
}

// shortTimeouts serves h like Serve but with read and write timeouts of
// 300 ms, so a test can show that a proxied stream outlives them.
func shortTimeouts(t testing.TB, h http.Handler) string {
	ln, u := listen(t)
	srv := &http.Server{Handler: h, ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return u
}

// TestAPIProxySSE: a server-sent event stream passes through as it comes
// (each event before the next is written), past the server's read and
// write timeouts, and ends at the stream timeout.
func TestAPIProxySSE(t *testing.T) {
	up := newUpstream(t)
	next := make(chan struct{})
	up.handle("/base/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		w.WriteHeader(200)
		rc.Flush()
		for i := range 8 {
			if r.URL.Query().Get("paced") != "" {
				select { // the test reads event i before event i+1 is written
				case <-next:
				case <-r.Context().Done():
					return
				}
			} else {
				time.Sleep(150 * time.Millisecond)
			}
			if _, err := fmt.Fprintf(w, "data: %d\n\n", i); err != nil {
				return
			}
			rc.Flush()
		}
	})
	run := func(t *testing.T, streamTimeout time.Duration, query string, paced bool) (events []string, took time.Duration) {
		s := proxyStack(t, 1, map[string]*upstream{"sse": up}, func(c *Config) { c.APIStreamTimeout = streamTimeout })
		b := s.newBrowser()
		b.login(s.urls[0], "/")
		base := shortTimeouts(t, s.bffs[0])
		req, _ := http.NewRequest("GET", base+"/bff/api/sse/events"+query, nil)
		req.Header.Set("Cookie", b.cookieHeader(s.urls[0]))
		req.Header.Set(wire.HeaderCSRF, wire.CSRFValue)
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("GET events = %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		sc := bufio.NewScanner(resp.Body)
		if paced {
			next <- struct{}{}
		}
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				events = append(events, d)
				if paced && len(events) < 8 {
					next <- struct{}{}
				}
			}
		}
		return events, time.Since(start)
	}
	t.Run("streamed as it comes", func(t *testing.T) {
		if ev, _ := run(t, time.Minute, "?paced=1", true); len(ev) != 8 {
			t.Errorf("events = %q; want 0..7", ev)
		}
	})
	t.Run("past the server's timeouts", func(t *testing.T) {
		ev, took := run(t, time.Minute, "", false)
		if len(ev) != 8 || took < time.Second {
			t.Errorf("events = %q in %v; want 0..7 over about 1.2 s", ev, took)
		}
	})
	t.Run("cut at the stream timeout", func(t *testing.T) {
		ev, took := run(t, 500*time.Millisecond, "", false)
		if len(ev) >= 8 || len(ev) < 1 || took > time.Second {
			t.Errorf("events = %q in %v; want a few, ended at about 0.5 s", ev, took)
		}
	})
}

// wsAccept is the Sec-WebSocket-Accept of a key (RFC 6455).
func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// wsEcho is a minimal WebSocket server: the handshake, then it echoes
// small unfragmented text frames, unmasked.
func wsEcho(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		http.Error(w, "want a WebSocket", 400)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", wsAccept(r.Header.Get("Sec-WebSocket-Key")))
	brw.Flush()
	for {
		msg, err := wsRead(brw.Reader)
		if err != nil {
			return
		}
		conn.Write(append([]byte{0x81, byte(len(msg))}, msg...))
	}
}

// wsRead reads one small frame, unmasking it if masked.
func wsRead(r *bufio.Reader) ([]byte, error) {
	hdr := make([]byte, 2)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, err
	}
	n, masked := int(hdr[1]&0x7f), hdr[1]&0x80 != 0
	var mask [4]byte
	if masked {
		if _, err := io.ReadFull(r, mask[:]); err != nil {
			return nil, err
		}
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(r, msg); err != nil {
		return nil, err
	}
	if masked {
		for i := range msg {
			msg[i] ^= mask[i%4]
		}
	}
	return msg, nil
}

// TestAPIProxyWebSocket: the upgrade passes through with the token (and no
// cookie) upstream; messages flow both ways past the server's timeouts;
// the stream timeout closes the connection.
func TestAPIProxyWebSocket(t *testing.T) {
	up := newUpstream(t)
	up.handle("/base/ws", wsEcho)
	for _, c := range []struct {
		name          string
		streamTimeout time.Duration
	}{{"echo past the server's timeouts", time.Minute}, {"closed at the stream timeout", 500 * time.Millisecond}} {
		t.Run(c.name, func(t *testing.T) {
			s := proxyStack(t, 1, map[string]*upstream{"ws": up}, func(cfg *Config) { cfg.APIStreamTimeout = c.streamTimeout })
			b := s.newBrowser()
			b.login(s.urls[0], "/")
			tok := b.mustToken(s.urls[0], nil).AccessToken
			base := shortTimeouts(t, s.bffs[0])
			conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
			fmt.Fprintf(conn, "GET /bff/api/ws/ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\nCookie: %s\r\nX-CSRF: 1\r\n\r\n",
				strings.TrimPrefix(base, "http://"), key, b.cookieHeader(s.urls[0]))
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != wsAccept(key) {
				t.Fatalf("handshake = %d accept %q", resp.StatusCode, resp.Header.Get("Sec-WebSocket-Accept"))
			}
			send := func(msg string) (string, error) {
				frame := []byte{0x81, 0x80 | byte(len(msg)), 1, 2, 3, 4}
				for i := range len(msg) {
					frame = append(frame, msg[i]^frame[2+i%4])
				}
				conn.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := conn.Write(frame); err != nil {
					return "", err
				}
				got, err := wsRead(br)
				return string(got), err
			}
			if got, err := send("hello"); err != nil || got != "hello" {
				t.Fatalf("echo = %q, %v", got, err)
			}
			time.Sleep(800 * time.Millisecond) // past the server's timeouts, and the short stream timeout
			got, err := send("again")
			if c.streamTimeout == time.Minute && (err != nil || got != "again") {
				t.Fatalf("echo after 0.8 s = %q, %v; want again", got, err)
			}
			if c.streamTimeout < time.Minute && err == nil {
				t.Fatalf("echo after the stream timeout = %q; want the connection closed", got)
			}
			h := up.requests()[len(up.requests())-1].Header
			if h.Get("Authorization") != "Bearer "+tok || h.Get("Cookie") != "" || h.Get("X-Csrf") != "" {
				t.Errorf("upstream handshake: Authorization %q, Cookie %q, X-CSRF %q", h.Get("Authorization"), h.Get("Cookie"), h.Get("X-Csrf"))
			}
		})
	}
}

// TestAPIProxyMetrics: the proxy's counters are on /metrics.
func TestAPIProxyMetrics(t *testing.T) {
	s := proxyStack(t, 1, nil, nil)
	b := s.newBrowser()
	b.login(s.urls[0], "/")
	for range 3 {
		if r := b.api("GET", s.urls[0]+"/bff/api/dev/me", nil, nil); r.status != 200 {
			t.Fatalf("call = %d", r.status)
		}
	}
	s.expire()
	b.api("GET", s.urls[0]+"/bff/api/dev/me", nil, nil)
	rec := httptest.NewRecorder()
	s.bffs[0].MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	text := rec.Body.String()
	for _, want := range []string{`tether_api_requests_total{result="ok",route="dev"} 4`, `tether_api_retries_total{route="dev"} 1`} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestAPIProxySessionCache: a replica reuses a record it just read, never
// past the refresh point and never a degraded one; a logout here drops
// it at once (a stolen copy of the cookie gets signed_out and nothing goes
// upstream); a logout through another replica is announced and drops it
// as soon as it is heard, with the same outcome.
func TestAPIProxySessionCache(t *testing.T) {
	t.Run("entries", func(t *testing.T) {
		s := proxyStack(t, 1, nil, func(c *Config) { c.APISessionCache = time.Minute })
		b := s.newBrowser()
		b.login(s.urls[0], "/")
		sid := s.sid(b)
		hot := s.bffs[0].api.hot
		if rec := hot.get(sid, s.clock.Now()); rec != nil {
			t.Fatal("a record kept before any proxied call")
		}
		if r := b.api("GET", s.urls[0]+"/bff/api/dev/me", nil, nil); r.status != 200 {
			t.Fatalf("call = %d", r.status)
		}
		rec := hot.get(sid, s.clock.Now())
		if rec == nil {
			t.Fatal("no record kept after a proxied call")
		}
		// The 60 s token is due at 30 s: the entry ends there, not at 1 min.
		if hot.get(sid, s.clock.Now().Add(29*time.Second)) == nil || hot.get(sid, s.clock.Now().Add(31*time.Second)) != nil {
			t.Error("the entry does not end at the token's refresh point")
		}
		s.outage(devprovider.Outage503, 0)
		s.clock.Advance(40 * time.Second)
		if r := b.api("GET", s.urls[0]+"/bff/api/dev/me", nil, nil); r.status != 200 || r.header.Get(wire.HeaderDegraded) == "" {
			t.Fatalf("degraded call = %d", r.status)
		}
		if hot.get(sid, s.clock.Now()) != nil {
			t.Error("a degraded answer was kept")
		}
	})
	t.Run("logout here", func(t *testing.T) {
		s := proxyStack(t, 1, nil, func(c *Config) { c.APISessionCache = time.Minute })
		b := s.newBrowser()
		b.login(s.urls[0], "/")
		stolen := b.cookieHeader(s.urls[0])
		if r := b.api("GET", s.urls[0]+"/bff/api/dev/me", nil, nil); r.status != 200 {
			t.Fatalf("call = %d", r.status)
		}
		if code := b.jsonCall("POST", s.urls[0]+wire.PathLogout, nil); code != 204 {
			t.Fatalf("logout = %d", code)
		}
		before := s.dev.Stats()
		r := b.api("GET", s.urls[0]+"/bff/api/dev/me", nil, map[string]string{"Cookie": stolen})
		if r.status != 401 || r.err.Error != wire.ErrReconnectRequired || r.err.Reason != wire.ReasonSignedOut {
			t.Fatalf("the old cookie after logout: %d %+v; want 401 reconnect_required signed_out", r.status, r.err)
		}
		if after := s.dev.Stats(); after.APIOK+after.API401 != before.APIOK+before.API401 {
			t.Error("the old cookie's call went upstream after the logout")
		}
	})
	t.Run("logout through another replica", func(t *testing.T) {
		// The other replica's logout is announced: this replica drops
		// its entry at once (well within its minute), so the old
		// cookie's next call reads the vault, gets signed_out, and
		// nothing goes upstream.
		s, b, sid, stolen := proxiedOnTwo(t)
		hot := s.bffs[0].api.hot
		if hot.get(sid, s.clock.Now()) == nil {
			t.Fatal("no record kept after a proxied call")
		}
		if code := b.jsonCall("POST", s.urls[1]+wire.PathLogout, nil); code != 204 {
			t.Fatalf("logout = %d", code)
		}
		waitDropped(t, s, hot, sid, "the other replica's announced logout")
		before := s.dev.Stats()
		for range 2 {
			r := b.api("GET", s.urls[0]+"/bff/api/dev/me", nil, map[string]string{"Cookie": stolen})
			if r.status != 401 || r.err.Error != wire.ErrReconnectRequired || r.err.Reason != wire.ReasonSignedOut {
				t.Fatalf("the old cookie on the other replica: %d %+v; want 401 reconnect_required signed_out", r.status, r.err)
			}
		}
		if after := s.dev.Stats(); after.APIOK+after.API401 != before.APIOK+before.API401 {
			t.Errorf("upstream: %d calls after the logout; want none", after.APIOK+after.API401-before.APIOK-before.API401)
		}
	})
	t.Run("a second login through another replica", func(t *testing.T) {
		// A second login replaces the session (vault.Delete): the
		// deletion is announced too, and the replaced session's entry
		// goes at once.
		s, b, sid, stolen := proxiedOnTwo(t)
		hot := s.bffs[0].api.hot
		b.login(s.urls[1], "/")
		if s.sid(b) == sid {
			t.Fatal("the second login kept the session id")
		}
		waitDropped(t, s, hot, sid, "its deletion")
		before := s.dev.Stats()
		if r := b.api("GET", s.urls[0]+"/bff/api/dev/me", nil, map[string]string{"Cookie": stolen}); r.status != 401 || r.err.Error != wire.ErrReconnectRequired {
			t.Fatalf("the replaced cookie: %d %+v; want 401 reconnect_required", r.status, r.err)
		}
		if after := s.dev.Stats(); after.APIOK+after.API401 != before.APIOK+before.API401 {
			t.Error("the replaced cookie's call went upstream")
		}
	})
	t.Run("announcements", func(t *testing.T) {
		// A record read before an announcement and kept after it would
		// outlive the ending: put keeps nothing when any came in
		// between; a (re)subscription drops everything.
		s := proxyStack(t, 1, nil, func(c *Config) { c.APISessionCache = time.Minute })
		b := s.newBrowser()
		b.login(s.urls[0], "/")
		sid := s.sid(b)
		hot := newHotRecords(time.Minute, s.bffs[0].refresher)
		res, err := s.bffs[0].refresher.Token(context.Background(), sid, refresh.Want{})
		if err != nil {
			t.Fatal(err)
		}
		now := s.clock.Now()
		gen := hot.mark()
		hot.ended(vault.HashID("someone else"))
		if hot.put(sid, res, now, gen); hot.get(sid, now) != nil {
			t.Fatal("a record read before an announcement was kept after it")
		}
		hot.put(sid, res, now, hot.mark())
		if hot.get(sid, now) == nil {
			t.Fatal("nothing kept without an announcement in between")
		}
		hot.ended(vault.HashID("someone else"))
		if hot.get(sid, now) == nil {
			t.Fatal("another session's announcement dropped this one")
		}
		hot.ended(vault.HashID(sid))
		if hot.get(sid, now) != nil || len(hot.byHash) != 0 {
			t.Fatal("its own announcement did not drop it")
		}
		hot.put(sid, res, now, hot.mark())
		hot.clearAll()
		if hot.get(sid, now) != nil || len(hot.m)+len(hot.byHash) != 0 {
			t.Fatal("clearAll left entries")
		}
		hot.put(sid, res, now, hot.mark())
		hot.forget(sid)
		if len(hot.m)+len(hot.byHash) != 0 {
			t.Fatal("forget left entries")
		}
	})
}

// proxiedOnTwo is two replicas in proxy mode (a one-minute session
// cache) and a browser signed in on the first, whose proxied call there
// left its record in the cache: the stack, the browser, its session id
// and its Cookie header.
func proxiedOnTwo(t *testing.T) (*stack, *browser, string, string) {
	t.Helper()
	s := proxyStack(t, 2, nil, func(c *Config) { c.APISessionCache = time.Minute })
	b := s.newBrowser()
	b.login(s.urls[0], "/")
	if r := b.api("GET", s.urls[0]+"/bff/api/dev/me", nil, nil); r.status != 200 {
		t.Fatalf("call = %d", r.status)
	}
	return s, b, s.sid(b), b.cookieHeader(s.urls[0])
}

// waitDropped waits up to 5 s for hot to drop sid's entry after what.
func waitDropped(t *testing.T, s *stack, hot *hotRecords, sid, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for hot.get(sid, s.clock.Now()) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("the entry outlived %s by 5 s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
