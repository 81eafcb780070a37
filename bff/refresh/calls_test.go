package refresh

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/devprovider"
	"github.com/tetherauth/tether/bff/provider"
)

// concurrencyProbe is a Provider that records how many refreshes it has
// out at once.
type concurrencyProbe struct {
	Provider
	now, peak atomic.Int64
}

func (c *concurrencyProbe) Refresh(ctx context.Context, rt string) (*provider.Grant, error) {
	n := c.now.Add(1)
	defer c.now.Add(-1)
	for {
		p := c.peak.Load()
		if n <= p || c.peak.CompareAndSwap(p, n) {
			break
		}
	}
	return c.Provider.Refresh(ctx, rt)
}

// TestMaxProviderCalls: however many sessions refresh at once, a process
// has at most MaxProviderCalls refreshes out at the provider; the others
// wait for a slot, and that wait is not the provider's slowness: nobody is
// answered "slow", the circuit stays closed, every session gets its token.
func TestMaxProviderCalls(t *testing.T) {
	forEachBackend(t, func(t *testing.T, redisURL string) {
		const (
			sessions = 6
			delay    = 150 * time.Millisecond // the provider's time per refresh
			timeout  = 300 * time.Millisecond // less than the queue's wait
		)
		f := newFleet(t, redisURL, 1, sessions, nil)
		rep := f.replicas[0]
		probe := &concurrencyProbe{Provider: rep.p}
		log := &circuitLog{}
		r := New(rep.v, probe, Config{
			ProviderTimeout: timeout, Circuit: rep.circuit, Observer: log, MaxProviderCalls: 2,
		})
		f.dev.SetOutage(devprovider.OutageSlow, 0, delay)
		var wg sync.WaitGroup
		res := make([]Result, sessions)
		errs := make([]error, sessions)
		start := time.Now()
		for i := range sessions {
			wg.Go(func() { res[i], errs[i] = r.Token(t.Context(), f.sids[i], Want{}) })
		}
		wg.Wait()
		took := time.Since(start)
		for i := range sessions {
			if errs[i] != nil || res[i].Degraded || res[i].Record.AccessToken == f.recs[i].AccessToken {
				t.Errorf("session %d: %+v, %v; want a fresh token", i, res[i], errs[i])
			}
		}
		if p := probe.peak.Load(); p != 2 {
			t.Errorf("at most %d refreshes out at once; want 2 (MaxProviderCalls)", p)
		}
		if took < 3*delay {
			t.Errorf("%d refreshes of %v each, 2 at a time, took %v: the bound did not hold", sessions, delay, took)
		}
		if got := r.Circuit(); got != CircuitClosed || len(log.seen()) != 1 {
			t.Errorf("circuit %s, changes %v; want closed throughout (queueing is not a slow provider)", got, log.seen())
		}
		if st := f.dev.Stats(); st.RefreshToken != sessions || st.RefreshReuse != 0 {
			t.Errorf("provider stats %+v; want %d refreshes, no reuse", st, sessions)
		}
	})
}
