package vault

import (
	"context"
	"errors"
	"regexp"
	"testing"
	"time"
)

// lockSuite is the part of the conformance suite about TryLock, Renew and
// Release.
func lockSuite(t *testing.T, run func(string, func(*testing.T, *harness))) {
	ctx := context.Background()

	run("LockExclusive", func(t *testing.T, h *harness) {
		locks := make(chan *Lock, 20)
		wins, locked, others := race(20, func() error {
			l, err := h.v.TryLock(ctx, "sid", time.Minute)
			if err == nil {
				locks <- l
			}
			return err
		}, ErrLocked)
		if wins != 1 || locked != 19 || len(others) > 0 {
			t.Fatalf("wins, ErrLocked, other errors = %d, %d, %v; want 1, 19, none", wins, locked, others)
		}
		l := <-locks
		val, err := h.rdb.Get(ctx, h.v.lockKey("sid")).Result()
		if err != nil || val != l.token || !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(val) {
			t.Fatalf("lock value = %q, %v; want the holder's 16-byte hex token", val, err)
		}
		if pttl, err := h.rdb.PTTL(ctx, h.v.lockKey("sid")).Result(); err != nil || pttl <= 0 || pttl > time.Minute {
			t.Fatalf("lock PTTL = %v, %v; want in (0, 1m]", pttl, err)
		}
		// Another session's lock is another lock.
		other, err := h.v.TryLock(ctx, "other-sid", time.Minute)
		if err != nil {
			t.Fatalf("TryLock of another session: %v", err)
		}
		if other.token == l.token {
			t.Fatal("two locks share a token")
		}
	})

	run("ReleaseByNonHolder", func(t *testing.T, h *harness) {
		l, err := h.v.TryLock(ctx, "sid", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		forged := &Lock{v: h.v, key: l.key, token: "00000000000000000000000000000000"}
		if err := forged.Release(ctx); !errors.Is(err, ErrLockLost) {
			t.Fatalf("Release by non-holder: err = %v; want ErrLockLost", err)
		}
		if err := forged.Renew(ctx, time.Hour); !errors.Is(err, ErrLockLost) {
			t.Fatalf("Renew by non-holder: err = %v; want ErrLockLost", err)
		}
		if _, err := h.v.TryLock(ctx, "sid", time.Minute); !errors.Is(err, ErrLocked) {
			t.Fatalf("after a non-holder's Release, TryLock: err = %v; want ErrLocked", err)
		}
		if pttl, _ := h.rdb.PTTL(ctx, l.key).Result(); pttl > time.Minute {
			t.Fatalf("non-holder's Renew took effect: PTTL = %v", pttl)
		}
		if err := l.Release(ctx); err != nil {
			t.Fatalf("Release by holder: %v", err)
		}
		if err := l.Release(ctx); !errors.Is(err, ErrLockLost) {
			t.Fatalf("second Release: err = %v; want ErrLockLost", err)
		}
		if _, err := h.v.TryLock(ctx, "sid", time.Minute); err != nil {
			t.Fatalf("TryLock after Release: %v", err)
		}
	})

	run("LeaseExpiryLetsAnotherTakeIt", func(t *testing.T, h *harness) {
		old, err := h.v.TryLock(ctx, "sid", h.ttl)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.v.TryLock(ctx, "sid", h.ttl); !errors.Is(err, ErrLocked) {
			t.Fatalf("TryLock while held: err = %v; want ErrLocked", err)
		}
		h.advance(h.ttl + 200*time.Millisecond)
		cur, err := h.v.TryLock(ctx, "sid", time.Minute)
		if err != nil {
			t.Fatalf("TryLock after the lease ran out: %v", err)
		}
		if err := old.Renew(ctx, time.Hour); !errors.Is(err, ErrLockLost) {
			t.Fatalf("stale holder's Renew: err = %v; want ErrLockLost", err)
		}
		if err := old.Release(ctx); !errors.Is(err, ErrLockLost) {
			t.Fatalf("stale holder's Release: err = %v; want ErrLockLost", err)
		}
		if _, err := h.v.TryLock(ctx, "sid", time.Minute); !errors.Is(err, ErrLocked) {
			t.Fatalf("stale holder freed the new holder's lock: err = %v", err)
		}
		if err := cur.Release(ctx); err != nil {
			t.Fatalf("new holder's Release: %v", err)
		}
	})

	run("RenewExtends", func(t *testing.T, h *harness) {
		l, err := h.v.TryLock(ctx, "sid", h.ttl)
		if err != nil {
			t.Fatal(err)
		}
		step := h.ttl * 2 / 3
		h.advance(step)
		if err := l.Renew(ctx, h.ttl); err != nil {
			t.Fatalf("Renew: %v", err)
		}
		h.advance(step) // past the first lease, inside the renewed one
		if _, err := h.v.TryLock(ctx, "sid", h.ttl); !errors.Is(err, ErrLocked) {
			t.Fatalf("TryLock inside the renewed lease: err = %v; want ErrLocked", err)
		}
		if err := l.Renew(ctx, 0); err == nil {
			t.Fatal("Renew with lease 0: err = nil")
		}
		h.advance(h.ttl/2 + 200*time.Millisecond) // past the renewed lease
		if _, err := h.v.TryLock(ctx, "sid", h.ttl); err != nil {
			t.Fatalf("TryLock after the renewed lease: %v", err)
		}
	})
}
