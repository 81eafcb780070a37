package provider_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/provider"
	"github.com/tetherauth/tether/internal/logbuf"
)

// TestTokenLifetimes: what each odd expires_in and refresh_token_expires_in
// becomes. Zero, negative and unreadable lifetimes are unknown (the token
// is used until an API rejects it), never "already expired", which would
// refresh on every call; more than MaxLifetime is capped. Each oddity is
// logged once per Provider, however many responses carry it.
func TestTokenLifetimes(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	const form = "application/x-www-form-urlencoded"
	cases := []struct {
		name        string
		contentType string // default application/json
		body        string
		expiry      time.Duration // from now; 0: unknown (zero Expiry)
		refresh     time.Duration // from now; 0: unknown
		log         string        // logged once, "" for nothing
	}{
		{name: "number", body: `{"access_token":"at","expires_in":60}`, expiry: time.Minute},
		{name: "string", body: `{"access_token":"at","expires_in":"90"}`, expiry: 90 * time.Second},
		{name: "string with spaces", body: `{"access_token":"at","expires_in":" 90 "}`, expiry: 90 * time.Second},
		{name: "fraction", body: `{"access_token":"at","expires_in":3599.9}`, expiry: 3599 * time.Second},
		{name: "exponent", body: `{"access_token":"at","expires_in":1e3}`, expiry: 1000 * time.Second},
		{name: "absent", body: `{"access_token":"at"}`, log: "has no expires_in"},
		{name: "null", body: `{"access_token":"at","expires_in":null}`, log: "has no expires_in"},
		{name: "empty string", body: `{"access_token":"at","expires_in":""}`, log: "has no expires_in"},
		{name: "zero", body: `{"access_token":"at","expires_in":0}`, log: "zero or negative"},
		{name: "negative", body: `{"access_token":"at","expires_in":-60}`, log: "zero or negative"},
		{name: "negative string", body: `{"access_token":"at","expires_in":"-1"}`, log: "zero or negative"},
		{name: "half a second", body: `{"access_token":"at","expires_in":0.5}`, log: "zero or negative"},
		{name: "words", body: `{"access_token":"at","expires_in":"one hour"}`, log: "not a number"},
		{name: "boolean", body: `{"access_token":"at","expires_in":true}`, log: "not a number"},
		{name: "beyond float64", body: `{"access_token":"at","expires_in":1e400}`, log: "not a number"},
		{name: "a century", body: `{"access_token":"at","expires_in":3155760000}`, expiry: provider.MaxLifetime, log: "capped"},
		// x/oauth2 rejects the whole response for this one.
		{name: "beyond int64", body: `{"access_token":"at","expires_in":99999999999999999999}`, expiry: provider.MaxLifetime, log: "capped"},
		{name: "form: absent (GitHub OAuth App)", contentType: form, body: "access_token=at&scope=&token_type=bearer", log: "has no expires_in"},
		{name: "form: number", contentType: form, body: "access_token=at&expires_in=28800", expiry: 8 * time.Hour},
		{name: "form: negative", contentType: form, body: "access_token=at&expires_in=-5", log: "zero or negative"},
		{name: "refresh: GitHub's six months", body: `{"access_token":"at","expires_in":60,"refresh_token_expires_in":15811200}`,
			expiry: time.Minute, refresh: 15811200 * time.Second},
		{name: "refresh: string", body: `{"access_token":"at","expires_in":60,"refresh_token_expires_in":"600"}`,
			expiry: time.Minute, refresh: 10 * time.Minute},
		{name: "refresh: zero", body: `{"access_token":"at","expires_in":60,"refresh_token_expires_in":0}`,
			expiry: time.Minute, log: "refresh_token_expires_in is zero or negative"},
		{name: "refresh: words", body: `{"access_token":"at","expires_in":60,"refresh_token_expires_in":"never"}`,
			expiry: time.Minute, log: "refresh_token_expires_in is not a number"},
		{name: "refresh: huge", body: `{"access_token":"at","expires_in":60,"refresh_token_expires_in":315576000000}`,
			expiry: time.Minute, refresh: provider.MaxLifetime, log: "refresh_token_expires_in is over a year"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ct := tc.contentType
			if ct == "" {
				ct = "application/json"
			}
			srv, _ := newTokenServer(t, reply(200, ct, tc.body))
			logs := &logbuf.Buffer{}
			p, err := provider.New(context.Background(), provider.Config{
				Endpoints: provider.Endpoints{AuthURL: srv.URL + "/authorize", TokenURL: srv.URL + "/token"},
				ClientID:  testClientID, ClientSecret: testClientSecret, RedirectURL: "http://127.0.0.1:1/cb",
				Now: func() time.Time { return now }, Logger: slog.New(slog.NewTextHandler(logs, nil)),
			})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				g, err := p.Refresh(context.Background(), testRefresh)
				if err != nil {
					t.Fatalf("Refresh %d: %v", i, err)
				}
				var wantExpiry, wantRefresh time.Time
				if tc.expiry > 0 {
					wantExpiry = now.Add(tc.expiry)
				}
				if tc.refresh > 0 {
					wantRefresh = now.Add(tc.refresh)
				}
				if !g.Expiry.Equal(wantExpiry) || !g.RefreshExpiry.Equal(wantRefresh) {
					t.Fatalf("Expiry, RefreshExpiry = %v, %v; want %v, %v", g.Expiry, g.RefreshExpiry, wantExpiry, wantRefresh)
				}
			}
			out := logs.String()
			lines := strings.Count(out, "\n")
			switch {
			case tc.log == "" && lines != 0:
				t.Errorf("logged %q; want nothing", out)
			case tc.log != "" && (lines != 1 || !strings.Contains(out, tc.log)):
				t.Errorf("logged %q after 3 refreshes; want one line with %q", out, tc.log)
			}
		})
	}
}

// Each Provider logs "no expires_in" once, even from concurrent refreshes.
func TestNoExpiresInLoggedOnce(t *testing.T) {
	srv, hits := newTokenServer(t, reply(200, "application/json", `{"access_token":"at","token_type":"bearer"}`))
	logs := &logbuf.Buffer{}
	p, err := provider.New(context.Background(), provider.Config{
		Endpoints: provider.Endpoints{AuthURL: srv.URL + "/a", TokenURL: srv.URL + "/t"}, ClientID: testClientID, RedirectURL: "http://127.0.0.1:1/cb",
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if g, err := p.Refresh(context.Background(), testRefresh); err != nil || !g.Expiry.IsZero() {
				t.Errorf("Refresh = %+v, %v; want a zero Expiry", g, err)
			}
		})
	}
	wg.Wait()
	if n := strings.Count(logs.String(), "no expires_in"); n != 1 || hits.Load() != 20 {
		t.Errorf("%d refreshes logged %d times: %q; want once", hits.Load(), n, logs.String())
	}
}

// Every token request asks for JSON (GitHub answers a form otherwise).
func TestTokenRequestAcceptsJSON(t *testing.T) {
	srv, _ := newTokenServer(t, func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("Accept"); got != "application/json" {
			t.Errorf("Accept = %q; want application/json", got)
		}
		reply(200, "application/json", `{"access_token":"at","expires_in":60}`)(w, r)
	})
	p := newOAuthProvider(t, srv, nil, nil)
	if _, err := p.Refresh(context.Background(), testRefresh); err != nil {
		t.Fatal(err)
	}
}
