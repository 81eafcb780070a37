package provider_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tetherauth/tether/bff/provider"
)

func TestRevoke(t *testing.T) {
	cases := []struct {
		name    string
		status  int
		wantErr bool
	}{
		{"200", http.StatusOK, false},
		{"400 unsupported_token_type", http.StatusBadRequest, true},
		{"401 invalid_client", http.StatusUnauthorized, true},
		{"503", http.StatusServiceUnavailable, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, hits := newTokenServer(t, func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost || r.URL.Path != "/revoke" {
					t.Errorf("request %s %s; want POST /revoke", r.Method, r.URL.Path)
				}
				if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
					t.Errorf("Content-Type %q", ct)
				}
				r.ParseForm()
				if tok, hint := r.PostForm.Get("token"), r.PostForm.Get("token_type_hint"); tok != testRefresh || hint != "refresh_token" {
					t.Errorf("token=%q token_type_hint=%q; want %q and refresh_token", tok, hint, testRefresh)
				}
				id, secret, ok := r.BasicAuth()
				if !ok || id != testClientID || secret != testClientSecret {
					t.Errorf("Basic auth %q:%q (%v); want %q:%q", id, secret, ok, testClientID, testClientSecret)
				}
				reply(tc.status, "application/json", `{"error":"x","error_description":"`+testRefresh+`"}`)(w, r)
			})
			p := newOAuthProvider(t, srv, nil, nil)
			if !p.CanRevoke() {
				t.Fatal("CanRevoke() = false with a RevokeURL")
			}
			err := p.Revoke(context.Background(), testRefresh, "at_x")
			if n := hits.Load(); n != 1 {
				t.Errorf("%d requests; want 1", n)
			}
			if (err != nil) != tc.wantErr {
				t.Fatalf("Revoke = %v; want error %v", err, tc.wantErr)
			}
			if err == nil {
				return
			}
			if !errors.Is(err, provider.ErrUnavailable) || errors.Is(err, provider.ErrRevoked) {
				t.Errorf("Revoke = %v; want ErrUnavailable", err)
			}
			for _, s := range []string{testRefresh, testClientSecret} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q contains the secret %q", err, s)
				}
			}
		})
	}
}

// The Basic credentials are form-encoded first (RFC 6749 section 2.3.1).
func TestRevokeEncodesCredentials(t *testing.T) {
	const id, secret = "client:id+1", "s3cr:et/%=="
	srv, hits := newTokenServer(t, func(w http.ResponseWriter, r *http.Request) {
		gotID, gotSecret, _ := r.BasicAuth()
		if uid, _ := url.QueryUnescape(gotID); uid != id {
			t.Errorf("client id %q decodes to %q; want %q", gotID, uid, id)
		}
		if us, _ := url.QueryUnescape(gotSecret); us != secret {
			t.Errorf("client secret %q decodes to %q; want %q", gotSecret, us, secret)
		}
	})
	p, err := provider.New(context.Background(), provider.Config{
		Endpoints: provider.Endpoints{AuthURL: srv.URL + "/a", TokenURL: srv.URL + "/t", RevokeURL: srv.URL + "/revoke"},
		ClientID:  id, ClientSecret: secret, RedirectURL: "http://127.0.0.1:1/cb",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Revoke(context.Background(), testRefresh, "at_x"); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if hits.Load() != 1 {
		t.Fatalf("%d requests; want 1", hits.Load())
	}
}

func TestRevokeWithoutEndpoint(t *testing.T) {
	srv, hits := newTokenServer(t, reply(200, "application/json", `{}`))
	p, err := provider.New(context.Background(), provider.Config{
		Endpoints: provider.Endpoints{AuthURL: srv.URL + "/authorize", TokenURL: srv.URL + "/token"},
		ClientID:  testClientID, ClientSecret: testClientSecret, RedirectURL: "http://127.0.0.1:1/cb",
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.CanRevoke() {
		t.Error("CanRevoke() = true without a RevokeURL")
	}
	if err := p.Revoke(context.Background(), testRefresh, "at_x"); err != nil {
		t.Errorf("Revoke without an endpoint = %v; want nil", err)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("Revoke without an endpoint made %d requests", n)
	}
}

func TestRevokeEmptyToken(t *testing.T) {
	srv, hits := newTokenServer(t, reply(200, "application/json", `{}`))
	p := newOAuthProvider(t, srv, nil, nil)
	if err := p.Revoke(context.Background(), "", ""); err != nil {
		t.Errorf("Revoke(\"\") = %v; want nil", err)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("Revoke(\"\") made %d requests", n)
	}
}

func TestRevokeConnectionReset(t *testing.T) {
	srv, _ := newTokenServer(t, hijack(reset))
	p := newOAuthProvider(t, srv, nil, nil)
	err := p.Revoke(context.Background(), testRefresh, "at_x")
	if !errors.Is(err, provider.ErrUnavailable) {
		t.Fatalf("Revoke = %v; want ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), testRefresh) {
		t.Errorf("error %q contains the refresh token", err)
	}
}

// Without a refresh token, RFC 7009 revocation names the access token.
func TestRevokeAccessTokenWhenNoRefreshToken(t *testing.T) {
	srv, hits := newTokenServer(t, func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		if tok, hint := r.PostForm.Get("token"), r.PostForm.Get("token_type_hint"); tok != "at_only" || hint != "access_token" {
			t.Errorf("token=%q token_type_hint=%q; want at_only and access_token", tok, hint)
		}
	})
	p := newOAuthProvider(t, srv, nil, nil)
	if err := p.Revoke(context.Background(), "", "at_only"); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if hits.Load() != 1 {
		t.Fatalf("%d requests; want 1", hits.Load())
	}
}
