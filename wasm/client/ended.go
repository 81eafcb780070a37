package client

// Ended is told that the BFF announced the end of the session (its event
// stream's session_ended, with one of the contract's reasons; tether.js
// passes no other): the client then stands as after a reconnect_required
// answer with that reason, by the same steps: the token dropped (the
// page's copy first), one reconnect event, and API calls failing at once
// with a ReconnectError, no request made. It does nothing once a
// reconnect or logout stands, or after Close.
func (c *Client) Ended(reason string) {
	c.mu.Lock()
	if c.closed || c.reconnect != "" {
		c.mu.Unlock()
		return
	}
	c.dropLocked()
	c.clearDegradedLocked()
	c.reconnect = reason
	c.mu.Unlock()
	c.publish()
	c.emit([]Event{{Kind: EventReconnect, Reason: reason}})
}
