package devprovider

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"
)

// ShutdownGrace is how long Serve waits for requests in flight once its
// context is done.
const ShutdownGrace = 5 * time.Second

// Serve serves p on ln until ctx is done. It then releases the requests
// that an outage holds (Close) and shuts the server down, waiting up to
// ShutdownGrace for the others, and returns nil. It returns an error if
// the server stops by itself or does not shut down in time.
func (p *Provider) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("devprovider: serve: %w", err)
	}
	p.Close()
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("devprovider: shutdown: %w", err)
	}
	return nil
}
