package bff

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/devprovider"
	"github.com/tetherauth/tether/bff/vault/redistest"
	"github.com/tetherauth/tether/shared/wire"
)

// commandCalls reads INFO commandstats: calls per command.
func commandCalls(t *testing.T, srv *redistest.Server) map[string]int {
	t.Helper()
	info, err := srv.Command("INFO", "commandstats")
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]int{}
	for _, m := range regexp.MustCompile(`cmdstat_([a-z|]+):calls=(\d+)`).FindAllStringSubmatch(info, -1) {
		calls[m[1]], _ = strconv.Atoi(m[2])
	}
	return calls
}

// TestIdleTimeout: a session used every few minutes lives on without a
// refresh; one left unused longer than TETHER_SESSION_IDLE ends with
// reconnect_required/expired on every replica. Recording the use costs
// the hot path nothing: a token request is one Redis GET, no write.
func TestIdleTimeout(t *testing.T) {
	const idle = 10 * time.Minute // recorded at most every 75 s (an eighth)
	srv := redistest.Start(t)
	s := newStack(t, stackOptions{replicas: 2, redisURL: "redis://" + srv.Addr,
		tune:    func(c *Config) { c.SessionIdle = idle },
		devTune: func(c *devprovider.Config) { c.AccessTTL, c.RefreshTTL = 2*time.Hour, 48*time.Hour },
	})
	b := s.newBrowser()
	b.login(s.urls[0], "/")
	tok := b.mustToken(s.urls[0], nil).AccessToken
	sid := s.sid(b)
	recorded := func(want time.Time) {
		t.Helper()
		waitFor(t, "the use to be recorded", func() bool {
			rec, err := s.bffs[0].vault.Get(context.Background(), sid)
			return err == nil && rec.LastUsed.Equal(want)
		})
	}

	// Used every 3 minutes for half an hour, three idle timeouts: alive,
	// the same token, no refresh.
	for i := range 10 {
		s.clock.Advance(3 * time.Minute)
		if got := b.mustToken(s.urls[i%2], nil).AccessToken; got != tok {
			t.Fatalf("use %d: a new token; want the same, long-lived one", i)
		}
		recorded(s.clock.Now())
	}
	if n := s.dev.Stats().RefreshToken; n != 0 {
		t.Fatalf("provider refreshes = %d; want 0", n)
	}

	// The hot path: token requests inside the recording interval are
	// one GET each, and write nothing.
	before := commandCalls(t, srv)
	const hot = 50
	for i := range hot {
		s.clock.Advance(time.Second)
		b.mustToken(s.urls[i%2], nil)
	}
	after := commandCalls(t, srv)
	setup := map[string]bool{"info": true, "hello": true, "client|setinfo": true, "auth": true, "ping": true, "select": true} // a new connection's
	for cmd, n := range after {
		if d := n - before[cmd]; !setup[cmd] && d != 0 && !(cmd == "get" && d == hot) {
			t.Errorf("%d token requests made %d %s; want %d get and nothing else", hot, d, cmd, hot)
		}
	}
	t.Logf("%d token requests: %d GET, %d SET, %d EVALSHA", hot, after["get"]-before["get"], after["set"]-before["set"], after["evalsha"]-before["evalsha"])

	// Unused for exactly the idle timeout: still alive (never early).
	s.clock.Advance(idle)
	if got := b.mustToken(s.urls[0], nil).AccessToken; got != tok {
		t.Fatal("a new token after the idle wait; want the same")
	}
	recorded(s.clock.Now())
	late := s.steal(b)

	// Unused for longer than the idle timeout and its recording interval.
	s.clock.Advance(idle + 76*time.Second)
	for i, u := range s.urls {
		for name, c := range map[string]*browser{"the tab": b, "a late request": late} {
			r := c.token(u, nil)
			if r.status != http.StatusUnauthorized || r.err.Error != wire.ErrReconnectRequired || r.err.Reason != wire.ReasonExpired {
				t.Errorf("%s on replica %d after %v unused: %d %+v; want 401 reconnect_required/expired", name, i, idle+76*time.Second, r.status, r.err)
			}
		}
	}
	if s.hasRecord(sid) {
		t.Error("the idle session's record is still in the vault")
	}
	if n := s.dev.Stats().RefreshToken; n != 0 {
		t.Errorf("provider refreshes = %d; want 0", n)
	}
}
