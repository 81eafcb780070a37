package vault

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// throttleSuite is the part of the conformance suite about Allow.
func throttleSuite(t *testing.T, run func(string, func(*testing.T, *harness))) {
	ctx := context.Background()
	const every, burst = 10 * time.Second, 3

	run("AllowBurstThenRate", func(t *testing.T, h *harness) {
		now := time.UnixMilli(1_800_000_000_000)
		take := func(at time.Time) time.Duration {
			t.Helper()
			wait, err := h.v.Allow(ctx, "sid", at, every, burst)
			if err != nil {
				t.Fatal(err)
			}
			return wait
		}
		for i := range burst {
			if wait := take(now); wait != 0 {
				t.Fatalf("call %d of the burst: wait %v; want 0", i, wait)
			}
		}
		for range 3 { // refused calls take nothing
			if wait := take(now); wait != every {
				t.Fatalf("past the burst: wait %v; want %v", wait, every)
			}
		}
		if wait := take(now.Add(4 * time.Second)); wait != 6*time.Second {
			t.Fatalf("4 s later: wait %v; want 6s", wait)
		}
		if wait := take(now.Add(every)); wait != 0 {
			t.Fatalf("one interval later: wait %v; want 0", wait)
		}
		if wait := take(now.Add(every)); wait != every {
			t.Fatalf("again: wait %v; want %v", wait, every)
		}
		// Another session has a bucket of its own.
		if wait, err := h.v.Allow(ctx, "other", now, every, burst); err != nil || wait != 0 {
			t.Fatalf("another session: %v, %v", wait, err)
		}
		// The key lives only until the bucket is full again.
		pttl, err := h.rdb.PTTL(ctx, h.v.bucketKey("sid")).Result()
		if err != nil || pttl <= 0 || pttl > burst*every {
			t.Fatalf("bucket PTTL = %v, %v; want in (0, %v]", pttl, err, burst*every)
		}
		// Long idle: a full burst again.
		later := now.Add(time.Hour)
		for i := range burst {
			if wait := take(later); wait != 0 {
				t.Fatalf("an hour later, call %d: wait %v", i, wait)
			}
		}
	})

	run("AllowSharedAndAtomic", func(t *testing.T, h *harness) {
		replica, err := New(h.rdb, testKey)
		if err != nil {
			t.Fatal(err)
		}
		now := time.UnixMilli(1_800_000_000_000)
		var calls atomic.Int32
		wins, _, others := race(30, func() error {
			v := h.v
			if calls.Add(1)%2 == 0 {
				v = replica
			}
			wait, err := v.Allow(ctx, "sid", now, every, burst)
			if err == nil && wait > 0 {
				return errors.New("wait")
			}
			return err
		}, errors.New("never"))
		if wins != burst || len(others) != 30-burst {
			t.Fatalf("30 concurrent takes over two vaults: %d allowed; want %d", wins, burst)
		}
	})

	run("AllowExpires", func(t *testing.T, h *harness) {
		step := h.ttl / 3
		if _, err := h.v.Allow(ctx, "sid", time.Now(), step, 3); err != nil {
			t.Fatal(err)
		}
		h.advance(h.ttl + 200*time.Millisecond)
		if n, _ := h.rdb.Exists(ctx, h.v.bucketKey("sid")).Result(); n != 0 {
			t.Fatal("a full bucket's key is still there")
		}
	})

	run("AllowBadArguments", func(t *testing.T, h *harness) {
		for _, c := range []struct {
			sid   string
			every time.Duration
			burst int
		}{{"", time.Second, 1}, {"sid", 0, 1}, {"sid", time.Second, 0}} {
			if _, err := h.v.Allow(ctx, c.sid, time.Now(), c.every, c.burst); err == nil {
				t.Errorf("Allow(%q, %v, %d): err = nil", c.sid, c.every, c.burst)
			}
		}
	})
}
