package client

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tetherauth/tether/shared/wire"
)

func TestTokenSingleFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{reply: issuing(600, 60), hold: make(chan struct{})}
		c, rec := newClient(t, src)
		wantCached(t, c, "")
		const n = 50
		got := make(chan string, n)
		for range n {
			go func() {
				tok, err := c.Token()
				if err != nil {
					t.Error(err)
				}
				got <- tok
			}()
		}
		synctest.Wait()
		if src.count() != 1 {
			t.Fatalf("%d callers made %d requests; want 1", n, src.count())
		}
		close(src.hold)
		for range n {
			if tok := <-got; tok != "tok-1" {
				t.Fatalf("a caller got %q; want tok-1", tok)
			}
		}
		wantCached(t, c, "tok-1")
		if tok, ok := c.Cached("https://other.example"); ok || tok != "" {
			t.Errorf("Cached(other origin) = %q, %v; want nothing", tok, ok)
		}
		if src.call(0).force {
			t.Error("first request was forced")
		}
		if rec.kinds() != "token" {
			t.Errorf("events %q; want token", rec.kinds())
		}
		if s := c.State(); !s.Connected || s.ExpiresAt != time.Now().Unix()+600 || s.Degraded || s.Reason != "" {
			t.Errorf("State() = %+v", s)
		}
	})
}

func TestCachedDoesNotAllocate(t *testing.T) {
	c, _ := newClient(t, &fakeSource{reply: issuing(600, 60)})
	mustToken(t, c, "tok-1")
	for _, origin := range []string{api, "HTTPS://API.example:443", "https://other.example", "null"} {
		if n := testing.AllocsPerRun(200, func() { c.Cached(origin) }); n != 0 {
			t.Errorf("Cached(%q) allocates %v times", origin, n)
		}
	}
}

func TestRefreshSchedule(t *testing.T) {
	cases := []struct {
		name         string
		life, buffer int64
		rand         float64
		want         time.Duration // after the first token
	}{
		// The refresh point, plus 1s as expires_in is rounded down, plus jitter.
		{"buffer from the BFF", 600, 60, 0, 541 * time.Second},
		{"no buffer: half a short life", 60, 0, 0, 31 * time.Second},
		{"no buffer: five minutes", 3600, 0, 0, 3301 * time.Second},
		{"buffer longer than life", 100, 200, 0, 51 * time.Second},
		{"jitter capped at 10s", 600, 60, 0.999, 541*time.Second + time.Duration(0.999*float64(10*time.Second))},
		{"jitter a quarter of the buffer", 60, 20, 0.5, 41*time.Second + 2500*time.Millisecond},
		{"lag a quarter of a short buffer", 4, 2, 0, 2500 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				src := &fakeSource{reply: issuing(tc.life, tc.buffer)}
				c, rec := newClient(t, src, func(cfg *Config) { cfg.Rand = func() float64 { return tc.rand } })
				mustToken(t, c, "tok-1")
				time.Sleep(tc.want - time.Millisecond)
				synctest.Wait()
				if n := src.count(); n != 1 {
					t.Fatalf("%d requests before the refresh point; want 1", n)
				}
				time.Sleep(time.Millisecond)
				synctest.Wait()
				if n := src.count(); n != 2 {
					t.Fatalf("%d requests at the refresh point; want 2", n)
				}
				wantCached(t, c, "tok-2")
				if rec.kinds() != "token token" {
					t.Errorf("events %q", rec.kinds())
				}
			})
		})
	}
}

func TestNoExpiryNoTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{reply: issuing(0, 0)}
		c, _ := newClient(t, src)
		mustToken(t, c, "tok-1")
		time.Sleep(48 * time.Hour)
		synctest.Wait()
		wantCached(t, c, "tok-1")
		if src.count() != 1 {
			t.Fatalf("%d requests for a token without expiry; want 1", src.count())
		}
	})
}

func TestSameTokenDoesNotSpin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A BFF whose clock runs behind keeps answering with the same token.
		same := tokenN(1, 600, 60)
		src := &fakeSource{reply: func(int, call) (wire.TokenResponse, error) { return same, nil }}
		c, _ := newClient(t, src)
		mustToken(t, c, "tok-1")
		time.Sleep(541 * time.Second)
		synctest.Wait()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if n := src.count(); n < 2 || n > 4 {
			t.Fatalf("%d requests in the 10s after the refresh point; want 1 to 3", n-1)
		}
	})
}

func TestRecoverSharesOneForcedRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{reply: issuing(600, 60)}
		c, rec := newClient(t, src)
		mustToken(t, c, "tok-1")
		src.set(nil, make(chan struct{}))
		const n = 20
		got := make(chan string, n)
		for range n {
			go func() {
				tok, err := c.Recover("tok-1")
				if err != nil {
					t.Error(err)
				}
				got <- tok
			}()
		}
		synctest.Wait()
		if src.count() != 2 {
			t.Fatalf("%d requests; want 2 (one forced)", src.count())
		}
		if c1 := src.call(1); !c1.force || c1.rejected != "tok-1" {
			t.Fatalf("recovery request %+v; want forced, rejecting tok-1", c1)
		}
		wantCached(t, c, "") // the refused token is dropped at once
		close(src.hold)
		for range n {
			if tok := <-got; tok != "tok-2" {
				t.Fatalf("Recover = %q; want tok-2", tok)
			}
		}
		// Late callers still holding tok-1 get tok-2 without a request.
		tok, err := c.Recover("tok-1")
		if err != nil || tok != "tok-2" || src.count() != 2 {
			t.Fatalf("late Recover = %q, %v after %d requests; want tok-2 after 2", tok, err, src.count())
		}
		if rec.kinds() != "token recovered(rejected) token" {
			t.Errorf("events %q", rec.kinds())
		}
	})
}

func TestRecoverWaitsForRequestInProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{reply: issuing(600, 60)}
		c, _ := newClient(t, src)
		mustToken(t, c, "tok-1")
		src.set(nil, make(chan struct{}))
		time.Sleep(541 * time.Second) // the refresh starts and hangs
		synctest.Wait()
		done := make(chan string)
		go func() {
			tok, err := c.Recover("tok-1")
			if err != nil {
				t.Error(err)
			}
			done <- tok
		}()
		synctest.Wait()
		close(src.hold)
		if tok := <-done; tok != "tok-2" {
			t.Fatalf("Recover = %q; want tok-2", tok)
		}
		if n := src.count(); n != 2 {
			t.Fatalf("%d requests; want 2: the refresh already brought a new token", n)
		}
	})
}

func TestRecoverNeverLoops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The BFF keeps handing out the token the API refuses.
		same := tokenN(1, 600, 60)
		src := &fakeSource{reply: func(int, call) (wire.TokenResponse, error) { return same, nil }}
		c, _ := newClient(t, src)
		mustToken(t, c, "tok-1")
		for i := 1; i <= 3; i++ {
			tok, err := c.Recover("tok-1")
			if err != nil || tok != "tok-1" {
				t.Fatalf("Recover = %q, %v", tok, err)
			}
			if n := src.count(); n != 1+i {
				t.Fatalf("after %d Recover calls, %d requests; want %d", i, n, 1+i)
			}
		}
	})
}

func TestReconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{reply: failing(errRevoked), hold: make(chan struct{})}
		c, rec := newClient(t, src)
		const n = 10
		errs := make(chan error, n)
		for range n {
			go func() {
				_, err := c.Token()
				errs <- err
			}()
		}
		synctest.Wait()
		close(src.hold)
		for range n {
			err := <-errs
			var re *ReconnectError
			if !errors.Is(err, ErrReconnect) || !errors.As(err, &re) || re.Reason != wire.ReasonRevoked {
				t.Fatalf("Token() error %v; want a ReconnectError(revoked)", err)
			}
		}
		// Fail fast, without a request, until Reset.
		if _, err := c.Token(); !errors.Is(err, ErrReconnect) {
			t.Errorf("Token() after reconnect: %v", err)
		}
		if _, err := c.Recover("tok-x"); !errors.Is(err, ErrReconnect) {
			t.Errorf("Recover() after reconnect: %v", err)
		}
		c.Prefetch()
		c.Visible()
		c.News(NewsRefreshing)
		c.News(NewsRefreshed)
		time.Sleep(time.Hour)
		synctest.Wait()
		wantCached(t, c, "")
		if src.count() != 1 {
			t.Errorf("%d requests; want 1", src.count())
		}
		if rec.kinds() != "reconnect(revoked)" {
			t.Errorf("events %q; want exactly one reconnect", rec.kinds())
		}
		if s := c.State(); s.Connected || s.Reason != wire.ReasonRevoked {
			t.Errorf("State() = %+v", s)
		}
		c.Reset()
		src.set(issuing(600, 60), nil)
		mustToken(t, c, "tok-2")
		if s := c.State(); !s.Connected || s.Reason != "" {
			t.Errorf("State() after Reset = %+v", s)
		}
	})
}

func TestReconnectAtRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{reply: issuing(600, 60)}
		c, rec := newClient(t, src)
		mustToken(t, c, "tok-1")
		src.set(failing(&ResponseError{Status: 401, Body: wire.ErrorBody{Error: wire.ErrReconnectRequired, Reason: wire.ReasonExpired}}), nil)
		time.Sleep(24 * time.Hour)
		synctest.Wait()
		wantCached(t, c, "") // dropped at once, although it had 60s left
		if src.count() != 2 {
			t.Errorf("%d requests; want 2", src.count())
		}
		if rec.kinds() != "token reconnect(expired)" {
			t.Errorf("events %q", rec.kinds())
		}
	})
}

// stuckTimer is a timer that never fires, as in a throttled hidden tab.
type stuckTimer struct{}

func (stuckTimer) Stop() bool { return true }

func TestVisibleRefreshesAfterThrottling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{reply: issuing(600, 60)}
		c, _ := newClient(t, src, func(cfg *Config) {
			cfg.AfterFunc = func(int64, func()) Timer { return stuckTimer{} }
		})
		mustToken(t, c, "tok-1")
		time.Sleep(500 * time.Second)
		c.Visible() // before the refresh point: nothing to do
		synctest.Wait()
		if src.count() != 1 {
			t.Fatalf("Visible before the refresh point made a request")
		}
		time.Sleep(41 * time.Second)
		c.Visible()
		synctest.Wait()
		if src.count() != 2 {
			t.Fatalf("Visible after the refresh point: %d requests; want 2", src.count())
		}
		wantCached(t, c, "tok-2")
	})
}

func TestLogout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{reply: issuing(600, 60)}
		c, rec := newClient(t, src)
		mustToken(t, c, "tok-1")
		// The flight wakes its callers, then emits "token": let it finish,
		// as it does in a browser (one thread) before the page can act.
		synctest.Wait()
		c.Logout()
		wantCached(t, c, "")
		var re *ReconnectError
		if _, err := c.Token(); !errors.As(err, &re) || re.Reason != ReasonLoggedOut {
			t.Fatalf("Token() after Logout: %v; want ReconnectError(logged_out)", err)
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		if src.count() != 1 {
			t.Errorf("%d requests after Logout; want none", src.count()-1)
		}
		if rec.kinds() != "token logout" {
			t.Errorf("events %q; want token logout", rec.kinds())
		}
		if s := c.State(); s.Connected || s.Reason != ReasonLoggedOut {
			t.Errorf("State() = %+v", s)
		}
	})
}

func TestClosed(t *testing.T) {
	c, _ := newClient(t, &fakeSource{reply: issuing(600, 60)})
	c.Close()
	if _, err := c.Token(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Token() after Close: %v", err)
	}
}

func TestNewNeedsSourceAndClock(t *testing.T) {
	if _, err := New(Config{Source: &fakeSource{}}); err == nil {
		t.Fatal("New without a clock succeeded")
	}
}
