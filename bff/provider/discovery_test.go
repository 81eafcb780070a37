package provider_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/provider"
)

// TestDiscoveryFailures: every way of not getting a discovery document
// that may pass is ErrDiscovery (and ErrUnavailable); a document that
// states another issuer is not.
func TestDiscoveryFailures(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String()
	ln.Close()
	serve := func(h http.HandlerFunc) string {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv.URL
	}
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	cases := []struct {
		name      string
		issuer    string
		transient bool
	}{
		{"connection refused", refused, true},
		{"503", serve(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) }), true},
		{"404", serve(http.NotFound), true},
		{"timeout", serve(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-hang:
			case <-r.Context().Done():
			}
		}), true},
		{"HTML", serve(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("<!doctype html><title>maintenance</title>"))
		}), true},
		{"truncated JSON", serve(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"issuer":"http://x`)) }), true},
		{"JSON array", serve(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`[1,2]`)) }), true},
		{"another issuer", serve(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"issuer":"https://elsewhere.example","authorization_endpoint":"https://elsewhere.example/a","token_endpoint":"https://elsewhere.example/t","jwks_uri":"https://elsewhere.example/k"}`))
		}), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := devConfig(tc.issuer, "openid")
			cfg.HTTPClient = &http.Client{Timeout: 300 * time.Millisecond}
			_, err := provider.New(context.Background(), cfg)
			if err == nil {
				t.Fatal("New succeeded; want an error")
			}
			if got := errors.Is(err, provider.ErrDiscovery); got != tc.transient {
				t.Errorf("New error %q: errors.Is(ErrDiscovery) = %v; want %v", err, got, tc.transient)
			}
			if tc.transient && !errors.Is(err, provider.ErrUnavailable) {
				t.Errorf("New error %q is not ErrUnavailable", err)
			}
			if !strings.HasPrefix(err.Error(), "provider: discovery at "+tc.issuer) {
				t.Errorf("New error %q; want it to name the issuer", err)
			}
		})
	}
}

// TestDiscoveryCached: a Provider built from the document another one
// fetched needs no discovery request, and works: the same endpoints, and
// its verifier still fetches the signing keys to check ID tokens.
func TestDiscoveryCached(t *testing.T) {
	issuer := startDev(t)
	fetched := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	cfg := devConfig(issuer, "openid", "profile")
	cfg.Now = func() time.Time { return fetched }
	live := newDevProvider(t, cfg)
	d := live.Discovery()
	if d == nil || !d.Fetched.Equal(fetched) || !strings.Contains(string(d.Document), `"token_endpoint"`) {
		t.Fatalf("Discovery() = %+v; want the document, fetched at %v", d, fetched)
	}

	var discoveryGETs atomic.Int64
	counting := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if strings.HasSuffix(r.URL.Path, "/.well-known/openid-configuration") {
			discoveryGETs.Add(1)
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
	cfg = devConfig(issuer, "openid", "profile")
	cfg.HTTPClient, cfg.Discovery = counting, d
	cached := newDevProvider(t, cfg)
	if got := cached.Discovery(); got != d {
		t.Errorf("Discovery() = %p; want the document given, %p", got, d)
	}
	liveAuth, _, _ := strings.Cut(live.AuthCodeURL("s", "v", "n"), "?")
	cachedAuth, _, _ := strings.Cut(cached.AuthCodeURL("s", "v", "n"), "?")
	if cachedAuth != liveAuth || !cached.OIDC() || !cached.CanRevoke() {
		t.Errorf("the cached provider: authorization endpoint %q, OIDC %v, revocation %v; want %q, true, true", cachedAuth, cached.OIDC(), cached.CanRevoke(), liveAuth)
	}
	v := provider.NewVerifier()
	g, err := cached.Exchange(context.Background(), authorize(t, cached, v, "n-1"), v, "n-1")
	if err != nil || g.Subject != "alice" {
		t.Fatalf("Exchange with the cached document: %+v, %v; want alice, her ID token verified", g, err)
	}
	if _, err := cached.Refresh(context.Background(), g.RefreshToken); err != nil {
		t.Fatalf("Refresh with the cached document: %v", err)
	}
	if n := discoveryGETs.Load(); n != 0 {
		t.Errorf("the provider built from a cached document fetched discovery %d times; want 0", n)
	}

	// The issuer unreachable: the cached document still starts a Provider.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()
	doc := strings.ReplaceAll(string(d.Document), issuer, down)
	cfg = devConfig(down, "openid")
	cfg.Discovery = &provider.Discovery{Document: []byte(doc), Fetched: fetched}
	p, err := provider.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New with a cached document, issuer down: %v", err)
	}
	if _, err := p.Refresh(context.Background(), "rt"); !errors.Is(err, provider.ErrUnavailable) {
		t.Errorf("Refresh with the issuer down: %v; want ErrUnavailable", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
