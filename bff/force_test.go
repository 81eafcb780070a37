package bff

import (
	"strconv"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/devprovider"
	"github.com/tetherauth/tether/shared/wire"
)

// TestForcedRefreshLoopIsBounded: one session sends 500 forced requests
// in 5 s, each rejecting the token it holds, spread over three replicas.
// The provider sees at most the bucket's burst (3) of refreshes; the
// others get the current token (too soon) or 429 too_many_refreshes with
// a Retry-After, and the session survives.
func TestForcedRefreshLoopIsBounded(t *testing.T) {
	for _, ttl := range []time.Duration{4 * time.Second, 60 * time.Second} {
		t.Run("tokens of "+ttl.String(), func(t *testing.T) {
			s := newStack(t, stackOptions{replicas: 3, devTune: func(c *devprovider.Config) { c.AccessTTL = ttl }})
			b := s.newBrowser()
			b.login(s.urls[0], "/")
			cur := b.mustToken(s.urls[0], nil).AccessToken
			before := s.dev.Stats().RefreshToken

			const calls, span = 500, 5 * time.Second
			counts := map[string]int{}
			for i := range calls {
				s.clock.Advance(span / calls)
				r := b.token(s.urls[i%len(s.urls)], &wire.TokenRequest{Force: true, Rejected: cur})
				switch {
				case r.status == 200:
					if r.tok.AccessToken == cur {
						counts["200 the same token"]++
					} else {
						counts["200 a new token"]++
					}
					cur = r.tok.AccessToken
				case r.status == 429 && r.err.Error == wire.ErrTooManyRefreshes:
					counts["429 too_many_refreshes"]++
					if ra, err := strconv.Atoi(r.header.Get(wire.HeaderRetryAfter)); err != nil || ra < 1 || ra > 10 {
						t.Fatalf("429 with Retry-After %q; want 1 to 10 s", r.header.Get(wire.HeaderRetryAfter))
					}
				default:
					t.Fatalf("call %d: %d %+v", i, r.status, r.err)
				}
			}
			refreshes := s.dev.Stats().RefreshToken - before
			t.Logf("%d forced calls in %v (tokens of %v): %d provider refreshes; answers %v", calls, span, ttl, refreshes, counts)
			if refreshes > 3 || refreshes < 1 {
				t.Errorf("provider refreshes = %d; want 1 to 3 (the bucket's burst)", refreshes)
			}
			if int64(counts["200 a new token"]) != refreshes {
				t.Errorf("%d new tokens handed out for %d refreshes", counts["200 a new token"], refreshes)
			}
			// The session is intact, and a forced refresh works again once
			// the bucket has refilled.
			cur = b.mustToken(s.urls[1], nil).AccessToken
			s.clock.Advance(time.Minute)
			if tok := b.mustToken(s.urls[2], &wire.TokenRequest{Force: true, Rejected: cur}); tok.AccessToken == cur {
				t.Error("a minute later, a forced refresh is still refused")
			}
		})
	}
}

// TestHonestForcedRefreshes: with tokens as short as the demo's (4 s),
// a 401 a second after a forced refresh still gets a new token: one 401,
// one forced refresh, up to the bucket's burst of three in a row.
func TestHonestForcedRefreshes(t *testing.T) {
	s := newStack(t, stackOptions{devTune: func(c *devprovider.Config) { c.AccessTTL = 4 * time.Second }})
	b := s.newBrowser()
	b.login(s.urls[0], "/")
	tok := b.mustToken(s.urls[0], nil).AccessToken
	for i := range 3 {
		s.expire()
		if code := s.callAPI(tok); code != 401 {
			t.Fatalf("round %d: API = %d; want 401", i, code)
		}
		fresh := b.mustToken(s.urls[0], &wire.TokenRequest{Force: true, Rejected: tok})
		if fresh.AccessToken == tok || s.callAPI(fresh.AccessToken) != 200 {
			t.Fatalf("round %d: the forced refresh did not give a working token", i)
		}
		tok = fresh.AccessToken
		s.clock.Advance(1100 * time.Millisecond) // the next 401 a second later
	}
	if st := s.dev.Stats(); st.RefreshToken != 3 {
		t.Errorf("refreshes = %d; want 3, one per 401", st.RefreshToken)
	}
}
