package replicas

import (
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherauth/tether/shared/wire"
)

// Phases of TestRedisOutage's load. A call that starts while Redis is
// stopping or starting, or does not end in the phase it started in, may go
// either way.
const (
	phaseUp = iota
	phaseStopping
	phaseDown
	phaseStarting
	phaseBack
)

var phaseNames = [...]string{"before", "while stopping", "during", "while starting", "after"}

// TestRedisOutage stops redis-server (append-only file on) under load from
// three replicas. A call that starts while Redis is down answers 503
// storage_unavailable with Retry-After, never reconnect_required and never
// a token; /readyz fails on every replica. Redis comes back with its data;
// once each replica's /readyz says so (within 5 s), every call succeeds and
// every session gets its same, still-valid token from every replica, with
// no session lost and no refresh.
func TestRedisOutage(t *testing.T) {
	const (
		sessions = 20
		loaders  = 8
		maxCalls = 20000 // bounds the load loop whatever happens
	)
	c := startCluster(t, options{redisArgs: []string{"--appendonly", "yes"}})
	ss := c.loginN(sessions)
	toks := make([]string, sessions)
	for i, s := range ss {
		toks[i] = c.mustToken(s, i%len(c.urls), nil).AccessToken
	}
	base := c.stats()

	var (
		phase atomic.Int32
		calls atomic.Int64
		stop  = make(chan struct{})
		mu    sync.Mutex
		seen  [len(phaseNames)]map[string]int // per phase: outcome -> count
		wg    sync.WaitGroup
	)
	for p := range seen {
		seen[p] = map[string]int{}
	}
	for w := range loaders {
		wg.Go(func() {
			for k := w; ; k += loaders {
				select {
				case <-stop:
					return
				default:
				}
				if calls.Add(1) > maxCalls {
					return
				}
				i := k % sessions
				p := phase.Load()
				a := c.token(ss[i], k%len(c.urls), nil)
				if end := phase.Load(); end != p {
					// Redis stopped or came back during the call.
					p = map[bool]int32{true: phaseStopping, false: phaseStarting}[p < phaseDown]
				}
				key := outcomeKey(a, toks[i])
				mu.Lock()
				seen[p][key]++
				mu.Unlock()
				if a.status != http.StatusOK {
					time.Sleep(10 * time.Millisecond) // as a client backs off, briefly
				}
			}
		})
	}

	time.Sleep(300 * time.Millisecond)
	phase.Store(phaseStopping)
	c.redis.Stop()
	phase.Store(phaseDown)
	time.Sleep(1500 * time.Millisecond)
	for i := range c.urls {
		if got := c.readyz(i); got != http.StatusServiceUnavailable {
			t.Errorf("replica %d: /readyz = %d with Redis down; want 503", i, got)
		}
	}
	phase.Store(phaseStarting)
	c.redis.Restart()
	restarted := time.Now()
	// go-redis stops dialling after a run of failed dials and tries again
	// once a second in the background: a replica may need that long.
	for i := range c.urls {
		if err := c.bffs[i].WaitHTTP(c.urls[i]+"/readyz", 5*time.Second); err != nil {
			t.Errorf("replica %d after Redis came back: %v", i, err)
		}
	}
	t.Logf("every replica ready %v after Redis was", time.Since(restarted).Round(time.Millisecond))
	phase.Store(phaseBack)
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wg.Wait()

	for p, name := range phaseNames {
		t.Logf("%s the outage: %v", name, seen[p])
	}
	for p, want := range map[int]string{phaseUp: "same token", phaseDown: "503 storage_unavailable", phaseBack: "same token"} {
		if seen[p][want] == 0 {
			t.Errorf("no call %s the outage got %s", phaseNames[p], want)
		}
		for got, n := range seen[p] {
			if got != want {
				t.Errorf("%d calls %s the outage got %s; want %s", n, phaseNames[p], got, want)
			}
		}
	}
	for _, p := range []int{phaseStopping, phaseStarting} {
		for got, n := range seen[p] {
			if got != "same token" && got != "503 storage_unavailable" {
				t.Errorf("%d calls %s got %s", n, phaseNames[p], got)
			}
		}
	}
	if calls.Load() > maxCalls {
		t.Errorf("the load hit its bound of %d calls", maxCalls)
	}

	// Every session, on every replica, as it was.
	for i := range c.urls {
		if got := c.readyz(i); got != http.StatusOK {
			t.Errorf("replica %d: /readyz = %d after Redis came back; want 200", i, got)
		}
	}
	for i, s := range ss {
		for r := range c.urls {
			if got := c.mustToken(s, r, nil); got.AccessToken != toks[i] {
				t.Errorf("session %d, replica %d: another token after the outage; want the same", i, r)
			}
		}
	}
	if n := c.sessionRecords(); n != sessions {
		t.Errorf("Redis holds %d session records after the restart; want %d", n, sessions)
	}
	if got := c.stats().RefreshToken - base.RefreshToken; got != 0 {
		t.Errorf("the provider saw %d refreshes; want 0 (every token was valid)", got)
	}
}

// outcomeKey names an answer for TestRedisOutage's tally.
func outcomeKey(a answer, tok string) string {
	switch {
	case a.neterr != nil:
		return "network error"
	case a.status == http.StatusOK && a.tok.AccessToken == tok && !a.tok.Degraded:
		return "same token"
	case a.status == http.StatusOK:
		return "another or degraded token"
	case a.status == http.StatusServiceUnavailable && a.err.Error == wire.ErrStorageUnavailable && a.retryAfter != "":
		return "503 storage_unavailable"
	default:
		return a.String()
	}
}
