package client

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tetherauth/tether/shared/wire"
)

// TestOnTokenFollowsTheToken: every change of the usable token reaches
// OnToken, before the waiters wake and before the events.
func TestOnTokenFollowsTheToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now().UnixMilli()
		src := &fakeSource{reply: issuing(600, 60)}
		c, rec := newClient(t, src)
		c.Prefetch()
		if p := rec.last(); p != (push{}) {
			t.Fatalf("a push %+v before any token", p)
		}
		mustToken(t, c, "tok-1")
		// No synctest.Wait: the push came before Token returned.
		if p, want := rec.last(), (push{"tok-1", t0 + 595*Second}); p != want {
			t.Fatalf("push %+v; want %+v (expiry less 5s of skew)", p, want)
		}
		// The refresh: while it is out, the copy is withdrawn (new calls
		// wait for its answer in Token).
		src.set(nil, make(chan struct{}))
		time.Sleep(541 * time.Second)
		synctest.Wait()
		if p := rec.last(); p != (push{}) {
			t.Fatalf("push %+v during the refresh; want the copy withdrawn", p)
		}
		close(src.hold)
		src.set(nil, nil)
		synctest.Wait()
		if p, want := rec.last(), (push{"tok-2", t0 + (541+595)*Second}); p != want {
			t.Fatalf("push after the refresh %+v; want %+v", p, want)
		}

		// A 401: the refused token is withdrawn before the forced request ends.
		src.set(nil, make(chan struct{}))
		got := make(chan string)
		go func() {
			tok, _ := c.Recover("tok-2")
			got <- tok
		}()
		synctest.Wait()
		if p := rec.last(); p != (push{}) {
			t.Fatalf("push %+v while recovering from a 401; want the token withdrawn", p)
		}
		wantCached(t, c, "")
		close(src.hold)
		if tok := <-got; tok != "tok-3" {
			t.Fatalf("Recover = %q; want tok-3", tok)
		}
		wantCached(t, c, "tok-3")

		// Another tab refreshes: the copy is withdrawn while it does, then
		// this tab asks for the new token.
		c.News(NewsRefreshing)
		if p := rec.last(); p != (push{}) {
			t.Fatalf("push %+v while another tab refreshes; want the copy withdrawn", p)
		}
		c.News(NewsRefreshed)
		synctest.Wait()
		if p, want := rec.last(), (push{"tok-4", time.Now().UnixMilli() + 595*Second}); p != want {
			t.Fatalf("push after another tab's refresh %+v; want %+v", p, want)
		}
		c.Reset()
		wantCached(t, c, "")
		mustToken(t, c, "tok-5")
		synctest.Wait() // its token event comes after the waiters wake
		c.Logout()
		wantCached(t, c, "")

		want := "set(tok-1) token set() set(tok-2) token set() set(tok-3) recovered token set() set(tok-4) token set() set(tok-5) token set() logout"
		if got := rec.sequence(); got != want {
			t.Errorf("pushes and events:\n got %s\nwant %s", got, want)
		}
	})
}

func TestOnTokenBeforeReconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{reply: issuing(600, 60)}
		c, rec := newClient(t, src)
		mustToken(t, c, "tok-1")
		src.set(failing(errRevoked), nil)
		time.Sleep(541 * time.Second)
		synctest.Wait()
		wantCached(t, c, "")
		c.Reset() // nothing to withdraw: no push
		if got, want := rec.sequence(), "set(tok-1) token set() reconnect"; got != want {
			t.Errorf("pushes and events %q; want %q", got, want)
		}
	})
}

// TestOnTokenUntil: until is when Cached stops handing the token out.
func TestOnTokenUntil(t *testing.T) {
	cases := []struct {
		name  string
		tr    func(now int64) wire.TokenResponse
		until func(now int64) int64
	}{
		{"expires_in, 5s of skew", func(int64) wire.TokenResponse { return tokenN(1, 600, 60) },
			func(now int64) int64 { return now + 595*Second }},
		{"short life, a tenth of skew", func(int64) wire.TokenResponse { return tokenN(1, 20, 0) },
			func(now int64) int64 { return now + 18*Second }},
		{"expires_at only", func(now int64) wire.TokenResponse {
			return wire.TokenResponse{AccessToken: "tok-1", TokenType: wire.TokenTypeBearer, ExpiresAt: now/Second + 100}
		}, func(now int64) int64 { return (now/Second+100)*Second - 5*Second }},
		{"no expiry", func(int64) wire.TokenResponse { return tokenN(1, 0, 0) },
			func(int64) int64 { return Forever }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				now := time.Now().UnixMilli()
				tr := tc.tr(now)
				// No timer fires: the refresh would replace the token before until.
				c, rec := newClient(t, &fakeSource{reply: func(int, call) (wire.TokenResponse, error) { return tr, nil }},
					func(cfg *Config) { cfg.AfterFunc = func(int64, func()) Timer { return stuckTimer{} } })
				mustToken(t, c, "tok-1")
				want := tc.until(now)
				if p := rec.last(); p != (push{"tok-1", want}) {
					t.Fatalf("push %+v; want until %d", p, want)
				}
				if want == Forever {
					return
				}
				time.Sleep(time.Duration(want-now-1) * time.Millisecond)
				wantCached(t, c, "tok-1")
				time.Sleep(time.Millisecond)
				wantCached(t, c, "") // at until, without another push
				if n := len(rec.pushes); n != 1 {
					t.Errorf("%d pushes; want 1", n)
				}
			})
		})
	}
}

// TestOnTokenSameTokenNewExpiry: the BFF answers with the token already
// held but a later expiry: no token event, but a push.
func TestOnTokenSameTokenNewExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{reply: func(int, call) (wire.TokenResponse, error) { return tokenN(1, 600, 60), nil }}
		c, rec := newClient(t, src)
		mustToken(t, c, "tok-1")
		src.set(nil, make(chan struct{}))
		time.Sleep(541 * time.Second)
		synctest.Wait()
		close(src.hold)
		synctest.Wait()
		if p, want := rec.last(), (push{"tok-1", time.Now().UnixMilli() + 595*Second}); p != want {
			t.Fatalf("push %+v; want %+v", p, want)
		}
		if got, want := rec.sequence(), "set(tok-1) token set() set(tok-1)"; got != want {
			t.Errorf("pushes and events %q; want %q", got, want)
		}
	})
}

// TestOnTokenLastPushWins: whatever order concurrent changes come in, the
// last push is the client's state.
func TestOnTokenLastPushWins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{reply: issuing(600, 60)}
		c, rec := newClient(t, src)
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 50 {
					switch (g + i) % 4 {
					case 0:
						c.News([]string{NewsRefreshing, NewsRefreshed, NewsUnchanged}[i%3])
					case 1:
						c.Reset()
					case 2:
						c.Token()
					default:
						c.Recover("tok-" + string(rune('0'+g)))
					}
				}
			})
		}
		wg.Wait()
		synctest.Wait()
		c.mu.Lock()
		tok, until := c.usableUntilLocked()
		if c.hold != nil {
			tok, until = "", 0
		}
		c.mu.Unlock()
		if p := rec.last(); p != (push{tok, until}) {
			t.Fatalf("last push %+v; the client holds %q until %d", p, tok, until)
		}
		if len(rec.pushes) < 2 {
			t.Fatalf("%d pushes for 400 changes", len(rec.pushes))
		}
	})
}

func TestClosedWithdrawsToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, rec := newClient(t, &fakeSource{reply: issuing(600, 60)})
		mustToken(t, c, "tok-1")
		c.Close()
		if tok, ok := c.Cached(api); ok || tok != "" {
			t.Errorf("Cached after Close = %q, %v", tok, ok)
		}
		if p := rec.last(); p != (push{}) {
			t.Errorf("push %+v after Close; want the token withdrawn", p)
		}
	})
}
