package refresh

import (
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/devprovider"
	"github.com/tetherauth/tether/bff/provider"
	"github.com/tetherauth/tether/bff/vault"
	"github.com/tetherauth/tether/bff/vault/redistest"
)

// The breaker's tests run each scenario on the embedded miniredis and on a
// real redis-server, with replicas as Refreshers of their own (own vault
// client, own provider client) sharing that Redis, and the dev provider
// over loopback HTTP as the peer.

// breakerInterval is the probe interval of these tests.
const breakerInterval = time.Second

// circuitLog is an Observer that records the circuit's changes.
type circuitLog struct {
	nopObserver
	mu     sync.Mutex
	states []CircuitState
}

func (l *circuitLog) Circuit(s CircuitState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.states = append(l.states, s)
}

func (l *circuitLog) seen() []CircuitState {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.states)
}

// countingCircuit counts the calls a Refresher makes to its CircuitStore.
type countingCircuit struct {
	*vault.Circuit
	calls atomic.Int64
}

func (c *countingCircuit) State(ctx context.Context) (vault.CircuitState, error) {
	c.calls.Add(1)
	return c.Circuit.State(ctx)
}

func (c *countingCircuit) Fail(ctx context.Context, n int, until time.Time) (vault.CircuitState, error) {
	c.calls.Add(1)
	return c.Circuit.Fail(ctx, n, until)
}

func (c *countingCircuit) Reset(ctx context.Context) error {
	c.calls.Add(1)
	return c.Circuit.Reset(ctx)
}

func (c *countingCircuit) TryProbe(ctx context.Context, now time.Time, lease time.Duration) (*vault.Lock, vault.CircuitState, error) {
	c.calls.Add(1)
	return c.Circuit.TryProbe(ctx, now, lease)
}

// replica is one process's engine.
type replica struct {
	r       *Refresher
	v       *vault.Vault
	p       *provider.Provider
	circuit *countingCircuit
	log     *circuitLog
}

// fleet is a dev provider and replicas sharing one Redis, with sessions
// signed in whose access tokens have expired (each call needs a refresh).
type fleet struct {
	dev      *devprovider.Provider
	replicas []*replica
	sids     []string
	recs     []*vault.Record
}

// breakerBackends are the two Redis servers each scenario runs on: it
// returns the URL replicas open ("" for the first, embedded miniredis,
// whose address the others then use).
var breakerBackends = []struct {
	name  string
	start func(t *testing.T) string
}{
	{"miniredis", func(*testing.T) string { return "" }},
	{"redis-server", func(t *testing.T) string { return "redis://" + redistest.Start(t).Addr }},
}

func forEachBackend(t *testing.T, f func(t *testing.T, redisURL string)) {
	for _, b := range breakerBackends {
		t.Run(b.name, func(t *testing.T) { f(t, b.start(t)) })
	}
}

func newFleet(t *testing.T, redisURL string, replicas, sessions int, tune func(*Config)) *fleet {
	t.Helper()
	ctx := t.Context()
	dev, issuer := startProvider(t)

	key := make([]byte, vault.KeySize)
	rand.Read(key)
	f := &fleet{dev: dev}
	for i := range replicas {
		v, err := vault.Open(ctx, redisURL, key)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { v.Close() })
		if redisURL == "" {
			redisURL = v.EmbeddedURL()
		}
		p := newProviderClient(t, issuer)
		rep := &replica{v: v, p: p, circuit: &countingCircuit{Circuit: v.Circuit(issuer)}, log: &circuitLog{}}
		cfg := Config{
			ProviderTimeout: time.Second, RetryAfter: time.Second,
			Circuit: rep.circuit, ProbeInterval: breakerInterval, Observer: rep.log,
		}
		if tune != nil {
			tune(&cfg)
		}
		if cfg.Circuit == nil {
			rep.circuit = nil
		}
		rep.r = New(v, p, cfg)
		if i == 0 && rep.r.Circuit() != CircuitClosed {
			t.Fatalf("a new engine's circuit is %s; want closed", rep.r.Circuit())
		}
		f.replicas = append(f.replicas, rep)
	}
	for range sessions {
		f.signIn(t)
	}
	return f
}

// signIn runs the authorization-code flow at the dev provider and stores
// the session with its access token already expired.
func (f *fleet) signIn(t *testing.T) {
	t.Helper()
	p := f.replicas[0].p
	g := signInGrant(t, p)
	now := time.Now()
	rec := &vault.Record{AccessToken: g.AccessToken, RefreshToken: g.RefreshToken, Subject: g.Subject,
		IssuedAt: now.Add(-2 * time.Minute), Expiry: now.Add(-time.Minute), RefreshExpiry: g.RefreshExpiry, Created: now.Add(-2 * time.Minute)}
	sid := "session-" + rand.Text()
	if err := f.replicas[0].v.Put(t.Context(), sid, rec, time.Hour); err != nil {
		t.Fatal(err)
	}
	f.sids, f.recs = append(f.sids, sid), append(f.recs, rec)
}

// shared reads the circuit's shared state.
func (f *fleet) shared(t *testing.T) vault.CircuitState {
	t.Helper()
	st, err := f.replicas[0].circuit.Circuit.State(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// served is what a client loop got in the end.
type served struct {
	res   Result
	err   error
	at    time.Time
	calls int
}

// serve calls Token for session i on replica k as a client that honours
// the advice would: after an UnavailableError it waits RetryAfter and
// tries again, until it gets a fresh token or deadline passes.
func (f *fleet) serve(i, k int, deadline time.Time) served {
	var s served
	for {
		s.calls++
		s.res, s.err = f.replicas[k].r.Token(context.Background(), f.sids[i], Want{})
		s.at = time.Now()
		var ue *UnavailableError
		if !errors.As(s.err, &ue) || s.at.Add(ue.RetryAfter).After(deadline) {
			return s
		}
		time.Sleep(ue.RetryAfter)
	}
}

// TestBreakerOutageAndRecovery is issue 10's case, with the default probe
// interval: the provider answers 503 with Retry-After: 3600 and comes back
// a few seconds later. The first 503 opens the circuit for every replica;
// while it is open the whole deployment sends one probe per interval;
// Retry-After is the time to the next probe, not the provider's hour; once
// the provider is back, every waiting session has a fresh token within
// about a probe interval.
func TestBreakerOutageAndRecovery(t *testing.T) {
	forEachBackend(t, func(t *testing.T, redisURL string) {
		const (
			sessions = 9
			interval = DefaultProbeInterval
			outage   = 5 * time.Second
		)
		f := newFleet(t, redisURL, 3, sessions, func(c *Config) { c.ProbeInterval = interval })
		ctx := t.Context()
		f.dev.SetOutage(devprovider.Outage503, time.Hour, 0)
		start := time.Now()

		_, err := f.replicas[0].r.Token(ctx, f.sids[0], Want{})
		var ue *UnavailableError
		if !errors.As(err, &ue) || ue.RetryAfter < interval-time.Second || ue.RetryAfter > interval {
			t.Fatalf("expired token, provider 503 Retry-After 3600: %v; want an UnavailableError with Retry-After %v or a second less (the next probe, rounded down)", err, interval)
		}
		if got := f.dev.Stats().OutageHits; got != 1 {
			t.Fatalf("provider calls = %d; want 1", got)
		}
		if st := f.shared(t); !st.Open || time.Until(st.DownUntil) > interval*11/10 || time.Until(st.DownUntil) <= 0 {
			t.Fatalf("shared circuit after a 503: %+v; want open, the probe due within %v", st, interval*11/10)
		}
		if got := f.replicas[0].r.Circuit(); got != CircuitOpen {
			t.Fatalf("replica 0 circuit = %s; want open", got)
		}
		// Another replica learns it from Redis, without a provider call.
		if _, err := f.replicas[1].r.Token(ctx, f.sids[1], Want{}); !errors.As(err, &ue) || ue.RetryAfter < time.Second || ue.RetryAfter > interval {
			t.Fatalf("replica 1 during the outage: %v; want an UnavailableError, Retry-After 1s to %v", err, interval)
		}
		if got := f.dev.Stats().OutageHits; got != 1 {
			t.Fatalf("provider calls after replica 1 asked = %d; want still 1", got)
		}
		if got := f.replicas[1].r.Circuit(); got != CircuitOpen {
			t.Fatalf("replica 1 circuit = %s; want open", got)
		}

		// Every session, on every replica, waits as a client would.
		var recovered time.Time
		var wg sync.WaitGroup
		wg.Go(func() {
			time.Sleep(time.Until(start.Add(outage)))
			recovered = time.Now()
			f.dev.SetOutage(devprovider.OutageNone, 0, 0)
		})
		results := make([]served, sessions)
		for i := range sessions {
			wg.Go(func() { results[i] = f.serve(i, i%3, start.Add(outage+10*time.Second)) })
		}
		wg.Wait()

		st := f.dev.Stats()
		// During the outage: the first call, then one probe per interval.
		if limit := int64(outage/interval) + 1; st.OutageHits > limit {
			t.Errorf("provider calls during a %v outage = %d; want at most %d (one probe per %v)", outage, st.OutageHits, limit, interval)
		}
		var last time.Time
		for i, s := range results {
			if s.err != nil || s.res.Degraded || s.res.Record.AccessToken == f.recs[i].AccessToken {
				t.Errorf("session %d after %d calls: %+v, %v; want a fresh token", i, s.calls, s.res, s.err)
				continue
			}
			if s.at.After(last) {
				last = s.at
			}
		}
		// The next probe comes at most 1.1 intervals after the provider is
		// back, and the clients are there (held) when it succeeds: 3 s is
		// the target; the bound allows for a machine busy with the other
		// suites of make test.
		if took := last.Sub(recovered); took > 6*time.Second {
			t.Errorf("last session served %v after the provider came back; want within 3s (a probe interval, %v, and a refresh), at most 6 s on a loaded machine", took.Round(time.Millisecond), interval)
		}
		t.Logf("%d sessions on 3 replicas: %d provider calls in a %v outage; last served %v after recovery",
			sessions, st.OutageHits, outage, last.Sub(recovered).Round(time.Millisecond))
		if st.RefreshReuse != 0 {
			t.Errorf("refresh token reuse = %d; want 0", st.RefreshReuse)
		}
		if sh := f.shared(t); sh.Open {
			t.Errorf("shared circuit after recovery: %+v; want closed", sh)
		}
		for k, rep := range f.replicas {
			if got := rep.r.Circuit(); got != CircuitClosed {
				t.Errorf("replica %d circuit = %s; want closed", k, got)
			}
		}
		// Replica 0 opened it, probed or watched, and saw it close.
		seen := f.replicas[0].log.seen()
		if len(seen) < 3 || seen[0] != CircuitClosed || seen[1] != CircuitOpen || seen[len(seen)-1] != CircuitClosed || !slices.Contains(seen, CircuitHalfOpen) {
			t.Errorf("replica 0 reported %v; want closed, open, … half_open …, closed", seen)
		}
	})
}

// TestBreakerInvalidGrantDoesNotOpen: revocations are answers, not
// failures. Many in a row leave the circuit closed, and a probe answered
// with invalid_grant closes an open circuit.
func TestBreakerInvalidGrantDoesNotOpen(t *testing.T) {
	forEachBackend(t, func(t *testing.T, redisURL string) {
		const revoked = 5 // more than DefaultBreakerFailures
		f := newFleet(t, redisURL, 2, revoked+2, nil)
		ctx := t.Context()
		for i := range revoked + 1 {
			if err := f.replicas[0].p.Revoke(ctx, f.recs[i].RefreshToken, ""); err != nil {
				t.Fatal(err)
			}
		}
		for i := range revoked {
			_, err := f.replicas[i%2].r.Token(ctx, f.sids[i], Want{})
			var re *ReconnectError
			if !errors.As(err, &re) || re.Reason != ReasonRevoked {
				t.Fatalf("revoked session %d: %v; want a ReconnectError revoked", i, err)
			}
		}
		if st := f.shared(t); st.Open || st.Failures != 0 {
			t.Fatalf("after %d revocations the shared circuit is %+v; want closed, no failures", revoked, st)
		}
		for k, rep := range f.replicas {
			if got := rep.r.Circuit(); got != CircuitClosed {
				t.Fatalf("replica %d circuit = %s; want closed", k, got)
			}
		}

		// Open it, end the outage, and let a revoked session be the probe.
		f.dev.SetOutage(devprovider.Outage503, time.Hour, 0)
		if _, err := f.replicas[0].r.Token(ctx, f.sids[revoked+1], Want{}); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("during the outage: %v; want unavailable", err)
		}
		if st := f.shared(t); !st.Open {
			t.Fatal("the 503 did not open the circuit")
		}
		f.dev.SetOutage(devprovider.OutageNone, 0, 0)
		time.Sleep(time.Until(f.shared(t).DownUntil))
		_, err := f.replicas[1].r.Token(ctx, f.sids[revoked], Want{})
		var re *ReconnectError
		if !errors.As(err, &re) || re.Reason != ReasonRevoked {
			t.Fatalf("the probe, a revoked session: %v; want a ReconnectError revoked", err)
		}
		if st := f.shared(t); st.Open {
			t.Fatalf("a probe answered invalid_grant left the circuit %+v; want closed", st)
		}
		if got := f.replicas[1].r.Circuit(); got != CircuitClosed {
			t.Fatalf("the probing replica's circuit = %s; want closed", got)
		}
	})
}

// TestBreakerThreshold: failures that are not 503 or 429 open the circuit
// only when DefaultBreakerFailures of them come in a row, counted across
// replicas; an answer in between starts the count again.
func TestBreakerThreshold(t *testing.T) {
	forEachBackend(t, func(t *testing.T, redisURL string) {
		// A long interval: nobody is held for a probe in this test.
		f := newFleet(t, redisURL, 2, 6, func(c *Config) { c.ProbeInterval = 10 * time.Second })
		ctx := t.Context()
		fail := func(i int) {
			t.Helper()
			if _, err := f.replicas[i%2].r.Token(ctx, f.sids[i], Want{}); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("session %d during a 500 outage: %v; want unavailable", i, err)
			}
		}
		f.dev.SetOutage(devprovider.Outage500, 0, 0)
		fail(0)
		fail(1)
		if st := f.shared(t); st.Open || st.Failures != 2 {
			t.Fatalf("after 2 failures on 2 replicas: %+v; want closed, 2 failures", st)
		}
		f.dev.SetOutage(devprovider.OutageNone, 0, 0)
		if res, err := f.replicas[0].r.Token(ctx, f.sids[2], Want{}); err != nil || res.Degraded {
			t.Fatalf("healthy provider: %+v, %v; want a fresh token", res, err)
		}
		if st := f.shared(t); st.Failures != 0 {
			t.Fatalf("after an answer: %+v; want the count reset", st)
		}
		f.dev.SetOutage(devprovider.Outage500, 0, 0)
		fail(3)
		fail(4)
		if st := f.shared(t); st.Open {
			t.Fatalf("2 failures after an answer opened the circuit: %+v", st)
		}
		fail(5)
		if st := f.shared(t); !st.Open {
			t.Fatalf("3 failures in a row: %+v; want open", st)
		}
		if got := f.dev.Stats().OutageHits; got != 5 {
			t.Errorf("provider calls = %d; want 5", got)
		}
		// Open: nobody calls the provider, the session that failed first
		// included.
		fail(0)
		if got := f.dev.Stats().OutageHits; got != 5 {
			t.Errorf("provider calls while open = %d; want still 5", got)
		}
	})
}

// TestBreakerTimeout: a provider that hangs. A refresh still waits one
// provider timeout; three of them open the circuit; a probe that hangs
// counts as failed at the timeout, and the next waits for the interval.
func TestBreakerTimeout(t *testing.T) {
	forEachBackend(t, func(t *testing.T, redisURL string) {
		const timeout = 300 * time.Millisecond
		f := newFleet(t, redisURL, 2, 5, func(c *Config) { c.ProviderTimeout = timeout })
		ctx := t.Context()
		f.dev.SetOutage(devprovider.OutageTimeout, 0, 0)
		for i := range 3 {
			t0 := time.Now()
			_, err := f.replicas[i%2].r.Token(ctx, f.sids[i], Want{})
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("session %d, provider hanging: %v; want unavailable", i, err)
			}
			if d := time.Since(t0); d < timeout {
				t.Fatalf("session %d answered after %v, before the provider timeout: was the provider called?", i, d)
			}
		}
		st := f.shared(t)
		if !st.Open {
			t.Fatalf("after 3 timeouts: %+v; want open", st)
		}
		// The probe hangs, counts as failed at the timeout, and reopens.
		time.Sleep(time.Until(st.DownUntil))
		t0 := time.Now()
		if _, err := f.replicas[1].r.Token(ctx, f.sids[3], Want{}); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("the probe: %v; want unavailable", err)
		}
		if d := time.Since(t0); d < timeout || d > timeout+breakerInterval/2 {
			t.Errorf("the probe's caller waited %v; want about the provider timeout (%v)", d, timeout)
		}
		after := f.shared(t)
		if !after.Open || !after.DownUntil.After(st.DownUntil) || after.LastProbe.IsZero() {
			t.Fatalf("after a hung probe: %+v; want open again with a later probe", after)
		}
		if got := f.dev.Stats().OutageHits; got != 4 {
			t.Errorf("provider calls = %d; want 4 (3 that opened it, 1 probe)", got)
		}
		// Recovery.
		f.dev.SetOutage(devprovider.OutageNone, 0, 0)
		s := f.serve(4, 0, time.Now().Add(5*time.Second))
		if s.err != nil || s.res.Degraded {
			t.Fatalf("after the provider is back: %+v, %v; want a fresh token", s.res, s.err)
		}
	})
}

// TestBreakerRetryAfterCap: whatever the provider asks for, the advice is
// at most RetryAfterMax: with a breaker, when the next probe is further
// away; without one, when the provider's Retry-After is longer.
func TestBreakerRetryAfterCap(t *testing.T) {
	forEachBackend(t, func(t *testing.T, redisURL string) {
		f := newFleet(t, redisURL, 1, 2, func(c *Config) {
			c.ProbeInterval, c.RetryAfterMax = 10*time.Second, 3*time.Second
		})
		f.dev.SetOutage(devprovider.Outage503, time.Hour, 0)
		for i := range 2 {
			_, err := f.replicas[0].r.Token(t.Context(), f.sids[i], Want{})
			var ue *UnavailableError
			if !errors.As(err, &ue) || ue.RetryAfter != 3*time.Second {
				t.Fatalf("call %d, probe 10 s away: %v; want Retry-After 3s (the cap)", i, err)
			}
		}

		g := newFleet(t, redisURL, 1, 1, func(c *Config) { c.Circuit = nil })
		g.dev.SetOutage(devprovider.Outage503, time.Hour, 0)
		_, err := g.replicas[0].r.Token(t.Context(), g.sids[0], Want{})
		var ue *UnavailableError
		if !errors.As(err, &ue) || ue.RetryAfter != DefaultRetryAfterMax {
			t.Fatalf("no breaker, provider Retry-After 3600: %v; want Retry-After %v", err, DefaultRetryAfterMax)
		}
	})
}

// TestBreakerHotPath: a valid token outside its buffer is handed out
// without a word to the breaker's store, open circuit or not, and is not
// marked degraded.
func TestBreakerHotPath(t *testing.T) {
	forEachBackend(t, func(t *testing.T, redisURL string) {
		f := newFleet(t, redisURL, 1, 2, nil)
		ctx := t.Context()
		rep := f.replicas[0]
		valid := *f.recs[1]
		valid.IssuedAt, valid.Expiry = time.Now(), time.Now().Add(time.Hour)
		if err := rep.v.Put(ctx, f.sids[1], &valid, time.Hour); err != nil {
			t.Fatal(err)
		}
		f.dev.SetOutage(devprovider.Outage503, time.Hour, 0)
		if _, err := rep.r.Token(ctx, f.sids[0], Want{}); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("expired token: %v; want unavailable", err)
		}
		before := rep.circuit.calls.Load()
		for range 100 {
			res, err := rep.r.Token(ctx, f.sids[1], Want{})
			if err != nil || res.Degraded || res.Record.AccessToken != valid.AccessToken {
				t.Fatalf("valid token, circuit open: %+v, %v; want it, not degraded", res, err)
			}
		}
		if n := rep.circuit.calls.Load() - before; n != 0 {
			t.Errorf("100 valid-token calls made %d calls to the circuit store; want 0", n)
		}
	})
}

// TestBreakerHoldsCallerForProbe: an expired token's caller that comes
// back just before the probe (as Retry-After, rounded down, makes it) is
// held and answered by the probe: a fresh token, not another 503.
func TestBreakerHoldsCallerForProbe(t *testing.T) {
	forEachBackend(t, func(t *testing.T, redisURL string) {
		f := newFleet(t, redisURL, 2, 2, nil)
		ctx := t.Context()
		f.dev.SetOutage(devprovider.Outage503, time.Hour, 0)
		if _, err := f.replicas[0].r.Token(ctx, f.sids[0], Want{}); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("during the outage: %v", err)
		}
		f.dev.SetOutage(devprovider.OutageNone, 0, 0)
		due := f.shared(t).DownUntil
		time.Sleep(time.Until(due.Add(-600 * time.Millisecond)))
		t0 := time.Now()
		res, err := f.replicas[1].r.Token(ctx, f.sids[1], Want{})
		if err != nil || res.Degraded {
			t.Fatalf("caller 0.6 s before the probe: %+v, %v; want a fresh token", res, err)
		}
		if time.Now().Before(due) {
			t.Errorf("answered %v before the probe was due", due.Sub(time.Now()))
		}
		t.Logf("held %v", time.Since(t0).Round(time.Millisecond))
		if got := f.dev.Stats().OutageHits; got != 1 {
			t.Errorf("provider outage hits = %d; want 1", got)
		}
	})
}
