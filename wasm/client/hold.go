package client

// hold makes new calls wait for a refresh in progress (Token), rather than
// leave with a token the provider may kill the moment it refreshes (GitHub
// does): this tab's own refresh, or another tab's it heard of. It is
// bounded: it ends when a request of this tab settles, when another tab
// says its refresh brought nothing, or at until, whichever comes first.
// Calls already sent are left alone: the retry after a 401 covers them.
type hold struct {
	_     [0]func()     // not comparable: no generated equality (binary size)
	done  chan struct{} // closed when the hold ends
	until int64
	timer Timer
}

// holdLocked starts a hold, unless one is running or no usable token is
// cached (calls then wait for a request anyway). It lasts at most
// maxHold, and never past the moment the cached token stops being handed
// out (its expiry less the skew, the margin for the way to the API): from
// then on, calls wait for the request in progress anyway.
func (c *Client) holdLocked(now int64) {
	tok, until := c.usableUntilLocked()
	if c.hold != nil || tok == "" || now >= until {
		return
	}
	end := min(now+maxHold, until)
	h := &hold{done: make(chan struct{}), until: end}
	h.timer = c.afterFunc(end-now, func() {
		c.mu.Lock()
		if c.hold == h {
			c.releaseLocked()
		}
		c.mu.Unlock()
		c.publish()
	})
	c.hold = h
}

// releaseLocked ends the hold, if any. Its waiters look again once the
// caller has published the change (publish wakes them), so that the page's
// copy is current before they act.
func (c *Client) releaseLocked() {
	if h := c.hold; h != nil {
		c.hold = nil
		h.timer.Stop()
		c.ended = append(c.ended, h)
	}
}
