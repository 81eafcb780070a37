package bff

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/devprovider"
	"github.com/tetherauth/tether/bff/provider"
	"github.com/tetherauth/tether/bff/vault"
	"github.com/tetherauth/tether/shared/wire"
)

// newQuirksStack runs the dev provider in a quirks mode and the BFF with
// the matching preset: github as a GitHub Enterprise Server at the dev
// provider's URL, google with TETHER_ISSUER pointing there.
func newQuirksStack(t *testing.T, q devprovider.Quirks, tune func(*Config)) *stack {
	t.Helper()
	return newStack(t, stackOptions{
		devTune: func(c *devprovider.Config) { c.Quirks = q },
		tune: func(c *Config) {
			switch q {
			case devprovider.QuirksGitHub, devprovider.QuirksGitHubOAuthApp:
				c.Provider, c.GitHubURL, c.Issuer = provider.PresetGitHub, c.Issuer, ""
			case devprovider.QuirksGoogle:
				c.Provider = provider.PresetGoogle
			}
			if tune != nil {
				tune(c)
			}
		},
	})
}

// record reads b's vault record.
func (s *stack) record(b *browser) *vault.Record {
	s.t.Helper()
	rec, err := s.bffs[0].vault.Get(context.Background(), s.sid(b))
	if err != nil {
		s.t.Fatalf("vault: %v", err)
	}
	return rec
}

func (b *browser) session(bffURL string) wire.SessionResponse {
	b.t.Helper()
	var sess wire.SessionResponse
	if code := b.jsonCall(http.MethodGet, bffURL+wire.PathSession, &sess); code != 200 {
		b.t.Fatalf("GET /bff/session = %d", code)
	}
	return sess
}

// TestQuirksGitHubApp: login → token → refresh → revocation → logout
// against GitHub's wire behaviour (form-encoded unless asked for JSON,
// HTTP 200 errors, single-use refresh tokens, GET /user, DELETE grant).
func TestQuirksGitHubApp(t *testing.T) {
	s := newQuirksStack(t, devprovider.QuirksGitHub, nil)
	b := s.newBrowser()
	b.login(s.urls[0], "/")

	sess := b.session(s.urls[0])
	if !sess.Authenticated || sess.Subject != "1001" || sess.Name != "Alice Liddell" || sess.AccessExpiresAt == 0 || sess.RefreshExpiresAt == 0 {
		t.Fatalf("session %+v; want GitHub user 1001 with both expiries", sess)
	}
	first := b.mustToken(s.urls[0], nil)
	if first.TokenType != "Bearer" || first.ExpiresIn < 55 || s.callAPI(first.AccessToken) != 200 {
		t.Fatalf("token %+v; want a working Bearer token for about 60 s", first)
	}
	oldRT := s.record(b).RefreshToken

	// Proactive refresh: one refresh, and the old refresh token is used up.
	s.clock.Advance(31 * time.Second)
	second := b.mustToken(s.urls[0], nil)
	newRT := s.record(b).RefreshToken
	if second.AccessToken == first.AccessToken || newRT == oldRT || s.dev.RefreshTokenValid(oldRT) || !s.dev.RefreshTokenValid(newRT) {
		t.Fatal("the refresh did not rotate to a new, valid refresh token")
	}
	// Force after an API 401.
	s.expire()
	third := b.mustToken(s.urls[0], &wire.TokenRequest{Force: true, Rejected: second.AccessToken})
	if third.AccessToken == second.AccessToken || s.callAPI(third.AccessToken) != 200 {
		t.Fatal("force after a 401 did not give a working token")
	}
	if st := s.dev.Stats(); st.RefreshToken != 2 || st.RefreshReuse != 0 {
		t.Errorf("stats %+v; want 2 refreshes, no reuse", st)
	}

	// Revoked at GitHub: HTTP 200 error=bad_refresh_token clears the session.
	sid := s.sid(b)
	s.revoke("alice")
	s.clock.Advance(31 * time.Second)
	if r := b.token(s.urls[0], nil); r.status != 401 || r.err.Reason != wire.ReasonRevoked {
		t.Fatalf("after revocation: %d %+v; want 401 reconnect_required/revoked", r.status, r.err)
	}
	if s.hasRecord(sid) {
		t.Error("the revoked session is still in the vault")
	}
	if !strings.Contains(s.logs.String(), "bad_refresh_token") {
		t.Error("the log does not say what GitHub answered (bad_refresh_token)")
	}

	// Logout deletes the grant with the access token.
	b.login(s.urls[0], "/")
	tok := b.mustToken(s.urls[0], nil)
	rt := s.record(b).RefreshToken
	if code := b.jsonCall(http.MethodPost, s.urls[0]+wire.PathLogout, nil); code != 204 {
		t.Fatalf("logout = %d", code)
	}
	if st := s.dev.Stats(); st.Revoke != 1 {
		t.Errorf("grant deletions = %d; want 1", st.Revoke)
	}
	if s.callAPI(tok.AccessToken) != 401 || s.dev.RefreshTokenValid(rt) {
		t.Error("the grant still works after logout")
	}
	s.assertNoSecrets(b)
}

// TestQuirksGitHubOAuthApp: tokens that never expire and no refresh token.
// The BFF never refreshes; an API 401 (force+rejected) means the access
// was revoked: reconnect, reason revoked.
func TestQuirksGitHubOAuthApp(t *testing.T) {
	s := newQuirksStack(t, devprovider.QuirksGitHubOAuthApp, nil)
	b := s.newBrowser()
	b.login(s.urls[0], "/")
	tok := b.mustToken(s.urls[0], nil)
	if tok.ExpiresAt != 0 || tok.ExpiresIn != 0 || tok.RefreshBuffer != 0 {
		t.Errorf("token %+v; want no expiry", tok)
	}
	if sess := b.session(s.urls[0]); sess.Subject != "1001" || sess.AccessExpiresAt != 0 || sess.RefreshExpiresAt != 0 {
		t.Errorf("session %+v; want user 1001 and no expiries", sess)
	}
	// Days later: the same token, and no refresh was attempted.
	s.clock.Advance(72 * time.Hour)
	if again := b.mustToken(s.urls[0], nil); again.AccessToken != tok.AccessToken || s.callAPI(again.AccessToken) != 200 {
		t.Error("a non-expiring token was replaced or stopped working")
	}
	if st := s.dev.Stats(); st.RefreshToken != 0 {
		t.Errorf("refreshes = %d; want 0", st.RefreshToken)
	}
	// A second login: "no expires_in" was logged once for this BFF.
	b2 := s.newBrowser()
	b2.login(s.urls[0], "/")
	if n := strings.Count(s.logs.String(), "no expires_in"); n != 1 {
		t.Errorf(`"no expires_in" logged %d times; want once`, n)
	}

	// The user revokes the app: the API says 401, the BFF cannot refresh.
	sid := s.sid(b)
	s.revoke("alice")
	if s.callAPI(tok.AccessToken) != 401 {
		t.Fatal("the API still accepts a revoked token")
	}
	r := b.token(s.urls[0], &wire.TokenRequest{Force: true, Rejected: tok.AccessToken})
	if r.status != 401 || r.err.Error != wire.ErrReconnectRequired || r.err.Reason != wire.ReasonRevoked {
		t.Fatalf("force after the 401: %d %+v; want 401 reconnect_required/revoked", r.status, r.err)
	}
	if s.hasRecord(sid) {
		t.Error("the session is still in the vault")
	}

	// Logout without a refresh token still deletes the grant (access token).
	b3 := s.newBrowser()
	b3.login(s.urls[0], "/")
	tok3 := b3.mustToken(s.urls[0], nil)
	if code := b3.jsonCall(http.MethodPost, s.urls[0]+wire.PathLogout, nil); code != 204 {
		t.Fatalf("logout = %d", code)
	}
	if st := s.dev.Stats(); st.Revoke != 1 || s.callAPI(tok3.AccessToken) != 401 {
		t.Errorf("grant deletions = %d, API after logout = %d; want 1 and 401", st.Revoke, s.callAPI(tok3.AccessToken))
	}
	s.assertNoSecrets(b)
}

// TestQuirksGoogle: refresh tokens that do not rotate (kept, and still
// valid after each refresh), access_type=offline and prompt=consent so
// every login gets one, RFC 7009 revocation at logout.
func TestQuirksGoogle(t *testing.T) {
	s := newQuirksStack(t, devprovider.QuirksGoogle, nil)
	b := s.newBrowser()
	b.login(s.urls[0], "/")
	rt := s.record(b).RefreshToken
	if rt == "" {
		t.Fatal("no refresh token: access_type=offline was not sent")
	}
	if sess := b.session(s.urls[0]); sess.Subject != "alice" || sess.RefreshExpiresAt != 0 {
		t.Errorf("session %+v; want alice (ID token) and no refresh expiry (Google sends none)", sess)
	}
	prev := b.mustToken(s.urls[0], nil)
	for i := range 3 {
		s.clock.Advance(31 * time.Second)
		next := b.mustToken(s.urls[0], nil)
		if next.AccessToken == prev.AccessToken || s.callAPI(next.AccessToken) != 200 {
			t.Fatalf("refresh %d did not give a new working token", i)
		}
		if got := s.record(b).RefreshToken; got != rt || !s.dev.RefreshTokenValid(rt) {
			t.Fatalf("refresh %d: the refresh token changed or died; Google's does not rotate", i)
		}
		prev = next
	}
	if st := s.dev.Stats(); st.RefreshToken != 3 || st.RefreshReuse != 0 {
		t.Errorf("stats %+v; want 3 refreshes, no reuse", st)
	}
	// A second login by the same user still gets a refresh token (prompt=consent).
	b2 := s.newBrowser()
	b2.login(s.urls[0], "/")
	if s.record(b2).RefreshToken == "" {
		t.Error("the second login got no refresh token")
	}
	if code := b.jsonCall(http.MethodPost, s.urls[0]+wire.PathLogout, nil); code != 204 {
		t.Fatalf("logout = %d", code)
	}
	if st := s.dev.Stats(); st.Revoke != 1 || s.dev.RefreshTokenValid(rt) {
		t.Errorf("revocations = %d, refresh token valid %v; want 1 and false", st.Revoke, s.dev.RefreshTokenValid(rt))
	}
	s.assertNoSecrets(b)
}

// TestQuirksGoogleWithoutPromptConsent: TETHER_AUTH_PARAMS=prompt= removes
// the preset's prompt=consent; Google then gives a refresh token only at
// the first consent, and a later session ends with its access token.
func TestQuirksGoogleWithoutPromptConsent(t *testing.T) {
	s := newQuirksStack(t, devprovider.QuirksGoogle, func(c *Config) { c.AuthParams = url.Values{"prompt": {""}} })
	b := s.newBrowser()
	b.login(s.urls[0], "/")
	if s.record(b).RefreshToken == "" {
		t.Fatal("the first login got no refresh token")
	}
	b2 := s.newBrowser()
	b2.login(s.urls[0], "/")
	if s.record(b2).RefreshToken != "" {
		t.Fatal("the second login got a refresh token without prompt=consent")
	}
	if tok := b2.mustToken(s.urls[0], nil); tok.ExpiresIn < 55 {
		t.Fatalf("token %+v; want about 60 s", tok)
	}
	s.clock.Advance(61 * time.Second)
	if r := b2.token(s.urls[0], nil); r.status != 401 || r.err.Reason != wire.ReasonExpired {
		t.Errorf("after the access token expired: %d %+v; want 401 reconnect_required/expired", r.status, r.err)
	}
}
