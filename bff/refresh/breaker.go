package refresh

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/tetherauth/tether/bff/provider"
	"github.com/tetherauth/tether/bff/vault"
)

// The provider's circuit breaker. One per process, its state shared with
// every replica through a CircuitStore (the vault):
//
//   - closed: refreshes call the provider. BreakerFailures transient
//     failures in a row across the deployment open it; so does a single
//     503 or 429 (the provider says it is down or throttling us).
//   - open: no session calls the provider. A still-valid token is served
//     degraded; an expired or rejected one gets an UnavailableError whose
//     RetryAfter is the time to the next probe, in whole seconds rounded
//     down and capped at RetryAfterMax, whatever the provider asked for. A
//     caller arriving less than a second before the probe (which is when a
//     client honouring that advice comes back) is held for it.
//   - half-open: the probe is due. One caller in the deployment (a slot
//     in the store) has its own refresh be the probe, so the call is not
//     wasted; callers in the same process wait for its outcome, those of
//     other processes watch the store for it. Success (including
//     invalid_grant: the provider answered) closes the circuit for
//     everyone; a failure opens it for another ProbeInterval.
//
// The hot path, a valid token outside its buffer, never consults it.

// CircuitState names the breaker's state, for metrics.
type CircuitState string

// Circuit states.
const (
	CircuitClosed   CircuitState = "closed"
	CircuitOpen     CircuitState = "open"
	CircuitHalfOpen CircuitState = "half_open"
)

// CircuitStates lists the states, for a gauge with one series each.
var CircuitStates = []CircuitState{CircuitClosed, CircuitOpen, CircuitHalfOpen}

// CircuitObserver, when the Config's Observer implements it, is told each
// time this process's view of the provider's circuit changes.
type CircuitObserver interface {
	Circuit(CircuitState)
}

// CircuitStore is the breaker's state shared by every replica; the
// vault's Circuit is one (see vault.Circuit for what each step does).
type CircuitStore interface {
	State(ctx context.Context) (vault.CircuitState, error)
	Fail(ctx context.Context, threshold int, until time.Time) (vault.CircuitState, error)
	Reset(ctx context.Context) error
	TryProbe(ctx context.Context, now time.Time, lease time.Duration) (*vault.Lock, vault.CircuitState, error)
	Reopen(ctx context.Context, slot *vault.Lock, now, until time.Time) (bool, error)
}

var _ CircuitStore = (*vault.Circuit)(nil)

// Timings of the breaker.
const (
	// holdMax: an expired token's caller arriving this close to the probe
	// waits for it. Retry-After is in whole seconds, rounded down, so a
	// client that honours it comes back within this of the probe.
	holdMax = time.Second
	// syncEvery: how stale this process's copy of an open circuit may be
	// (a closed one is always read again).
	syncEvery = 200 * time.Millisecond
	// watchPoll: how often a process waiting for another replica's probe
	// reads the shared state.
	watchPoll = 50 * time.Millisecond
	// breakerIO bounds each store operation of the breaker.
	breakerIO = 2 * time.Second
)

// errSlow stands for a provider that did not answer within the callers'
// patience; the breaker counts it as a failure.
var errSlow = errors.New("refresh: the provider did not answer in time")

type breaker struct {
	store     CircuitStore
	threshold int
	interval  time.Duration
	lease     time.Duration // the probe slot's lease
	patience  time.Duration // how long to watch another replica's probe
	now       func() time.Time
	log       *slog.Logger
	obs       CircuitObserver // nil: not observed
	onChange  func()          // called when the circuit opens or closes

	flight singleflight.Group // "sync", "probe" and "watch"

	mu       sync.Mutex
	open     bool
	until    time.Time // when open: the next probe is due
	synced   time.Time // wall clock of the last read of the shared state
	closedAt time.Time // failures of calls started before this are old news
	probe    *probeRun // this process's probe, while it runs
	watching bool      // this process watches another replica's probe
	shown    CircuitState
}

// probeRun is a probe this process is sending.
type probeRun struct {
	slot    *vault.Lock
	started time.Time
	settled bool // the provider's answer (or its silence) was recorded
}

func newBreaker(cfg Config, obs Observer, onChange func()) *breaker {
	if cfg.Circuit == nil {
		return nil
	}
	b := &breaker{
		store: cfg.Circuit, threshold: cfg.BreakerFailures, interval: cfg.ProbeInterval,
		lease: cfg.ProviderTimeout + 5*time.Second, patience: cfg.ProviderTimeout + holdMax,
		now: cfg.Now, log: cfg.Logger, onChange: onChange,
	}
	b.obs, _ = obs.(CircuitObserver)
	b.show(CircuitClosed)
	return b
}

// gate is the breaker's answer to a caller whose token needs a refresh.
type gate struct {
	pass bool          // call the provider
	wait time.Duration // when not: until the next probe
	out  *outcome      // the caller's refresh ran as the probe: its answer
}

// admit decides whether a caller may refresh. usable says the caller's
// token can still be served, so it is never held. probe is the caller's
// refresh, run (with a context marking it as the probe) if it becomes the
// probe.
func (b *breaker) admit(ctx context.Context, usable bool, probe func(context.Context) outcome) gate {
	if b == nil {
		return gate{pass: true}
	}
	open, until := b.view(ctx, false)
	if !open {
		return gate{pass: true}
	}
	if wait := until.Sub(b.now()); wait > 0 {
		if usable || wait > holdMax {
			return gate{wait: wait}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return gate{wait: wait}
		case <-t.C:
		}
		if open, _ = b.view(ctx, true); !open {
			return gate{pass: true}
		}
	}
	return b.halfOpen(ctx, usable, probe)
}

// verdict is what a probe, or watching another replica's, concluded.
type verdict struct {
	closed bool
	until  time.Time          // when not closed: the next probe
	busy   bool               // another replica holds the probe slot
	seen   vault.CircuitState // with busy: the state it was taken in
}

// halfOpen runs the probe, or waits for this process's or another
// replica's. A caller whose token is still usable never waits for
// someone else's probe.
func (b *breaker) halfOpen(ctx context.Context, usable bool, probe func(context.Context) outcome) gate {
	if usable && b.busy() {
		return gate{wait: b.interval}
	}
	var mine *outcome // set only if this caller's refresh is the probe
	v, ok := b.await(ctx, "probe", func() verdict {
		return b.tryProbe(func() {
			o := probe(markProbe(context.WithoutCancel(ctx)))
			mine = &o
		})
	})
	if ok && mine != nil {
		return gate{out: mine}
	}
	if ok && v.busy {
		if usable {
			return gate{wait: b.interval}
		}
		v, ok = b.await(ctx, "watch", func() verdict { return b.watch(v.seen) })
	}
	switch {
	case !ok:
		return gate{wait: b.interval}
	case v.closed:
		return gate{pass: true}
	}
	return gate{wait: max(v.until.Sub(b.now()), 0)}
}

// await runs f once for all the callers of this process that ask for key
// at the same time; ok is false when ctx ended first.
func (b *breaker) await(ctx context.Context, key string, f func() verdict) (v verdict, ok bool) {
	ch := b.flight.DoChan(key, func() (any, error) { return f(), nil })
	select {
	case res := <-ch:
		return res.Val.(verdict), true
	case <-ctx.Done():
		return verdict{}, false
	}
}

// busy reports that this process is sending or watching a probe.
func (b *breaker) busy() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.probe != nil || b.watching
}

// tryProbe takes the deployment's probe slot and runs the probe.
func (b *breaker) tryProbe(run func()) verdict {
	ctx, cancel := context.WithTimeout(context.Background(), breakerIO)
	now := b.now()
	slot, st, err := b.store.TryProbe(ctx, now, b.lease)
	cancel()
	switch {
	case err == nil && slot == nil:
		b.setClosed(now)
		return verdict{closed: true}
	case err == nil:
		return b.runProbe(slot, run)
	case errors.Is(err, vault.ErrProbeNotDue):
		b.setOpen(st.DownUntil)
		return verdict{until: st.DownUntil}
	case errors.Is(err, vault.ErrProbeBusy):
		return verdict{busy: true, seen: st}
	}
	b.log.Warn("refresh: circuit breaker: taking the probe slot", "err", err)
	return verdict{until: now.Add(b.interval)}
}

// runProbe sends the probe: the caller's own refresh, whose provider call
// settles it (see record).
func (b *breaker) runProbe(slot *vault.Lock, run func()) verdict {
	p := &probeRun{slot: slot, started: b.now()}
	b.mu.Lock()
	b.probe = p
	b.mu.Unlock()
	b.show(CircuitHalfOpen)
	b.log.Info("refresh: circuit breaker: probing the provider")

	run()

	b.mu.Lock()
	settled := p.settled
	p.settled = true // a late answer is an ordinary call's
	b.probe = nil
	open, until := b.open, b.until
	b.mu.Unlock()
	if !settled || open {
		b.show(CircuitOpen)
	}
	if !settled {
		// The refresh did not reach the provider (another replica had
		// refreshed that session, or it had ended): free the slot for the
		// next caller.
		ctx, cancel := context.WithTimeout(context.Background(), breakerIO)
		if err := slot.Release(ctx); err != nil && !errors.Is(err, vault.ErrLockLost) {
			b.log.Warn("refresh: circuit breaker: freeing the probe slot", "err", err)
		}
		cancel()
		return verdict{until: b.now()}
	}
	if !open {
		return verdict{closed: true}
	}
	return verdict{until: until}
}

// watch waits until another replica's probe has settled the shared state,
// or for patience at most.
func (b *breaker) watch(st vault.CircuitState) verdict {
	b.mu.Lock()
	b.watching = true
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.watching = false
		b.mu.Unlock()
	}()
	b.show(CircuitHalfOpen)
	deadline := time.Now().Add(b.patience)
	for time.Now().Before(deadline) {
		time.Sleep(watchPoll)
		ctx, cancel := context.WithTimeout(context.Background(), breakerIO)
		cur, err := b.store.State(ctx)
		cancel()
		switch {
		case err != nil:
		case !cur.Open:
			b.setClosed(b.now())
			return verdict{closed: true}
		case !cur.DownUntil.Equal(st.DownUntil):
			b.setOpen(cur.DownUntil)
			return verdict{until: cur.DownUntil}
		}
	}
	b.show(CircuitOpen)
	return verdict{until: b.now().Add(b.interval)}
}

// view returns the shared state. A closed circuit is read again every
// time (concurrent callers share one read), so that every replica stops
// calling the provider within a Redis round trip of its opening; an open
// one whose probe is ahead is taken from this process's copy if that is
// younger than syncEvery, unless force is set.
func (b *breaker) view(ctx context.Context, force bool) (open bool, until time.Time) {
	b.mu.Lock()
	open, until, fresh := b.open, b.until, time.Since(b.synced) < syncEvery
	b.mu.Unlock()
	if open && fresh && !force && b.now().Before(until) {
		return open, until
	}
	ch := b.flight.DoChan("sync", func() (any, error) {
		ctx, cancel := context.WithTimeout(context.Background(), breakerIO)
		st, err := b.store.State(ctx)
		cancel()
		b.mu.Lock()
		b.synced = time.Now()
		b.mu.Unlock()
		if err != nil {
			b.log.Warn("refresh: circuit breaker: reading the shared state", "err", err)
			return nil, err
		}
		if st.Open {
			b.setOpen(st.DownUntil)
		} else {
			b.setClosed(b.now())
		}
		return nil, nil
	})
	select {
	case <-ch:
	case <-ctx.Done():
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.open, b.until
}

// settle reports call's outcome to the breaker: err is the provider's
// error, errSlow when the callers stopped waiting. A call is counted once,
// except that a late success still closes the circuit.
func (b *breaker) settle(call *providerCall, err error) {
	if b == nil || call == nil || errors.Is(err, ErrNoProvider) {
		return
	}
	ok := answered(err)
	if !call.counted.CompareAndSwap(false, true) && !ok {
		return
	}
	b.record(call.start(), err)
}

// mayCall reports whether a call that has its slot may leave: the circuit
// is closed (it may have opened while the call waited), or the call is the
// probe.
func (b *breaker) mayCall(ctx context.Context, call *providerCall) bool {
	if b == nil || call.probe {
		return true
	}
	open, _ := b.view(ctx, false)
	return !open
}

// answered reports whether the provider answered for the grant: a new
// token, or invalid_grant (revocation is not an outage).
func answered(err error) bool { return err == nil || errors.Is(err, provider.ErrRevoked) }

// record updates the circuit with the outcome of a provider call that
// started at start.
func (b *breaker) record(start time.Time, err error) {
	now := b.now()
	b.mu.Lock()
	p := b.probe
	isProbe := p != nil && !p.settled && !start.Before(p.started)
	if isProbe {
		p.settled = true
	}
	stale := !isProbe && start.Before(b.closedAt)
	wasOpen := b.open
	b.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), breakerIO)
	defer cancel()
	switch {
	case answered(err):
		// Every answer resets the count of failures in a row, and closes
		// the circuit if it was open (a late answer counts too).
		if err := b.store.Reset(ctx); err != nil {
			b.log.Warn("refresh: circuit breaker: closing", "err", err)
		}
		if wasOpen || isProbe {
			b.log.Info("refresh: circuit breaker: the provider answers again; closed")
		}
		b.setClosed(now)
	case stale:
		// The call began before the circuit last closed: it says nothing
		// about the provider since.
	case isProbe:
		until := now.Add(b.jitter())
		reopened, serr := b.store.Reopen(ctx, p.slot, now, until)
		switch {
		case serr != nil:
			b.log.Warn("refresh: circuit breaker: recording a failed probe", "err", serr)
			b.setOpen(until)
		case reopened:
			b.log.Info("refresh: circuit breaker: the probe failed; open", "next_probe", until.Sub(now).Round(time.Millisecond), "err", err)
			b.setOpen(until)
		default:
			b.setClosed(now) // another call succeeded meanwhile
		}
	default:
		threshold := b.threshold
		if saysDown(err) {
			threshold = 1
		}
		st, serr := b.store.Fail(ctx, threshold, now.Add(b.jitter()))
		if serr != nil {
			b.log.Warn("refresh: circuit breaker: counting a failure", "err", serr)
			return
		}
		if st.Open {
			if !wasOpen {
				b.log.Warn("refresh: circuit breaker: the provider is failing; open: no refresh calls until a probe succeeds",
					"next_probe", st.DownUntil.Sub(now).Round(time.Millisecond), "err", err)
			}
			b.setOpen(st.DownUntil)
		}
	}
}

// saysDown reports a provider answer that means "down" or "slow down" for
// every session alike: 503 or 429.
func saysDown(err error) bool {
	var pe *provider.Error
	return errors.As(err, &pe) && (pe.Status == http.StatusServiceUnavailable || pe.Status == http.StatusTooManyRequests)
}

// retryIn is when the provider will next be asked: the next probe while
// open, else after one probe interval.
func (b *breaker) retryIn() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.open {
		return max(b.until.Sub(b.now()), 0)
	}
	return b.interval
}

// jitter is the probe interval plus up to a tenth of it, so that probes
// are at least an interval apart.
func (b *breaker) jitter() time.Duration {
	return b.interval + rand.N(b.interval/10+1)
}

func (b *breaker) setOpen(until time.Time) {
	b.mu.Lock()
	changed := !b.open
	b.open, b.until, b.synced = true, until, time.Now()
	probing := b.probe != nil
	b.mu.Unlock()
	if !probing {
		b.show(CircuitOpen)
	}
	if changed && b.onChange != nil {
		b.onChange()
	}
}

func (b *breaker) setClosed(now time.Time) {
	b.mu.Lock()
	changed := b.open
	if changed {
		b.closedAt = now
	}
	b.open, b.synced = false, time.Now()
	b.mu.Unlock()
	b.show(CircuitClosed)
	if changed && b.onChange != nil {
		b.onChange()
	}
}

// show tells the observer about a change of state.
func (b *breaker) show(s CircuitState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.shown != s && b.obs != nil {
		b.obs.Circuit(s) // under the lock, so the observer sees changes in order
	}
	b.shown = s
}

// state is this process's view of the circuit.
func (b *breaker) state() CircuitState {
	if b == nil {
		return CircuitClosed
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.shown
}
