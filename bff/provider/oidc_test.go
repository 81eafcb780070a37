package provider_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/devprovider"
	"github.com/tetherauth/tether/bff/provider"
)

const devRedirect = "http://127.0.0.1:1/bff/callback"

// startDev runs a dev provider with AutoApprove on 127.0.0.1 and returns
// its issuer URL.
func startDev(t *testing.T) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String()
	dp, err := devprovider.New(devprovider.Config{Issuer: issuer, AutoApprove: true})
	if err != nil {
		srv.Close()
		t.Fatalf("devprovider.New: %v", err)
	}
	srv.Config.Handler = dp
	srv.Start()
	t.Cleanup(func() {
		dp.Close()
		srv.Close()
	})
	return issuer
}

// devConfig is a provider.Config for the dev provider at issuer.
func devConfig(issuer string, scopes ...string) provider.Config {
	return provider.Config{
		Endpoints:    provider.Endpoints{Issuer: issuer},
		ClientID:     devprovider.DefaultClientID,
		ClientSecret: devprovider.DefaultClientSecret,
		Scopes:       scopes,
		RedirectURL:  devRedirect,
	}
}

func newDevProvider(t *testing.T, cfg provider.Config) *provider.Provider {
	t.Helper()
	p, err := provider.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("provider.New: %v", err)
	}
	return p
}

// authorize plays the browser: it follows AuthCodeURL to the dev
// provider, which approves at once, and returns the code from the
// redirect.
func authorize(t *testing.T, p *provider.Provider, verifier, nonce string) string {
	t.Helper()
	c := &http.Client{
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := c.Get(p.AuthCodeURL("state-1", verifier, nonce))
	if err != nil {
		t.Fatalf("GET AuthCodeURL: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize answered %d; want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	if !strings.HasPrefix(loc.String(), devRedirect+"?") || q.Get("state") != "state-1" || q.Get("code") == "" {
		t.Fatalf("authorize redirected to %q; want %s with state-1 and a code", loc, devRedirect)
	}
	return q.Get("code")
}

func TestNewErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	notFound := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(notFound.Close)

	ok := provider.Config{Endpoints: provider.Endpoints{AuthURL: "https://idp.example/authorize", TokenURL: "https://idp.example/token"},
		ClientID: "c", RedirectURL: devRedirect}
	cases := []struct {
		name   string
		mutate func(*provider.Config)
		want   string // in the error
	}{
		{"no client id", func(c *provider.Config) { c.ClientID = "" }, "client id"},
		{"no redirect URL", func(c *provider.Config) { c.RedirectURL = "" }, "redirect URL"},
		{"no endpoints", func(c *provider.Config) { c.AuthURL, c.TokenURL = "", "" }, "no authorization or token endpoint"},
		{"auth URL only", func(c *provider.Config) { c.TokenURL = "" }, "no authorization or token endpoint"},
		{"token URL only", func(c *provider.Config) { c.AuthURL = "" }, "no authorization or token endpoint"},
		{"relative token URL", func(c *provider.Config) { c.TokenURL = "/token" }, `"/token"`},
		{"ftp revoke URL", func(c *provider.Config) { c.RevokeURL = "ftp://idp.example/revoke" }, "ftp://idp.example/revoke"},
		{"userinfo without host", func(c *provider.Config) { c.UserinfoURL = "https:///userinfo" }, "https:///userinfo"},
		{"issuer refuses connections", func(c *provider.Config) { c.Issuer = closed }, "discovery"},
		{"issuer without discovery", func(c *provider.Config) { c.Issuer = notFound.URL }, "discovery"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.mutate(&cfg)
			p, err := provider.New(context.Background(), cfg)
			if err == nil {
				t.Fatalf("New = %v, nil; want an error", p)
			}
			if !strings.HasPrefix(err.Error(), "provider: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New error %q; want it to start with provider: and mention %q", err, tc.want)
			}
		})
	}
	if _, err := provider.New(context.Background(), ok); err != nil {
		t.Errorf("New with explicit endpoints: %v", err)
	}
}

func TestDiscovery(t *testing.T) {
	issuer := startDev(t)
	cases := []struct {
		scopes []string
		oidc   bool
	}{
		{[]string{"openid", "profile"}, true},
		{[]string{"profile", "openid"}, true},
		{[]string{"profile"}, false},
		{nil, false},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.scopes, "+"), func(t *testing.T) {
			p := newDevProvider(t, devConfig(issuer, tc.scopes...))
			if p.OIDC() != tc.oidc {
				t.Errorf("OIDC() = %v; want %v", p.OIDC(), tc.oidc)
			}
			if !p.CanRevoke() {
				t.Error("CanRevoke() = false; discovery lists revocation_endpoint")
			}
			u, _ := url.Parse(p.AuthCodeURL("s", provider.NewVerifier(), "n-1"))
			if got := u.Scheme + "://" + u.Host + u.Path; got != issuer+"/authorize" {
				t.Errorf("AuthCodeURL on %q; want %q", got, issuer+"/authorize")
			}
			q := u.Query()
			if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
				t.Errorf("AuthCodeURL %q lacks PKCE S256", u)
			}
			if got := q.Get("nonce"); (got == "n-1") != tc.oidc || (got != "" && got != "n-1") {
				t.Errorf("nonce=%q with OIDC()=%v", got, tc.oidc)
			}
			if got := strings.Fields(q.Get("scope")); !slices.Equal(got, tc.scopes) && !(len(got) == 0 && len(tc.scopes) == 0) {
				t.Errorf("scope=%q; want %q", got, tc.scopes)
			}
		})
	}
	t.Run("no nonce when empty", func(t *testing.T) {
		p := newDevProvider(t, devConfig(issuer, "openid"))
		if u := p.AuthCodeURL("s", provider.NewVerifier(), ""); strings.Contains(u, "nonce=") {
			t.Errorf("AuthCodeURL with an empty nonce = %q", u)
		}
	})
}

// Explicit endpoints win over what discovery found.
func TestExplicitEndpointsOverrideDiscovery(t *testing.T) {
	issuer := startDev(t)
	fake, hits := newTokenServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/token":
			checkRefreshRequest(t, r)
			reply(200, "application/json", `{"access_token":"fake_at","expires_in":60}`)(w, r)
		case "/revoke":
			w.WriteHeader(http.StatusOK)
		default:
			t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
		}
	})
	cfg := devConfig(issuer, "openid")
	cfg.ClientID, cfg.ClientSecret = testClientID, testClientSecret
	cfg.TokenURL, cfg.RevokeURL = fake.URL+"/token", fake.URL+"/revoke"
	p := newDevProvider(t, cfg)
	if !strings.HasPrefix(p.AuthCodeURL("s", provider.NewVerifier(), "n"), issuer+"/authorize?") {
		t.Error("the authorization endpoint is not the discovered one")
	}
	g, err := p.Refresh(context.Background(), testRefresh)
	if err != nil || g.AccessToken != "fake_at" {
		t.Fatalf("Refresh = %+v, %v; want fake_at from the explicit token URL", g, err)
	}
	if err := p.Revoke(context.Background(), testRefresh, "at_x"); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if n := hits.Load(); n != 2 {
		t.Errorf("the explicit endpoints got %d requests; want 2", n)
	}
}

func TestExchangeOIDC(t *testing.T) {
	issuer := startDev(t)
	p := newDevProvider(t, devConfig(issuer, "openid", "profile"))
	ctx := context.Background()

	t.Run("good nonce", func(t *testing.T) {
		v := provider.NewVerifier()
		start := time.Now()
		g, err := p.Exchange(ctx, authorize(t, p, v, "nonce-good"), v, "nonce-good")
		if err != nil {
			t.Fatalf("Exchange: %v", err)
		}
		if g.Subject != "alice" || g.Name != "Alice Liddell" || g.TokenType != "Bearer" {
			t.Errorf("Grant %+v; want alice, Alice Liddell, Bearer", g)
		}
		if !strings.HasPrefix(g.AccessToken, "dev_at_") || !strings.HasPrefix(g.RefreshToken, "dev_rt_") {
			t.Errorf("tokens %q, %q; want dev_at_…, dev_rt_…", g.AccessToken, g.RefreshToken)
		}
		if d := g.Expiry.Sub(start); d < 55*time.Second || d > 65*time.Second {
			t.Errorf("Expiry in %v; want about %v", d, devprovider.DefaultAccessTTL)
		}
		if d := g.RefreshExpiry.Sub(start); d < 9*time.Minute || d > 11*time.Minute {
			t.Errorf("RefreshExpiry in %v; want about %v", d, devprovider.DefaultRefreshTTL)
		}

		// Rotation, then reuse of the old refresh token: the grant is gone.
		g2, err := p.Refresh(ctx, g.RefreshToken)
		if err != nil || g2.RefreshToken == "" || g2.RefreshToken == g.RefreshToken {
			t.Fatalf("Refresh = %+v, %v; want a rotated refresh token", g2, err)
		}
		_, err = p.Refresh(ctx, g.RefreshToken)
		if !errors.Is(err, provider.ErrRevoked) {
			t.Fatalf("reusing a rotated refresh token: %v; want ErrRevoked", err)
		}
		if strings.Contains(err.Error(), g.RefreshToken) {
			t.Errorf("error %q contains the refresh token", err)
		}
		if _, err := p.Refresh(ctx, g2.RefreshToken); !errors.Is(err, provider.ErrRevoked) {
			t.Errorf("after reuse, the newest refresh token: %v; want ErrRevoked", err)
		}
	})

	t.Run("wrong nonce", func(t *testing.T) {
		v := provider.NewVerifier()
		_, err := p.Exchange(ctx, authorize(t, p, v, "nonce-sent"), v, "nonce-other")
		if !errors.Is(err, provider.ErrBadResponse) || errors.Is(err, provider.ErrRevoked) {
			t.Fatalf("Exchange with the wrong nonce: %v; want ErrBadResponse", err)
		}
	})

	t.Run("wrong verifier", func(t *testing.T) {
		v := provider.NewVerifier()
		_, err := p.Exchange(ctx, authorize(t, p, v, "n"), provider.NewVerifier(), "n")
		if !errors.Is(err, provider.ErrRevoked) {
			t.Fatalf("Exchange with the wrong verifier: %v; want ErrRevoked (invalid_grant)", err)
		}
		if !strings.HasPrefix(err.Error(), "provider: code exchange: ") {
			t.Errorf("error %q", err)
		}
	})

	t.Run("replayed code", func(t *testing.T) {
		v := provider.NewVerifier()
		code := authorize(t, p, v, "n")
		if _, err := p.Exchange(ctx, code, v, "n"); err != nil {
			t.Fatalf("first Exchange: %v", err)
		}
		_, err := p.Exchange(ctx, code, v, "n")
		if !errors.Is(err, provider.ErrRevoked) {
			t.Fatalf("replayed code: %v; want ErrRevoked", err)
		}
		if strings.Contains(err.Error(), code) {
			t.Errorf("error %q contains the code", err)
		}
	})

	t.Run("revoked", func(t *testing.T) {
		v := provider.NewVerifier()
		g, err := p.Exchange(ctx, authorize(t, p, v, "n"), v, "n")
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Revoke(ctx, g.RefreshToken, g.AccessToken); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		if _, err := p.Refresh(ctx, g.RefreshToken); !errors.Is(err, provider.ErrRevoked) {
			t.Errorf("Refresh after Revoke: %v; want ErrRevoked", err)
		}
	})
}

// A wrong client secret is a configuration error, not a revocation.
func TestExchangeWrongSecret(t *testing.T) {
	issuer := startDev(t)
	cfg := devConfig(issuer, "openid")
	cfg.ClientSecret = "not-the-secret-value-0042"
	p := newDevProvider(t, cfg)
	v := provider.NewVerifier()
	_, err := p.Exchange(context.Background(), authorize(t, p, v, "n"), v, "n")
	if !errors.Is(err, provider.ErrUnavailable) || errors.Is(err, provider.ErrRevoked) {
		t.Fatalf("Exchange with a wrong secret: %v; want ErrUnavailable, not ErrRevoked", err)
	}
	if strings.Contains(err.Error(), cfg.ClientSecret) {
		t.Errorf("error %q contains the client secret", err)
	}
}

// Without openid there is no ID token: Subject and Name come from userinfo.
func TestExchangeUserinfo(t *testing.T) {
	issuer := startDev(t)
	p := newDevProvider(t, devConfig(issuer, "profile"))
	v := provider.NewVerifier()
	g, err := p.Exchange(context.Background(), authorize(t, p, v, ""), v, "")
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if g.Subject != "alice" || g.Name != "Alice Liddell" {
		t.Errorf("Grant %+v; want alice / Alice Liddell from userinfo", g)
	}
}

// AuthParams reach the authorization request, but cannot replace state,
// PKCE, the nonce, the client, the redirect URI or the scopes.
func TestAuthParams(t *testing.T) {
	issuer := startDev(t)
	cfg := devConfig(issuer, "openid", "profile")
	cfg.AuthParams = url.Values{"audience": {"https://api.example"}, "login_hint": {"bob"}, "empty": {""},
		"state": {"forged"}, "code_challenge": {"forged"}, "code_challenge_method": {"plain"}, "nonce": {"forged"},
		"client_id": {"forged"}, "redirect_uri": {"https://evil.example/cb"}, "response_type": {"token"}, "scope": {"admin"}}
	p := newDevProvider(t, cfg)
	u, _ := url.Parse(p.AuthCodeURL("st-1", provider.NewVerifier(), "n-1"))
	q := u.Query()
	if q.Get("audience") != "https://api.example" || q.Get("login_hint") != "bob" || q.Has("empty") {
		t.Errorf("query %v; want audience and login_hint, no empty parameter", q)
	}
	want := map[string]string{"state": "st-1", "code_challenge_method": "S256", "nonce": "n-1", "client_id": devprovider.DefaultClientID,
		"redirect_uri": devRedirect, "response_type": "code", "scope": "openid profile"}
	for k, v := range want {
		if q.Get(k) != v || len(q[k]) != 1 {
			t.Errorf("%s=%q; want %q", k, q[k], v)
		}
	}
	if q.Get("code_challenge") == "forged" {
		t.Error("AuthParams replaced the PKCE challenge")
	}
	if !provider.ReservedAuthParam("state") || provider.ReservedAuthParam("audience") {
		t.Error("ReservedAuthParam is wrong about state or audience")
	}
}
