package client

import "github.com/tetherauth/tether/shared/wire"

// joinLocked returns the token request in progress, or starts one. A
// request that replaces a token (the cached one, or one an API refused) is
// a refresh: the other tabs hear of it (see run), and while the cached
// token is good and the client is not degraded, new calls wait for the
// new one (see holdLocked). With follow, it takes up the token another
// tab obtained: no refresh (the BFF holds a fresh token), and it does not
// wait for the tab lock.
func (c *Client) joinLocked(now int64, force bool, rejected string, follow bool) *flight {
	if c.flight != nil {
		return c.flight
	}
	f := &flight{done: make(chan struct{}), force: force, rejected: rejected, follow: follow,
		old: c.tok.AccessToken, degraded: c.degraded, newsSeq: c.newsSeq}
	if f.old == "" {
		f.old = rejected
	}
	f.refresh = !follow && (force || f.old != "")
	if f.refresh && !c.degraded {
		c.holdLocked(now)
	}
	c.flight = f
	go c.run(f)
	return f
}

// run performs a flight, under the tabs' lock unless it follows another
// tab's refresh. A refresh tells the other tabs that it starts and how it
// ended, while it holds the lock: a tab that then asks the BFF gets the
// new token. If the answer takes longer than the timeout, the waiters get
// ErrTimeout and the late answer is dropped.
func (c *Client) run(f *flight) {
	timer := c.afterFunc(c.timeout, func() {
		c.settle(f, wire.TokenResponse{}, ErrTimeout)
	})
	var tr wire.TokenResponse
	do := func() error {
		tell, starting := c.sending(f)
		if starting {
			c.peers.Announce(NewsRefreshing)
		}
		var err error
		tr, err = c.src.RequestToken(f.force, f.rejected)
		switch {
		case tell && err == nil && tr.AccessToken != f.old:
			c.peers.Announce(NewsRefreshed)
		case starting:
			c.peers.Announce(NewsUnchanged)
		}
		return err
	}
	var err error
	if c.lock != nil && !f.follow {
		err = c.lock.WithLock(do)
	} else {
		err = do()
	}
	timer.Stop()
	c.settle(f, tr, err)
}

// sending marks f sent and says what to tell the other tabs: how a refresh
// ended (tell), and first that it starts — unless this tab is degraded,
// when they need not wait for an attempt that will likely fail. A request
// says nothing if another tab's news came since it started, or another tab
// said it is refreshing and not yet how that ended (its word may come
// after the tab lock): that tab is the one refreshing, and this request
// only fetches its token.
func (c *Client) sending(f *flight) (tell, starting bool) {
	now := c.now()
	c.mu.Lock()
	f.sent = true
	tell = c.peers != nil && f.refresh && f.newsSeq == c.newsSeq && now >= c.peerUntil
	c.mu.Unlock()
	return tell, tell && !f.degraded
}

// settle records a flight's outcome, wakes its waiters and emits events.
func (c *Client) settle(f *flight, tr wire.TokenResponse, err error) {
	now := c.now()
	var evs []Event
	c.mu.Lock()
	if f.settled {
		c.mu.Unlock()
		return // timed out earlier
	}
	f.settled = true
	if c.flight == f {
		c.flight = nil
	}
	re, _ := err.(*ResponseError)
	switch {
	case c.closed:
		if err == nil {
			f.tok = tr.AccessToken
		} else {
			f.err = ErrClosed
		}
	case c.reconnect != "":
		// A Logout or a reconnect happened meanwhile: cache nothing, stay
		// quiet.
		f.err = &ReconnectError{Reason: c.reconnect}
	case err == nil:
		f.tok = tr.AccessToken
		if tr.AccessToken == c.rejected && !f.force {
			// The BFF still believes in a token an API refused: do not
			// cache it; the next 401 comes back through Recover.
			break
		}
		if f.force && tr.AccessToken != f.rejected {
			evs = append(evs, Event{Kind: EventRecovered, Reason: RecoveredRejected})
		}
		evs = c.acceptLocked(tr, now, evs)
	case re != nil && isReconnect(re):
		reason, _ := re.reconnect()
		c.dropLocked()
		c.clearDegradedLocked()
		c.reconnect = reason
		evs = append(evs, Event{Kind: EventReconnect, Reason: reason})
		f.err = &ReconnectError{Reason: reason}
	default:
		reason, retryAfter := ReasonNetwork, int64(0)
		if re != nil {
			retryAfter = re.RetryAfter
			if re.Body.Error != "" {
				reason = re.Body.Error
			}
		}
		evs = c.failLocked(now, reason, retryAfter, f.force, f.rejected, evs)
		f.err = &UnavailableError{Reason: reason, RetryAfter: c.retryAt - now, Err: err}
	}
	c.releaseLocked() // the calls held for this answer go, with what there is
	if f.stale && err == nil && c.reconnect == "" && !c.closed {
		c.joinLocked(now, false, "", true)
	}
	c.mu.Unlock()
	c.publish() // before the waiters and the events: the page sees the new state first
	close(f.done)
	c.emit(evs)
}

// isReconnect reports whether a BFF answer means the grant is gone.
func isReconnect(re *ResponseError) bool {
	_, ok := re.reconnect()
	return ok
}

// acceptLocked caches tr, schedules the next refresh and appends the
// events: recovered if an outage is over, token if the token is new, and
// degraded if the BFF answered with its current token because it could not
// refresh it.
func (c *Client) acceptLocked(tr wire.TokenResponse, now int64, evs []Event) []Event {
	same := tr.AccessToken == c.tok.AccessToken
	c.tok = tr
	c.expiry = localExpiry(tr, now)
	c.refreshAt = 0
	delay := int64(-1) // no expiry known: used until an API answers 401
	if c.expiry != 0 {
		life := c.expiry - now
		c.skew = skew(life)
		buf := tr.RefreshBuffer * Second
		if buf <= 0 || buf >= life {
			buf = min(DefaultBuffer, life/2)
		}
		c.refreshAt = c.expiry - buf + min(refreshLag, buf/4)
		// Jitter goes after the refresh point, never before: asked early,
		// the BFF would answer with the same token.
		delay = c.refreshAt - now + int64(c.rand()*float64(min(buf/4, maxJitter)))
		if same && delay < minRepeat {
			delay = minRepeat // the BFF declined to refresh; do not spin
		}
		delay = max(delay, 0)
	}
	if c.degraded && !tr.Degraded {
		c.clearDegradedLocked()
		evs = append(evs, Event{Kind: EventRecovered, Reason: RecoveredDegraded})
	}
	if !same {
		evs = append(evs, Event{Kind: EventToken, ExpiresAt: tr.ExpiresAt})
	}
	switch {
	case tr.Degraded:
		evs = c.failLocked(now, wire.ErrProviderUnavailable, tr.RetryAfter*Second, false, "", evs)
	case delay >= 0:
		c.scheduleLocked(delay)
	default:
		c.stopTimerLocked()
	}
	return evs
}

// failLocked enters or stays in the degraded state after a failed request,
// or a token the BFF could not refresh: it backs off, arms the retry of
// the same request and appends the event.
func (c *Client) failLocked(now int64, reason string, retryAfter int64, force bool, rejected string, evs []Event) []Event {
	c.failures++
	delay := c.backoff(retryAfter)
	c.degraded, c.failure = true, reason
	c.retryAt = now + delay
	c.retry = flight{force: force, rejected: rejected}
	c.scheduleLocked(delay)
	return append(evs, Event{Kind: EventDegraded, Reason: reason, RetryAfter: delay})
}

// localExpiry turns a response's expiry into the local clock, preferring
// the relative expires_in so that a skewed browser clock does not matter.
func localExpiry(tr wire.TokenResponse, now int64) int64 {
	switch {
	case tr.ExpiresIn > 0:
		return now + tr.ExpiresIn*Second
	case tr.ExpiresAt > 0:
		return tr.ExpiresAt * Second
	}
	return 0
}

// backoff returns the delay before the next attempt: exponential from
// baseBackoff, capped, with jitter in its upper half, and never shorter
// than the BFF's Retry-After.
func (c *Client) backoff(retryAfter int64) int64 {
	d := c.maxBack
	if c.failures < 20 {
		d = min(baseBackoff<<(c.failures-1), c.maxBack)
	}
	d = d/2 + int64(c.rand()*float64(d/2))
	if d < retryAfter {
		d = retryAfter + int64(c.rand()*float64(min(retryAfter/10, Second)))
	}
	return d
}

// scheduleLocked arms the single timer: the refresh, or the retry after a
// failure. A timer that fires after being replaced does nothing.
func (c *Client) scheduleLocked(ms int64) {
	c.stopTimerLocked()
	gen := c.timerGen
	c.timer = c.afterFunc(ms, func() { c.fire(gen) })
}

func (c *Client) stopTimerLocked() {
	c.timerGen++
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
}

// fire starts the scheduled request.
func (c *Client) fire(gen uint64) {
	now := c.now()
	c.mu.Lock()
	if gen != c.timerGen || c.closed || c.reconnect != "" {
		c.mu.Unlock()
		return
	}
	c.timer = nil
	c.retryAt = 0
	c.joinLocked(now, c.retry.force, c.retry.rejected, false)
	c.mu.Unlock()
	c.publish() // a refresh holds new calls
}
