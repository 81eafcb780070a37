package refresh

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/vault"
)

// TestIdleTimeoutEngine: a use is recorded in the background once the
// recorded one is an eighth of the idle timeout old; a session ends once
// unused for the idle timeout plus that eighth, not sooner.
func TestIdleTimeoutEngine(t *testing.T) {
	e := newEngine(t)
	ctx := t.Context()
	var mu sync.Mutex
	now := e.rec.Created
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	// A token that never expires: no refresh muddles the picture.
	rec := *e.rec
	rec.Expiry, rec.RefreshExpiry = time.Time{}, time.Time{}
	if err := e.v.Put(ctx, e.sid, &rec, time.Hour); err != nil {
		t.Fatal(err)
	}
	obs := &countObserver{}
	r := New(e.v, e.r.provider, Config{IdleTimeout: 8 * time.Minute, Observer: obs, Now: clock})
	if r.touchEvery() != time.Minute {
		t.Fatalf("touchEvery = %v; want 1m", r.touchEvery())
	}
	recorded := func() time.Time {
		t.Helper()
		rec, err := e.v.Get(ctx, e.sid)
		if err != nil {
			t.Fatal(err)
		}
		return rec.LastUsed
	}

	advance(30 * time.Second) // inside the recording interval: nothing written
	if _, err := r.Token(ctx, e.sid, Want{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if !recorded().IsZero() {
		t.Fatal("a use inside the recording interval was written")
	}
	advance(time.Minute)
	if _, err := r.Token(ctx, e.sid, Want{}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); !recorded().Equal(clock()); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("LastUsed = %v; want %v", recorded(), clock())
		}
	}

	advance(9 * time.Minute) // the idle timeout plus its eighth: not yet
	if _, err := r.Token(ctx, e.sid, Want{}); err != nil {
		t.Fatalf("after 9m unused: %v; want the token", err)
	}
	used := clock()
	for deadline := time.Now().Add(5 * time.Second); !recorded().Equal(used); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the use was not recorded")
		}
	}
	advance(9*time.Minute + time.Second)
	var re *ReconnectError
	if _, err := r.Token(ctx, e.sid, Want{}); !errors.As(err, &re) || re.Reason != ReasonExpired {
		t.Fatalf("after 9m1s unused: %v; want a ReconnectError expired", err)
	}
	var ee *vault.EndedError
	if _, err := e.v.Get(ctx, e.sid); !errors.As(err, &ee) || ee.Reason != string(ReasonExpired) {
		t.Fatalf("the idle session in the vault: %v; want ended, expired", err)
	}
	if st := e.dev.Stats(); st.RefreshToken != 0 {
		t.Errorf("provider refreshes = %d; want 0", st.RefreshToken)
	}
	if n := obs.count(OutcomeIdle); n != 1 {
		t.Errorf("idle outcomes = %d; want 1", n)
	}
}

// countObserver counts outcomes.
type countObserver struct {
	mu       sync.Mutex
	outcomes map[Outcome]int
}

func (o *countObserver) Refreshed(x Outcome) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.outcomes == nil {
		o.outcomes = map[Outcome]int{}
	}
	o.outcomes[x]++
}

func (o *countObserver) count(x Outcome) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.outcomes[x]
}

func (*countObserver) ProviderLatency(time.Duration) {}
func (*countObserver) LockWait(time.Duration)        {}
