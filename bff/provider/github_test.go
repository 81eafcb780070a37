package provider_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/provider"
)

// fakeGitHub reproduces the documented wire behaviour of github.com and
// GitHub Enterprise Server for a GitHub App with expiring user tokens
// (expiring=true) or an OAuth App:
//
//   - POST /login/oauth/access_token takes client_id and client_secret in
//     the form and answers form-encoded unless the request accepts
//     application/json (legacyForm: always form-encoded). Errors come with
//     HTTP 200: bad_verification_code, bad_refresh_token,
//     incorrect_client_credentials.
//   - App tokens: expires_in 28800 and refresh_token_expires_in 15811200;
//     each refresh token works once. OAuth App tokens: no expiry, no
//     refresh token.
//   - GET /api/v3/user with the token: {"login","id","name"}; 401 otherwise.
//   - DELETE /api/v3/applications/{client_id}/grant with Basic client
//     credentials and {"access_token"}: 204, or 422 for an unknown token.
type fakeGitHub struct {
	t          *testing.T
	srv        *httptest.Server
	expiring   bool
	legacyForm bool

	mu      sync.Mutex
	codes   map[string]bool
	access  map[string]*ghGrant
	refresh map[string]*ghGrant // deleted once used
	deletes int
	lastTok url.Values // the last token request's form
	lastAcc string     // its Accept header
}

type ghGrant struct{ revoked bool }

func newFakeGitHub(t *testing.T, expiring, legacyForm bool) *fakeGitHub {
	f := &fakeGitHub{t: t, expiring: expiring, legacyForm: legacyForm,
		codes: map[string]bool{}, access: map[string]*ghGrant{}, refresh: map[string]*ghGrant{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login/oauth/access_token", f.token)
	mux.HandleFunc("GET /api/v3/user", f.user)
	mux.HandleFunc("DELETE /api/v3/applications/{client}/grant", f.deleteGrant)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func ghToken(prefix string) string {
	b := make([]byte, 18)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// newCode is what the browser would bring back from /login/oauth/authorize.
func (f *fakeGitHub) newCode() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := ghToken("code_")
	f.codes[c] = true
	return c
}

func (f *fakeGitHub) answer(w http.ResponseWriter, r *http.Request, v url.Values) {
	if !f.legacyForm && strings.Contains(r.Header.Get("Accept"), "application/json") {
		m := map[string]any{}
		for k := range v {
			m[k] = v.Get(k)
		}
		for _, k := range []string{"expires_in", "refresh_token_expires_in"} {
			if v.Has(k) {
				var n json.Number = json.Number(v.Get(k))
				m[k] = n
			}
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		json.NewEncoder(w).Encode(m)
		return
	}
	w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	fmt.Fprint(w, v.Encode())
}

func (f *fakeGitHub) token(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastTok, f.lastAcc = r.PostForm, r.Header.Get("Accept")
	fail := func(code, desc string) {
		f.answer(w, r, url.Values{"error": {code}, "error_description": {desc}, "error_uri": {"https://docs.github.com/"}})
	}
	if r.PostForm.Get("client_id") != testClientID || r.PostForm.Get("client_secret") != testClientSecret {
		fail("incorrect_client_credentials", "The client_id and/or client_secret passed are incorrect.")
		return
	}
	g := &ghGrant{}
	if rt := r.PostForm.Get("refresh_token"); rt != "" {
		old := f.refresh[rt]
		delete(f.refresh, rt)
		if old == nil || old.revoked || r.PostForm.Get("grant_type") != "refresh_token" {
			fail("bad_refresh_token", "The refresh token passed is incorrect or expired.")
			return
		}
		g = old
	} else if code := r.PostForm.Get("code"); !f.codes[code] {
		fail("bad_verification_code", "The code passed is incorrect or expired.")
		return
	} else {
		delete(f.codes, code)
	}
	at := ghToken("gho_")
	v := url.Values{"access_token": {at}, "token_type": {"bearer"}, "scope": {""}}
	if f.expiring {
		at = ghToken("ghu_")
		rt := ghToken("ghr_")
		f.refresh[rt] = g
		v = url.Values{"access_token": {at}, "expires_in": {"28800"}, "refresh_token": {rt},
			"refresh_token_expires_in": {"15811200"}, "token_type": {"bearer"}, "scope": {""}}
	}
	f.access[at] = g
	f.answer(w, r, v)
}

func (f *fakeGitHub) user(w http.ResponseWriter, r *http.Request) {
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	f.mu.Lock()
	g := f.access[tok]
	f.mu.Unlock()
	if (scheme != "Bearer" && scheme != "token") || g == nil || g.revoked {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest"}`)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	fmt.Fprint(w, `{"login":"octocat","id":583231,"node_id":"MDQ6VXNlcjU4MzIzMQ==","name":"The Octocat","type":"User"}`)
}

func (f *fakeGitHub) deleteGrant(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	if !ok || id != testClientID || secret != testClientSecret || r.PathValue("client") != testClientID {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	var body struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(r.Body).Decode(&body)
	f.mu.Lock()
	defer f.mu.Unlock()
	g := f.access[body.AccessToken]
	if g == nil || g.revoked {
		w.WriteHeader(http.StatusUnprocessableEntity)
		fmt.Fprint(w, `{"message":"Validation Failed"}`)
		return
	}
	g.revoked = true
	f.deletes++
	w.WriteHeader(http.StatusNoContent)
}

// provider is a FlavorGitHub Provider for this fake as a GitHub
// Enterprise Server (its API under /api/v3).
func (f *fakeGitHub) provider(now func() time.Time) *provider.Provider {
	f.t.Helper()
	cfg := provider.GitHub(f.srv.URL, "", testClientID)
	cfg.ClientID, cfg.ClientSecret, cfg.RedirectURL, cfg.Now = testClientID, testClientSecret, "http://127.0.0.1:1/bff/callback", now
	p, err := provider.New(context.Background(), cfg)
	if err != nil {
		f.t.Fatalf("provider.New: %v", err)
	}
	return p
}

func TestGitHubPresetURLs(t *testing.T) {
	cases := []struct {
		web, api, auth, token, user, revoke string
	}{
		{"", "", "https://github.com/login/oauth/authorize", "https://github.com/login/oauth/access_token",
			"https://api.github.com/user", "https://api.github.com/applications/Iv1.abc/grant"},
		{"https://ghe.example.com/", "", "https://ghe.example.com/login/oauth/authorize", "https://ghe.example.com/login/oauth/access_token",
			"https://ghe.example.com/api/v3/user", "https://ghe.example.com/api/v3/applications/Iv1.abc/grant"},
		{"https://ghe.example.com", "https://api.ghe.example.com/", "https://ghe.example.com/login/oauth/authorize", "https://ghe.example.com/login/oauth/access_token",
			"https://api.ghe.example.com/user", "https://api.ghe.example.com/applications/Iv1.abc/grant"},
	}
	for _, tc := range cases {
		c := provider.GitHub(tc.web, tc.api, "Iv1.abc")
		if c.Flavor != provider.FlavorGitHub || c.AuthURL != tc.auth || c.TokenURL != tc.token || c.UserinfoURL != tc.user || c.RevokeURL != tc.revoke || c.Issuer != "" || len(c.Scopes) != 0 {
			t.Errorf("GitHub(%q, %q) = %+v", tc.web, tc.api, c)
		}
	}
}

// A GitHub App with expiring user tokens, against a server that answers
// JSON when asked and one that always answers form-encoded.
func TestGitHubApp(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		t.Run(fmt.Sprintf("form-encoded=%v", legacy), func(t *testing.T) {
			now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
			f := newFakeGitHub(t, true, legacy)
			p := f.provider(func() time.Time { return now })
			ctx := context.Background()
			if p.OIDC() || !p.CanRevoke() {
				t.Errorf("OIDC() = %v, CanRevoke() = %v; want false, true", p.OIDC(), p.CanRevoke())
			}
			u, _ := url.Parse(p.AuthCodeURL("st", provider.NewVerifier(), "nonce-x"))
			if q := u.Query(); u.Path != "/login/oauth/authorize" || q.Has("nonce") || q.Has("scope") || q.Get("code_challenge_method") != "S256" || q.Get("client_id") != testClientID {
				t.Errorf("AuthCodeURL = %s; want /login/oauth/authorize with PKCE, no nonce, no scope", u)
			}

			g, err := p.Exchange(ctx, f.newCode(), provider.NewVerifier(), "")
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if f.lastAcc != "application/json" || f.lastTok.Get("client_secret") != testClientSecret || f.lastTok.Get("code_verifier") == "" {
				t.Errorf("token request Accept=%q form=%v; want JSON, the secret in the form and a code_verifier", f.lastAcc, f.lastTok)
			}
			if g.Subject != "583231" || g.Name != "The Octocat" || g.TokenType != "Bearer" ||
				!g.Expiry.Equal(now.Add(8*time.Hour)) || !g.RefreshExpiry.Equal(now.Add(15811200*time.Second)) ||
				!strings.HasPrefix(g.RefreshToken, "ghr_") {
				t.Fatalf("Grant %+v; want id 583231, The Octocat, Bearer, 8h, 15811200s, a ghr_ refresh token", g)
			}

			g2, err := p.Refresh(ctx, g.RefreshToken)
			if err != nil || g2.RefreshToken == "" || g2.RefreshToken == g.RefreshToken {
				t.Fatalf("Refresh = %+v, %v; want a new refresh token", g2, err)
			}
			// Each refresh token works once: HTTP 200, error=bad_refresh_token.
			_, err = p.Refresh(ctx, g.RefreshToken)
			if !errors.Is(err, provider.ErrRevoked) || strings.Contains(err.Error(), g.RefreshToken) {
				t.Fatalf("reusing a refresh token: %v; want ErrRevoked without the token", err)
			}
			if _, err := p.Exchange(ctx, "code_never_issued", provider.NewVerifier(), ""); !errors.Is(err, provider.ErrRevoked) {
				t.Errorf("Exchange of an unknown code: %v; want ErrRevoked (bad_verification_code)", err)
			}

			// Logout deletes the grant with the access token.
			if err := p.Revoke(ctx, g2.RefreshToken, g2.AccessToken); err != nil {
				t.Fatalf("Revoke: %v", err)
			}
			if f.deletes != 1 {
				t.Errorf("grant deletions = %d; want 1", f.deletes)
			}
			if _, err := p.Refresh(ctx, g2.RefreshToken); !errors.Is(err, provider.ErrRevoked) {
				t.Errorf("Refresh after the grant was deleted: %v; want ErrRevoked", err)
			}
			err = p.Revoke(ctx, g2.RefreshToken, g2.AccessToken)
			if !errors.Is(err, provider.ErrUnavailable) || !strings.Contains(err.Error(), "422") {
				t.Errorf("Revoke of a dead token = %v; want ErrUnavailable with HTTP 422", err)
			}
			for _, s := range []string{testClientSecret, g2.AccessToken, g2.RefreshToken} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q contains a secret", err)
				}
			}
		})
	}
}

// A GitHub OAuth App's token never expires and comes without a refresh
// token: no expiry, nothing to refresh, logout still deletes the grant.
func TestGitHubOAuthApp(t *testing.T) {
	f := newFakeGitHub(t, false, false)
	p := f.provider(nil)
	ctx := context.Background()
	g, err := p.Exchange(ctx, f.newCode(), provider.NewVerifier(), "")
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if !g.Expiry.IsZero() || !g.RefreshExpiry.IsZero() || g.RefreshToken != "" || !strings.HasPrefix(g.AccessToken, "gho_") || g.Subject != "583231" {
		t.Fatalf("Grant %+v; want a gho_ token with no expiry and no refresh token", g)
	}
	if err := p.Revoke(ctx, "", g.AccessToken); err != nil || f.deletes != 1 {
		t.Fatalf("Revoke = %v with %d deletions; want nil, 1", err, f.deletes)
	}
	if err := p.Revoke(ctx, "", ""); err != nil || f.deletes != 1 {
		t.Errorf("Revoke without an access token = %v, %d deletions; want nothing done", err, f.deletes)
	}
}

// Who the user is comes from GET /user; a failure there fails the login
// as an outage, never as a revocation.
func TestGitHubUserErrors(t *testing.T) {
	cases := []struct {
		name string
		user http.HandlerFunc
		bad  bool
	}{
		{"401", reply(401, "application/json", `{"message":"Bad credentials"}`), false},
		{"502", reply(502, "text/html", `<html>unicorn</html>`), false},
		{"no id", reply(200, "application/json", `{"login":"octocat"}`), true},
		{"id not a number", reply(200, "application/json", `{"login":"octocat","id":"x1"}`), true},
		{"not JSON", reply(200, "text/html", `<html>`), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := newTokenServer(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/user" {
					tc.user(w, r)
					return
				}
				reply(200, "application/json", `{"access_token":"gho_x","token_type":"bearer","scope":""}`)(w, r)
			})
			cfg := provider.GitHub(srv.URL, srv.URL, testClientID)
			cfg.ClientID, cfg.ClientSecret, cfg.RedirectURL = testClientID, testClientSecret, "http://127.0.0.1:1/cb"
			p, err := provider.New(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.Exchange(context.Background(), "code", provider.NewVerifier(), "")
			if !errors.Is(err, provider.ErrUnavailable) || errors.Is(err, provider.ErrRevoked) || errors.Is(err, provider.ErrBadResponse) != tc.bad {
				t.Errorf("Exchange = %v; want ErrUnavailable (bad response %v), not ErrRevoked", err, tc.bad)
			}
		})
	}
}

func TestGitHubNeedsUserURL(t *testing.T) {
	cfg := provider.GitHub("", "", "c")
	cfg.UserinfoURL, cfg.ClientID, cfg.RedirectURL = "", "c", "http://127.0.0.1:1/cb"
	if _, err := provider.New(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "/user") {
		t.Errorf("New without a /user URL = %v; want an error", err)
	}
	cfg = provider.GitHub("", "", "c")
	cfg.Issuer, cfg.ClientID, cfg.RedirectURL = "https://github.com", "c", "http://127.0.0.1:1/cb"
	if _, err := provider.New(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "issuer") {
		t.Errorf("New with an issuer for GitHub = %v; want an error", err)
	}
}

// A GitHub user without a display name is shown by login.
func TestGitHubUserWithoutName(t *testing.T) {
	srv, _ := newTokenServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/user" {
			if r.Header.Get("Authorization") != "Bearer gho_x" || r.Header.Get("X-GitHub-Api-Version") == "" {
				t.Errorf("GET /user headers %v", r.Header)
			}
			reply(200, "application/json", `{"login":"octocat","id":583231,"name":null}`)(w, r)
			return
		}
		reply(200, "application/json", `{"access_token":"gho_x","token_type":"bearer","scope":""}`)(w, r)
	})
	cfg := provider.GitHub(srv.URL, srv.URL, testClientID)
	cfg.ClientID, cfg.ClientSecret, cfg.RedirectURL = testClientID, testClientSecret, "http://127.0.0.1:1/cb"
	p, err := provider.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	g, err := p.Exchange(context.Background(), "code", provider.NewVerifier(), "")
	if err != nil || g.Subject != "583231" || g.Name != "octocat" {
		t.Errorf("Exchange = %+v, %v; want 583231 named octocat", g, err)
	}
}
