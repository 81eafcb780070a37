package client

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tetherauth/tether/shared/wire"
)

// tabLock is navigator.locks for tests: one lock shared by every tab.
type tabLock chan struct{}

func (l tabLock) WithLock(f func() error) error {
	l <- struct{}{}
	defer func() { <-l }()
	return f()
}

// channel is a BroadcastChannel for tests: Share reaches every other tab.
type channel struct {
	mu   sync.Mutex
	tabs []*Client
}

type tabPeer struct {
	ch   *channel
	self int
}

func (p tabPeer) Share(tr wire.TokenResponse) {
	p.ch.mu.Lock()
	tabs := append([]*Client(nil), p.ch.tabs...)
	p.ch.mu.Unlock()
	for i, c := range tabs {
		if i != p.self {
			c.Offer(tr)
		}
	}
}

var (
	_ Locker = tabLock(nil)
	_ Peers  = tabPeer{}
)

// newTabs opens n tabs on one BFF.
func newTabs(t *testing.T, n int, src TokenSource) []*Client {
	lock, ch := make(tabLock, 1), &channel{}
	for i := range n {
		c, _ := newClient(t, src, func(cfg *Config) {
			cfg.Lock, cfg.Peers = lock, tabPeer{ch: ch, self: i}
		})
		ch.mu.Lock()
		ch.tabs = append(ch.tabs, c)
		ch.mu.Unlock()
	}
	return ch.tabs
}

// TestTabsShareOneRequest: N tabs cost one /bff/token per refresh, per
// first load and per 401.
func TestTabsShareOneRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{reply: issuing(600, 60)}
		tabs := newTabs(t, 4, src)
		all := func(f func(c *Client) (string, error), want string) {
			t.Helper()
			var wg sync.WaitGroup
			for _, c := range tabs {
				wg.Go(func() {
					if tok, err := f(c); err != nil || tok != want {
						t.Errorf("got %q, %v; want %q", tok, err, want)
					}
				})
			}
			wg.Wait()
		}
		all(func(c *Client) (string, error) { return c.Token() }, "tok-1")
		if src.count() != 1 {
			t.Fatalf("4 tabs loading: %d requests; want 1", src.count())
		}
		time.Sleep(541 * time.Second) // every tab's timer fires at once
		synctest.Wait()
		if src.count() != 2 {
			t.Fatalf("4 tabs refreshing: %d requests; want 2 in all", src.count())
		}
		for _, c := range tabs {
			wantCached(t, c, "tok-2")
		}
		all(func(c *Client) (string, error) { return c.Recover("tok-2") }, "tok-3")
		if src.count() != 3 {
			t.Fatalf("4 tabs recovering from a 401: %d requests; want 3 in all", src.count())
		}
		if c := src.call(2); !c.force || c.rejected != "tok-2" {
			t.Errorf("recovery request %+v", c)
		}
	})
}

func TestOffer(t *testing.T) {
	cases := []struct {
		name   string
		setup  func(c *Client)
		offer  wire.TokenResponse
		want   string // the cached token afterwards
		events string // after the first token event
	}{
		{"adopts a longer-lived token", nil, tokenN(2, 900, 60), "tok-2", "token"},
		{"ignores a shorter-lived token", nil, tokenN(2, 300, 60), "tok-1", ""},
		{"ignores an expired token", nil, wire.TokenResponse{AccessToken: "tok-2", TokenType: "Bearer", ExpiresAt: 1000}, "tok-1", ""},
		{"ignores a malformed token", nil, wire.TokenResponse{AccessToken: "tok 2", TokenType: "Bearer", ExpiresIn: 900}, "tok-1", ""},
		{"ignores another token type", nil, wire.TokenResponse{AccessToken: "tok-2", TokenType: "DPoP", ExpiresIn: 900}, "tok-1", ""},
		{"ignores a refused token", func(c *Client) {
			c.mu.Lock()
			c.rejected = "tok-2"
			c.mu.Unlock()
		}, tokenN(2, 900, 60), "tok-1", ""},
		{"ignores tokens after logout", func(c *Client) { c.Logout() }, tokenN(2, 900, 60), "", "logout"},
		{"ends an outage", func(c *Client) {
			c.mu.Lock()
			c.degraded, c.retryAt = true, time.Now().UnixMilli()+Minute
			c.mu.Unlock()
		}, tokenN(2, 900, 60), "tok-2", "recovered(degraded) token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				src := &fakeSource{reply: issuing(600, 60)}
				c, rec := newClient(t, src)
				mustToken(t, c, "tok-1")
				if tc.setup != nil {
					tc.setup(c)
				}
				c.Offer(tc.offer)
				wantCached(t, c, tc.want)
				want := "token"
				if tc.events != "" {
					want += " " + tc.events
				}
				if rec.kinds() != want {
					t.Errorf("events %q; want %q", rec.kinds(), want)
				}
				if src.count() != 1 {
					t.Errorf("Offer made a request")
				}
			})
		})
	}
}
