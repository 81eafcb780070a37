package vault

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// endedSuite is the part of the conformance suite about ending sessions
// (End) and conditional writes (Update).
func endedSuite(t *testing.T, run func(string, func(*testing.T, *harness))) {
	ctx := context.Background()

	run("EndLeavesTheReason", func(t *testing.T, h *harness) {
		if err := h.v.Put(ctx, "sid", sampleRecord(), time.Hour); err != nil {
			t.Fatal(err)
		}
		if got, err := h.v.End(ctx, "sid", "signed_out", 24*time.Hour); err != nil || got != "signed_out" {
			t.Fatalf("End = %q, %v; want signed_out", got, err)
		}
		_, err := h.v.Get(ctx, "sid")
		var ee *EndedError
		if !errors.As(err, &ee) || ee.Reason != "signed_out" || !errors.Is(err, ErrEnded) || !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get after End: err = %v; want an EndedError signed_out that is ErrEnded and ErrNotFound", err)
		}
		// The tombstone lives no longer than the record would have.
		if pttl, err := h.rdb.PTTL(ctx, h.v.sessionKey("sid")).Result(); err != nil || pttl <= 59*time.Minute || pttl > time.Hour {
			t.Fatalf("tombstone PTTL = %v, %v; want the record's remaining hour", pttl, err)
		}
		// It names no secret and no session id.
		raw, _ := h.rdb.Get(ctx, h.v.sessionKey("sid")).Result()
		if raw != tombstonePrefix+"signed_out" {
			t.Fatalf("tombstone = %q", raw)
		}
		// A session ends once: a second end (the provider refusing the
		// grant the logout revoked, say) leaves the first reason in force.
		if got, err := h.v.End(ctx, "sid", "revoked", 48*time.Hour); err != nil || got != "signed_out" {
			t.Fatalf("second End = %q, %v; want signed_out, the reason in force", got, err)
		}
		if _, err := h.v.Get(ctx, "sid"); !errors.As(err, &ee) || ee.Reason != "signed_out" {
			t.Fatalf("after a second End: %v; want signed_out", err)
		}
		if pttl, _ := h.rdb.PTTL(ctx, h.v.sessionKey("sid")).Result(); pttl > time.Hour {
			t.Fatalf("a second End extended the tombstone to %v", pttl)
		}
		// Another session is another key.
		if err := h.v.Put(ctx, "other", sampleRecord(), time.Hour); err != nil {
			t.Fatal(err)
		}
		if _, err := h.v.Get(ctx, "other"); err != nil {
			t.Fatalf("End touched another session: %v", err)
		}
	})

	run("EndTTLBounds", func(t *testing.T, h *harness) {
		// No record (it expired, or never was): the full ttl.
		if _, err := h.v.End(ctx, "gone", "expired", 24*time.Hour); err != nil {
			t.Fatal(err)
		}
		if pttl, _ := h.rdb.PTTL(ctx, h.v.sessionKey("gone")).Result(); pttl <= 23*time.Hour || pttl > 24*time.Hour {
			t.Errorf("tombstone of a missing record: PTTL %v; want 24h", pttl)
		}
		// A record about to expire: at least a minute, so the refreshes
		// in flight and the tabs still asking hear why.
		if err := h.v.Put(ctx, "short", sampleRecord(), 2*time.Second); err != nil {
			t.Fatal(err)
		}
		if _, err := h.v.End(ctx, "short", "revoked", 24*time.Hour); err != nil {
			t.Fatal(err)
		}
		if pttl, _ := h.rdb.PTTL(ctx, h.v.sessionKey("short")).Result(); pttl <= 59*time.Second || pttl > time.Minute {
			t.Errorf("tombstone of a record about to expire: PTTL %v; want a minute", pttl)
		}
		// Never longer than asked.
		if _, err := h.v.End(ctx, "brief", "revoked", h.ttl); err != nil {
			t.Fatal(err)
		}
		if pttl, _ := h.rdb.PTTL(ctx, h.v.sessionKey("brief")).Result(); pttl <= 0 || pttl > h.ttl {
			t.Errorf("PTTL %v; want at most %v", pttl, h.ttl)
		}
		h.advance(h.ttl + 200*time.Millisecond)
		if _, err := h.v.Get(ctx, "brief"); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrEnded) {
			t.Errorf("after the tombstone expired: %v; want plain ErrNotFound", err)
		}
	})

	run("EndBadArguments", func(t *testing.T, h *harness) {
		for _, reason := range []string{"", "signed out", "a\x00b", string(make([]byte, 65))} {
			if _, err := h.v.End(ctx, "sid", reason, time.Hour); err == nil {
				t.Errorf("End with reason %q: err = nil", reason)
			}
		}
		if _, err := h.v.End(ctx, "sid", "revoked", 0); err == nil {
			t.Error("End with ttl 0: err = nil")
		}
		if _, err := h.v.End(ctx, "", "revoked", time.Hour); err == nil {
			t.Error("End with an empty id: err = nil")
		}
		if n, _ := h.rdb.DBSize(ctx).Result(); n != 0 {
			t.Errorf("DBSIZE = %d; rejected calls must store nothing", n)
		}
	})

	run("UpdateOnlyALiveRecord", func(t *testing.T, h *harness) {
		rec := sampleRecord()
		if err := h.v.Put(ctx, "live", rec, time.Hour); err != nil {
			t.Fatal(err)
		}
		next := *rec
		next.AccessToken = "at-refreshed"
		if err := h.v.Update(ctx, "live", &next, 2*time.Hour); err != nil {
			t.Fatalf("Update of a live record: %v", err)
		}
		if got, err := h.v.Get(ctx, "live"); err != nil || got.AccessToken != "at-refreshed" {
			t.Fatalf("after Update: %+v, %v", got, err)
		}
		if pttl, _ := h.rdb.PTTL(ctx, h.v.sessionKey("live")).Result(); pttl <= time.Hour {
			t.Errorf("Update kept the old TTL: %v", pttl)
		}

		// A missing key stays missing.
		if err := h.v.Update(ctx, "missing", &next, time.Hour); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrEnded) {
			t.Fatalf("Update of a missing record: err = %v; want ErrNotFound", err)
		}
		if n, _ := h.rdb.Exists(ctx, h.v.sessionKey("missing")).Result(); n != 0 {
			t.Fatal("Update created a missing record")
		}

		// An ended session stays ended, and says why.
		if _, err := h.v.End(ctx, "live", "signed_out", time.Hour); err != nil {
			t.Fatal(err)
		}
		var ee *EndedError
		if err := h.v.Update(ctx, "live", &next, time.Hour); !errors.As(err, &ee) || ee.Reason != "signed_out" {
			t.Fatalf("Update of an ended session: err = %v; want an EndedError signed_out", err)
		}
		if _, err := h.v.Get(ctx, "live"); !errors.As(err, &ee) || ee.Reason != "signed_out" {
			t.Fatalf("Update overwrote the tombstone: %v", err)
		}
	})

	run("EndWinsOverConcurrentUpdates", func(t *testing.T, h *harness) {
		for round := range 20 {
			if err := h.v.Put(ctx, "sid", sampleRecord(), time.Hour); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			start := make(chan struct{})
			for range 8 {
				wg.Go(func() {
					<-start
					h.v.Update(ctx, "sid", sampleRecord(), time.Hour)
				})
			}
			wg.Go(func() {
				<-start
				if _, err := h.v.End(ctx, "sid", "signed_out", time.Hour); err != nil {
					t.Error(err)
				}
			})
			close(start)
			wg.Wait()
			if _, err := h.v.Get(ctx, "sid"); !errors.Is(err, ErrEnded) {
				t.Fatalf("round %d: after End raced with updates, Get: %v; want ErrEnded", round, err)
			}
		}
	})
}
