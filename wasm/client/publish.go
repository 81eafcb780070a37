package client

// Forever is the until of a token without a known expiry: it is used until
// an API refuses it.
const Forever int64 = 1<<63 - 1

// publish gives Config.OnToken what Cached now returns, if that changed
// since the last call: the token ("" for none, and while a refresh holds
// new calls) and until, the Unix millisecond from which it must not be
// used (the token's expiry less the skew, never later than the expiry;
// Forever when it has none). A caller
// that keeps this pair and uses the token only while now < until gets
// exactly Cached's answer without asking the Client.
//
// Every method that may change the token calls publish after releasing
// mu, and before it wakes waiters or emits events, so that the copy is
// current before anyone acts on the change (in a browser: in the same
// task as the event, before its listeners run). As publish reads the state
// afresh under pubMu, the last call always hands out the latest state,
// whatever order goroutines come in.
//
// It then wakes the calls of holds that ended (see releaseLocked).
func (c *Client) publish() {
	c.pubMu.Lock()
	defer c.pubMu.Unlock()
	c.mu.Lock()
	tok, until := c.usableUntilLocked()
	if c.hold != nil {
		tok, until = "", 0 // new calls ask Token, which waits
	}
	ended := c.ended
	c.ended = nil
	c.mu.Unlock()
	if c.onToken != nil && (tok != c.pubToken || until != c.pubUntil) {
		c.pubToken, c.pubUntil = tok, until
		c.onToken(tok, until)
	}
	for _, h := range ended {
		close(h.done)
	}
}

// usableUntilLocked returns the cached token and the moment it stops being
// handed out, or "" and 0 when there is none (or the client is closed).
func (c *Client) usableUntilLocked() (string, int64) {
	switch {
	case c.closed || c.tok.AccessToken == "":
		return "", 0
	case c.expiry == 0:
		return c.tok.AccessToken, Forever
	}
	return c.tok.AccessToken, c.expiry - c.skew
}
