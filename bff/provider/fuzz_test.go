package provider_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/provider"
)

// FuzzTokenResponse: whatever the token endpoint answers (status, content
// type, body), Refresh returns a usable grant or an error that is either
// ErrRevoked or ErrUnavailable and never quotes a secret.
func FuzzTokenResponse(f *testing.F) {
	seeds := []struct {
		status uint8
		ctype  uint8
		body   string
	}{
		{0, 0, `{"access_token":"a","token_type":"bearer","expires_in":60,"refresh_token":"r2"}`},
		{0, 0, `{"access_token":"a","expires_in":"3600"}`},
		{0, 0, `{"access_token":"a","expires_in":-5}`},
		{0, 0, `{"access_token":"a","expires_in":99999999999999}`},
		{0, 1, `access_token=a&token_type=bearer&expires_in=28800&refresh_token=r2&refresh_token_expires_in=15811200`},
		{0, 1, `error=bad_refresh_token&error_description=The+refresh+token+passed+is+incorrect+or+expired.`},
		{1, 0, `{"error":"invalid_grant","error_description":"refresh token rt-fuzz-secret is revoked"}`},
		{2, 2, `<html>oops</html>`},
		{3, 0, `{"error":"temporarily_unavailable"}`},
		{0, 0, `{"access_token":"x`},
		{0, 0, `{"error":"server_error"}`},
		{0, 2, ``},
	}
	for _, s := range seeds {
		f.Add(s.status, s.ctype, s.body)
	}
	statuses := []int{200, 400, 500, 503, 401, 302, 204, 429}
	ctypes := []string{"application/json", "application/x-www-form-urlencoded", "text/html", "text/plain", ""}
	f.Fuzz(func(t *testing.T, status, ctype uint8, body string) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if c := ctypes[int(ctype)%len(ctypes)]; c != "" {
				w.Header().Set("Content-Type", c)
			}
			w.WriteHeader(statuses[int(status)%len(statuses)])
			w.Write([]byte(body))
		}))
		defer srv.Close()
		p, err := provider.New(context.Background(), provider.Config{
			Endpoints: provider.Endpoints{AuthURL: srv.URL + "/authorize", TokenURL: srv.URL + "/token"},
			ClientID:  "client", ClientSecret: "client-secret-fuzz-value", RedirectURL: "http://127.0.0.1/cb",
			HTTPClient: &http.Client{Timeout: 2 * time.Second},
		})
		if err != nil {
			t.Fatal(err)
		}
		g, err := p.Refresh(context.Background(), "rt-fuzz-secret")
		if err == nil {
			if g.AccessToken == "" {
				t.Fatalf("a grant without an access token from %q", body)
			}
			if g.TokenType != "Bearer" && !strings.EqualFold(g.TokenType, "bearer") && g.TokenType == "" {
				t.Fatalf("token type %q", g.TokenType)
			}
			return
		}
		if !errors.Is(err, provider.ErrRevoked) && !errors.Is(err, provider.ErrUnavailable) {
			t.Fatalf("error is neither revoked nor unavailable: %v", err)
		}
		if msg := err.Error(); strings.Contains(msg, "rt-fuzz-secret") || strings.Contains(msg, "client-secret-fuzz-value") {
			t.Fatalf("error quotes a secret: %v", msg)
		}
	})
}
