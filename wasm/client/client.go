// Package client is the policy of Tether's browser client: it caches the
// access token the BFF hands out, attaches it only to allowed API origins,
// shares one token request among concurrent callers (and, through a Locker,
// takes turns with other tabs), refreshes before expiry, makes new calls
// wait for a refresh in progress (its own or, through Peers, another
// tab's), recovers once from an API's 401, and tells a revoked grant
// (reconnect) from an outage (degraded).
//
// It is plain Go that runs on the host for tests and in the browser as
// WebAssembly. Tokens never appear in an Event, an error or the news
// passed between tabs.
//
// Size rules, measured on the gzipped binary (see wasm/size_test.go): the
// package imports no net/http, encoding/json or fmt, and not even time
// (+55 KB for its init alone), context (+100 KB with time), strconv or the
// case-folding strings functions (+28 KB of Unicode tables). Times are
// therefore Unix milliseconds and durations milliseconds, as int64, from
// a Now and an AfterFunc the caller provides, and jitter comes from a Rand
// the caller provides (math/rand/v2 adds 3 KB). No select statement with
// two cases either (runtime.selectgo, +4 KB).
package client

import (
	"sync"

	"github.com/tetherauth/tether/shared/wire"
)

// Durations in milliseconds.
const (
	Millisecond int64 = 1
	Second            = 1000 * Millisecond
	Minute            = 60 * Second
)

// TokenSource asks the BFF for an access token (POST /bff/token). With
// force set it asks for a new one unless the BFF already holds a token
// other than rejected. It returns a *ResponseError, unwrapped, for any
// answer other than 200, and another error when the BFF could not be
// reached or the body could not be read. It should give up by itself
// after a while (in a browser, AbortSignal.timeout); the client stops
// waiting after Config.RequestTimeout in any case. It must be safe for
// concurrent use.
type TokenSource interface {
	RequestToken(force bool, rejected string) (wire.TokenResponse, error)
}

// Locker runs f while holding a lock shared by every tab of the origin
// (navigator.locks in a browser), so that tabs take turns asking for a
// token.
type Locker interface {
	WithLock(f func() error) error
}

// Peers tells the other tabs of the origin (a BroadcastChannel in a
// browser) that this tab is refreshing the token, and how that ended: one
// of the News kinds, never a token, since any script of the origin can
// listen. Their clients receive it in News and ask the BFF themselves.
// Announce(NewsRefreshing) should return once the other tabs have taken
// it in (their new calls wait from then on), or after a short bound: the
// refresh request leaves after it.
type Peers interface {
	Announce(news string)
}

// News kinds, passed between tabs.
const (
	// NewsRefreshing: a tab is sending a refresh request. New calls in the
	// other tabs wait for the new token (see Token).
	NewsRefreshing = "refreshing"
	// NewsRefreshed: the BFF now holds a new token; the other tabs ask for
	// it (a read from its vault, not another refresh).
	NewsRefreshed = "refreshed"
	// NewsUnchanged: the refresh brought no new token; stop waiting.
	NewsUnchanged = "unchanged"
)

// Timer is a pending call scheduled by Config.AfterFunc.
type Timer interface {
	Stop() bool
}

// Event kinds, named as the DOM events tether.js dispatches.
const (
	EventToken     = "token"     // a new token is cached; ExpiresAt set
	EventReconnect = "reconnect" // the grant is gone; Reason set
	EventDegraded  = "degraded"  // a token request failed; Reason, RetryAfter set
	EventRecovered = "recovered" // Reason: "degraded" (outage over) or "rejected" (new token after a 401)
	EventLogout    = "logout"    // Logout cleared the state
)

// Reasons of EventRecovered.
const (
	RecoveredDegraded = "degraded"
	RecoveredRejected = "rejected"
)

// Event is something the page may want to show. It never carries a token.
type Event struct {
	Kind       string
	ExpiresAt  int64 // Unix seconds as the BFF gave them, 0 when unknown
	Reason     string
	RetryAfter int64 // milliseconds
}

// State is a snapshot for the page.
type State struct {
	Connected bool   // a usable token is cached
	ExpiresAt int64  // of the cached token, Unix seconds, 0 when unknown or none
	Degraded  bool   // the last token request failed and the client is backing off
	Reason    string // why a reconnect is required, "" when it is not
}

// Config is what New needs. Only Source is required.
type Config struct {
	// Source performs the token requests.
	Source TokenSource
	// APIOrigins are the origins that receive the token, e.g.
	// "https://api.example" (see NormalizeOrigin).
	APIOrigins []string
	// OnEvent receives events; it is called without locks held and must not
	// block for long.
	OnEvent func(Event)
	// OnToken receives what Cached hands out, whenever that changes, so
	// that the caller may keep a copy and skip calling Cached (see
	// publish.go). It must not block nor call back into the Client.
	OnToken func(token string, until int64)
	// Lock and Peers coordinate tabs; nil means this tab is alone. Peers
	// is called with the tab lock held.
	Lock  Locker
	Peers Peers

	// Now returns the time in Unix milliseconds, AfterFunc calls f on its
	// own goroutine after ms milliseconds, and Rand returns a number in
	// [0, 1) for jitter. All three are required (in a browser: Date.now,
	// setTimeout and Math.random).
	Now       func() int64
	AfterFunc func(ms int64, f func()) Timer
	Rand      func() float64

	// RequestTimeout bounds one token request, lock wait included
	// (default 30s). MaxBackoff caps the delay between failed requests
	// (default 2 minutes); a longer Retry-After is still honoured. Both
	// in milliseconds.
	RequestTimeout int64
	MaxBackoff     int64
}

// Timings of the refresh policy.
const (
	// DefaultBuffer caps the refresh buffer when the BFF gives none; it is
	// also never more than half the token's lifetime.
	DefaultBuffer = 5 * Minute
	// expirySkew: a token this close to its expiry is not handed out, as it
	// could expire on the way; for short-lived tokens, a tenth of the
	// lifetime.
	expirySkew = 5 * Second
	// refreshLag is waited after the refresh point: the BFF rounds
	// expires_in down to whole seconds, so the local expiry can be up to a
	// second early, and a request before the BFF's own refresh point would
	// just bring the same token back.
	refreshLag = Second
	// maxJitter caps the random delay added after the refresh point.
	maxJitter = 10 * Second
	// minRepeat is the shortest wait before asking again when the BFF
	// answered with the token the client already had.
	minRepeat = 5 * Second
	// baseBackoff is the first delay after a failure.
	baseBackoff = Second
	// maxHold is the longest that new calls wait for a refresh in progress
	// while the current token is still good (see holdLocked).
	maxHold = 2 * Second
)

// Client holds one tab's token. It is safe for concurrent use.
type Client struct {
	src       TokenSource
	allow     allowList
	onEvent   func(Event)
	onToken   func(string, int64)
	lock      Locker
	peers     Peers
	now       func() int64
	afterFunc func(int64, func()) Timer
	rand      func() float64
	timeout   int64
	maxBack   int64

	// Times below are local Unix milliseconds, 0 when unknown or unset.
	mu        sync.Mutex
	tok       wire.TokenResponse // AccessToken "" when none
	expiry    int64
	skew      int64 // see usableLocked
	refreshAt int64
	rejected  string  // last token an API refused; never cached again
	flight    *flight // the token request in progress, if any
	reconnect string  // why a reconnect is required, "" when not
	degraded  bool
	failures  int    // consecutive failed requests
	retryAt   int64  // no request before this while degraded
	retry     flight // force/rejected of the request to retry
	failure   string // Reason of the last failure while degraded
	timer     Timer
	timerGen  uint64
	hold      *hold   // new calls wait for a refresh in progress; nil when not
	ended     []*hold // holds over, whose waiters the next publish wakes
	newsSeq   uint64  // NewsRefreshing and NewsRefreshed received
	peerUntil int64   // until then another tab is refreshing (it said so, not yet how it ended)
	closed    bool

	// What OnToken was last given; guarded by pubMu, taken before mu.
	pubMu    sync.Mutex
	pubToken string
	pubUntil int64
}

// flight is one token request; everybody who needs its answer waits on done.
type flight struct {
	_        [0]func() // not comparable: no generated equality (binary size)
	done     chan struct{}
	force    bool
	rejected string
	old      string // the token it replaces: the cached one, or the refused one
	refresh  bool   // it replaces a token: other tabs hear of it
	follow   bool   // it takes up a token another tab obtained (news)
	degraded bool   // the client was degraded when it started
	newsSeq  uint64 // Client.newsSeq when it started
	sent     bool   // the request has left; guarded by Client.mu
	stale    bool   // a sibling's new token may have come after it left
	settled  bool   // guarded by Client.mu
	tok      string // the answer, set before done is closed
	err      error
}

// New checks cfg and returns a Client with an empty cache. It makes no
// request: call Prefetch, Token or Cached.
func New(cfg Config) (*Client, error) {
	if cfg.Source == nil || cfg.Now == nil || cfg.AfterFunc == nil || cfg.Rand == nil {
		return nil, constError("client: Config needs Source, Now, AfterFunc and Rand")
	}
	allow, err := newAllowList(cfg.APIOrigins)
	if err != nil {
		return nil, err
	}
	c := &Client{
		src:       cfg.Source,
		allow:     allow,
		onEvent:   cfg.OnEvent,
		onToken:   cfg.OnToken,
		lock:      cfg.Lock,
		peers:     cfg.Peers,
		now:       cfg.Now,
		afterFunc: cfg.AfterFunc,
		rand:      cfg.Rand,
		timeout:   cfg.RequestTimeout,
		maxBack:   cfg.MaxBackoff,
	}
	if c.timeout <= 0 {
		c.timeout = 30 * Second
	}
	if c.maxBack <= 0 {
		c.maxBack = 2 * Minute
	}
	return c, nil
}

// Allowed reports whether origin (as the browser serialises it, e.g.
// new URL(u).origin) is an API origin.
func (c *Client) Allowed(origin string) bool { return c.allow.contains(origin) }

// Cached returns the token for a call to origin when origin is allowed,
// the cached token is fresh and no refresh is holding new calls. It never
// blocks on the network and does not allocate. When it reports false, an
// allowed origin's caller goes through Token. Config.OnToken follows what
// it returns.
func (c *Client) Cached(origin string) (token string, ok bool) {
	if !c.allow.contains(origin) {
		return "", false
	}
	now := c.now()
	c.mu.Lock()
	ok = c.usableLocked(now) && c.hold == nil
	token = c.tok.AccessToken
	c.mu.Unlock()
	if !ok {
		return "", false
	}
	return token, true
}

// Token returns a usable token, asking the BFF when the cache has none.
// Concurrent callers share one request. While a refresh is in progress
// (this tab's, or another's it heard of) and the cached token is still
// good, it waits for the new token, at most until the hold ends (see
// holdLocked), and then returns whichever token is good. After a reconnect
// it fails at once with a *ReconnectError; while backing off without a
// usable token, with an *UnavailableError.
func (c *Client) Token() (string, error) {
	for waited := false; ; waited = true {
		now := c.now()
		c.mu.Lock()
		if err := c.blockedLocked(now); err != nil {
			c.mu.Unlock()
			return "", err
		}
		if c.usableLocked(now) {
			tok, h := c.tok.AccessToken, c.hold
			c.mu.Unlock()
			if h == nil || waited {
				return tok, nil
			}
			<-h.done
			continue
		}
		f := c.joinLocked(now, false, "", false)
		c.mu.Unlock()
		return f.wait()
	}
}

// Recover is called after an API answered 401 to rejected. If the cache
// already holds another usable token it returns that one without a
// request; otherwise it makes one forced request, shared with every caller
// recovering from the same token. It never makes more than one request of
// its own, so a caller that retries once cannot loop.
func (c *Client) Recover(rejected string) (string, error) {
	for first := true; ; first = false {
		tok, f, again, err := c.recoverStep(rejected, first)
		c.publish() // before waiting: the refused token may be gone
		switch {
		case f == nil:
			return tok, err
		case again:
			f.wait()
		default:
			return f.wait()
		}
	}
}

// recoverStep is one look of Recover: it forgets the refused token, then
// returns a usable token or an error (f nil); the request in progress, to
// wait for before looking again (again): a request that started before the
// 401 may bring a new token; or the forced request, whose answer is
// Recover's.
func (c *Client) recoverStep(rejected string, first bool) (tok string, f *flight, again bool, err error) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if rejected != "" {
		if c.tok.AccessToken == rejected {
			c.forgetLocked() // the timer stays: it may be a retry after a failure
		}
		c.rejected = rejected
	}
	if c.reconnect != "" || c.closed {
		return "", nil, false, c.blockedLocked(now)
	}
	if c.usableLocked(now) {
		return c.tok.AccessToken, nil, false, nil
	}
	if err := c.blockedLocked(now); err != nil {
		return "", nil, false, err
	}
	if f := c.flight; f != nil && first && !(f.force && f.rejected == rejected) {
		return "", f, true, nil
	}
	return "", c.joinLocked(now, true, rejected, false), false, nil
}

// Prefetch starts a token request in the background unless a usable token
// is cached, one is in progress, or the client is blocked.
func (c *Client) Prefetch() {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.blockedLocked(now) == nil && !c.usableLocked(now) {
		c.joinLocked(now, false, "", false)
	}
}

// Visible is called when the page becomes visible again: timers of hidden
// tabs are throttled, so it refreshes now if the refresh point has passed
// and otherwise re-arms the timer.
func (c *Client) Visible() {
	now := c.now()
	c.mu.Lock()
	if c.closed || c.reconnect != "" || c.flight != nil {
		c.mu.Unlock()
		return
	}
	switch {
	case c.degraded && now < c.retryAt:
		c.scheduleLocked(c.retryAt - now)
	case c.degraded, c.tok.AccessToken == "", c.refreshAt != 0 && now >= c.refreshAt:
		c.retryAt = 0
		c.joinLocked(now, c.retry.force, c.retry.rejected, false)
	case c.refreshAt != 0:
		c.scheduleLocked(c.refreshAt - now)
	}
	c.mu.Unlock()
	c.publish() // a refresh may hold new calls
}

// News receives what another tab announced (see Peers). NewsRefreshing
// makes new calls wait for the coming token, as this tab's own refresh
// does; NewsRefreshed makes this tab ask the BFF for the new token (once,
// even when a back-off is running: the BFF answers again); NewsUnchanged
// ends the wait. Anything else is ignored: any script of the origin can
// post news, and the worst it can do is make the tab ask the BFF, or make
// calls wait a bounded while.
func (c *Client) News(kind string) {
	now := c.now()
	c.mu.Lock()
	if c.closed || c.reconnect != "" {
		c.mu.Unlock()
		return
	}
	switch kind {
	case NewsRefreshing:
		c.newsSeq++
		c.peerUntil = now + maxHold
		if !c.degraded {
			c.holdLocked(now)
		}
	case NewsRefreshed:
		c.newsSeq++
		c.peerUntil = 0
		switch f := c.flight; {
		case f == nil:
			c.retryAt = 0
			c.joinLocked(now, false, "", true)
		case f.sent && (c.lock == nil || f.follow):
			// Without the tab lock it may have left before the sibling's
			// refresh was done: ask again once it is back.
			f.stale = true
		}
	case NewsUnchanged:
		c.peerUntil = 0
		if c.flight == nil {
			c.releaseLocked()
		}
	}
	c.mu.Unlock()
	c.publish()
}

// NoSession is told that the BFF has no session for this browser (its
// GET /bff/session said so) before a token was asked for: the client then
// stands as after a reconnect_required no_session answer, with its
// reconnect event, without making that request. It does nothing once a
// token is cached or requested.
func (c *Client) NoSession() {
	c.mu.Lock()
	if c.closed || c.reconnect != "" || c.flight != nil || c.tok.AccessToken != "" {
		c.mu.Unlock()
		return
	}
	c.reconnect = wire.ReasonNoSession
	c.mu.Unlock()
	c.emit([]Event{{Kind: EventReconnect, Reason: wire.ReasonNoSession}})
}

// Reset forgets the token and any reconnect or backoff state, as when the
// user logs in again; the next Token asks the BFF.
func (c *Client) Reset() {
	c.mu.Lock()
	c.dropLocked()
	c.reconnect = ""
	c.rejected = ""
	c.clearDegradedLocked()
	c.mu.Unlock()
	c.publish()
}

// Logout is called once the BFF ended the session: it forgets the token,
// makes API calls fail fast with ReasonLoggedOut, and emits EventLogout
// (and no EventReconnect).
func (c *Client) Logout() {
	c.mu.Lock()
	c.dropLocked()
	c.clearDegradedLocked()
	c.reconnect = ReasonLoggedOut
	c.mu.Unlock()
	c.publish()
	c.emit([]Event{{Kind: EventLogout}})
}

// State returns a snapshot for the page.
func (c *Client) State() State {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	s := State{Degraded: c.degraded, Reason: c.reconnect}
	if c.usableLocked(now) {
		s.Connected = true
		s.ExpiresAt = c.tok.ExpiresAt
	}
	return s
}

// Close stops the timer; later calls fail with ErrClosed and Cached
// returns nothing. A request in progress still answers its waiters.
func (c *Client) Close() {
	c.mu.Lock()
	c.closed = true
	c.stopTimerLocked()
	c.releaseLocked()
	c.mu.Unlock()
	c.publish()
}

// wait returns the flight's answer. Every flight ends: Config.RequestTimeout
// bounds it.
func (f *flight) wait() (string, error) {
	<-f.done
	return f.tok, f.err
}

// usableLocked reports whether the cached token may be handed out.
func (c *Client) usableLocked(now int64) bool {
	tok, until := c.usableUntilLocked()
	return tok != "" && now < until
}

// skew is how long before its expiry a token of the given remaining life
// stops being handed out.
func skew(life int64) int64 { return min(expirySkew, life/10) }

// blockedLocked returns the error for callers when the client must not ask
// the BFF: closed, reconnect required, or backing off without a token.
func (c *Client) blockedLocked(now int64) error {
	switch {
	case c.closed:
		return ErrClosed
	case c.reconnect != "":
		return &ReconnectError{Reason: c.reconnect}
	case c.degraded && now < c.retryAt && !c.usableLocked(now):
		return &UnavailableError{Reason: c.failure, RetryAfter: c.retryAt - now}
	}
	return nil
}

// dropLocked forgets the cached token, stops the timer and ends a hold.
func (c *Client) dropLocked() {
	c.forgetLocked()
	c.stopTimerLocked()
	c.releaseLocked()
}

// forgetLocked forgets the cached token.
func (c *Client) forgetLocked() {
	c.tok = wire.TokenResponse{}
	c.expiry, c.refreshAt = 0, 0
}

func (c *Client) clearDegradedLocked() {
	c.degraded, c.failures, c.retryAt, c.retry, c.failure = false, 0, 0, flight{}, ""
}

// emit delivers events; the caller holds no lock.
func (c *Client) emit(evs []Event) {
	if c.onEvent == nil {
		return
	}
	for _, e := range evs {
		c.onEvent(e)
	}
}
