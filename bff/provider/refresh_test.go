package provider_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/provider"
)

// Secrets the fake token endpoints know; no error string may contain them.
const (
	testClientID     = "tether-test"
	testClientSecret = "cs_secret_value_1234"
	testRefresh      = "rt_old_secret_value_5678"
)

// newTokenServer starts a fake token endpoint on 127.0.0.1 that answers
// every request with h, and counts requests.
func newTokenServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// newOAuthProvider builds a plain OAuth 2.0 Provider whose endpoints are
// all on srv.
func newOAuthProvider(t *testing.T, srv *httptest.Server, client *http.Client, now func() time.Time) *provider.Provider {
	t.Helper()
	p, err := provider.New(context.Background(), provider.Config{
		Endpoints: provider.Endpoints{
			AuthURL:   srv.URL + "/authorize",
			TokenURL:  srv.URL + "/token",
			RevokeURL: srv.URL + "/revoke",
		},
		ClientID:     testClientID,
		ClientSecret: testClientSecret,
		RedirectURL:  "http://127.0.0.1:1/bff/callback",
		HTTPClient:   client,
		Now:          now,
	})
	if err != nil {
		t.Fatalf("provider.New: %v", err)
	}
	return p
}

// reply answers with a status, a content type and a body.
func reply(status int, contentType, body string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}
}

// hang reads the request and answers nothing until the client gives up
// (the server notices once the body is read) or 5 seconds pass.
func hang(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	select {
	case <-r.Context().Done():
	case <-time.After(5 * time.Second):
	}
}

// hijack takes the connection from the server and lets f do the rest.
func hijack(f func(c net.Conn)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		f(c)
	}
}

// reset closes c with an RST instead of a FIN.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

func TestRefreshClassification(t *testing.T) {
	const jsonType = "application/json"
	cases := []struct {
		name    string
		handler http.HandlerFunc
		timeout time.Duration // HTTPClient.Timeout; default 5s
		revoked bool          // want ErrRevoked, else ErrUnavailable and not ErrRevoked
		bad     bool          // want ErrBadResponse (else not)
		retry   time.Duration // want RetryAfterOf(err)
		leaks   []string      // must not appear in err.Error(), beyond the fixed secrets
	}{
		{name: "400 invalid_grant", revoked: true,
			handler: reply(400, jsonType, `{"error":"invalid_grant","error_description":"Token is not active"}`)},
		{name: "400 invalid_grant echoing the refresh token", revoked: true,
			handler: reply(400, jsonType, `{"error":"invalid_grant","error_description":"refresh token `+testRefresh+` was revoked","refresh_token":"`+testRefresh+`"}`)},
		{name: "400 invalid_grant echoing an unknown token", revoked: true, leaks: []string{"leaked_rt_c4f1a9e2b7d04e5f9a"},
			handler: reply(400, jsonType, `{"error":"invalid_grant","error_description":"grant of leaked_rt_c4f1a9e2b7d04e5f9a is gone"}`)},
		{name: "200 invalid_grant", revoked: true,
			handler: reply(200, jsonType, `{"error":"invalid_grant"}`)},
		// DESIGN.md: GitHub answers HTTP 200 with error=bad_refresh_token,
		// form-encoded unless asked for JSON.
		{name: "200 bad_refresh_token form-encoded (GitHub)", revoked: true,
			handler: reply(200, "application/x-www-form-urlencoded", `error=bad_refresh_token&error_description=The+refresh+token+passed+is+incorrect+or+expired.`)},
		{name: "200 bad_refresh_token JSON (GitHub)", revoked: true,
			handler: reply(200, jsonType, `{"error":"bad_refresh_token"}`)},
		{name: "400 bad_refresh_token JSON (GitHub, as some report it)", revoked: true,
			handler: reply(400, jsonType, `{"error":"bad_refresh_token","error_description":"The refresh token passed is incorrect or expired."}`)},
		{name: "200 incorrect_client_credentials form-encoded (GitHub)",
			handler: reply(200, "application/x-www-form-urlencoded", `error=incorrect_client_credentials&error_description=The+client_id+and%2For+client_secret+passed+are+incorrect.`)},
		{name: "502 bad_refresh_token (5xx is never revocation)",
			handler: reply(502, jsonType, `{"error":"bad_refresh_token"}`)},
		{name: "401 invalid_client",
			handler: reply(401, jsonType, `{"error":"invalid_client","error_description":"client secret `+testClientSecret+` is wrong"}`, "WWW-Authenticate", `Basic realm="x"`)},
		{name: "400 invalid_client",
			handler: reply(400, jsonType, `{"error":"invalid_client"}`)},
		{name: "400 invalid_request",
			handler: reply(400, jsonType, `{"error":"invalid_request"}`)},
		{name: "500 invalid_grant", // 5xx is never revocation
			handler: reply(500, jsonType, `{"error":"invalid_grant"}`)},
		{name: "503 invalid_grant",
			handler: reply(503, jsonType, `{"error":"invalid_grant"}`)},
		{name: "503 Retry-After seconds", retry: 7 * time.Second,
			handler: reply(503, jsonType, `{"error":"temporarily_unavailable"}`, "Retry-After", "7")},
		{name: "429 Retry-After seconds", retry: 30 * time.Second,
			handler: reply(429, "text/plain", `slow down`, "Retry-After", "30")},
		{name: "503 Retry-After garbage", retry: 0,
			handler: reply(503, jsonType, `{}`, "Retry-After", "soon")},
		{name: "500 HTML",
			handler: reply(500, "text/html", `<html><body>Internal Server Error</body></html>`)},
		{name: "502 empty body",
			handler: reply(502, "", ``)},
		{name: "200 truncated JSON", bad: true, leaks: []string{"leaked_at_value"},
			handler: reply(200, jsonType, `{"access_token":"leaked_at_value`)},
		{name: "200 HTML (captive portal)", bad: true,
			handler: reply(200, "text/html", `<html>log in to the wifi</html>`)},
		{name: "200 without access_token", bad: true, leaks: []string{"leaked_rt_new"},
			handler: reply(200, jsonType, `{"token_type":"Bearer","refresh_token":"leaked_rt_new"}`)},
		{name: "200 empty object", bad: true,
			handler: reply(200, jsonType, `{}`)},
		{name: "hangs past the client timeout", timeout: 200 * time.Millisecond,
			handler: hang},
		{name: "connection reset before the response",
			handler: hijack(reset)},
		// A body cut off by the network is an outage, not a bad answer.
		{name: "connection reset mid-body", leaks: []string{"leaked_at_value"},
			handler: hijack(func(c net.Conn) {
				fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"access_token\":\"leaked_at_value")
				reset(c)
			})},
		{name: "connection closed mid-body", leaks: []string{"leaked_at_value"},
			handler: hijack(func(c net.Conn) {
				fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"access_token\":\"leaked_at_value")
				c.Close()
			})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, hits := newTokenServer(t, tc.handler)
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 5 * time.Second
			}
			p := newOAuthProvider(t, srv, &http.Client{Timeout: timeout}, nil)
			start := time.Now()
			g, err := p.Refresh(context.Background(), testRefresh)
			took := time.Since(start)
			if err == nil {
				t.Fatalf("Refresh = %+v, nil; want an error", g)
			}
			t.Logf("err = %v", err)
			// One request per refresh: x/oauth2's auth-style probe would
			// send the refresh token a second time (after a timeout, to a
			// server that may have rotated it already) and double the
			// time an outage takes.
			if n := hits.Load(); n != 1 {
				t.Errorf("the token endpoint got %d requests; want 1", n)
			}
			if got := errors.Is(err, provider.ErrRevoked); got != tc.revoked {
				t.Errorf("errors.Is(%q, ErrRevoked) = %v; want %v", err, got, tc.revoked)
			}
			if got := errors.Is(err, provider.ErrUnavailable); got == tc.revoked {
				t.Errorf("errors.Is(%q, ErrUnavailable) = %v; want %v", err, got, !tc.revoked)
			}
			if got := errors.Is(err, provider.ErrBadResponse); got != tc.bad {
				t.Errorf("errors.Is(%q, ErrBadResponse) = %v; want %v", err, got, tc.bad)
			}
			if got := provider.RetryAfterOf(err); got != tc.retry {
				t.Errorf("RetryAfterOf = %v; want %v", got, tc.retry)
			}
			if !strings.HasPrefix(err.Error(), "provider: refresh: ") {
				t.Errorf("error %q does not start with %q", err, "provider: refresh: ")
			}
			for _, s := range append([]string{testRefresh, testClientSecret}, tc.leaks...) {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q contains the secret %q", err, s)
				}
			}
			if tc.timeout > 0 && took > 10*tc.timeout {
				t.Errorf("Refresh took %v with a client timeout of %v", took, tc.timeout)
			}
		})
	}
}

func TestRefreshRetryAfterDate(t *testing.T) {
	at := time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat)
	srv, _ := newTokenServer(t, reply(503, "text/plain", "down", "Retry-After", at))
	p := newOAuthProvider(t, srv, nil, nil)
	_, err := p.Refresh(context.Background(), testRefresh)
	if !errors.Is(err, provider.ErrUnavailable) {
		t.Fatalf("err = %v; want ErrUnavailable", err)
	}
	if got := provider.RetryAfterOf(err); got < 28*time.Second || got > 30*time.Second {
		t.Errorf("RetryAfterOf = %v; want about 30s", got)
	}
	if got := provider.RetryAfterOf(errors.New("other")); got != 0 {
		t.Errorf("RetryAfterOf(a foreign error) = %v; want 0", got)
	}
}

func TestRefreshContextCancelled(t *testing.T) {
	srv, _ := newTokenServer(t, hang)
	p := newOAuthProvider(t, srv, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := p.Refresh(ctx, testRefresh)
	if !errors.Is(err, provider.ErrUnavailable) || errors.Is(err, provider.ErrRevoked) {
		t.Fatalf("err = %v; want ErrUnavailable, not ErrRevoked", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v; want it to wrap context.DeadlineExceeded", err)
	}
}

func TestRefreshConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p, err := provider.New(context.Background(), provider.Config{
		Endpoints: provider.Endpoints{AuthURL: "http://" + addr + "/authorize", TokenURL: "http://" + addr + "/token"},
		ClientID:  testClientID, ClientSecret: testClientSecret, RedirectURL: "http://127.0.0.1:1/cb",
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Refresh(context.Background(), testRefresh)
	if !errors.Is(err, provider.ErrUnavailable) || errors.Is(err, provider.ErrRevoked) || errors.Is(err, provider.ErrBadResponse) {
		t.Fatalf("err = %v; want ErrUnavailable only", err)
	}
}
