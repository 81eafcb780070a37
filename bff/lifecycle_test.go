package bff

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/devprovider"
	"github.com/tetherauth/tether/shared/wire"
)

func TestLoginTokenAPI(t *testing.T) {
	s := newStack(t, stackOptions{})
	b := s.newBrowser()
	b.login(s.urls[0], "/app?tab=1")

	var sess wire.SessionResponse
	if code := b.jsonCall(http.MethodGet, s.urls[0]+wire.PathSession, &sess); code != 200 {
		t.Fatalf("GET /bff/session = %d", code)
	}
	if !sess.Authenticated || sess.Subject != "alice" || sess.Name != "Alice Liddell" {
		t.Errorf("session = %+v; want alice authenticated", sess)
	}
	if sess.RefreshExpiresAt == 0 || sess.AccessExpiresAt == 0 {
		t.Errorf("session = %+v; want both expiries", sess)
	}
	tok := b.mustToken(s.urls[0], nil)
	if tok.TokenType != "Bearer" || !strings.HasPrefix(tok.AccessToken, "dev_at_") {
		t.Errorf("token = %+v", tok)
	}
	if tok.ExpiresIn < 55 || tok.ExpiresIn > 60 {
		t.Errorf("expires_in = %d; want about 60", tok.ExpiresIn)
	}
	if tok.RefreshBuffer != 30 {
		t.Errorf("refresh_buffer = %d; want 30 (half of a 60 s lifetime, under the 5 min default)", tok.RefreshBuffer)
	}
	if code := s.callAPI(tok.AccessToken); code != 200 {
		t.Errorf("API with the token = %d; want 200", code)
	}
	// A second call inside the token's good period hands out the same token
	// and costs the provider nothing.
	if again := b.mustToken(s.urls[0], nil); again.AccessToken != tok.AccessToken {
		t.Error("a fresh token was replaced")
	}
	if st := s.dev.Stats(); st.RefreshToken != 0 || st.AuthorizationCode != 1 {
		t.Errorf("stats = %+v; want 1 code exchange and no refresh", st)
	}
	s.assertNoSecrets(b)
}

func TestProactiveRefreshOnce(t *testing.T) {
	s := newStack(t, stackOptions{})
	b := s.newBrowser()
	b.login(s.urls[0], "/")
	first := b.mustToken(s.urls[0], nil)

	s.clock.Advance(31 * time.Second) // inside the 30 s buffer, not yet expired
	second := b.mustToken(s.urls[0], nil)
	if second.AccessToken == first.AccessToken {
		t.Fatal("token inside the buffer was not refreshed")
	}
	third := b.mustToken(s.urls[0], nil)
	if third.AccessToken != second.AccessToken {
		t.Error("the refreshed token was refreshed again")
	}
	if st := s.dev.Stats(); st.RefreshToken != 1 || st.RefreshReuse != 0 {
		t.Errorf("stats = %+v; want exactly 1 refresh, 0 reuse", st)
	}
	if code := s.callAPI(second.AccessToken); code != 200 {
		t.Errorf("API with the refreshed token = %d", code)
	}
	s.assertNoSecrets(b)
}

// TestExpireThenForce is the API-401 path: the provider expired the token
// early, the API rejects it, the client asks with force+rejected.
func TestExpireThenForce(t *testing.T) {
	s := newStack(t, stackOptions{})
	b := s.newBrowser()
	b.login(s.urls[0], "/")
	old := b.mustToken(s.urls[0], nil)
	s.expire()
	if code := s.callAPI(old.AccessToken); code != 401 {
		t.Fatalf("API after expire = %d; want 401", code)
	}
	// Without force the BFF cannot know; with force it refreshes once.
	fresh := b.mustToken(s.urls[0], &wire.TokenRequest{Force: true, Rejected: old.AccessToken})
	if fresh.AccessToken == old.AccessToken {
		t.Fatal("force did not refresh")
	}
	// A late caller rejecting the same old token gets the new one, no refresh.
	late := b.mustToken(s.urls[0], &wire.TokenRequest{Force: true, Rejected: old.AccessToken})
	if late.AccessToken != fresh.AccessToken {
		t.Error("late force caller did not adopt the new token")
	}
	if st := s.dev.Stats(); st.RefreshToken != 1 {
		t.Errorf("refreshes = %d; want 1", st.RefreshToken)
	}
	if code := s.callAPI(fresh.AccessToken); code != 200 {
		t.Errorf("API with the new token = %d", code)
	}
}

func TestRevokedClearsSession(t *testing.T) {
	s := newStack(t, stackOptions{})
	b := s.newBrowser()
	b.login(s.urls[0], "/")
	tok := b.mustToken(s.urls[0], nil)
	sid := s.sid(b)
	if sid == "" || !s.hasRecord(sid) {
		t.Fatal("no session after login")
	}
	s.revoke("alice")

	r := b.token(s.urls[0], &wire.TokenRequest{Force: true, Rejected: tok.AccessToken})
	if r.status != 401 || r.err.Error != wire.ErrReconnectRequired || r.err.Reason != wire.ReasonRevoked {
		t.Fatalf("after revoke: %d %+v; want 401 reconnect_required/revoked", r.status, r.err)
	}
	if s.hasRecord(sid) {
		t.Error("the revoked session's record is still in the vault")
	}
	// The cookie no longer names the session; every later call hears the
	// same reason (not no_session: see TestEveryTabHearsWhy), and the
	// provider is not asked again (no loop).
	if s.sid(b) != "" {
		t.Error("the cookie still names the revoked session")
	}
	before := s.dev.Stats().RefreshToken
	for range 5 {
		r = b.token(s.urls[0], nil)
		if r.status != 401 || r.err.Reason != wire.ReasonRevoked {
			t.Fatalf("after reconnect_required: %d %+v; want 401 revoked", r.status, r.err)
		}
	}
	if after := s.dev.Stats().RefreshToken; after != before {
		t.Errorf("provider saw %d more refreshes after revocation; want 0", after-before)
	}
	s.assertNoSecrets(b)
}

func TestRefreshTokenExpired(t *testing.T) {
	s := newStack(t, stackOptions{devTune: func(c *devprovider.Config) { c.RefreshTTL = 2 * time.Minute }})
	b := s.newBrowser()
	b.login(s.urls[0], "/")
	sid := s.sid(b)
	s.clock.Advance(3 * time.Minute)
	r := b.token(s.urls[0], nil)
	if r.status != 401 || r.err.Reason != wire.ReasonExpired {
		t.Fatalf("after the refresh token's end: %d %+v; want 401 reconnect_required/expired", r.status, r.err)
	}
	if s.hasRecord(sid) {
		t.Error("expired session kept")
	}
	if st := s.dev.Stats(); st.RefreshToken != 0 {
		t.Errorf("BFF tried an expired refresh token %d times; want 0 (it knows the expiry)", st.RefreshToken)
	}
}

func TestLogout(t *testing.T) {
	s := newStack(t, stackOptions{})
	b := s.newBrowser()
	b.login(s.urls[0], "/")
	tok := b.mustToken(s.urls[0], nil)
	sid := s.sid(b)

	if code := b.jsonCall(http.MethodPost, s.urls[0]+wire.PathLogout, nil); code != http.StatusNoContent {
		t.Fatalf("logout = %d; want 204", code)
	}
	if s.hasRecord(sid) {
		t.Error("record kept after logout")
	}
	if st := s.dev.Stats(); st.Revoke != 1 {
		t.Errorf("revocations at the provider = %d; want 1", st.Revoke)
	}
	if code := s.callAPI(tok.AccessToken); code != 401 {
		t.Errorf("API after logout = %d; want 401 (the grant was revoked)", code)
	}
	if s.sid(b) != "" {
		t.Error("cookie still names a session")
	}
	var sess wire.SessionResponse
	b.jsonCall(http.MethodGet, s.urls[0]+wire.PathSession, &sess)
	if sess.Authenticated {
		t.Error("still authenticated after logout")
	}
	s.assertNoSecrets(b)
}

// TestLogoutWhenRevocationFails: the provider's revocation endpoint is
// down; logout still ends the session here.
func TestLogoutWhenRevocationFails(t *testing.T) {
	s := newStack(t, stackOptions{tune: func(c *Config) { c.RevokeURL = "http://127.0.0.1:1/revoke" }})
	b := s.newBrowser()
	b.login(s.urls[0], "/")
	sid := s.sid(b)
	if code := b.jsonCall(http.MethodPost, s.urls[0]+wire.PathLogout, nil); code != http.StatusNoContent {
		t.Fatalf("logout = %d; want 204", code)
	}
	if s.hasRecord(sid) {
		t.Error("record kept")
	}
	if !strings.Contains(s.logs.String(), "revocation at the provider failed") {
		t.Error("the failed revocation was not logged")
	}
}

func TestOperations(t *testing.T) {
	s := newStack(t, stackOptions{})
	b := s.newBrowser()
	b.login(s.urls[0], "/")
	b.mustToken(s.urls[0], nil)
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200} {
		resp, err := http.Get(s.urls[0] + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d; want %d", path, resp.StatusCode, want)
		}
	}
	// Metrics are not on the app's listener (issue 9 §6b) but on their own
	// handler, which bff/cmd/tether serves on TETHER_METRICS_ADDR.
	resp, err := http.Get(s.urls[0] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics on the app = %d; want 404", resp.StatusCode)
	}
	w := httptest.NewRecorder()
	s.bffs[0].MetricsHandler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := w.Body.String()
	for _, series := range []string{`tether_token_requests_total{result="ok"} 1`, `tether_logins_total{outcome="ok"} 1`, "tether_refresh_lock_wait_seconds"} {
		if !strings.Contains(body, series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}
}

// TestExpiredNotNoSession: the vault keeps a record a little past its
// refresh token's end, so the user hears "expired", not "no session".
func TestExpiredNotNoSession(t *testing.T) {
	s := newStack(t, stackOptions{devTune: func(c *devprovider.Config) { c.RefreshTTL, c.AccessTTL = time.Second, time.Second }})
	b := s.newBrowser()
	b.login(s.urls[0], "/")
	time.Sleep(1500 * time.Millisecond) // Redis expires keys in real time
	s.clock.Advance(2 * time.Second)
	r := b.token(s.urls[0], nil)
	if r.status != 401 || r.err.Reason != wire.ReasonExpired {
		t.Fatalf("just after the refresh token's end: %d %+v; want 401 reconnect_required/expired", r.status, r.err)
	}
}
