package bff

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tetherauth/tether/bff/vault/redistest"
	"github.com/tetherauth/tether/shared/wire"
)

// redisUsage is what a Redis holds: its key count (DBSIZE), the sum of
// MEMORY USAGE over its keys, and, on a real redis-server, INFO memory's
// used_memory (0 on miniredis, which has no INFO memory).
type redisUsage struct {
	keys, keyBytes, usedMemory int64
}

// redisClient is a client of the tests' own to the Redis at redisURL,
// closed when the test ends: they look at what the BFF left there as an
// operator would.
func redisClient(t testing.TB, redisURL string) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// measureRedis looks at what the BFF left in the Redis at redisURL, as an
// operator would, through a client of its own.
func measureRedis(t testing.TB, redisURL string, real bool) redisUsage {
	t.Helper()
	rdb := redisClient(t, redisURL)
	defer rdb.Close() // now: its connection would count in the next used_memory
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var u redisUsage
	var err error
	if u.keys, err = rdb.DBSize(ctx).Result(); err != nil {
		t.Fatalf("redis DBSIZE: %v", err)
	}
	if u.keys > 1000 {
		u.keyBytes = -1 // not worth summing: the key count already tells
	} else {
		keys, err := rdb.Keys(ctx, "*").Result()
		if err != nil {
			t.Fatalf("redis KEYS: %v", err)
		}
		for _, k := range keys {
			n, err := rdb.MemoryUsage(ctx, k).Result()
			if err != nil && !errors.Is(err, redis.Nil) {
				t.Fatalf("redis MEMORY USAGE: %v", err)
			}
			u.keyBytes += n
		}
	}
	if real {
		info, err := rdb.Info(ctx, "memory").Result()
		if err != nil {
			t.Fatalf("redis INFO: %v", err)
		}
		for _, l := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(l, "used_memory:"); ok {
				u.usedMemory, _ = strconv.ParseInt(v, 10, 64)
			}
		}
	}
	return u
}

// redisAddr is the URL of the Redis a stack's replicas share.
func (s *stack) redisAddr(redisURL string) string {
	if redisURL != "" {
		return redisURL
	}
	return s.bffs[0].vault.(interface{ EmbeddedURL() string }).EmbeddedURL()
}

// floodLogins sends n GET /bff/login (no cookie, a 500-byte return_to) to
// h from 8 goroutines, in process, and fails unless each is a 302.
func floodLogins(t testing.TB, h http.Handler, n int) {
	t.Helper()
	target := wire.PathLogin + "?return_to=" + url.QueryEscape("/"+strings.Repeat("r", 499))
	var wg sync.WaitGroup
	var mu sync.Mutex
	bad := 0
	per := n / 8
	for range 8 {
		wg.Go(func() {
			for range per {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
				if w.Code != http.StatusFound {
					mu.Lock()
					bad++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if bad > 0 {
		t.Fatalf("%d of %d logins were not 302", bad, n)
	}
}

// TestLoginFloodWritesNothing: 20,000 unauthenticated GET /bff/login leave
// Redis exactly as they found it (issue 9 §1: each used to store a login
// record for ten minutes), and the signed-in user is unaffected.
func TestLoginFloodWritesNothing(t *testing.T) {
	for _, real := range []bool{false, true} {
		name := map[bool]string{false: "miniredis", true: "redis-server"}[real]
		t.Run(name, func(t *testing.T) {
			redisURL := ""
			if real {
				redisURL = "redis://" + redistest.Start(t).Addr
			}
			s := newStack(t, stackOptions{redisURL: redisURL, tune: func(c *Config) { c.Logger = discardLogger() }})
			addr := s.redisAddr(redisURL)
			user := s.newBrowser()
			user.login(s.urls[0], "/")
			tok := user.mustToken(s.urls[0], nil)

			before := measureRedis(t, addr, real)
			floodLogins(t, s.bffs[0], 20000)
			after := measureRedis(t, addr, real)
			t.Logf("%s: before %d keys, %d B in keys, used_memory %d; after 20,000 logins %d keys, %d B in keys, used_memory %d",
				name, before.keys, before.keyBytes, before.usedMemory, after.keys, after.keyBytes, after.usedMemory)
			if after.keys != before.keys || after.keyBytes != before.keyBytes {
				t.Errorf("the flood changed Redis: %d keys (%d B) -> %d keys (%d B)", before.keys, before.keyBytes, after.keys, after.keyBytes)
			}
			// used_memory moves a little with client buffers and allocator
			// pages; 20,000 records would be megabytes.
			if real && after.usedMemory-before.usedMemory > 256<<10 {
				t.Errorf("used_memory grew by %d bytes", after.usedMemory-before.usedMemory)
			}
			if got := user.mustToken(s.urls[0], nil); got.AccessToken != tok.AccessToken {
				t.Error("the signed-in user's token changed")
			}
		})
	}
}

// loginCookiesIn returns the login cookies b holds for the callback.
func loginCookiesIn(b *browser, bffURL string) []*http.Cookie {
	var out []*http.Cookie
	for _, c := range b.c.Jar.Cookies(mustURL(bffURL + wire.PathCallback)) {
		if strings.Contains(c.Name, "tether_login_") {
			out = append(out, c)
		}
	}
	return out
}

// TestTwoTabsLogin: two logins started in one browser before either
// returns both complete, in either order.
func TestTwoTabsLogin(t *testing.T) {
	s := newStack(t, stackOptions{})
	b := s.newBrowser()
	first := b.callbackURL(s.urls[0], "/first")
	second := b.callbackURL(s.urls[0], "/second")
	if resp, body := b.get(second); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/second" {
		t.Fatalf("second tab's callback: %d %q %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	if resp, body := b.get(first); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/first" {
		t.Fatalf("first tab's callback: %d %q %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	sid := s.sid(b)
	if sid == "" || !s.hasRecord(sid) {
		t.Fatal("no session after both callbacks")
	}
	if n := len(loginCookiesIn(b, s.urls[0])); n != 0 {
		t.Errorf("%d login cookies left after both callbacks; want 0", n)
	}
}

// TestLoginCookieBound: a browser keeps at most maxLogins login cookies;
// the newest logins complete, the oldest were dropped.
func TestLoginCookieBound(t *testing.T) {
	s := newStack(t, stackOptions{})
	b := s.newBrowser()
	var cbs []string
	for i := range 8 {
		cbs = append(cbs, b.callbackURL(s.urls[0], fmt.Sprintf("/tab%d", i)))
		if n := len(loginCookiesIn(b, s.urls[0])); n > 5 {
			t.Fatalf("after %d logins the browser holds %d login cookies; want at most 5", i+1, n)
		}
	}
	for i, cb := range cbs {
		resp, body := b.get(cb)
		if i < 3 {
			if resp.StatusCode != 400 || !strings.Contains(body, wire.ErrInvalidState) {
				t.Errorf("login %d (dropped): %d %s; want 400 invalid_state", i, resp.StatusCode, body)
			}
			continue
		}
		if want := fmt.Sprintf("/tab%d", i); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != want {
			t.Errorf("login %d: %d %q; want 302 to %s", i, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
}

// TestLoginCookieAttributes: the login cookie is HttpOnly, SameSite=Lax,
// limited to the callback's path, lives ten minutes, is __Secure- over
// https, and the callback deletes it.
func TestLoginCookieAttributes(t *testing.T) {
	for _, pub := range []string{"", "https://app.example"} {
		t.Run("public="+pub, func(t *testing.T) {
			s := newStack(t, stackOptions{tune: func(c *Config) {
				if pub != "" {
					c.PublicURL = pub
				}
			}})
			w := httptest.NewRecorder()
			s.bffs[0].ServeHTTP(w, httptest.NewRequest(http.MethodGet, wire.PathLogin+"?return_to=/x", nil))
			var login *http.Cookie
			for _, c := range w.Result().Cookies() {
				if strings.Contains(c.Name, "tether_login_") {
					if login != nil {
						t.Fatalf("two login cookies in one answer: %v", w.Result().Header["Set-Cookie"])
					}
					login = c
				}
				if c.Name == s.bffs[0].cookieName {
					t.Errorf("/bff/login wrote the session cookie %q", c.Raw)
				}
			}
			if login == nil {
				t.Fatalf("no login cookie in %v", w.Result().Header["Set-Cookie"])
			}
			wantPrefix := "tether_login_"
			if pub != "" {
				wantPrefix = "__Secure-tether_login_"
			}
			if !strings.HasPrefix(login.Name, wantPrefix) || !login.HttpOnly || login.SameSite != http.SameSiteLaxMode ||
				login.Path != wire.PathCallback || login.MaxAge != 600 || login.Secure != (pub != "") || login.Domain != "" {
				t.Errorf("login cookie %q; want %s…, HttpOnly, SameSite=Lax, Path=%s, Max-Age=600, Secure=%v, no Domain", login.Raw, wantPrefix, wire.PathCallback, pub != "")
			}
			if len(login.Value) > 2000 {
				t.Errorf("login cookie is %d bytes", len(login.Value))
			}
		})
	}
	t.Run("deleted at the callback", func(t *testing.T) {
		s := newStack(t, stackOptions{})
		b := s.newBrowser()
		cb := b.callbackURL(s.urls[0], "/")
		if n := len(loginCookiesIn(b, s.urls[0])); n != 1 {
			t.Fatalf("%d login cookies during the login; want 1", n)
		}
		b.get(cb)
		if n := len(loginCookiesIn(b, s.urls[0])); n != 0 {
			t.Errorf("%d login cookies after the callback; want 0", n)
		}
	})
}

// TestCallbackReplayWithCookie: an attacker who captured both the callback
// URL and the login cookie cannot replay the login: the state is
// remembered as used once its code was exchanged, so the replay is refused
// before the provider is asked again.
func TestCallbackReplayWithCookie(t *testing.T) {
	s := newStack(t, stackOptions{})
	victim := s.newBrowser()
	cb := victim.callbackURL(s.urls[0], "/x")
	captured := loginCookiesIn(victim, s.urls[0])
	if resp, _ := victim.get(cb); resp.StatusCode != http.StatusFound {
		t.Fatalf("the victim's callback: %d", resp.StatusCode)
	}
	exchanges := s.dev.Stats().AuthorizationCode
	attacker := s.newBrowser()
	attacker.c.Jar.SetCookies(mustURL(s.urls[0]+wire.PathCallback), captured)
	resp, body := attacker.get(cb)
	if resp.StatusCode != 400 || !strings.Contains(body, wire.ErrInvalidState) {
		t.Errorf("replay with the captured cookie: %d %s; want 400 invalid_state", resp.StatusCode, body)
	}
	if s.sid(attacker) != "" {
		t.Error("the replay created a session")
	}
	if got := s.dev.Stats().AuthorizationCode; got != exchanges {
		t.Errorf("the replay reached the provider's token endpoint (%d -> %d exchanges)", exchanges, got)
	}
}

// TestForgedCodeWritesNothing: a callback with a valid login cookie and a
// code the provider refuses writes nothing to Redis, so valid login
// cookies (anyone can get them) cannot be turned into Redis writes.
func TestForgedCodeWritesNothing(t *testing.T) {
	s := newStack(t, stackOptions{})
	addr := s.redisAddr("")
	b := s.newBrowser()
	u := mustURL(b.callbackURL(s.urls[0], "/"))
	q := u.Query()
	q.Set("code", "dev_code_forged")
	u.RawQuery = q.Encode()
	before := measureRedis(t, addr, false)
	if resp, _ := b.get(u.String()); resp.StatusCode != 400 {
		t.Fatalf("forged code: %d; want 400", resp.StatusCode)
	}
	if after := measureRedis(t, addr, false); after != before {
		t.Errorf("a refused code changed Redis: %+v -> %+v", before, after)
	}
}

// TestReturnToLimit: return_to is at most 512 bytes, and any return_to
// of that size fits in the login cookie (no character is escaped into
// several: a browser drops cookies over 4 KB).
func TestReturnToLimit(t *testing.T) {
	s := newStack(t, stackOptions{})
	for n, want := range map[int]int{512: http.StatusFound, 513: http.StatusBadRequest} {
		rt := "/" + strings.Repeat("a", n-1)
		w := httptest.NewRecorder()
		s.bffs[0].ServeHTTP(w, httptest.NewRequest(http.MethodGet, wire.PathLogin+"?return_to="+rt, nil))
		if w.Code != want {
			t.Errorf("return_to of %d bytes: %d; want %d", n, w.Code, want)
		}
	}
	for _, ch := range []string{"a", "&", "<", ">", "'", `"`, "é", "\u2028", "😀"} {
		rt := "/" + strings.Repeat(ch, 511/len(ch))
		w := httptest.NewRecorder()
		s.bffs[0].ServeHTTP(w, httptest.NewRequest(http.MethodGet, wire.PathLogin+"?return_to="+url.QueryEscape(rt), nil))
		if w.Code != http.StatusFound {
			t.Errorf("return_to of %d × %q: %d; want 302", 511/len(ch), ch, w.Code)
			continue
		}
		for _, c := range w.Result().Cookies() {
			if len(c.Raw) > 1500 {
				t.Errorf("return_to of %d × %q: cookie %s is %d bytes", 511/len(ch), ch, c.Name, len(c.Raw))
			}
		}
	}
}

// TestProviderErrorNeedsState: a callback with error= but no valid state
// for this browser shows a generic page, not the attacker's text on the
// app's origin (issue 9 §6a); with the browser's state it shows the
// provider's words.
func TestProviderErrorNeedsState(t *testing.T) {
	s := newStack(t, stackOptions{})
	b := s.newBrowser()
	valid := mustURL(b.callbackURL(s.urls[0], "/app")).Query().Get("state")
	const lure = "Your account is locked. Call 555-0100 now"
	for name, state := range map[string]string{"no state": "", "unknown state": randomID(), "another browser's state": mustURL(s.newBrowser().callbackURL(s.urls[0], "/")).Query().Get("state")} {
		q := url.Values{"error": {"access_denied_by_evil"}, "error_description": {lure}}
		if state != "" {
			q.Set("state", state)
		}
		resp, body := b.get(s.urls[0] + wire.PathCallback + "?" + q.Encode())
		if resp.StatusCode != 400 || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, "Try again") {
			t.Errorf("%s: %d %q; want a 400 page with a Try again link", name, resp.StatusCode, body)
		}
		if strings.Contains(body, "555-0100") || strings.Contains(body, "access_denied_by_evil") {
			t.Errorf("%s: the page shows the query's text: %s", name, body)
		}
	}
	q := url.Values{"error": {"access_denied"}, "error_description": {"the user said no"}, "state": {valid}, "iss": {s.devURL}}
	if resp, body := b.get(s.urls[0] + wire.PathCallback + "?" + q.Encode()); resp.StatusCode != 400 || !strings.Contains(body, "access_denied (the user said no)") {
		t.Errorf("with the browser's state: %d %s; want the provider's words", resp.StatusCode, body)
	}
}

// TestCallbackIssuer: RFC 9207. The dev provider advertises
// authorization_response_iss_parameter_supported, so a callback without
// its iss, or with another issuer's, is refused with a page and no
// session, before the code goes anywhere (a mix-up attack).
func TestCallbackIssuer(t *testing.T) {
	s := newStack(t, stackOptions{})
	for name, mangle := range map[string]func(url.Values){
		"missing":   func(q url.Values) { q.Del("iss") },
		"other":     func(q url.Values) { q.Set("iss", "https://evil.example") },
		"twice":     func(q url.Values) { q.Add("iss", s.devURL) },
		"with path": func(q url.Values) { q.Set("iss", s.devURL+"/") },
		"error from another issuer": func(q url.Values) {
			q.Del("code")
			q.Set("error", "access_denied")
			q.Set("error_description", "Call 555-0100")
			q.Set("iss", "https://evil.example")
		},
	} {
		t.Run(name, func(t *testing.T) {
			b := s.newBrowser()
			u := mustURL(b.callbackURL(s.urls[0], "/"))
			q := u.Query()
			if q.Get("iss") != s.devURL {
				t.Fatalf("the dev provider sent iss=%q; want %q", q.Get("iss"), s.devURL)
			}
			mangle(q)
			u.RawQuery = q.Encode()
			exchanges := s.dev.Stats().AuthorizationCode
			resp, body := b.get(u.String())
			if resp.StatusCode != 400 || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, "did not come from") {
				t.Errorf("%d %s; want a 400 page saying the answer did not come from the provider", resp.StatusCode, body)
			}
			if strings.Contains(body, "555-0100") {
				t.Error("the page shows another issuer's error text")
			}
			if s.sid(b) != "" {
				t.Error("a session was created")
			}
			if got := s.dev.Stats().AuthorizationCode; got != exchanges {
				t.Error("the code was sent to the token endpoint")
			}
		})
	}
	t.Run("right issuer", func(t *testing.T) {
		b := s.newBrowser()
		b.login(s.urls[0], "/ok")
		if s.sid(b) == "" {
			t.Error("no session")
		}
	})
}

func TestCheckResponseIssuer(t *testing.T) {
	const iss = "https://op.example"
	const tmpl = "https://login.microsoftonline.com/{tenantid}/v2.0"
	cases := []struct {
		query    string
		issuer   string
		required bool
		ok       bool
	}{
		{"", "", false, true},                            // plain OAuth 2.0: nothing to compare with
		{"iss=https://x.example", "", false, true},       // ditto
		{"", iss, false, true},                           // not advertised, not sent
		{"", iss, true, false},                           // advertised, not sent
		{"iss=" + iss, iss, true, true},                  // advertised, right
		{"iss=" + iss, iss, false, true},                 // sent anyway, right
		{"iss=https://evil.example", iss, false, false},  // sent anyway, wrong
		{"iss=https://evil.example", iss, true, false},   // advertised, wrong
		{"iss=" + iss + "&iss=" + iss, iss, true, false}, // twice
		{"iss=", iss, false, false},                      // empty
		{"iss=https://op.example/", iss, true, false},    // not the same string
		{"iss=https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0", tmpl, false, true},
		{"iss=https://login.microsoftonline.com/evil.example/v2.0", tmpl, false, false},
		{"iss=https://login.microsoftonline.com/{tenantid}/v2.0", tmpl, false, false},
	}
	for _, c := range cases {
		q, _ := url.ParseQuery(c.query)
		if got := checkResponseIssuer(q, c.issuer, c.required); got != c.ok {
			t.Errorf("checkResponseIssuer(%q, %q, %v) = %v; want %v", c.query, c.issuer, c.required, got, c.ok)
		}
	}
}

// TestPendingLoginBinary: the login cookie's plaintext round-trips, and
// every truncation or extension of it is refused.
func TestPendingLoginBinary(t *testing.T) {
	want := pendingLogin{State: randomID(), Verifier: randomID(), Nonce: "", ReturnTo: "/a?b=<&>\"é", Created: 1767225600}
	b, err := want.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got pendingLogin
	if err := got.UnmarshalBinary(b); err != nil || got != want {
		t.Fatalf("round trip = %+v, %v; want %+v", got, err, want)
	}
	for i := range len(b) {
		if err := new(pendingLogin).UnmarshalBinary(b[:i]); err == nil {
			t.Errorf("a truncation to %d of %d bytes decoded", i, len(b))
		}
	}
	if err := new(pendingLogin).UnmarshalBinary(append(b, 0)); err == nil {
		t.Error("trailing bytes decoded")
	}
}
