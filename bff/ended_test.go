package bff

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/devprovider"
	"github.com/tetherauth/tether/bff/vault/redistest"
	"github.com/tetherauth/tether/shared/wire"
)

// steal returns another browser holding a copy of b's cookies: a thief,
// or a request that left before b's cookie changed.
func (s *stack) steal(b *browser) *browser {
	thief := s.newBrowser()
	u := mustURL(s.urls[0])
	thief.c.Jar.SetCookies(u, b.c.Jar.Cookies(u))
	return thief
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLogoutWinsOverRefreshInFlight: a stolen cookie forces a refresh at a
// slow provider; the victim logs out (204) while the provider holds the
// refresh; then the provider answers. The logout must stick: the thief
// gets no token, the session stays gone, on every replica. The provider's
// revocation endpoint fails here (or a provider has none), so nothing but
// the BFF stands between the late refresh and the session.
func TestLogoutWinsOverRefreshInFlight(t *testing.T) {
	cases := []struct {
		name     string
		replicas int
		redis    func(t *testing.T) string
	}{
		{"one replica", 1, func(*testing.T) string { return "" }},
		{"three replicas on redis-server", 3, func(t *testing.T) string { return "redis://" + redistest.Start(t).Addr }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newStack(t, stackOptions{replicas: c.replicas, redisURL: c.redis(t), tune: func(cfg *Config) {
				cfg.RevokeURL = "http://127.0.0.1:1/revoke"
				cfg.ProviderTimeout = 5 * time.Second // the thieves wait for the provider
			}})
			url := func(i int) string { return s.urls[i%len(s.urls)] }
			const n = 6
			victims, thieves := make([]*browser, n), make([]*browser, n)
			sids, tokens := make([]string, n), make([]string, n)
			for i := range n {
				victims[i] = s.newBrowser()
				victims[i].login(url(i), "/")
				sids[i], tokens[i] = s.sid(victims[i]), victims[i].mustToken(url(i), nil).AccessToken
				thieves[i] = s.steal(victims[i])
			}
			s.clock.Advance(10 * time.Second) // the tokens are old enough for a forced refresh
			s.outage(devprovider.OutageSlow, 20*time.Second)

			// Each thief forces a refresh; the provider holds them all.
			before := s.dev.Stats()
			inflight := make([]tokenResult, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					inflight[i] = thieves[i].token(url(i+1), &wire.TokenRequest{Force: true, Rejected: tokens[i]})
				})
			}
			waitFor(t, "every refresh to reach the provider", func() bool { return s.dev.Stats().OutageHits-before.OutageHits >= n })

			// The victims log out, on yet another replica.
			for i := range n {
				if code := victims[i].jsonCall(http.MethodPost, url(i+2)+wire.PathLogout, nil); code != http.StatusNoContent {
					t.Fatalf("victim %d: logout = %d; want 204", i, code)
				}
			}
			// The provider answers every refresh now, successfully.
			s.outage(devprovider.OutageNone, 0)
			wg.Wait()
			if got := s.dev.Stats().RefreshToken - before.RefreshToken; got != n {
				t.Fatalf("provider refreshes = %d; want %d (one per thief)", got, n)
			}

			resurrected := 0
			for i := range n {
				back := inflight[i].status == http.StatusOK || s.hasRecord(sids[i])
				for r := range s.urls {
					if res := thieves[i].token(url(r), nil); res.status == http.StatusOK {
						back = true
					} else if res.status != 401 || res.err.Reason != wire.ReasonSignedOut {
						t.Errorf("thief %d on replica %d after the logout: %d %+v; want 401 signed_out", i, r, res.status, res.err)
					}
				}
				if back {
					resurrected++
					t.Errorf("session %d: the refresh in flight brought it back (its answer: %d %+v)", i, inflight[i].status, inflight[i].err)
				} else if inflight[i].status != 401 || inflight[i].err.Reason != wire.ReasonSignedOut {
					t.Errorf("thief %d, the refresh in flight: %d %+v; want 401 signed_out", i, inflight[i].status, inflight[i].err)
				}
			}
			t.Logf("%d of %d refreshes in flight at logout brought their session back", resurrected, n)
			for _, v := range victims {
				s.assertNoSecrets(v)
			}
		})
	}
}

// TestEveryTabHearsWhy: once a session has ended, every tab (the same
// browser, its cookie updated or not yet) and every replica answers
// reconnect_required with the reason, not no_session, until the user
// signs in again. Revocation, logout and the refresh token's end.
func TestEveryTabHearsWhy(t *testing.T) {
	type ending struct {
		reason string
		end    func(s *stack, tab *browser, tok string)
	}
	endings := []ending{
		{wire.ReasonRevoked, func(s *stack, tab *browser, tok string) {
			s.revoke("alice")
			r := tab.token(s.urls[0], &wire.TokenRequest{Force: true, Rejected: tok})
			if r.status != 401 || r.err.Reason != wire.ReasonRevoked {
				s.t.Fatalf("the first tab after the revocation: %d %+v", r.status, r.err)
			}
		}},
		{wire.ReasonSignedOut, func(s *stack, tab *browser, tok string) {
			if code := tab.jsonCall(http.MethodPost, s.urls[0]+wire.PathLogout, nil); code != http.StatusNoContent {
				s.t.Fatalf("logout = %d", code)
			}
		}},
		{wire.ReasonExpired, func(s *stack, tab *browser, tok string) {
			s.clock.Advance(25 * time.Hour) // past the dev provider's refresh token lifetime
			r := tab.token(s.urls[0], nil)
			if r.status != 401 || r.err.Reason != wire.ReasonExpired {
				s.t.Fatalf("the first tab after the refresh token's end: %d %+v", r.status, r.err)
			}
		}},
	}
	for _, e := range endings {
		t.Run(e.reason, func(t *testing.T) {
			s := newStack(t, stackOptions{replicas: 3})
			tab := s.newBrowser() // every tab of a browser shares its cookie
			tab.login(s.urls[0], "/")
			tok := tab.mustToken(s.urls[0], nil).AccessToken
			late := s.steal(tab) // a tab whose request left with the old cookie
			s.clock.Advance(10 * time.Second)

			e.end(s, tab, tok)
			if s.sid(tab) != "" {
				t.Error("the cookie still names the session")
			}
			before := s.dev.Stats().RefreshToken
			for round := range 2 {
				for i, u := range s.urls {
					for name, b := range map[string]*browser{"another tab": tab, "a late request": late} {
						r := b.token(u, nil)
						if r.status != 401 || r.err.Error != wire.ErrReconnectRequired || r.err.Reason != e.reason {
							t.Errorf("round %d, %s on replica %d: %d %+v; want 401 reconnect_required/%s", round, name, i, r.status, r.err, e.reason)
						}
					}
				}
			}
			if after := s.dev.Stats().RefreshToken; after != before {
				t.Errorf("the provider was asked %d more times after the end; want 0", after-before)
			}
			// Signing in again starts afresh.
			tab.login(s.urls[1], "/")
			if r := tab.token(s.urls[2], nil); r.status != 200 {
				t.Fatalf("after signing in again: %d %+v", r.status, r.err)
			}
			s.assertNoSecrets(tab)
		})
	}
}
