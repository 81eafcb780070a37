package vault

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// circuitSuite is the part of the conformance suite about the shared
// circuit breaker state.
func circuitSuite(t *testing.T, run func(string, func(*testing.T, *harness))) {
	ctx := context.Background()
	t0 := fixedNow
	due := t0.Add(2 * time.Second)

	run("CircuitOpensAfterThreshold", func(t *testing.T, h *harness) {
		c := h.v.Circuit("https://idp.example/token")
		if st, err := c.State(ctx); err != nil || st.Open || st.Failures != 0 {
			t.Fatalf("new circuit: %+v, %v; want closed, no failures", st, err)
		}
		for i := int64(1); i <= 2; i++ {
			st, err := c.Fail(ctx, 3, due)
			if err != nil || st.Open || st.Failures != i {
				t.Fatalf("failure %d: %+v, %v; want closed with %d failures", i, st, err, i)
			}
		}
		if st, err := c.State(ctx); err != nil || st.Open || st.Failures != 2 {
			t.Fatalf("State after 2 failures: %+v, %v", st, err)
		}
		st, err := c.Fail(ctx, 3, due)
		if err != nil || !st.Open || !st.DownUntil.Equal(due) || !st.LastProbe.IsZero() {
			t.Fatalf("third failure: %+v, %v; want open until %v, no probe yet", st, err, due)
		}
		// A failure while open neither extends nor restarts anything.
		if st, err := c.Fail(ctx, 3, due.Add(time.Hour)); err != nil || !st.Open || !st.DownUntil.Equal(due) {
			t.Fatalf("failure while open: %+v, %v; want still open until %v", st, err, due)
		}
		if st, err := c.State(ctx); err != nil || !st.Open || !st.DownUntil.Equal(due) {
			t.Fatalf("State: %+v, %v; want open until %v", st, err, due)
		}
		// Another provider's circuit is another circuit.
		if st, err := h.v.Circuit("other").State(ctx); err != nil || st.Open {
			t.Fatalf("another circuit: %+v, %v; want closed", st, err)
		}
		// Every key expires, and all share one hash tag (Redis Cluster).
		for _, k := range []string{c.state, c.fails, c.probe} {
			if !strings.Contains(k, "{") || k[strings.Index(k, "{"):strings.Index(k, "}")] != c.state[strings.Index(c.state, "{"):strings.Index(c.state, "}")] {
				t.Errorf("key %q does not share the hash tag of %q", k, c.state)
			}
		}
		if pttl, err := h.rdb.PTTL(ctx, c.state).Result(); err != nil || pttl <= 0 || pttl > circuitTTL {
			t.Errorf("state PTTL = %v, %v; want in (0, %v]", pttl, err, circuitTTL)
		}
	})

	run("CircuitThresholdOne", func(t *testing.T, h *harness) {
		st, err := h.v.Circuit("p").Fail(ctx, 1, due)
		if err != nil || !st.Open {
			t.Fatalf("Fail with threshold 1: %+v, %v; want open at once", st, err)
		}
	})

	run("CircuitResetClearsCount", func(t *testing.T, h *harness) {
		c := h.v.Circuit("p")
		c.Fail(ctx, 3, due)
		c.Fail(ctx, 3, due)
		if err := c.Reset(ctx); err != nil {
			t.Fatal(err)
		}
		// The count starts again: two more failures do not open it.
		c.Fail(ctx, 3, due)
		if st, err := c.Fail(ctx, 3, due); err != nil || st.Open || st.Failures != 2 {
			t.Fatalf("after Reset, two failures: %+v, %v; want closed with 2", st, err)
		}
	})

	run("CircuitProbeOnce", func(t *testing.T, h *harness) {
		c := h.v.Circuit("p")
		if l, st, err := c.TryProbe(ctx, t0, time.Minute); l != nil || err != nil || st.Open {
			t.Fatalf("TryProbe on a closed circuit: %v %+v %v; want nothing to probe", l, st, err)
		}
		if _, err := c.Fail(ctx, 1, due); err != nil {
			t.Fatal(err)
		}
		if l, st, err := c.TryProbe(ctx, due.Add(-time.Millisecond), time.Minute); l != nil || !errors.Is(err, ErrProbeNotDue) || !st.DownUntil.Equal(due) {
			t.Fatalf("TryProbe before due: %v %+v %v; want ErrProbeNotDue and the due time", l, st, err)
		}
		slots := make(chan *Lock, 20)
		wins, busy, others := race(20, func() error {
			l, _, err := c.TryProbe(ctx, due, time.Minute)
			if err == nil {
				if l == nil {
					return errors.New("nil slot without an error")
				}
				slots <- l
			}
			return err
		}, ErrProbeBusy)
		if wins != 1 || busy != 19 || len(others) > 0 {
			t.Fatalf("20 concurrent probes: %d won, %d busy, others %v; want 1, 19, none", wins, busy, others)
		}
		slot := <-slots
		if pttl, err := h.rdb.PTTL(ctx, c.probe).Result(); err != nil || pttl <= 0 || pttl > time.Minute {
			t.Fatalf("probe slot PTTL = %v, %v; want its lease", pttl, err)
		}

		// The probe fails: open again until the next probe, slot freed.
		probedAt, next := due.Add(50*time.Millisecond), due.Add(2*time.Second)
		if ok, err := c.Reopen(ctx, slot, probedAt, next); err != nil || !ok {
			t.Fatalf("Reopen = %v, %v; want true", ok, err)
		}
		st, err := c.State(ctx)
		if err != nil || !st.Open || !st.DownUntil.Equal(next) || !st.LastProbe.Equal(probedAt) {
			t.Fatalf("after a failed probe: %+v, %v; want open until %v, last probe %v", st, err, next, probedAt)
		}
		if _, _, err := c.TryProbe(ctx, probedAt, time.Minute); !errors.Is(err, ErrProbeNotDue) {
			t.Fatalf("TryProbe right after a failed probe: %v; want ErrProbeNotDue", err)
		}
		// A slot is good once.
		if ok, err := c.Reopen(ctx, slot, probedAt, next.Add(time.Hour)); err != nil || ok {
			t.Fatalf("Reopen with a used slot = %v, %v; want false", ok, err)
		}
		slot2, _, err := c.TryProbe(ctx, next, time.Minute)
		if err != nil || slot2 == nil {
			t.Fatalf("TryProbe at the next due time: %v, %v; want the slot", slot2, err)
		}

		// The probe succeeds: closed for everyone, and a probe that fails
		// later cannot reopen it.
		if err := c.Reset(ctx); err != nil {
			t.Fatal(err)
		}
		if st, err := c.State(ctx); err != nil || st.Open {
			t.Fatalf("after Reset: %+v, %v; want closed", st, err)
		}
		if ok, err := c.Reopen(ctx, slot2, next, next.Add(time.Hour)); err != nil || ok {
			t.Fatalf("Reopen after Reset = %v, %v; want false", ok, err)
		}
		if st, _ := c.State(ctx); st.Open {
			t.Fatal("a stale probe reopened a closed circuit")
		}
		if n, err := h.rdb.Exists(ctx, c.state, c.fails, c.probe).Result(); err != nil || n != 0 {
			t.Fatalf("after Reset %d circuit keys remain (%v)", n, err)
		}
	})

	run("CircuitProbeSlotReleased", func(t *testing.T, h *harness) {
		c := h.v.Circuit("p")
		c.Fail(ctx, 1, due)
		slot, _, err := c.TryProbe(ctx, due, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		// The probe did not reach the provider: another may go at once.
		if err := slot.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if l, _, err := c.TryProbe(ctx, due, time.Minute); err != nil || l == nil {
			t.Fatalf("TryProbe after Release: %v, %v; want the slot", l, err)
		}
	})

	run("CircuitMalformedIsDue", func(t *testing.T, h *harness) {
		c := h.v.Circuit("p")
		if err := h.rdb.Set(ctx, c.state, "garbage", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		st, err := c.State(ctx)
		if err != nil || !st.Open || !st.DownUntil.IsZero() {
			t.Fatalf("malformed state: %+v, %v; want open and due", st, err)
		}
		if l, _, err := c.TryProbe(ctx, t0, time.Minute); err != nil || l == nil {
			t.Fatalf("TryProbe on a malformed state: %v, %v; want the slot (the probe settles it)", l, err)
		}
	})
}
