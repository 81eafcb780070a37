package bff

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/vault/redistest"
	"github.com/tetherauth/tether/shared/wire"
)

// callbackURL runs the flow up to the provider's redirect back to the BFF
// and returns that callback URL without following it.
func (b *browser) callbackURL(bffURL, returnTo string) string {
	b.t.Helper()
	c := *b.c
	c.CheckRedirect = func(r *http.Request, _ []*http.Request) error {
		if r.URL.Path == wire.PathCallback {
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp, err := c.Get(bffURL + wire.PathLogin + "?return_to=" + url.QueryEscape(returnTo))
	if err != nil {
		b.t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.Contains(loc, wire.PathCallback) {
		b.t.Fatalf("provider answered %d %q; want a redirect to the callback", resp.StatusCode, loc)
	}
	return loc
}

// get performs a GET without following redirects.
func (b *browser) get(u string) (*http.Response, string) {
	b.t.Helper()
	c := *b.c
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(u)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp, readAll(b.t, resp)
}

func TestReturnTo(t *testing.T) {
	s := newStack(t, stackOptions{})
	bad := []string{"//evil.example", "https://evil.example/", "/\\evil.example", `\/evil.example`, "javascript:alert(1)",
		"evil", "/%0d%0aSet-Cookie:x", "/a\r\nb", "/a\tb", "http:/evil", strings.Repeat("/a", 2000)}
	for _, rt := range bad {
		t.Run(rt[:min(len(rt), 20)], func(t *testing.T) {
			b := s.newBrowser()
			resp, body := b.get(s.urls[0] + wire.PathLogin + "?return_to=" + url.QueryEscape(rt))
			if rt == "/%0d%0aSet-Cookie:x" {
				// A percent-encoded CR LF stays encoded in a path: harmless.
				if resp.StatusCode != http.StatusFound {
					t.Errorf("status %d; want 302", resp.StatusCode)
				}
				return
			}
			if resp.StatusCode != 400 || !strings.Contains(body, wire.ErrInvalidReturnTo) {
				t.Errorf("return_to=%q: %d %s; want 400 invalid_return_to", rt, resp.StatusCode, body)
			}
		})
	}
	for _, rt := range []string{"", "/", "/app?x=1", "/a/b#frag"} {
		b := s.newBrowser()
		if resp, _ := b.get(s.urls[0] + wire.PathLogin + "?return_to=" + url.QueryEscape(rt)); resp.StatusCode != http.StatusFound {
			t.Errorf("return_to=%q: %d; want 302", rt, resp.StatusCode)
		}
	}
}

func TestCallbackState(t *testing.T) {
	s := newStack(t, stackOptions{})
	t.Run("replayed", func(t *testing.T) {
		b := s.newBrowser()
		cb := b.callbackURL(s.urls[0], "/x")
		if resp, _ := b.get(cb); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/x" {
			t.Fatalf("first callback: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		sid := s.sid(b)
		resp, body := b.get(cb)
		if resp.StatusCode != 400 || !strings.Contains(body, wire.ErrInvalidState) {
			t.Errorf("replayed callback: %d %s; want 400 invalid_state", resp.StatusCode, body)
		}
		if s.sid(b) != sid || !s.hasRecord(sid) {
			t.Error("a replayed callback disturbed the session")
		}
	})
	t.Run("another browser", func(t *testing.T) {
		victim, attacker := s.newBrowser(), s.newBrowser()
		cb := attacker.callbackURL(s.urls[0], "/")
		resp, body := victim.get(cb) // login CSRF: the attacker's code in the victim's browser
		if resp.StatusCode != 400 || !strings.Contains(body, wire.ErrInvalidState) {
			t.Errorf("foreign callback: %d %s; want 400 invalid_state", resp.StatusCode, body)
		}
		if victim.c.Jar.Cookies(mustURL(s.urls[0])) != nil && s.sid(victim) != "" {
			t.Error("the victim got a session")
		}
	})
	t.Run("expired", func(t *testing.T) {
		b := s.newBrowser()
		cb := b.callbackURL(s.urls[0], "/")
		s.clock.Advance(11 * time.Minute)
		if resp, _ := b.get(cb); resp.StatusCode != 400 {
			t.Errorf("callback after 11 minutes: %d; want 400", resp.StatusCode)
		}
		if s.sid(b) != "" {
			t.Error("session created from an expired state")
		}
	})
	t.Run("missing or mangled", func(t *testing.T) {
		b := s.newBrowser()
		cb := b.callbackURL(s.urls[0], "/")
		u := mustURL(cb)
		for _, q := range []string{"", "code=abc", "state=&code=abc", "state=" + strings.Repeat("x", 5000) + "&code=abc"} {
			u.RawQuery = q
			if resp, body := b.get(u.String()); resp.StatusCode != 400 || !strings.Contains(body, wire.ErrInvalidState) {
				t.Errorf("callback?%.30s: %d %s; want 400 invalid_state", q, resp.StatusCode, body)
			}
		}
	})
	t.Run("bad code", func(t *testing.T) {
		b := s.newBrowser()
		u := mustURL(b.callbackURL(s.urls[0], "/"))
		q := u.Query()
		q.Set("code", "dev_code_forged")
		u.RawQuery = q.Encode()
		resp, body := b.get(u.String())
		if resp.StatusCode != 400 || !strings.Contains(body, "Try again") || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("forged code: %d %s; want a 400 page with a Try again link", resp.StatusCode, body)
		}
		if s.sid(b) != "" {
			t.Error("session created from a forged code")
		}
	})
	t.Run("provider error", func(t *testing.T) {
		b := s.newBrowser()
		u := mustURL(b.callbackURL(s.urls[0], "/app"))
		q := u.Query()
		q.Del("code")
		q.Set("error", "access_denied")
		q.Set("error_description", "<script>alert(1)</script>")
		u.RawQuery = q.Encode()
		resp, body := b.get(u.String())
		if resp.StatusCode != 400 || !strings.Contains(body, "access_denied") || !strings.Contains(body, `href="/bff/login?return_to=%2Fapp"`) {
			t.Errorf("access_denied: %d %s; want a readable page with a Try again link", resp.StatusCode, body)
		}
		if strings.Contains(body, "<script>") {
			t.Error("the provider's description was not escaped")
		}
		if s.sid(b) != "" {
			t.Error("session created after access_denied")
		}
	})
}

func TestNewSessionIDOnLogin(t *testing.T) {
	s := newStack(t, stackOptions{})
	b := s.newBrowser()
	b.login(s.urls[0], "/")
	first := s.sid(b)
	b.login(s.urls[0], "/")
	second := s.sid(b)
	if first == "" || first == second {
		t.Fatalf("session id not renewed: %q then %q", first, second)
	}
	if s.hasRecord(first) {
		t.Error("the replaced session's tokens were kept")
	}
}

func TestCSRFHeader(t *testing.T) {
	s := newStack(t, stackOptions{})
	b := s.newBrowser()
	b.login(s.urls[0], "/")
	sid := s.sid(b)
	for _, rt := range []struct{ method, path string }{
		{http.MethodPost, wire.PathLogout}, {http.MethodPost, wire.PathToken}, {http.MethodGet, wire.PathSession},
	} {
		r, _ := http.NewRequest(rt.method, s.urls[0]+rt.path, nil)
		r.Header.Set(wire.HeaderCSRF, "0")
		resp, err := b.c.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp)
		resp.Body.Close()
		if resp.StatusCode != 403 || !strings.Contains(body, wire.ErrCSRFHeaderMissing) {
			t.Errorf("%s %s without X-CSRF: %d %s; want 403 csrf_header_missing", rt.method, rt.path, resp.StatusCode, body)
		}
	}
	if !s.hasRecord(sid) || s.sid(b) != sid {
		t.Error("a request without the CSRF header had an effect")
	}
	if st := s.dev.Stats(); st.Revoke != 0 {
		t.Error("logout without the CSRF header revoked the grant")
	}
}

func TestTokenRequestErrors(t *testing.T) {
	s := newStack(t, stackOptions{})
	b := s.newBrowser()
	b.login(s.urls[0], "/")
	sid := s.sid(b)
	bodies := []string{`{`, `[1,2]`, `{"force":true}`, `{"force":"yes"}`, strings.Repeat(" ", 9000) + "{}"}
	for _, body := range bodies {
		r, _ := http.NewRequest(http.MethodPost, s.urls[0]+wire.PathToken, strings.NewReader(body))
		r.Header.Set(wire.HeaderCSRF, "1")
		resp, err := b.c.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		got := readAll(t, resp)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(got, wire.ErrInvalidRequest) {
			t.Errorf("body %.20q: %d %s; want 400 invalid_request", body, resp.StatusCode, got)
		}
	}
	r, _ := http.NewRequest(http.MethodGet, s.urls[0]+wire.PathToken, nil)
	r.Header.Set(wire.HeaderCSRF, "1")
	resp, err := b.c.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /bff/token = %d; want 405", resp.StatusCode)
	}
	if !s.hasRecord(sid) {
		t.Error("bad requests lost the session")
	}
	if r := b.token(s.urls[0], nil); r.status != 200 {
		t.Errorf("a good request after the bad ones: %d", r.status)
	}
}

func TestTamperedCookie(t *testing.T) {
	s := newStack(t, stackOptions{})
	owner, mallory := s.newBrowser(), s.newBrowser()
	owner.login(s.urls[0], "/")
	sid := s.sid(owner)
	u := mustURL(s.urls[0])
	for _, c := range owner.c.Jar.Cookies(u) {
		v := []byte(c.Value)
		v[len(v)/2] ^= 1
		c.Value = string(v)
		mallory.c.Jar.SetCookies(u, []*http.Cookie{c})
	}
	r := mallory.token(s.urls[0], nil)
	if r.status != 401 || r.err.Reason != wire.ReasonNoSession {
		t.Errorf("tampered cookie: %d %+v; want 401 no_session", r.status, r.err)
	}
	if !s.hasRecord(sid) {
		t.Error("a tampered cookie deleted the real session")
	}
	if r := owner.token(s.urls[0], nil); r.status != 200 {
		t.Errorf("owner after the attack: %d", r.status)
	}
}

// TestVaultDown: Redis goes away; the BFF answers 503, never
// reconnect_required, deletes nothing, and recovers when Redis is back.
func TestVaultDown(t *testing.T) {
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	s := newStack(t, stackOptions{redisURL: "redis://" + srv.Addr})
	b := s.newBrowser()
	b.login(s.urls[0], "/")
	sid := s.sid(b)
	tok := b.mustToken(s.urls[0], nil)

	srv.Stop()
	r := b.token(s.urls[0], nil)
	if r.status != 503 || r.err.Error != wire.ErrStorageUnavailable {
		t.Errorf("token with Redis down: %d %+v; want 503 storage_unavailable", r.status, r.err)
	}
	resp, err := http.Get(s.urls[0] + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("/readyz with Redis down = %d; want 503", resp.StatusCode)
	}
	srv.Restart()
	// The cookie was kept, so once Redis is back the session works again
	// (this redis-server keeps data in an append-only file).
	if got := b.mustToken(s.urls[0], nil); got.AccessToken != tok.AccessToken {
		t.Error("session changed across the Redis restart")
	}
	if !s.hasRecord(sid) {
		t.Error("record lost")
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(errors.New("bad test URL " + s))
	}
	return u
}

// TestMalformedRequests: a loop of broken requests (huge headers, bad
// JSON, wrong methods and content types, garbage paths) leaves every
// session intact and the process healthy.
func TestMalformedRequests(t *testing.T) {
	s := newStack(t, stackOptions{})
	var users []*browser
	for range 5 {
		b := s.newBrowser()
		b.login(s.urls[0], "/")
		users = append(users, b)
	}
	base := s.urls[0]
	type req struct {
		method, path, ctype, body string
		header                    map[string]string
	}
	reqs := []req{
		{"POST", wire.PathToken, "application/json", `{"force":`, nil},
		{"POST", wire.PathToken, "text/plain", "\x00\x01\x02", nil},
		{"POST", wire.PathToken, "application/json", strings.Repeat("[", 100000), nil},
		{"PUT", wire.PathToken, "", "", nil},
		{"DELETE", wire.PathLogout, "", "", nil},
		{"GET", wire.PathLogout, "", "", nil},
		{"POST", wire.PathSession, "", "", nil},
		{"GET", wire.PathToken + "/../../etc/passwd", "", "", nil},
		{"GET", "/bff/%00", "", "", nil},
		{"GET", wire.PathCallback + "?code=" + strings.Repeat("a", 100000) + "&state=x", "", "", nil},
		{"GET", wire.PathLogin + "?return_to=" + strings.Repeat("/a", 50000), "", "", nil},
		{"POST", wire.PathToken, "", "", map[string]string{"X-Huge": strings.Repeat("h", 200<<10)}},
		{"POST", wire.PathToken, "", "", map[string]string{"Cookie": "tether_session=" + strings.Repeat("A", 60<<10)}},
		{"POST", wire.PathToken, "multipart/form-data; boundary=x", "--x\r\n", nil},
	}
	client := &http.Client{Timeout: 10 * time.Second}
	for i := range 300 {
		rq := reqs[i%len(reqs)]
		r, err := http.NewRequest(rq.method, base+rq.path, strings.NewReader(rq.body))
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set(wire.HeaderCSRF, "1")
		if rq.ctype != "" {
			r.Header.Set("Content-Type", rq.ctype)
		}
		for k, v := range rq.header {
			r.Header.Set(k, v)
		}
		resp, err := client.Do(r)
		if err != nil {
			continue // e.g. the server refused an oversized header by closing
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Errorf("%s %.60s: %d", rq.method, rq.path, resp.StatusCode)
		}
	}
	for i, b := range users {
		if r := b.token(base, nil); r.status != 200 {
			t.Errorf("user %d after the barrage: %d %+v", i, r.status, r.err)
		}
	}
	resp, err := http.Get(base + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz after the barrage: %v %v", resp, err)
	}
	resp.Body.Close()
	if st := s.dev.Stats(); st.RefreshToken != 0 || st.Revoke != 0 {
		t.Errorf("the barrage reached the provider: %+v", st)
	}
}
