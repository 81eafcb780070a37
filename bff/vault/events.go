package vault

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Announcements of ended sessions. Once a session's tombstone is written
// (endSession: End, EndHashed), the vault publishes "<hashed id> <reason>" on the channel
// <prefix>ended. A Watcher is a process's one subscription to that
// channel: it hands each announcement to the watches of that session in
// the process. PUBLISH reaches every subscriber of a Redis Cluster,
// whatever node it subscribed on, and Sentinel or single-node Redis alike.
//
// Pub/sub delivers at most once: a subscription that drops (a Redis blip,
// a failover) misses what was published meanwhile, and so does one whose
// SUBSCRIBE had not been answered yet. So each time the subscription is
// answered, and every WatcherConfig.Sweep besides, every watched session
// is read back (a pipelined GET of its key, no write): a tombstone or a
// missing record is handed to its watches as if it had been announced.
const endedChannel = "ended"

// announcement is the message on endedChannel that session hid ended for
// reason ("" when it was deleted): the Watcher reads it back with
// strings.Cut at the space.
func announcement(hid, reason string) string { return hid + " " + reason }

// Defaults of WatcherConfig.
const (
	DefaultMaxWatches    = 10000
	DefaultMaxPerSession = 4
	DefaultSweep         = 2 * time.Minute
)

// How the subscription is kept: a PING after pingEvery without traffic,
// a new subscription when its PONG does not come within pingEvery; after
// an error, a pause that doubles from retryMin to retryMax.
const (
	pingEvery      = 30 * time.Second
	retryMin       = 50 * time.Millisecond
	retryMax       = 2 * time.Second
	recheckBatch   = 256
	recheckTimeout = 5 * time.Second
)

// ErrTooManyWatches reports that Watch refused a watch: the session, or
// the Watcher, already has as many as its WatcherConfig allows.
var ErrTooManyWatches = errors.New("vault: too many watches")

// ErrWatcherClosed reports a Watch on a closed Watcher.
var ErrWatcherClosed = errors.New("vault: watcher closed")

// Ending is what a watch receives when its session ends.
type Ending struct {
	// Reason is the reason End was given (signed_out, revoked, expired,
	// …), or "" when the record is simply gone (it expired, or was
	// deleted) without a tombstone.
	Reason string
}

// WatcherConfig bounds a Watcher. Zero fields take the defaults.
type WatcherConfig struct {
	// MaxWatches bounds the watches of the Watcher in all
	// (DefaultMaxWatches).
	MaxWatches int
	// MaxPerSession bounds the watches of one session (DefaultMaxPerSession).
	MaxPerSession int
	// Sweep is how often every watched session is read back, besides each
	// time the subscription is (re)established (DefaultSweep); negative:
	// only then.
	Sweep time.Duration
	// OnError, when set, is told of the subscription's failures and of
	// read-backs that failed (for the log). It must not block.
	OnError func(error)
}

// Watcher is a process's subscription to the announcements of ended
// sessions, shared by all its watches: one Redis subscription (a
// connection of its own) however many watches and listeners. It
// subscribes at the first Watch or Listen and stops at Close. It is safe
// for concurrent use.
type Watcher struct {
	v       *Vault
	cfg     WatcherConfig
	channel string

	mu      sync.Mutex
	watches map[string][]*Watch // by hashed session id
	n       int
	started bool
	closed  bool
	subs    int // subscriptions answered so far (for tests)
	checks  int // read-backs done (for tests)
	cancel  context.CancelFunc
	ps      *redis.PubSub // the subscription now
	done    sync.WaitGroup
	recheck chan struct{} // a read-back is wanted
	heard   []Listener
}

// Listener is told of every announcement a Watcher hears, whoever
// watches: a cache of session records keeps itself true with it. Both
// funcs run on the Watcher's goroutine and must not block.
type Listener struct {
	// Ended gets the hashed id (HashID) of each session announced ended,
	// or found ended or gone by a read-back.
	Ended func(hid string)
	// Subscribed is called each time the subscription is answered,
	// the first time and after each reconnection: announcements made
	// while it was down are lost, so a cache should drop what it holds.
	Subscribed func()
}

// Watch is one watch of a session (Watcher.Watch).
type Watch struct {
	// C receives the session's Ending once, when it is announced or found.
	C <-chan Ending

	c    chan Ending
	w    *Watcher
	hid  string
	sent bool // guarded by w.mu
	gone bool // Stop was called; guarded by w.mu
}

// Watcher returns a new Watcher on the vault's Redis. The caller must
// Close it.
func (v *Vault) Watcher(cfg WatcherConfig) *Watcher {
	if cfg.MaxWatches <= 0 {
		cfg.MaxWatches = DefaultMaxWatches
	}
	if cfg.MaxPerSession <= 0 {
		cfg.MaxPerSession = DefaultMaxPerSession
	}
	if cfg.Sweep == 0 {
		cfg.Sweep = DefaultSweep
	}
	return &Watcher{
		v: v, cfg: cfg, channel: v.prefix + endedChannel,
		watches: make(map[string][]*Watch),
		recheck: make(chan struct{}, 1),
	}
}

// Watch watches session sid until Stop: its Ending arrives on the watch's
// C once End (on any replica) ended it, or once a read-back finds it ended
// or gone. Watch before reading the session to decide that it is live:
// then no ending can fall between the two. It returns ErrTooManyWatches
// when the session or the Watcher has as many watches as allowed.
func (w *Watcher) Watch(sid string) (*Watch, error) {
	hid := hashID(sid)
	c := make(chan Ending, 1)
	x := &Watch{C: c, c: c, w: w, hid: hid}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.closed:
		return nil, ErrWatcherClosed
	case w.n >= w.cfg.MaxWatches:
		return nil, ErrTooManyWatches
	case len(w.watches[hid]) >= w.cfg.MaxPerSession:
		return nil, ErrTooManyWatches
	}
	w.watches[hid] = append(w.watches[hid], x)
	w.n++
	w.startLocked()
	return x, nil
}

// Listen adds l to the Watcher's listeners and subscribes now if it has
// not yet. It does nothing on a closed Watcher.
func (w *Watcher) Listen(l Listener) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.heard = append(w.heard, l)
	w.startLocked()
}

// startLocked starts the subscription if it has not started; w.mu is
// held.
func (w *Watcher) startLocked() {
	if w.started {
		return
	}
	w.started = true
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	w.done.Add(2)
	go w.receive(ctx)
	go w.sweep(ctx)
}

// Stop ends the watch. It may be called more than once.
func (x *Watch) Stop() {
	w := x.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if x.gone {
		return
	}
	x.gone = true
	list := w.watches[x.hid]
	for i, y := range list {
		if y == x {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(w.watches, x.hid)
	} else {
		w.watches[x.hid] = list
	}
	w.n--
}

// Watching returns the number of watches.
func (w *Watcher) Watching() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// Subscriptions returns how many times the subscription was answered:
// 0 until it first is, and one more after each reconnection.
func (w *Watcher) Subscriptions() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.subs
}

// Close ends the subscription and waits for its goroutines. Watches get
// nothing more. Calling it again does nothing.
func (w *Watcher) Close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	cancel, ps := w.cancel, w.ps
	w.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if ps != nil {
		ps.Close() // go-redis's blocking read does not watch the context
	}
	w.done.Wait()
}

// receive keeps the subscription and dispatches what it hears. A
// subscription that errs is retried by go-redis on the next receive (it
// reconnects and subscribes again); one that stays silent past a PING is
// replaced.
func (w *Watcher) receive(ctx context.Context) {
	defer w.done.Done()
	pause := retryMin
	for ctx.Err() == nil {
		ps := w.v.rdb.Subscribe(ctx, w.channel)
		w.mu.Lock()
		w.ps = ps
		closed := w.closed
		w.mu.Unlock()
		if closed { // Close ran between the loop's check and now
			ps.Close()
			return
		}
		pinged := false
		for ctx.Err() == nil {
			msg, err := ps.ReceiveTimeout(ctx, pingEvery)
			if err != nil {
				if ctx.Err() != nil {
					break
				}
				var ne interface{ Timeout() bool }
				if errors.As(err, &ne) && ne.Timeout() {
					if pinged { // no PONG: the connection is dead; start over
						w.report(errors.New("vault: the ended-sessions subscription did not answer a PING"))
						break
					}
					pinged = true
					if err := ps.Ping(ctx); err != nil {
						w.report(err)
						break
					}
					continue
				}
				w.report(err)
				if !sleep(ctx, pause) {
					break
				}
				pause = min(2*pause, retryMax)
				continue
			}
			pinged, pause = false, retryMin
			switch m := msg.(type) {
			case *redis.Subscription:
				if m.Kind == "subscribe" {
					w.mu.Lock()
					w.subs++
					heard := w.heard
					w.mu.Unlock()
					for _, l := range heard {
						if l.Subscribed != nil {
							l.Subscribed()
						}
					}
					w.wantRecheck() // what was published while we were away
				}
			case *redis.Message:
				hid, reason, ok := strings.Cut(m.Payload, " ")
				if ok {
					w.deliver(hid, Ending{Reason: reason})
				}
			}
		}
		ps.Close()
		if !sleep(ctx, pause) {
			return
		}
		pause = min(2*pause, retryMax)
	}
}

// sweep reads every watched session back when asked (a subscription was
// answered) and every Sweep.
func (w *Watcher) sweep(ctx context.Context) {
	defer w.done.Done()
	var tick <-chan time.Time
	if w.cfg.Sweep > 0 {
		t := time.NewTicker(w.cfg.Sweep)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.recheck:
		case <-tick:
		}
		if err := w.readBack(ctx); err != nil && ctx.Err() == nil {
			w.report(err)
		}
		w.mu.Lock()
		w.checks++
		w.mu.Unlock()
	}
}

func (w *Watcher) wantRecheck() {
	select {
	case w.recheck <- struct{}{}:
	default:
	}
}

// readBack reads every watched session's key, in pipelined batches, and
// delivers the endings it finds: a tombstone, or no key at all.
func (w *Watcher) readBack(ctx context.Context) error {
	w.mu.Lock()
	hids := make([]string, 0, len(w.watches))
	for hid := range w.watches {
		hids = append(hids, hid)
	}
	w.mu.Unlock()
	err := w.v.readHashed(ctx, hids, false, recheckTimeout, func(k keyRead) error {
		switch {
		case k.err != nil: // this key alone: the others are still read
		case !k.found:
			w.deliver(k.hid, Ending{})
		default:
			if e := endedError(k.blob); e != nil {
				w.deliver(k.hid, Ending{Reason: e.Reason})
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("vault: reading watched sessions back: %w", err)
	}
	return nil
}

// deliver hands e to every watch of hid that has had nothing yet.
func (w *Watcher) deliver(hid string, e Ending) {
	w.mu.Lock()
	for _, x := range w.watches[hid] {
		if !x.sent {
			x.sent = true
			x.c <- e // capacity 1, sent once
		}
	}
	heard := w.heard
	w.mu.Unlock()
	for _, l := range heard { // outside the lock: a listener may take its own
		if l.Ended != nil {
			l.Ended(hid)
		}
	}
}

func (w *Watcher) report(err error) {
	if w.cfg.OnError != nil {
		w.cfg.OnError(err)
	}
}

// sleep waits d unless ctx ends first; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
