package provider_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/provider"
)

// fakeGoogle reproduces Google's documented wire behaviour:
//
//   - discovery with a revocation_endpoint;
//   - a refresh token only when the authorization request had
//     access_type=offline, and then only at the user's first consent or
//     with prompt=consent;
//   - refresh answers carry no refresh_token: the same one is used again
//     (no rotation);
//   - invalid_grant "Token has been expired or revoked." (HTTP 400);
//   - POST /revoke with token=…: 200, or 400 invalid_token.
type fakeGoogle struct {
	t      *testing.T
	srv    *httptest.Server
	signer *idSigner

	mu        sync.Mutex
	iss       string // the ID tokens' iss; default the issuer URL
	consented bool   // the user has given offline consent before
	codes     map[string]googleCode
	refresh   map[string]bool // valid refresh tokens
	revokes   []url.Values
}

type googleCode struct {
	nonce   string
	offline bool
}

func newFakeGoogle(t *testing.T) *fakeGoogle {
	f := &fakeGoogle{t: t, signer: newIDSigner(t), codes: map[string]googleCode{}, refresh: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSONReply(w, 200, map[string]any{
			"issuer":                                f.srv.URL,
			"authorization_endpoint":                f.srv.URL + "/o/oauth2/v2/auth",
			"token_endpoint":                        f.srv.URL + "/token",
			"userinfo_endpoint":                     f.srv.URL + "/v1/userinfo",
			"revocation_endpoint":                   f.srv.URL + "/revoke",
			"jwks_uri":                              f.srv.URL + "/oauth2/v3/certs",
			"response_types_supported":              []string{"code"},
			"id_token_signing_alg_values_supported": []string{"ES256"},
			"token_endpoint_auth_methods_supported": []string{"client_secret_post", "client_secret_basic"},
		})
	})
	mux.HandleFunc("GET /oauth2/v3/certs", f.signer.jwks)
	mux.HandleFunc("GET /o/oauth2/v2/auth", f.authorize)
	mux.HandleFunc("POST /token", f.token)
	mux.HandleFunc("POST /revoke", f.revoke)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeGoogle) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.mu.Lock()
	offline := q.Get("access_type") == "offline" && (!f.consented || q.Get("prompt") == "consent")
	if q.Get("access_type") == "offline" {
		f.consented = true
	}
	code := ghToken("4/0A")
	f.codes[code] = googleCode{nonce: q.Get("nonce"), offline: offline}
	f.mu.Unlock()
	http.Redirect(w, r, q.Get("redirect_uri")+"?"+url.Values{"code": {code}, "state": {q.Get("state")}}.Encode(), http.StatusFound)
}

func (f *fakeGoogle) token(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.PostForm.Get("client_id") != testClientID || r.PostForm.Get("client_secret") != testClientSecret {
		writeJSONReply(w, 401, map[string]string{"error": "invalid_client", "error_description": "Unauthorized"})
		return
	}
	invalid := func() {
		writeJSONReply(w, 400, map[string]string{"error": "invalid_grant", "error_description": "Token has been expired or revoked."})
	}
	resp := map[string]any{"access_token": ghToken("ya29."), "expires_in": 3599, "token_type": "Bearer",
		"scope": "openid https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile"}
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		c, ok := f.codes[r.PostForm.Get("code")]
		delete(f.codes, r.PostForm.Get("code"))
		if !ok {
			writeJSONReply(w, 400, map[string]string{"error": "invalid_grant", "error_description": "Malformed auth code."})
			return
		}
		if c.offline {
			rt := ghToken("1//0g")
			f.refresh[rt] = true
			resp["refresh_token"] = rt
		}
		iss := f.iss
		if iss == "" {
			iss = f.srv.URL
		}
		resp["id_token"] = f.signer.sign(f.t, map[string]any{"iss": iss, "aud": testClientID, "sub": "110169484474386276334",
			"email": "alice@gmail.test", "name": "Alice Example", "nonce": c.nonce, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()})
	case "refresh_token":
		if !f.refresh[r.PostForm.Get("refresh_token")] {
			invalid()
			return
		}
	default:
		writeJSONReply(w, 400, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	writeJSONReply(w, 200, resp)
}

func (f *fakeGoogle) revoke(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revokes = append(f.revokes, r.PostForm)
	tok := r.PostForm.Get("token")
	if !f.refresh[tok] {
		writeJSONReply(w, 400, map[string]string{"error": "invalid_token", "error_description": "Token expired or revoked"})
		return
	}
	delete(f.refresh, tok)
	writeJSONReply(w, 200, map[string]string{})
}

// provider is the Google preset pointed at this fake.
func (f *fakeGoogle) provider(mutate func(*provider.Config)) *provider.Provider {
	f.t.Helper()
	cfg := provider.Google()
	cfg.Issuer, cfg.ClientID, cfg.ClientSecret, cfg.RedirectURL = f.srv.URL, testClientID, testClientSecret, devRedirect
	if mutate != nil {
		mutate(&cfg)
	}
	p, err := provider.New(context.Background(), cfg)
	if err != nil {
		f.t.Fatalf("provider.New: %v", err)
	}
	return p
}

// login runs AuthCodeURL → the fake's consent → Exchange.
func (f *fakeGoogle) login(p *provider.Provider) *provider.Grant {
	f.t.Helper()
	v := provider.NewVerifier()
	q := followAuthorize(f.t, p.AuthCodeURL("st", v, "nonce-g"))
	g, err := p.Exchange(context.Background(), q.Get("code"), v, "nonce-g")
	if err != nil {
		f.t.Fatalf("Exchange: %v", err)
	}
	return g
}

func TestGooglePreset(t *testing.T) {
	c := provider.Google()
	if c.Flavor != provider.FlavorGoogle || c.Issuer != "https://accounts.google.com" || !slices.Equal(c.Scopes, []string{"openid", "email", "profile"}) ||
		c.AuthParams.Get("access_type") != "offline" || c.AuthParams.Get("prompt") != "consent" {
		t.Errorf("Google() = %+v", c)
	}
}

func TestGoogle(t *testing.T) {
	f := newFakeGoogle(t)
	p := f.provider(nil)
	ctx := context.Background()
	if !p.OIDC() || !p.CanRevoke() {
		t.Fatalf("OIDC() = %v, CanRevoke() = %v; want true, true (discovery)", p.OIDC(), p.CanRevoke())
	}
	u, _ := url.Parse(p.AuthCodeURL("st", provider.NewVerifier(), "n"))
	if q := u.Query(); q.Get("access_type") != "offline" || q.Get("prompt") != "consent" || q.Get("scope") != "openid email profile" || q.Get("nonce") != "n" {
		t.Errorf("AuthCodeURL query %v; want access_type=offline, prompt=consent, the scopes and the nonce", q)
	}

	g := f.login(p)
	if g.Subject != "110169484474386276334" || g.Name != "Alice Example" || g.RefreshToken == "" || g.Expiry.IsZero() {
		t.Fatalf("Grant %+v; want the ID token's user and a refresh token", g)
	}
	// Google does not rotate: the refresh answer has no refresh token, and
	// the old one keeps working.
	for i := range 2 {
		g2, err := p.Refresh(ctx, g.RefreshToken)
		if err != nil || g2.RefreshToken != "" || g2.AccessToken == g.AccessToken {
			t.Fatalf("Refresh %d = %+v, %v; want a new access token and no refresh token", i, g2, err)
		}
	}
	// A second login still gets a refresh token, thanks to prompt=consent.
	if g3 := f.login(p); g3.RefreshToken == "" {
		t.Error("the second login got no refresh token despite prompt=consent")
	}

	if err := p.Revoke(ctx, g.RefreshToken, g.AccessToken); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if last := f.revokes[len(f.revokes)-1]; last.Get("token") != g.RefreshToken || last.Get("token_type_hint") != "refresh_token" {
		t.Errorf("revocation form %v; want the refresh token", last)
	}
	_, err := p.Refresh(ctx, g.RefreshToken)
	if !errors.Is(err, provider.ErrRevoked) || !strings.Contains(err.Error(), "Token has been expired or revoked.") {
		t.Errorf("Refresh after Revoke: %v; want ErrRevoked with Google's description", err)
	}
	if err := p.Revoke(ctx, g.RefreshToken, g.AccessToken); !errors.Is(err, provider.ErrUnavailable) {
		t.Errorf("revoking twice: %v; want an error (400 invalid_token)", err)
	}
}

// Without prompt=consent Google gives a refresh token only at the first
// consent: the second login has none (documented; the preset sends it).
func TestGoogleWithoutPromptConsent(t *testing.T) {
	f := newFakeGoogle(t)
	p := f.provider(func(c *provider.Config) { c.AuthParams = url.Values{"access_type": {"offline"}} })
	if g := f.login(p); g.RefreshToken == "" {
		t.Fatal("the first login got no refresh token")
	}
	if g := f.login(p); g.RefreshToken != "" {
		t.Error("the second login without prompt=consent got a refresh token; the fake does not behave like Google")
	}
	p = f.provider(func(c *provider.Config) { c.AuthParams = nil })
	if g := f.login(p); g.RefreshToken != "" {
		t.Error("a login without access_type=offline got a refresh token")
	}
}

// Google documents iss as https://accounts.google.com or
// accounts.google.com: both forms of the issuer pass, nothing else.
func TestGoogleIssuerForms(t *testing.T) {
	f := newFakeGoogle(t)
	p := f.provider(nil)
	for _, tc := range []struct {
		iss string
		ok  bool
	}{
		{f.srv.URL, true},
		{strings.TrimPrefix(f.srv.URL, "http://"), true},
		{"accounts.evil.example", false},
		{f.srv.URL + "/", false},
	} {
		f.mu.Lock()
		f.iss = tc.iss
		f.mu.Unlock()
		v := provider.NewVerifier()
		q := followAuthorize(t, p.AuthCodeURL("st", v, "n"))
		_, err := p.Exchange(context.Background(), q.Get("code"), v, "n")
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, provider.ErrBadResponse)) {
			t.Errorf("iss %q: Exchange = %v; want ok %v", tc.iss, err, tc.ok)
		}
	}
}
