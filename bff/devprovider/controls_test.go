package devprovider_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tetherauth/tether/bff/devprovider"
)

// Every Controls method against a running provider: what it changes is
// what the in-process Provider reports, and what it returns is what the
// provider answered.
func TestControls(t *testing.T) {
	e := newEnv(t, devprovider.Config{AutoApprove: true})
	c := &devprovider.Controls{URL: e.srv.URL, Client: e.srv.Client()}
	ctx := t.Context()
	alice := e.login()
	e.login(oauth2.SetAuthURLParam("login_hint", "bob"))

	st, err := c.Stats(ctx)
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if st != e.p.Stats() || st.AuthorizationCode != 2 || st.CodesIssued != 2 {
		t.Errorf("Stats = %+v; want the provider's %+v, with 2 codes exchanged", st, e.p.Stats())
	}

	if n, err := c.Expire(ctx, "bob"); err != nil || n != 1 {
		t.Errorf("Expire(bob) = %d, %v; want 1 token", n, err)
	}
	if res, _ := e.me(alice.AccessToken); res.StatusCode != http.StatusOK {
		t.Errorf("alice's token after expiring bob's: GET /api/me = %d; want 200", res.StatusCode)
	}
	if n, err := c.Expire(ctx, ""); err != nil || n != 1 {
		t.Errorf("Expire(\"\") = %d, %v; want alice's 1 token", n, err)
	}
	if res, _ := e.me(alice.AccessToken); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("alice's token after Expire: GET /api/me = %d; want 401", res.StatusCode)
	}

	until, err := c.Outage(ctx, devprovider.Outage503, 90*time.Second, 0)
	if want := e.clk.Now().Add(90 * time.Second); err != nil || !until.Equal(want) {
		t.Errorf("Outage(503, 90s) = %v, %v; want %v", until, err, want)
	}
	_, err = e.refresh(ctx, alice.RefreshToken)
	wantGrantError(t, err, http.StatusServiceUnavailable, "temporarily_unavailable")
	if until, err := c.Outage(ctx, devprovider.OutageSlow, 0, 300*time.Millisecond); err != nil || !until.IsZero() {
		t.Errorf("Outage(slow) = %v, %v; want an open-ended outage", until, err)
	}
	start := time.Now()
	got, err := e.refresh(ctx, alice.RefreshToken)
	if took := time.Since(start); err != nil || took < 300*time.Millisecond {
		t.Errorf("refresh in mode slow, delay 300ms: %v after %v; want success after the delay", err, took)
	}
	if _, err := c.Outage(ctx, devprovider.OutageNone, 0, 0); err != nil {
		t.Errorf("Outage(none): %v", err)
	}
	if got, err = e.refresh(ctx, got.RefreshToken); err != nil {
		t.Errorf("refresh after Outage(none): %v", err)
	}

	if n, err := c.Revoke(ctx, "alice"); err != nil || n != 1 {
		t.Errorf("Revoke(alice) = %d, %v; want 1 grant", n, err)
	}
	_, err = e.refresh(ctx, got.RefreshToken)
	wantGrantError(t, err, http.StatusBadRequest, "invalid_grant")

	if err := c.ResetStats(ctx); err != nil {
		t.Errorf("ResetStats: %v", err)
	}
	if st := e.p.Stats(); st != (devprovider.Stats{}) {
		t.Errorf("after ResetStats the provider counts %+v; want zeros", st)
	}
}

// A refused request is an error that names the endpoint and carries the
// provider's reason; so is a provider that is not there.
func TestControlsErrors(t *testing.T) {
	e := newEnv(t, devprovider.Config{})
	c := &devprovider.Controls{URL: e.srv.URL}
	for name, call := range map[string]func() error{
		"revoke carol":  func() error { _, err := c.Revoke(t.Context(), "carol"); return err },
		"outage gone":   func() error { _, err := c.Outage(t.Context(), "gone", 0, 0); return err },
		"expire nobody": func() error { _, err := c.Expire(t.Context(), "nobody"); return err },
	} {
		err := call()
		if err == nil || !strings.Contains(err.Error(), "/control/") || !strings.Contains(err.Error(), "400 invalid_request") {
			t.Errorf("%s: err = %v; want 400 invalid_request naming the endpoint", name, err)
		}
	}

	gone := httptest.NewServer(nil)
	gone.Close()
	c = &devprovider.Controls{URL: gone.URL}
	if _, err := c.Stats(t.Context()); err == nil || !strings.Contains(err.Error(), "GET /control/stats") {
		t.Errorf("Stats from a closed server: err = %v; want an error naming GET /control/stats", err)
	}
}
