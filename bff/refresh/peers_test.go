package refresh

import (
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/tetherauth/tether/bff/devprovider"
	"github.com/tetherauth/tether/bff/provider"
)

// startProvider serves a dev provider that approves every login at once
// on a loopback httptest server, stopped when the test ends, and returns
// it with its issuer URL.
func startProvider(t *testing.T) (*devprovider.Provider, string) {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	dev, err := devprovider.New(devprovider.Config{Issuer: "http://" + srv.Listener.Addr().String(), AutoApprove: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = dev
	srv.Start()
	t.Cleanup(func() { srv.Close(); dev.Close() })
	return dev, srv.URL
}

// newProviderClient is the engine's side of the dev provider at issuer.
func newProviderClient(t *testing.T, issuer string) *provider.Provider {
	t.Helper()
	p, err := provider.New(t.Context(), provider.Config{
		Endpoints: provider.Endpoints{Issuer: issuer}, ClientID: devprovider.DefaultClientID, ClientSecret: devprovider.DefaultClientSecret,
		Scopes: []string{"openid", "profile"}, RedirectURL: "http://127.0.0.1/bff/callback",
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// signInGrant runs the authorization-code flow at a dev provider that
// approves at once, and returns the grant of the code exchange.
func signInGrant(t *testing.T, p *provider.Provider) *provider.Grant {
	t.Helper()
	verifier, nonce := provider.NewVerifier(), "n-"+rand.Text()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(p.AuthCodeURL("st", verifier, nonce))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("authorize: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	g, err := p.Exchange(t.Context(), loc.Query().Get("code"), verifier, nonce)
	if err != nil {
		t.Fatal(err)
	}
	return g
}
