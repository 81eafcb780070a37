package refresh

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// providerCall is one refresh call to the provider, from the moment the
// engine decides to make it. It waits for one of the process's call slots
// (the engine's own queue, never the provider's fault), then leaves or is
// called off (the circuit opened meanwhile). The breaker counts it once,
// though both its callers' timeout and its late answer report it.
type providerCall struct {
	probe   bool          // the breaker's probe: it goes out while the circuit is open
	begun   chan struct{} // closed when the call leaves or is called off
	once    sync.Once
	startNs atomic.Int64 // when it left, by the engine's clock; 0 before
	counted atomic.Bool
}

func newProviderCall(ctx context.Context) *providerCall {
	return &providerCall{probe: isProbe(ctx), begun: make(chan struct{})}
}

// begin records that the call leaves now.
func (c *providerCall) begin(now time.Time) {
	c.startNs.Store(now.UnixNano())
	c.once.Do(func() { close(c.begun) })
}

// callOff records that the call does not leave at all.
func (c *providerCall) callOff() { c.once.Do(func() { close(c.begun) }) }

// start is when the call left; zero if it did not.
func (c *providerCall) start() time.Time {
	if ns := c.startNs.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// probeKey marks the context of the breaker's probe.
type probeKey struct{}

func markProbe(ctx context.Context) context.Context { return context.WithValue(ctx, probeKey{}, true) }

func isProbe(ctx context.Context) bool { v, _ := ctx.Value(probeKey{}).(bool); return v }
