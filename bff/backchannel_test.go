package bff

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/tetherauth/tether/internal/logbuf"

	"github.com/tetherauth/tether/bff/devprovider"
	"github.com/tetherauth/tether/bff/vault"
	"github.com/tetherauth/tether/bff/vault/redistest"
	"github.com/tetherauth/tether/shared/wire"
)

// backchannelStack is a stack whose dev provider's back-channel logout
// URI is replica 0's /bff/backchannel (through a forwarder: the
// provider is made before the replicas' addresses are known).
func backchannelStack(t *testing.T, o stackOptions) *stack {
	t.Helper()
	var target atomic.Pointer[url.URL]
	fwd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httputil.NewSingleHostReverseProxy(target.Load()).ServeHTTP(w, r)
	}))
	t.Cleanup(fwd.Close)
	o.devTune = func(c *devprovider.Config) { c.BackchannelLogoutURI = fwd.URL + wire.PathBackchannel }
	s := newStack(t, o)
	u, _ := url.Parse(s.urls[0])
	target.Store(u)
	return s
}

// loginAs logs b in at bffURL as subject (the dev provider's login_hint).
func (b *browser) loginAs(bffURL, subject string) {
	b.t.Helper()
	resp, _ := b.get(bffURL + wire.PathLogin + "?return_to=/")
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || loc == "" {
		b.t.Fatalf("GET /bff/login = %d %q", resp.StatusCode, loc)
	}
	r, err := b.c.Get(loc + "&login_hint=" + url.QueryEscape(subject))
	if err != nil {
		b.t.Fatal(err)
	}
	r.Body.Close()
	if r.Request.URL.Path != "/" {
		b.t.Fatalf("login as %s ended at %s (%d)", subject, r.Request.URL, r.StatusCode)
	}
}

// postLogoutToken POSTs a form with logout_token=tok to the stack's
// replica 0 and returns the status, the Cache-Control header and the
// error code.
func (s *stack) postLogoutToken(tok string) (int, string, string) {
	s.t.Helper()
	return s.postBackchannel("application/x-www-form-urlencoded", url.Values{"logout_token": {tok}}.Encode())
}

func (s *stack) postBackchannel(contentType, body string) (int, string, string) {
	s.t.Helper()
	resp, err := http.Post(s.urls[0]+wire.PathBackchannel, contentType, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var e wire.ErrorBody
	raw := readAll(s.t, resp)
	if resp.StatusCode != http.StatusOK {
		if err := json.Unmarshal([]byte(raw), &e); err != nil {
			s.t.Errorf("error body %q: %v", raw, err)
		}
	}
	return resp.StatusCode, resp.Header.Get("Cache-Control"), e.Error
}

// logoutToken signs the claims the dev provider would send, after edit.
func (s *stack) logoutToken(subject, sid string, edit func(*devprovider.LogoutClaims)) string {
	s.t.Helper()
	c := s.dev.NewLogoutClaims(subject, sid)
	if edit != nil {
		edit(&c)
	}
	tok, err := s.dev.SignLogoutToken(c)
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

// recordOf returns sid's record, or the vault's error.
func (s *stack) recordOf(sid string) (*vault.Record, error) {
	return s.bffs[0].vault.Get(context.Background(), sid)
}

// endedWith reports the reason sid ended with, "" while it is live.
func (s *stack) endedWith(sid string) string {
	s.t.Helper()
	_, err := s.recordOf(sid)
	var ee *vault.EndedError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &ee):
		return ee.Reason
	}
	s.t.Fatalf("session: %v", err)
	return ""
}

// TestBackchannelLogout: a logout token naming a provider session (sid)
// ends the one session logged in through it; one naming only the subject
// ends all of that user's; other users are untouched; 200 with no-store;
// the browser then gets reconnect_required/signed_out; the index keys
// return to zero when the last session ends. Also when the dev provider
// itself sends the token (/control/backchannel, /logout).
func TestBackchannelLogout(t *testing.T) {
	s := backchannelStack(t, stackOptions{replicas: 2})
	alice1, alice2, bob := s.newBrowser(), s.newBrowser(), s.newBrowser()
	alice1.loginAs(s.urls[0], "alice")
	alice2.loginAs(s.urls[0], "alice")
	bob.loginAs(s.urls[0], "bob")
	sids := map[string]string{"alice1": s.sid(alice1), "alice2": s.sid(alice2), "bob": s.sid(bob)}
	psid := map[string]string{}
	for name, sid := range sids {
		rec, err := s.recordOf(sid)
		if err != nil {
			t.Fatal(err)
		}
		if rec.ProviderSID == "" {
			t.Fatalf("%s's record has no provider sid: the ID token's sid was not recorded", name)
		}
		psid[name] = rec.ProviderSID
	}
	if psid["alice1"] == psid["alice2"] {
		t.Fatal("two logins share a provider session")
	}

	// sid: one of alice's two sessions.
	if status, cc, code := s.postLogoutToken(s.logoutToken("alice", psid["alice1"], nil)); status != http.StatusOK || cc != "no-store" {
		t.Fatalf("POST /bff/backchannel (sid) = %d %q %q; want 200 no-store", status, cc, code)
	}
	if r := s.endedWith(sids["alice1"]); r != wire.ReasonSignedOut {
		t.Fatalf("alice1 after her sid's logout: %q; want signed_out", r)
	}
	for _, name := range []string{"alice2", "bob"} {
		if r := s.endedWith(sids[name]); r != "" {
			t.Fatalf("%s ended (%s) by another session's logout", name, r)
		}
	}
	// On every replica (the token went to replica 0).
	for _, u := range s.urls {
		if r := alice1.token(u, nil); r.status != http.StatusUnauthorized || r.err.Error != wire.ErrReconnectRequired || r.err.Reason != wire.ReasonSignedOut {
			t.Fatalf("alice1's /bff/token at %s = %d %+v; want 401 reconnect_required signed_out", u, r.status, r.err)
		}
		alice2.mustToken(u, nil)
	}

	// sub: every session of alice (the other one here), not bob's; the
	// provider sends it (/control/backchannel) and revokes nothing.
	st0 := s.dev.Stats()
	if n, err := s.controls().Backchannel(context.Background(), "alice", ""); err != nil || n != 1 {
		t.Fatalf("Controls.Backchannel = %d, %v; want 1 delivered", n, err)
	}
	if r := s.endedWith(sids["alice2"]); r != wire.ReasonSignedOut {
		t.Fatalf("alice2 after alice's logout: %q; want signed_out", r)
	}
	if r := s.endedWith(sids["bob"]); r != "" {
		t.Fatalf("bob ended (%s) by alice's logout", r)
	}
	bob.mustToken(s.urls[0], nil)
	if st := s.dev.Stats(); st.Revoke != st0.Revoke {
		t.Errorf("the BFF revoked %d grants after a back-channel logout; want none", st.Revoke-st0.Revoke)
	}

	// The provider's own logout: one token per provider session of bob.
	resp, err := http.Get(s.devURL + "/logout?subject=bob")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /logout = %v, %v", resp, err)
	}
	resp.Body.Close()
	if r := s.endedWith(sids["bob"]); r != wire.ReasonSignedOut {
		t.Fatalf("bob after the provider's logout: %q; want signed_out", r)
	}

	// sub ends both of a user's sessions at once.
	alice3, alice4 := s.newBrowser(), s.newBrowser()
	alice3.loginAs(s.urls[1], "alice")
	alice4.loginAs(s.urls[0], "alice")
	if status, _, code := s.postLogoutToken(s.logoutToken("alice", "", nil)); status != http.StatusOK {
		t.Fatalf("POST /bff/backchannel (sub) = %d %q", status, code)
	}
	for name, b := range map[string]*browser{"alice3": alice3, "alice4": alice4} {
		if r := s.endedWith(s.sid(b)); r != wire.ReasonSignedOut {
			t.Fatalf("%s after alice's sub logout: %q; want signed_out", name, r)
		}
	}

	// Every session ended: no index key is left.
	if keys := redisClient(t, s.redisAddr("")).Keys(t.Context(), "tether:ix:*").Val(); len(keys) != 0 {
		t.Fatalf("index keys left after every session ended: %v", keys)
	}
	s.assertNoSecrets(alice1)
}

// TestBackchannelLogoutRefusesInvalidTokens: every variant of a bad
// logout token (or request) is 400 invalid_request, ends nothing and
// writes nothing to Redis; a replayed jti is refused, and logged although
// refusals were logged just before.
func TestBackchannelLogoutRefusesInvalidTokens(t *testing.T) {
	bffLog := &logbuf.Buffer{}
	s := backchannelStack(t, stackOptions{tune: func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(bffLog, nil)) }})
	alice := s.newBrowser()
	alice.loginAs(s.urls[0], "alice")
	sid := s.sid(alice)
	rec, err := s.recordOf(sid)
	if err != nil {
		t.Fatal(err)
	}
	psid := rec.ProviderSID

	// Another provider with the same issuer: its own key signs.
	forger, err := devprovider.New(devprovider.Config{Issuer: s.devURL, Now: s.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	now := s.clock.Now()
	valid := s.logoutToken("alice", psid, nil)
	tampered := func() string {
		// The payload of another token under this one's signature.
		other := strings.Split(s.logoutToken("bob", "", nil), ".")
		parts := strings.Split(valid, ".")
		return parts[0] + "." + other[1] + "." + parts[2]
	}()
	forged := func() string {
		tok, err := forger.SignLogoutToken(s.dev.NewLogoutClaims("alice", psid))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}()
	unsigned := func() string {
		parts := strings.Split(valid, ".")
		return "eyJhbGciOiJub25lIn0." + parts[1] + "."
	}()
	cases := map[string]string{
		"bad signature (another key)":     forged,
		"bad signature (another payload)": tampered,
		"alg none":                        unsigned,
		"not a JWT":                       "not-a-jwt",
		"wrong iss":                       s.logoutToken("alice", psid, func(c *devprovider.LogoutClaims) { c.Issuer = "http://127.0.0.1:1" }),
		"wrong aud": s.logoutToken("alice", psid, func(c *devprovider.LogoutClaims) {
			c.Audience = jwt.Audience{"another-client"}
		}),
		"missing events": s.logoutToken("alice", psid, func(c *devprovider.LogoutClaims) { c.Events = nil }),
		"another event": s.logoutToken("alice", psid, func(c *devprovider.LogoutClaims) {
			c.Events = map[string]any{"http://schemas.openid.net/event/other": map[string]any{}}
		}),
		"event not an object": s.logoutToken("alice", psid, func(c *devprovider.LogoutClaims) {
			c.Events = map[string]any{devprovider.BackchannelLogoutEvent: "yes"}
		}),
		"nonce present":       s.logoutToken("alice", psid, func(c *devprovider.LogoutClaims) { c.Nonce = "n-1" }),
		"neither sid nor sub": s.logoutToken("", "", nil),
		"no jti":              s.logoutToken("alice", psid, func(c *devprovider.LogoutClaims) { c.ID = "" }),
		"no iat":              s.logoutToken("alice", psid, func(c *devprovider.LogoutClaims) { c.IssuedAt = nil }),
		"expired": s.logoutToken("alice", psid, func(c *devprovider.LogoutClaims) {
			c.IssuedAt, c.Expiry = jwt.NewNumericDate(now.Add(-8*time.Minute)), jwt.NewNumericDate(now.Add(-5*time.Minute))
		}),
		"too old without exp": s.logoutToken("alice", psid, func(c *devprovider.LogoutClaims) {
			c.IssuedAt, c.Expiry = jwt.NewNumericDate(now.Add(-15*time.Minute)), nil
		}),
		"iat in the future": s.logoutToken("alice", psid, func(c *devprovider.LogoutClaims) {
			c.IssuedAt, c.Expiry = jwt.NewNumericDate(now.Add(10*time.Minute)), jwt.NewNumericDate(now.Add(12*time.Minute))
		}),
	}
	addr := s.redisAddr("")
	before := measureRedis(t, addr, false)
	start := time.Now()
	for name, tok := range cases {
		status, _, code := s.postLogoutToken(tok)
		if status != http.StatusBadRequest || code != wire.ErrInvalidRequest {
			t.Errorf("%s: %d %q; want 400 invalid_request", name, status, code)
		}
	}
	// Bad requests around a valid token.
	for name, req := range map[string][2]string{
		"no logout_token":   {"application/x-www-form-urlencoded", "token=" + valid},
		"two logout_tokens": {"application/x-www-form-urlencoded", "logout_token=" + valid + "&logout_token=" + valid},
		"JSON body":         {"application/json", `{"logout_token":"` + valid + `"}`},
		"body over 16 KiB":  {"application/x-www-form-urlencoded", "logout_token=" + valid + "&pad=" + strings.Repeat("x", 16<<10)},
		"no content type":   {"", "logout_token=" + valid},
		"multipart instead": {"multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"logout_token\"\r\n\r\n" + valid + "\r\n--x--\r\n"},
	} {
		status, _, code := s.postBackchannel(req[0], req[1])
		if status != http.StatusBadRequest || code != wire.ErrInvalidRequest {
			t.Errorf("%s: %d %q; want 400 invalid_request", name, status, code)
		}
	}
	if after := measureRedis(t, addr, false); after.keys != before.keys || after.keyBytes != before.keyBytes {
		t.Errorf("refused tokens changed Redis: %d keys (%d B) -> %d keys (%d B)", before.keys, before.keyBytes, after.keys, after.keyBytes)
	}
	if r := s.endedWith(sid); r != "" {
		t.Fatalf("a refused token ended the session (%s)", r)
	}
	alice.mustToken(s.urls[0], nil)

	// A replay: the same token twice. The first (for a user with no
	// session here) is accepted, the second refused.
	carol := s.logoutToken("carol", "", nil)
	if status, _, code := s.postLogoutToken(carol); status != http.StatusOK {
		t.Fatalf("first use: %d %q; want 200", status, code)
	}
	if status, _, code := s.postLogoutToken(carol); status != http.StatusBadRequest || code != wire.ErrInvalidRequest {
		t.Fatalf("replay: %d %q; want 400 invalid_request", status, code)
	}
	// Each kind of refusal has its own log limit: the made-up tokens
	// above do not hide the replay, which only a real token's holder sends.
	if n, allowed := strings.Count(bffLog.String(), "a logout token was refused"), 1+int(time.Since(start)/logRefusedEvery); n < 1 || n > allowed {
		t.Errorf("refusals logged %d times; want 1 to %d", n, allowed)
	}
	if n := strings.Count(bffLog.String(), "a logout token was replayed"); n != 1 {
		t.Errorf("the replay logged %d times; want 1", n)
	}
	// The jti is remembered only as long as the token could be accepted.
	rdb := redisClient(t, addr)
	keys, err := rdb.Keys(t.Context(), "tether:jti:*").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("jti keys %v, %v; want 1", keys, err)
	}
	if pttl := rdb.PTTL(t.Context(), keys[0]).Val(); pttl <= 0 || pttl > 2*time.Minute+2*time.Minute {
		t.Fatalf("jti PTTL %d ms; want until the token's exp plus the skew (at most 4 min)", pttl)
	}
	if r := s.endedWith(sid); r != "" {
		t.Fatalf("another user's token ended alice's session (%s)", r)
	}
	// And then the valid one works.
	if status, _, code := s.postLogoutToken(valid); status != http.StatusOK {
		t.Fatalf("the valid token: %d %q", status, code)
	}
	if r := s.endedWith(sid); r != wire.ReasonSignedOut {
		t.Fatalf("after the valid token: %q; want signed_out", r)
	}
}

// TestBackchannelFloodWritesNothing: 2,000 made-up logout tokens (bad
// signatures, unknown key ids) over 8 connections leave Redis exactly as
// it was, and the dev provider's JWKS is fetched at most twice.
func TestBackchannelFloodWritesNothing(t *testing.T) {
	for _, real := range []bool{false, true} {
		name := map[bool]string{false: "miniredis", true: "redis-server"}[real]
		t.Run(name, func(t *testing.T) {
			redisURL := ""
			if real {
				redisURL = "redis://" + redistest.Start(t).Addr
			}
			devLog, bffLog := &logbuf.Buffer{}, &logbuf.Buffer{}
			s := newStack(t, stackOptions{redisURL: redisURL, tune: func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(bffLog, nil)) },
				devTune: func(c *devprovider.Config) { c.Logger = slog.New(slog.NewTextHandler(devLog, nil)) }})
			addr := s.redisAddr(redisURL)
			user := s.newBrowser()
			user.login(s.urls[0], "/")
			forger, err := devprovider.New(devprovider.Config{Issuer: s.devURL, Now: s.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			before := measureRedis(t, addr, real)
			start := time.Now()
			var wg sync.WaitGroup
			var bad atomic.Int64
			for w := range 8 {
				wg.Go(func() {
					for i := range 250 {
						tok, err := forger.SignLogoutToken(forger.NewLogoutClaims("alice", fmt.Sprint("op-", w, "-", i)))
						if err != nil {
							t.Error(err)
							return
						}
						w := httptest.NewRecorder()
						r := httptest.NewRequest(http.MethodPost, wire.PathBackchannel, strings.NewReader(url.Values{"logout_token": {tok}}.Encode()))
						r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
						s.bffs[0].ServeHTTP(w, r)
						if w.Code != http.StatusBadRequest {
							bad.Add(1)
						}
					}
				})
			}
			wg.Wait()
			if bad.Load() > 0 {
				t.Fatalf("%d of 2,000 forged tokens were not 400", bad.Load())
			}
			// Nor the logs a line each: one per logRefusedEvery at most.
			lines, allowed := strings.Count(bffLog.String(), "a logout token was refused"), 1+int(time.Since(start)/logRefusedEvery)
			if lines < 1 || lines > allowed {
				t.Errorf("the flood logged %d refusals in %v; want 1 to %d", lines, time.Since(start).Round(time.Millisecond), allowed)
			}
			after := measureRedis(t, addr, real)
			t.Logf("%s: before %d keys, %d B; after 2,000 forged logout tokens %d keys, %d B", name, before.keys, before.keyBytes, after.keys, after.keyBytes)
			if after.keys != before.keys || after.keyBytes != before.keyBytes {
				t.Errorf("the flood changed Redis: %d keys (%d B) -> %d keys (%d B)", before.keys, before.keyBytes, after.keys, after.keyBytes)
			}
			// Unknown key ids do not make the BFF fetch the JWKS each time.
			if n := strings.Count(devLog.String(), "path=/jwks"); n > 2 {
				t.Errorf("the flood made the BFF fetch the JWKS %d times; want at most 2", n)
			}
			user.mustToken(s.urls[0], nil)
		})
	}
}
