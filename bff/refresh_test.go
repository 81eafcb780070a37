package bff

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/devprovider"
	"github.com/tetherauth/tether/bff/vault/redistest"
	"github.com/tetherauth/tether/shared/wire"
)

// stormOnce sends n concurrent /bff/token calls for one session, spread
// over every replica, and checks that the provider refreshed exactly once
// and that every caller got the same new token.
func stormOnce(t *testing.T, s *stack, b *browser, n int, req func() *wire.TokenRequest, old string) {
	t.Helper()
	before := s.dev.Stats()
	var wg sync.WaitGroup
	got := make([]tokenResult, n)
	for i := range n {
		wg.Go(func() { got[i] = b.token(s.urls[i%len(s.urls)], req()) })
	}
	wg.Wait()
	after := s.dev.Stats()
	if d := after.RefreshToken - before.RefreshToken; d != 1 {
		t.Errorf("provider refreshes = %d; want exactly 1", d)
	}
	if after.RefreshReuse != 0 {
		t.Errorf("refresh token reuse = %d; want 0", after.RefreshReuse)
	}
	tokens := map[string]int{}
	for _, r := range got {
		if r.status != http.StatusOK {
			t.Fatalf("a caller got %d %+v", r.status, r.err)
		}
		tokens[r.tok.AccessToken]++
	}
	if len(tokens) != 1 {
		t.Fatalf("callers got %d different tokens; want 1", len(tokens))
	}
	for tok := range tokens {
		if tok == old {
			t.Fatal("callers got the old token")
		}
		if code := s.callAPI(tok); code != 200 {
			t.Errorf("API with the new token = %d", code)
		}
	}
}

// TestRefreshStormAcrossReplicas: 3 BFFs on one Redis, 300 concurrent
// calls for one session, on the embedded Redis and on a real redis-server.
func TestRefreshStormAcrossReplicas(t *testing.T) {
	redisURLs := map[string]func(t *testing.T) string{
		"miniredis":    func(*testing.T) string { return "" },
		"redis-server": func(t *testing.T) string { return "redis://" + redistest.Start(t).Addr },
	}
	for name, redisURL := range redisURLs {
		t.Run(name, func(t *testing.T) {
			// A caller whose token is still valid waits at most half the
			// provider timeout for another replica's refresh, then keeps
			// its token; 10 s keeps a loaded machine from turning that rule
			// into a second token here.
			s := newStack(t, stackOptions{replicas: 3, redisURL: redisURL(t),
				tune: func(c *Config) { c.ProviderTimeout = 10 * time.Second }})
			b := s.newBrowser()
			b.login(s.urls[0], "/")
			old := b.mustToken(s.urls[1], nil)

			t.Run("after expire, force with the rejected token", func(t *testing.T) {
				s.expire()
				stormOnce(t, s, b, 300, func() *wire.TokenRequest {
					return &wire.TokenRequest{Force: true, Rejected: old.AccessToken}
				}, old.AccessToken)
			})
			// Several lifetimes in a row: each one costs exactly one refresh.
			for round := range 3 {
				cur := b.mustToken(s.urls[2], nil)
				t.Run(fmt.Sprintf("inside the buffer, round %d", round), func(t *testing.T) {
					s.clock.Advance(45 * time.Second)
					stormOnce(t, s, b, 300, func() *wire.TokenRequest { return nil }, cur.AccessToken)
				})
			}
		})
	}
}

// TestOutageModes: for every way the token endpoint can fail, nothing is
// deleted, a still-valid token keeps being served, an expired one gets
// 503 + Retry-After, and once the outage ends the same session refreshes.
func TestOutageModes(t *testing.T) {
	modes := []devprovider.OutageMode{
		devprovider.Outage503, devprovider.Outage500, devprovider.OutageTimeout,
		devprovider.OutageMalformed, devprovider.OutageReset, devprovider.OutageError200,
	}
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			s := newStack(t, stackOptions{tune: func(c *Config) { c.ProviderTimeout = 300 * time.Millisecond }})
			b := s.newBrowser()
			b.login(s.urls[0], "/")
			sid := s.sid(b)
			first := b.mustToken(s.urls[0], nil)
			s.outage(mode, 0)

			// Inside the buffer but not expired: the current token, flagged.
			s.clock.Advance(40 * time.Second)
			r := b.token(s.urls[0], nil)
			if r.status != 200 || r.tok.AccessToken != first.AccessToken || !r.tok.Degraded || r.tok.RetryAfter < 1 {
				t.Fatalf("valid token during outage: %d %+v %+v; want 200, the same token, degraded, retry_after", r.status, r.tok, r.err)
			}
			// Past expiry: 503 with Retry-After, never reconnect_required.
			s.clock.Advance(25 * time.Second)
			r = b.token(s.urls[0], nil)
			if r.status != 503 || r.err.Error != wire.ErrProviderUnavailable {
				t.Fatalf("expired token during outage: %d %+v; want 503 provider_unavailable", r.status, r.err)
			}
			if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
				t.Errorf("Retry-After = %q; want whole seconds", r.header.Get("Retry-After"))
			}
			if !s.hasRecord(sid) {
				t.Fatal("the outage deleted the session")
			}
			// The outage ends; after the back-off the same session refreshes.
			s.outage(devprovider.OutageNone, 0)
			s.clock.Advance(5 * time.Second)
			fresh := b.mustToken(s.urls[0], nil)
			if fresh.AccessToken == first.AccessToken || fresh.Degraded {
				t.Fatalf("after the outage: %+v; want a new token", fresh)
			}
			if code := s.callAPI(fresh.AccessToken); code != 200 {
				t.Errorf("API after recovery = %d", code)
			}
			s.assertNoSecrets(b)
		})
	}
}

// TestOutageBackoff: while the provider is down, repeated token calls do
// not hammer it: one attempt per Retry-After window per process.
func TestOutageBackoff(t *testing.T) {
	s := newStack(t, stackOptions{tune: func(c *Config) { c.RetryAfter = 10 * time.Second }})
	b := s.newBrowser()
	b.login(s.urls[0], "/")
	b.mustToken(s.urls[0], nil)
	s.outage(devprovider.Outage500, 0)
	s.clock.Advance(40 * time.Second)
	for i := range 20 {
		if r := b.token(s.urls[0], nil); r.status != 200 || !r.tok.Degraded {
			t.Fatalf("call %d: %d %+v", i, r.status, r.err)
		}
	}
	if hits := s.dev.Stats().OutageHits; hits != 1 {
		t.Errorf("provider was tried %d times in one back-off window; want 1", hits)
	}
}

// TestSlowProviderCancelledClient: the caller gives up while the provider
// is rotating the token; the rotated token must still be stored.
func TestSlowProviderCancelledClient(t *testing.T) {
	s := newStack(t, stackOptions{})
	b := s.newBrowser()
	b.login(s.urls[0], "/")
	old := b.mustToken(s.urls[0], nil)
	s.outage(devprovider.OutageSlow, 600*time.Millisecond)
	s.clock.Advance(40 * time.Second)

	impatient := *b.c
	impatient.Timeout = 100 * time.Millisecond
	r, _ := http.NewRequest(http.MethodPost, s.urls[0]+wire.PathToken, nil)
	r.Header.Set(wire.HeaderCSRF, "1")
	if resp, err := impatient.Do(r); err == nil {
		resp.Body.Close()
		t.Fatal("the impatient client was answered; the provider should be slow")
	}
	time.Sleep(900 * time.Millisecond) // the detached refresh finishes
	s.outage(devprovider.OutageNone, 0)
	tok := b.mustToken(s.urls[0], nil)
	if tok.AccessToken == old.AccessToken {
		t.Fatal("the refresh that the client abandoned was not stored")
	}
	st := s.dev.Stats()
	if st.RefreshToken != 1 || st.RefreshReuse != 0 {
		t.Errorf("stats %+v; want 1 refresh and no reuse", st)
	}
	if code := s.callAPI(tok.AccessToken); code != 200 {
		t.Errorf("API = %d", code)
	}
}

// TestProviderSlowerThanTimeout: the provider answers after the BFF's
// timeout. Callers are answered on time with the current token, and the
// late answer, which has rotated the refresh token, is still stored: the
// session survives and nothing is reused.
func TestProviderSlowerThanTimeout(t *testing.T) {
	s := newStack(t, stackOptions{tune: func(c *Config) { c.ProviderTimeout = 300 * time.Millisecond }})
	b := s.newBrowser()
	b.login(s.urls[0], "/")
	old := b.mustToken(s.urls[0], nil)
	s.outage(devprovider.OutageSlow, 600*time.Millisecond)
	s.clock.Advance(40 * time.Second) // inside the buffer, not expired

	t0 := time.Now()
	r := b.token(s.urls[0], nil)
	if waited := time.Since(t0); waited > 550*time.Millisecond {
		t.Errorf("the caller waited %v for a slow provider; want about the 300 ms timeout", waited)
	}
	if r.status != 200 || r.tok.AccessToken != old.AccessToken || !r.tok.Degraded {
		t.Fatalf("during the slow refresh: %d %+v; want the current token, degraded", r.status, r.tok)
	}
	time.Sleep(700 * time.Millisecond) // the late answer arrives and is stored
	s.outage(devprovider.OutageNone, 0)
	s.clock.Advance(2 * time.Second) // past the back-off
	fresh := b.mustToken(s.urls[0], nil)
	if fresh.AccessToken == old.AccessToken {
		t.Fatal("the slow provider's rotation was thrown away")
	}
	if st := s.dev.Stats(); st.RefreshToken != 1 || st.RefreshReuse != 0 {
		t.Errorf("stats %+v; want exactly 1 refresh and 0 reuse", st)
	}
	if code := s.callAPI(fresh.AccessToken); code != 200 {
		t.Errorf("API with the late token = %d", code)
	}
}
