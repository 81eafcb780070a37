package bff

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"

	"github.com/tetherauth/tether/bff/admin"
)

// Listeners are the tether command's listeners: the app's, and the
// metrics' and the admin API's when they are on.
type Listeners struct {
	App, Metrics, Admin net.Listener
	// AdminToken is the bearer token the admin listener requires.
	AdminToken string
}

// Default listen addresses of the tether command: loopback only.
const (
	DefaultAddr        = "127.0.0.1:8080"
	DefaultMetricsAddr = "127.0.0.1:9100"
)

// Listen opens the listeners the environment asks for: TETHER_ADDR,
// TETHER_METRICS_ADDR (off for none) and TETHER_ADMIN_ADDR, which is on
// only with a TETHER_ADMIN_TOKEN of at least admin.MinTokenLen bytes
// (without one, log says the admin listener is off).
func Listen(getenv func(string) string, log *slog.Logger) (*Listeners, error) {
	addr, metricsAddr, adminAddr := getenv("TETHER_ADDR"), getenv("TETHER_METRICS_ADDR"), getenv("TETHER_ADMIN_ADDR")
	if addr == "" {
		addr = DefaultAddr
	}
	if metricsAddr == "" {
		metricsAddr = DefaultMetricsAddr
	}
	if adminAddr == "" {
		adminAddr = admin.DefaultAddr
	}
	l := &Listeners{AdminToken: getenv("TETHER_ADMIN_TOKEN")}
	adminOn := adminAddr != "off" && l.AdminToken != ""
	if adminOn && len(l.AdminToken) < admin.MinTokenLen { // before any socket is opened
		return nil, &ConfigError{"TETHER_ADMIN_TOKEN", fmt.Errorf("is %d bytes; use at least %d random ones", len(l.AdminToken), admin.MinTokenLen)}
	}
	var err error
	if l.App, err = net.Listen("tcp", addr); err != nil {
		return nil, fmt.Errorf("TETHER_ADDR %q: %w", addr, err)
	}
	if metricsAddr != "off" {
		if l.Metrics, err = net.Listen("tcp", metricsAddr); err != nil {
			l.Close()
			return nil, fmt.Errorf("TETHER_METRICS_ADDR %q (an address for the metrics listener, or off): %w", metricsAddr, err)
		}
	}
	switch {
	case adminOn:
		if l.Admin, err = net.Listen("tcp", adminAddr); err != nil {
			l.Close()
			return nil, fmt.Errorf("TETHER_ADMIN_ADDR %q (an address for the admin listener, or off): %w", adminAddr, err)
		}
	case adminAddr != "off":
		log.Info("TETHER_ADMIN_TOKEN is not set: the admin listener (tether sessions list|end) is off")
	}
	return l, nil
}

// Announce prints where each listener is.
func (l *Listeners) Announce(w io.Writer, publicURL string) {
	fmt.Fprintf(w, "tether: listening on http://%s (public URL %s)\n", l.App.Addr(), publicURL)
	if l.Metrics != nil {
		fmt.Fprintf(w, "tether: metrics on http://%s/metrics\n", l.Metrics.Addr())
	}
	if l.Admin != nil {
		fmt.Fprintf(w, "tether: admin on http://%s%s\n", l.Admin.Addr(), admin.PathSessions)
	}
}

// Close closes every listener.
func (l *Listeners) Close() {
	for _, ln := range []net.Listener{l.App, l.Metrics, l.Admin} {
		if ln != nil {
			ln.Close()
		}
	}
}

// ServeListeners serves h on l.App, its metrics on l.Metrics and its
// admin API on l.Admin (those that are not nil) until ctx is done or one
// of them fails, which stops the others.
func ServeListeners(ctx context.Context, l *Listeners, h *Handler) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type side struct {
		name string
		ln   net.Listener
		h    http.Handler
	}
	var sides []side
	if l.Metrics != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", h.MetricsHandler())
		sides = append(sides, side{"metrics", l.Metrics, mux})
	}
	if l.Admin != nil {
		sides = append(sides, side{"admin", l.Admin, h.AdminHandler(l.AdminToken)})
	}
	errs := make(chan error, len(sides))
	for _, sd := range sides {
		go func() {
			err := Serve(ctx, sd.ln, sd.h)
			if err != nil {
				err = fmt.Errorf("%s listener: %w", sd.name, err)
			}
			errs <- err
			cancel()
		}()
	}
	err := Serve(ctx, l.App, h)
	cancel()
	for range sides {
		if e := <-errs; err == nil && e != nil {
			err = e
		}
	}
	return err
}
