package vault

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// touchSuite is the part of the conformance suite about Touch.
func touchSuite(t *testing.T, run func(string, func(*testing.T, *harness))) {
	ctx := context.Background()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

	run("TouchRecordsLastUse", func(t *testing.T, h *harness) {
		rec := sampleRecord()
		if err := h.v.Put(ctx, "sid", rec, time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := h.v.Touch(ctx, "sid", at); err != nil {
			t.Fatal(err)
		}
		got, err := h.v.Get(ctx, "sid")
		if err != nil || !got.LastUsed.Equal(at) {
			t.Fatalf("after Touch: %+v, %v; want LastUsed %v", got, err, at)
		}
		want := *rec
		want.LastUsed = at
		if *got != want {
			t.Fatalf("Touch changed more than LastUsed: %+v", got)
		}
		if pttl, _ := h.rdb.PTTL(ctx, h.v.sessionKey("sid")).Result(); pttl <= 59*time.Minute || pttl > time.Hour {
			t.Fatalf("PTTL after Touch = %v; want the record's own", pttl)
		}
		// An earlier use changes nothing.
		raw, _ := h.rdb.Get(ctx, h.v.sessionKey("sid")).Result()
		if err := h.v.Touch(ctx, "sid", at.Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
		if again, _ := h.rdb.Get(ctx, h.v.sessionKey("sid")).Result(); again != raw {
			t.Fatal("Touch with an earlier time rewrote the record")
		}
	})

	run("TouchLeavesEndedAndMissingAlone", func(t *testing.T, h *harness) {
		if err := h.v.Touch(ctx, "missing", at); err != nil {
			t.Fatal(err)
		}
		if n, _ := h.rdb.Exists(ctx, h.v.sessionKey("missing")).Result(); n != 0 {
			t.Fatal("Touch created a record")
		}
		if err := h.v.Put(ctx, "sid", sampleRecord(), time.Hour); err != nil {
			t.Fatal(err)
		}
		if _, err := h.v.End(ctx, "sid", "signed_out", time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := h.v.Touch(ctx, "sid", at); err != nil {
			t.Fatal(err)
		}
		if _, err := h.v.Get(ctx, "sid"); !errors.Is(err, ErrEnded) {
			t.Fatalf("after touching an ended session: %v; want ErrEnded", err)
		}
	})

	run("TouchNeverUndoesAWrite", func(t *testing.T, h *harness) {
		if err := h.v.Put(ctx, "sid", sampleRecord(), time.Hour); err != nil {
			t.Fatal(err)
		}
		for round := range 30 {
			next := sampleRecord()
			next.AccessToken = fmt.Sprintf("at-round-%d", round)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range 4 {
				wg.Go(func() {
					<-start
					if err := h.v.Touch(ctx, "sid", at.Add(time.Duration(round*10+i)*time.Second)); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Go(func() {
				<-start
				if err := h.v.Update(ctx, "sid", next, time.Hour); err != nil {
					t.Error(err)
				}
			})
			close(start)
			wg.Wait()
			if got, err := h.v.Get(ctx, "sid"); err != nil || got.AccessToken != next.AccessToken {
				t.Fatalf("round %d: %+v, %v; a Touch undid the update", round, got, err)
			}
		}
	})
}
