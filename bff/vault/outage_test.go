package vault

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// outageSuite checks that an unreachable Redis is reported as such and never
// as "not found", "locked" or "lock lost", which callers act on by deleting
// a session or giving up.
func outageSuite(t *testing.T, run func(string, func(*testing.T, *harness))) {
	run("CanceledContext", func(t *testing.T, h *harness) {
		if err := h.v.Put(context.Background(), "sid", sampleRecord(), time.Hour); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := h.v.Get(ctx, "sid")
		if !errors.Is(err, context.Canceled) || errors.Is(err, ErrNotFound) {
			t.Fatalf("Get with a canceled context: err = %v; want context.Canceled, not ErrNotFound", err)
		}
		if _, err := h.v.TryLock(ctx, "sid", time.Minute); !errors.Is(err, context.Canceled) {
			t.Fatalf("TryLock with a canceled context: err = %v; want context.Canceled", err)
		}
	})

	run("ServerDown", func(t *testing.T, h *harness) {
		ctx := context.Background()
		if err := h.v.Put(ctx, "sid", sampleRecord(), time.Hour); err != nil {
			t.Fatal(err)
		}
		l, err := h.v.TryLock(ctx, "sid", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		h.stop()

		ops := []struct {
			name string
			do   func(context.Context) error
		}{
			{"Get", func(ctx context.Context) error { _, err := h.v.Get(ctx, "sid"); return err }},
			{"Put", func(ctx context.Context) error { return h.v.Put(ctx, "sid", sampleRecord(), time.Hour) }},
			{"Delete", func(ctx context.Context) error { return h.v.Delete(ctx, "sid") }},
			{"MarkLoginUsed", func(ctx context.Context) error { _, err := h.v.MarkLoginUsed(ctx, "st", time.Hour); return err }},
			{"LoginUsed", func(ctx context.Context) error { _, err := h.v.LoginUsed(ctx, "st"); return err }},
			{"TryLock", func(ctx context.Context) error { _, err := h.v.TryLock(ctx, "sid", time.Minute); return err }},
			{"Renew", func(ctx context.Context) error { return l.Renew(ctx, time.Minute) }},
			{"Release", func(ctx context.Context) error { return l.Release(ctx) }},
			{"Ping", func(ctx context.Context) error { return h.v.Ping(ctx) }},
		}
		// Each op waits out go-redis's retries; run them side by side.
		errs := make([]error, len(ops))
		took := make([]time.Duration, len(ops))
		var wg sync.WaitGroup
		for i, op := range ops {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				start := time.Now()
				errs[i] = op.do(ctx)
				took[i] = time.Since(start)
			})
		}
		wg.Wait()
		for i, op := range ops {
			switch err := errs[i]; {
			case err == nil:
				t.Errorf("%s with the server down: err = nil", op.name)
			case errors.Is(err, ErrNotFound), errors.Is(err, ErrLocked), errors.Is(err, ErrLockLost):
				t.Errorf("%s with the server down: err = %v; want an outage, not a verdict", op.name, err)
			case !strings.HasPrefix(err.Error(), "vault: "):
				t.Errorf("%s: err = %q; want a vault: prefix", op.name, err)
			}
			t.Logf("%s with the server down: %v after %v", op.name, errs[i], took[i].Round(time.Millisecond))
		}

		h.restart()
		deadline := time.Now().Add(5 * time.Second)
		for h.v.Ping(ctx) != nil {
			if time.Now().After(deadline) {
				t.Fatal("vault did not reconnect after the server came back")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err := h.v.Put(ctx, "sid2", sampleRecord(), time.Hour); err != nil {
			t.Fatalf("Put after restart: %v", err)
		}
		if _, err := h.v.Get(ctx, "sid2"); err != nil {
			t.Fatalf("Get after restart: %v", err)
		}
	})
}
