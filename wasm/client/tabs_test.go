package client

import (
	"strconv"
	"strings"
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

// channel is a BroadcastChannel for tests: Announce reaches every other
// tab, and a log of the news.
type channel struct {
	mu   sync.Mutex
	tabs []*Client
	log  []string // "tab:news"
}

type tabPeer struct {
	ch   *channel
	self int
}

func (p tabPeer) Announce(news string) {
	p.ch.mu.Lock()
	tabs := append([]*Client(nil), p.ch.tabs...)
	p.ch.log = append(p.ch.log, strconv.Itoa(p.self)+":"+news)
	p.ch.mu.Unlock()
	for i, c := range tabs {
		if i != p.self {
			c.News(news)
		}
	}
}

func (ch *channel) heard() string {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return strings.Join(ch.log, " ")
}

var (
	_ Locker = tabLock(nil)
	_ Peers  = tabPeer{}
)

// vault is a BFF for several tabs of one session: it keeps one token and
// refreshes it only inside its buffer, or when forced with the current
// token, as the BFF does; every tab's request for the token it holds is a
// read. Requests wait on hold while it is not nil.
type vault struct {
	mu        sync.Mutex
	life, buf int64 // seconds
	cur       string
	exp       time.Time
	refreshes int
	calls     []call
	hold      chan struct{}
}

var _ TokenSource = (*vault)(nil)

func (v *vault) RequestToken(force bool, rejected string) (wire.TokenResponse, error) {
	v.mu.Lock()
	v.calls = append(v.calls, call{force, rejected})
	hold := v.hold
	v.mu.Unlock()
	if hold != nil {
		<-hold
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	now := time.Now()
	if v.cur == "" || !now.Before(v.exp.Add(-time.Duration(v.buf)*time.Second)) || (force && rejected == v.cur) {
		v.refreshes++
		v.cur, v.exp = "tok-"+strconv.Itoa(v.refreshes), now.Add(time.Duration(v.life)*time.Second)
	}
	return wire.TokenResponse{AccessToken: v.cur, TokenType: wire.TokenTypeBearer, ExpiresAt: v.exp.Unix(),
		ExpiresIn: int64(v.exp.Sub(now) / time.Second), RefreshBuffer: v.buf}, nil
}

func (v *vault) counts() (requests, refreshes int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.calls), v.refreshes
}

func (v *vault) setHold(h chan struct{}) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.hold = h
}

// newTabs opens n tabs on one BFF, sharing a lock and a channel.
func newTabs(t *testing.T, n int, src TokenSource) ([]*Client, *channel) {
	lock, ch := make(tabLock, 1), &channel{}
	for i := range n {
		c, _ := newClient(t, src, func(cfg *Config) {
			cfg.Lock, cfg.Peers = lock, tabPeer{ch: ch, self: i}
		})
		ch.mu.Lock()
		ch.tabs = append(ch.tabs, c)
		ch.mu.Unlock()
	}
	return ch.tabs, ch
}

// TestTabsRefreshOnce: N tabs refresh once per refresh point and once per
// 401; each then asks the BFF for the new token (a read), since tabs pass
// news, never tokens.
func TestTabsRefreshOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := &vault{life: 600, buf: 60}
		tabs, ch := newTabs(t, 4, v)
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
		if req, ref := v.counts(); req != 4 || ref != 1 {
			t.Fatalf("4 tabs loading: %d requests, %d refreshes; want 4 and 1", req, ref)
		}
		if ch.heard() != "" {
			t.Errorf("first loads announced %q; want nothing", ch.heard())
		}
		time.Sleep(541 * time.Second) // every tab's timer fires at once
		synctest.Wait()
		if req, ref := v.counts(); req != 8 || ref != 2 {
			t.Fatalf("4 tabs at the refresh point: %d requests, %d refreshes in all; want 8 and 2", req, ref)
		}
		for _, c := range tabs {
			wantCached(t, c, "tok-2")
		}
		if h := ch.heard(); strings.Count(h, NewsRefreshing) != 1 || strings.Count(h, NewsRefreshed) != 1 {
			t.Errorf("news %q; want one refreshing and one refreshed, from the tab that refreshed", h)
		}
		all(func(c *Client) (string, error) { return c.Recover("tok-2") }, "tok-3")
		if req, ref := v.counts(); req != 12 || ref != 3 {
			t.Fatalf("4 tabs recovering from a 401: %d requests, %d refreshes in all; want 12 and 3", req, ref)
		}
	})
}

// TestTabsFollowNews: one tab refreshes; the others hear it starting, hold
// their new calls, and ask for the new token when they hear it came.
func TestTabsFollowNews(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := &vault{life: 600, buf: 60}
		tabs, ch := newTabs(t, 3, v)
		for _, c := range tabs {
			mustToken(t, c, "tok-1")
		}
		// Tab 0 refreshes early (a Visible after its refresh point would do
		// the same); the BFF is slow.
		v.setHold(make(chan struct{}))
		hold := v.hold
		time.Sleep(540 * time.Second) // inside the BFF's buffer, before the tabs' timers
		tabs[0].mu.Lock()
		tabs[0].joinLocked(time.Now().UnixMilli(), false, "", false)
		tabs[0].mu.Unlock()
		tabs[0].publish()
		synctest.Wait()
		if h := ch.heard(); h != "0:"+NewsRefreshing {
			t.Fatalf("news %q; want 0:refreshing", h)
		}
		got := make(chan string, 3)
		for _, c := range tabs {
			wantCached(t, c, "") // held: the page's copy is withdrawn too
			go func() { tok, _ := c.Token(); got <- tok }()
		}
		synctest.Wait()
		if len(got) != 0 {
			t.Fatalf("a held call went with %q", <-got)
		}
		v.setHold(nil)
		close(hold)
		for range 3 {
			if tok := <-got; tok != "tok-2" {
				t.Errorf("a held call got %q; want tok-2", tok)
			}
		}
		synctest.Wait()
		if req, ref := v.counts(); req != 6 || ref != 2 {
			t.Errorf("%d requests, %d refreshes in all; want 6 (3 loads, 1 refresh, 2 reads) and 2", req, ref)
		}
		for _, c := range tabs {
			wantCached(t, c, "tok-2")
		}
	})
}

// TestQuietWhileSiblingRefreshes: a tab that heard another tab start a
// refresh, and not yet how it ended, sends its own request without news:
// the tab lock may be granted before the other tab's last word arrives,
// and that request only reads the token the other tab obtained. Once that
// word is overdue (maxHold), its refreshes are news again.
func TestQuietWhileSiblingRefreshes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := &vault{life: 600, buf: 60}
		tabs, ch := newTabs(t, 2, v)
		for _, c := range tabs {
			mustToken(t, c, "tok-1")
		}
		time.Sleep(540 * time.Second)
		tabs[1].News(NewsRefreshing) // from a tab the test plays
		time.Sleep(time.Second)      // both refresh timers fire
		synctest.Wait()
		if h := ch.heard(); h != "0:"+NewsRefreshing+" 0:"+NewsRefreshed {
			t.Errorf("news %q; want only tab 0's refresh", h)
		}
		time.Sleep(time.Duration(maxHold) * time.Millisecond)
		if _, err := tabs[1].Recover("tok-2"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if h := ch.heard(); !strings.HasSuffix(h, "1:"+NewsRefreshing+" 1:"+NewsRefreshed) {
			t.Errorf("news %q; want tab 1's forced refresh announced", h)
		}
	})
}

// TestHoldIsBounded: a refresh that does not come back holds new calls
// for at most maxHold, then they go with the old token; and never past the
// moment the old token stops being handed out, when they wait for the
// request in progress instead.
func TestHoldIsBounded(t *testing.T) {
	cases := []struct {
		name      string
		life, buf int64
		answer    time.Duration // after the refresh left
		want      string
		wait      time.Duration
	}{
		// Refreshed at 541 s of 600: 54 s of use left; maxHold applies.
		{"maxHold", 600, 60, time.Hour, "tok-1", 2 * time.Second},
		{"maxHold, answered in time", 600, 60, 1500 * time.Millisecond, "tok-2", 1500 * time.Millisecond},
		// 4 s token, 2 s buffer: refreshed at 2.5 s, handed out until 3.6 s
		// (0.4 s of skew); the hold ends then and the call waits for the
		// answer.
		{"until", 4, 2, 3 * time.Second, "tok-2", 3 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				src := &fakeSource{reply: issuing(tc.life, tc.buf)}
				c, _ := newClient(t, src)
				mustToken(t, c, "tok-1")
				hold := make(chan struct{})
				src.set(nil, hold)
				for src.count() < 2 { // until the refresh leaves
					time.Sleep(10 * time.Millisecond)
					synctest.Wait()
				}
				start := time.Now()
				answered := time.AfterFunc(tc.answer, func() { close(hold) })
				defer func() {
					if answered.Stop() {
						close(hold)
					}
				}()
				tok, err := c.Token()
				if err != nil || tok != tc.want || time.Since(start) != tc.wait {
					t.Errorf("Token() = %q, %v after %v; want %s after %v", tok, err, time.Since(start), tc.want, tc.wait)
				}
				wantCached(t, c, tc.want) // the hold is over: the copy is back
			})
		})
	}
}

// TestOwnRefreshHolds: in one tab, calls made after the refresh request
// left wait for its answer and get the new token.
func TestOwnRefreshHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{reply: issuing(600, 60)}
		c, rec := newClient(t, src)
		mustToken(t, c, "tok-1")
		src.set(nil, make(chan struct{}))
		time.Sleep(541 * time.Second)
		synctest.Wait()
		if p := rec.last(); p != (push{}) {
			t.Fatalf("push %+v during the refresh; want the copy withdrawn", p)
		}
		got := make(chan string)
		go func() { tok, _ := c.Token(); got <- tok }()
		time.Sleep(time.Second)
		close(src.hold)
		if tok := <-got; tok != "tok-2" {
			t.Errorf("a call made during the refresh got %q; want tok-2", tok)
		}
		if s := c.State(); !s.Connected {
			t.Errorf("State() = %+v during the refresh; want connected", s)
		}
	})
}

// TestNews: what news from another tab (or any script of the origin) can
// and cannot do.
func TestNews(t *testing.T) {
	cases := []struct {
		name     string
		setup    func(c *Client)
		news     []string
		requests int    // after the first
		want     string // the cached token afterwards
	}{
		{"refreshed: one request for the new token", nil, []string{NewsRefreshed}, 1, "tok-2"},
		{"refreshing alone: a bounded hold, no request", nil, []string{NewsRefreshing}, 0, "tok-1"},
		{"refreshing, then unchanged", nil, []string{NewsRefreshing, NewsUnchanged}, 0, "tok-1"},
		{"unknown news", nil, []string{"access_token", "", `{"access_token":"x"}`}, 0, "tok-1"},
		{"after logout", func(c *Client) { c.Logout() }, []string{NewsRefreshing, NewsRefreshed}, 0, ""},
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
				for _, n := range tc.news {
					c.News(n)
				}
				synctest.Wait()
				time.Sleep(time.Duration(maxHold) * time.Millisecond) // any hold is over
				synctest.Wait()
				wantCached(t, c, tc.want)
				if n := src.count() - 1; n != tc.requests {
					t.Errorf("%d requests; want %d", n, tc.requests)
				}
				for _, e := range rec.events() {
					if e.Kind == EventReconnect || e.Kind == EventDegraded {
						t.Errorf("event %+v", e)
					}
				}
			})
		})
	}
}

// TestNewsWhileReading: news that a token came, heard while this tab's
// read of an earlier one is out, makes it read once more when that read
// is back (its answer may predate the new token); news heard before the
// read left needs nothing more.
func TestNewsWhileReading(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{reply: issuing(600, 60)}
		c, _ := newClient(t, src)
		mustToken(t, c, "tok-1")
		hold := make(chan struct{})
		src.set(nil, hold)
		c.News(NewsRefreshed)
		synctest.Wait() // the read is out
		c.News(NewsRefreshed)
		c.News(NewsRefreshed)
		src.set(nil, nil)
		close(hold)
		synctest.Wait()
		wantCached(t, c, "tok-3")
		if n := src.count(); n != 3 {
			t.Errorf("%d requests; want 3: the first token, the read, one more read", n)
		}
	})
}

// TestNewsEndsBackoff: a tab in back-off without a token asks again when
// another tab says the BFF handed out a new one.
func TestNewsEndsBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{reply: failing(errOutage)}
		c, _ := newClient(t, src)
		if _, err := c.Token(); err == nil {
			t.Fatal("Token() during an outage succeeded")
		}
		src.set(issuing(600, 60), nil)
		c.News(NewsRefreshed)
		synctest.Wait()
		wantCached(t, c, "tok-2")
		if s := c.State(); s.Degraded {
			t.Errorf("State() = %+v; want recovered", s)
		}
	})
}

// TestNoSession: told there is no session before asking, the client
// stands as after a no_session answer, without a request.
func TestNoSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{reply: issuing(600, 60)}
		c, rec := newClient(t, src)
		c.NoSession()
		if _, err := c.Token(); err == nil || err.(*ReconnectError).Reason != wire.ReasonNoSession {
			t.Errorf("Token() error %v; want a reconnect (no_session)", err)
		}
		if src.count() != 0 || rec.kinds() != "reconnect(no_session)" {
			t.Errorf("%d requests, events %q; want none and one reconnect", src.count(), rec.kinds())
		}
		c.Reset()
		mustToken(t, c, "tok-1")
		c.NoSession() // too late: a token is cached
		wantCached(t, c, "tok-1")
	})
}
