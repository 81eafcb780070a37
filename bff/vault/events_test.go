package vault

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tetherauth/tether/bff/vault/redistest"
)

// eventsServer is a Redis for the announcement tests, with a blip: the
// subscription's connection drops and comes back, data kept.
type eventsServer struct {
	url  string
	blip func(t *testing.T, rdb redis.UniversalClient)
}

func eventsMiniredis(t *testing.T) eventsServer {
	mr := miniredis.NewMiniRedis()
	if err := mr.StartAddr("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mr.Close)
	return eventsServer{url: "redis://" + mr.Addr(), blip: func(t *testing.T, _ redis.UniversalClient) {
		mr.Close() // every connection drops; the data stays
		if err := mr.Restart(); err != nil {
			t.Fatal(err)
		}
	}}
}

func eventsRealRedis(t *testing.T) eventsServer {
	srv := redistest.Start(t)
	return eventsServer{url: "redis://" + srv.Addr, blip: killPubSub}
}

func eventsCluster(t *testing.T) eventsServer {
	srv := startCluster(t)
	return eventsServer{url: "redis+cluster://" + srv.Addr, blip: killPubSub}
}

// killPubSub drops every subscriber's connection (CLIENT KILL TYPE pubsub),
// as a network blip or a failover would.
func killPubSub(t *testing.T, rdb redis.UniversalClient) {
	t.Helper()
	if err := rdb.Do(context.Background(), "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
}

func TestEventsMiniredis(t *testing.T) { eventsSuite(t, eventsMiniredis) }
func TestEventsRealRedis(t *testing.T) { eventsSuite(t, eventsRealRedis) }
func TestEventsCluster(t *testing.T)   { eventsSuite(t, eventsCluster) }

// openOn opens a vault (a replica) on url.
func openOn(t *testing.T, url string) *Vault {
	t.Helper()
	v, err := Open(context.Background(), url, testKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

func watcher(t *testing.T, v *Vault, cfg WatcherConfig) *Watcher {
	w := v.Watcher(cfg)
	t.Cleanup(w.Close)
	return w
}

func mustWatch(t *testing.T, w *Watcher, sid string) *Watch {
	t.Helper()
	x, err := w.Watch(sid)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// expectEnding waits for x's ending.
func expectEnding(t *testing.T, x *Watch, want string, within time.Duration) {
	t.Helper()
	select {
	case e := <-x.C:
		if e.Reason != want {
			t.Fatalf("ending %q; want %q", e.Reason, want)
		}
	case <-time.After(within):
		t.Fatalf("no ending within %v; want %q", within, want)
	}
}

func expectNothing(t *testing.T, x *Watch, d time.Duration) {
	t.Helper()
	select {
	case e := <-x.C:
		t.Fatalf("unexpected ending %q", e.Reason)
	case <-time.After(d):
	}
}

// waitSubscribed waits until w's subscription has been answered n times
// and the read-backs that follow are done.
func waitSubscribed(t *testing.T, w *Watcher, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		w.mu.Lock()
		subs, checks := w.subs, w.checks
		w.mu.Unlock()
		if subs >= n && checks >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscription answered %d times, read back %d times; want %d", subs, checks, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func eventsSuite(t *testing.T, server func(*testing.T) eventsServer) {
	ctx := context.Background()
	run := func(name string, f func(t *testing.T, s eventsServer)) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f(t, server(t))
		})
	}

	run("EveryReplicaHearsTheEnd", func(t *testing.T, s eventsServer) {
		a, b := openOn(t, s.url), openOn(t, s.url)
		wa, wb := watcher(t, a, WatcherConfig{Sweep: -1}), watcher(t, b, WatcherConfig{Sweep: -1})
		for _, sid := range []string{"alice-1", "bob-1"} {
			if err := a.Put(ctx, sid, sampleRecord(), time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		xa, xb, xb2 := mustWatch(t, wa, "alice-1"), mustWatch(t, wb, "alice-1"), mustWatch(t, wb, "alice-1")
		other := mustWatch(t, wb, "bob-1")
		waitSubscribed(t, wa, 1)
		waitSubscribed(t, wb, 1)
		if _, err := a.End(ctx, "alice-1", "signed_out", time.Hour); err != nil {
			t.Fatal(err)
		}
		for _, x := range []*Watch{xa, xb, xb2} {
			expectEnding(t, x, "signed_out", 5*time.Second)
		}
		expectNothing(t, other, 200*time.Millisecond)
		// A session ends once; a second End announces the reason in
		// force, and a watch that had its ending gets nothing more.
		if _, err := b.End(ctx, "alice-1", "revoked", time.Hour); err != nil {
			t.Fatal(err)
		}
		expectNothing(t, xa, 200*time.Millisecond)
		if wa.Subscriptions() != 1 || wb.Subscriptions() != 1 {
			t.Errorf("subscriptions %d, %d; want one per watcher however many watches", wa.Subscriptions(), wb.Subscriptions())
		}
	})

	run("ListenersHearEveryEnd", func(t *testing.T, s eventsServer) {
		// A listener (a cache) hears every ending, watched or not, and
		// each (re)subscription, without any watch; Listen subscribes.
		a, b := openOn(t, s.url), openOn(t, s.url)
		w := watcher(t, b, WatcherConfig{Sweep: -1})
		ended, subscribed := make(chan string, 10), make(chan struct{}, 10)
		w.Listen(Listener{Ended: func(hid string) { ended <- hid }, Subscribed: func() { subscribed <- struct{}{} }})
		waitSubscribed(t, w, 1)
		select {
		case <-subscribed:
		case <-time.After(5 * time.Second):
			t.Fatal("the listener was not told of the subscription")
		}
		if err := a.Put(ctx, "carol-1", sampleRecord(), time.Hour); err != nil {
			t.Fatal(err)
		}
		if _, err := a.End(ctx, "carol-1", "signed_out", time.Hour); err != nil {
			t.Fatal(err)
		}
		hear(t, ended, "carol-1", "the ending")
		// A deletion (a second login replaces the session) is heard too.
		if err := a.Put(ctx, "carol-2", sampleRecord(), time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := a.Delete(ctx, "carol-2"); err != nil {
			t.Fatal(err)
		}
		hear(t, ended, "carol-2", "the deletion")
		if w.Watching() != 0 {
			t.Fatalf("%d watches; a listener is not one", w.Watching())
		}
		s.blip(t, a.rdb) // what is announced now is lost: the listener must hear of the new subscription
		select {
		case <-subscribed:
		case <-time.After(10 * time.Second):
			t.Fatal("the listener was not told of the subscription after the blip")
		}
		w.Close()
		w.Listen(Listener{Ended: func(string) { t.Error("a listener added after Close heard something") }})
	})

	run("EndedOrGoneBeforeTheWatch", func(t *testing.T, s eventsServer) {
		v := openOn(t, s.url)
		w := watcher(t, v, WatcherConfig{Sweep: -1})
		if _, err := v.End(ctx, "ended", "revoked", time.Hour); err != nil {
			t.Fatal(err)
		}
		// The first subscription reads the watched sessions back.
		expectEnding(t, mustWatch(t, w, "ended"), "revoked", 5*time.Second)
		waitSubscribed(t, w, 1)
		// A record that is gone without an announcement (expired: a raw
		// DEL here; Delete announces) is an ending too, found by the
		// read-back after a blip.
		if err := v.Put(ctx, "live", sampleRecord(), time.Hour); err != nil {
			t.Fatal(err)
		}
		x := mustWatch(t, w, "live")
		if err := v.rdb.Del(ctx, v.sessionKey("live")).Err(); err != nil {
			t.Fatal(err)
		}
		expectNothing(t, x, 100*time.Millisecond)
		s.blip(t, v.rdb)
		expectEnding(t, x, "", 10*time.Second)
	})

	run("ReconnectReadsBack", func(t *testing.T, s eventsServer) {
		v := openOn(t, s.url)
		w := watcher(t, v, WatcherConfig{Sweep: -1})
		for _, sid := range []string{"s1", "s2"} {
			if err := v.Put(ctx, sid, sampleRecord(), time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		x1, x2 := mustWatch(t, w, "s1"), mustWatch(t, w, "s2")
		waitSubscribed(t, w, 1)
		// An end whose announcement this subscription never hears (it
		// fell in a blip): the tombstone written, nothing published.
		if err := v.rdb.Set(ctx, v.sessionKey("s1"), tombstonePrefix+"expired", time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
		expectNothing(t, x1, 200*time.Millisecond)
		s.blip(t, v.rdb)
		waitSubscribed(t, w, 2)
		expectEnding(t, x1, "expired", 10*time.Second)
		expectNothing(t, x2, 100*time.Millisecond)
		// And announcements arrive again after the blip.
		if _, err := v.End(ctx, "s2", "signed_out", time.Hour); err != nil {
			t.Fatal(err)
		}
		expectEnding(t, x2, "signed_out", 5*time.Second)
	})

	run("SweepFindsMissedEnds", func(t *testing.T, s eventsServer) {
		v := openOn(t, s.url)
		w := watcher(t, v, WatcherConfig{Sweep: 100 * time.Millisecond})
		if err := v.Put(ctx, "s", sampleRecord(), time.Hour); err != nil {
			t.Fatal(err)
		}
		x := mustWatch(t, w, "s")
		waitSubscribed(t, w, 1)
		if err := v.rdb.Set(ctx, v.sessionKey("s"), tombstonePrefix+"revoked", time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
		expectEnding(t, x, "revoked", 5*time.Second)
	})

	run("Bounds", func(t *testing.T, s eventsServer) {
		v := openOn(t, s.url)
		w := watcher(t, v, WatcherConfig{MaxWatches: 5, MaxPerSession: 2, Sweep: -1})
		for _, sid := range []string{"a", "b", "c"} {
			if err := v.Put(ctx, sid, sampleRecord(), time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		a1, _ := mustWatch(t, w, "a"), mustWatch(t, w, "a")
		if _, err := w.Watch("a"); !errors.Is(err, ErrTooManyWatches) {
			t.Fatalf("third watch of a session: %v; want ErrTooManyWatches", err)
		}
		a1.Stop()
		a1.Stop() // twice is harmless
		a3 := mustWatch(t, w, "a")
		mustWatch(t, w, "b")
		mustWatch(t, w, "b")
		mustWatch(t, w, "c")
		if _, err := w.Watch("d"); !errors.Is(err, ErrTooManyWatches) {
			t.Fatalf("sixth watch: %v; want ErrTooManyWatches", err)
		}
		if n := w.Watching(); n != 5 {
			t.Fatalf("Watching = %d; want 5", n)
		}
		// A stopped watch hears nothing; the others do.
		waitSubscribed(t, w, 1)
		if _, err := v.End(ctx, "a", "signed_out", time.Hour); err != nil {
			t.Fatal(err)
		}
		expectEnding(t, a3, "signed_out", 5*time.Second)
		expectNothing(t, a1, 100*time.Millisecond)
		w.Close()
		if _, err := w.Watch("e"); !errors.Is(err, ErrWatcherClosed) {
			t.Fatalf("Watch after Close: %v; want ErrWatcherClosed", err)
		}
	})
}

// hear waits up to 5 s for ended to carry sid's hashed id, told of what.
func hear(t *testing.T, ended <-chan string, sid, what string) {
	t.Helper()
	select {
	case hid := <-ended:
		if hid != HashID(sid) {
			t.Fatalf("the listener heard %q; want %s's hashed id", hid, sid)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("the listener did not hear %s", what)
	}
}
