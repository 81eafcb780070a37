package bff

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/devprovider"
	"github.com/tetherauth/tether/shared/wire"
)

func TestFromEnvCircuit(t *testing.T) {
	c, err := FromEnv(minimalEnv.get)
	if err != nil {
		t.Fatal(err)
	}
	if c.ProbeInterval != 2*time.Second || c.RetryAfterMax != 30*time.Second {
		t.Errorf("defaults: probe interval %v, retry-after max %v; want 2s, 30s", c.ProbeInterval, c.RetryAfterMax)
	}
	c, err = FromEnv(minimalEnv.with("TETHER_PROBE_INTERVAL", "500ms", "TETHER_RETRY_AFTER_MAX", "10").get)
	if err != nil {
		t.Fatal(err)
	}
	if c.ProbeInterval != 500*time.Millisecond || c.RetryAfterMax != 10*time.Second {
		t.Errorf("probe interval %v, retry-after max %v; want 500ms, 10s", c.ProbeInterval, c.RetryAfterMax)
	}
	for _, bad := range []struct{ name, value string }{
		{"TETHER_PROBE_INTERVAL", "soon"},
		{"TETHER_PROBE_INTERVAL", "-2s"},
		{"TETHER_RETRY_AFTER_MAX", "1h?"},
		{"TETHER_RETRY_AFTER_MAX", "500ms"},
	} {
		_, err := FromEnv(minimalEnv.with(bad.name, bad.value).get)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Var != bad.name {
			t.Errorf("%s=%s: %v; want a ConfigError naming %s", bad.name, bad.value, err, bad.name)
		}
	}
}

// metricsText returns what h's metrics handler serves.
func metricsText(t *testing.T, h *Handler) string {
	t.Helper()
	w := httptest.NewRecorder()
	h.MetricsHandler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return w.Body.String()
}

func circuitIs(t *testing.T, h *Handler, state string) bool {
	t.Helper()
	m := metricsText(t, h)
	for _, st := range []string{"closed", "open", "half_open"} {
		want := "0"
		if st == state {
			want = "1"
		}
		if !strings.Contains(m, `tether_provider_circuit{state="`+st+`"} `+want+"\n") {
			return false
		}
	}
	return true
}

func statusOf(t *testing.T, u string) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestProviderOutageCircuit: over HTTP, with two replicas: a 503 with
// Retry-After: 3600 opens the provider's circuit for both; the expired
// session's 503 says to come back at the probe (seconds, not an hour);
// /metrics shows the circuit; /readyz stays 200 (the replica still
// serves valid tokens and would not be helped by a restart); the probe
// after the provider's return closes it.
func TestProviderOutageCircuit(t *testing.T) {
	s := newStack(t, stackOptions{replicas: 2})
	b := s.newBrowser()
	b.login(s.urls[0], "/")
	first := b.mustToken(s.urls[0], nil)
	if !circuitIs(t, s.bffs[0], "closed") {
		t.Fatalf("/metrics before any outage lacks the closed circuit:\n%s", metricsText(t, s.bffs[0]))
	}

	if _, err := s.controls().Outage(t.Context(), devprovider.Outage503, time.Hour, 0); err != nil {
		t.Fatal(err)
	}
	s.clock.Advance(65 * time.Second) // the 60 s token has expired
	r := b.token(s.urls[0], nil)
	ra, err := strconv.Atoi(r.header.Get(wire.HeaderRetryAfter))
	if r.status != http.StatusServiceUnavailable || r.err.Error != wire.ErrProviderUnavailable || err != nil || ra < 1 || ra > 2 {
		t.Fatalf("expired token, provider 503 Retry-After 3600: %d %+v Retry-After %q; want 503 provider_unavailable, Retry-After 1-2 (the probe)",
			r.status, r.err, r.header.Get(wire.HeaderRetryAfter))
	}
	if !circuitIs(t, s.bffs[0], "open") {
		t.Errorf("/metrics during the outage does not show the circuit open:\n%s", metricsText(t, s.bffs[0]))
	}
	for i, u := range s.urls {
		if code := statusOf(t, u+"/readyz"); code != http.StatusOK {
			t.Errorf("replica %d /readyz during a provider outage = %d; want 200", i, code)
		}
	}
	// The other replica knows without asking the provider.
	if r := b.token(s.urls[1], nil); r.status != http.StatusServiceUnavailable {
		t.Fatalf("replica 1 during the outage: %d %+v; want 503", r.status, r.err)
	}
	if hits := s.dev.Stats().OutageHits; hits != 1 {
		t.Errorf("provider calls = %d; want 1", hits)
	}
	if !circuitIs(t, s.bffs[1], "open") {
		t.Errorf("replica 1's /metrics does not show the circuit open")
	}

	s.outage(devprovider.OutageNone, 0)
	s.clock.Advance(3 * time.Second) // the probe is due
	fresh := b.mustToken(s.urls[1], nil)
	if fresh.AccessToken == first.AccessToken || fresh.Degraded {
		t.Fatalf("after the provider's return: %+v; want a fresh token", fresh)
	}
	if !circuitIs(t, s.bffs[1], "closed") {
		t.Errorf("/metrics after the probe does not show the circuit closed:\n%s", metricsText(t, s.bffs[1]))
	}
	if st := s.dev.Stats(); st.RefreshToken != 1 || st.RefreshReuse != 0 {
		t.Errorf("stats %+v; want 1 refresh, 0 reuse", st)
	}
}
