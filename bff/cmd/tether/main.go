// Command tether is the Tether BFF. It reads its configuration from TETHER_*
// variables (see the README), serves /bff/* and, with TETHER_WEB_DIR, the
// page on TETHER_ADDR, the Prometheus metrics on TETHER_METRICS_ADDR (a
// listener of their own, loopback by default), and stops gracefully on
// SIGINT or SIGTERM.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/gin-gonic/gin"

	"github.com/tetherauth/tether/bff"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "tether:", err)
		os.Exit(1)
	}
}

// run is main without the process: tests call it with their own
// environment, and it returns when ctx is done.
func run(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	gin.SetMode(gin.ReleaseMode)
	log := newLogger(getenv("TETHER_LOG_FORMAT"), getenv("TETHER_LOG_LEVEL"), stderr)
	addr := getenv("TETHER_ADDR")
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	metricsAddr := getenv("TETHER_METRICS_ADDR")
	if metricsAddr == "" {
		metricsAddr = defaultMetricsAddr
	}
	cfg, err := bff.FromEnv(getenv)
	if err != nil {
		return err
	}
	cfg.Logger = log
	srv, err := bff.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("TETHER_ADDR %q: %w", addr, err)
	}
	var mln net.Listener
	if metricsAddr != "off" {
		if mln, err = net.Listen("tcp", metricsAddr); err != nil {
			ln.Close()
			return fmt.Errorf("TETHER_METRICS_ADDR %q (an address for the metrics listener, or off): %w", metricsAddr, err)
		}
	}
	fmt.Fprintf(stdout, "tether: listening on http://%s (public URL %s)\n", ln.Addr(), cfg.PublicURL)
	if mln == nil {
		return bff.Serve(ctx, ln, srv)
	}
	fmt.Fprintf(stdout, "tether: metrics on http://%s/metrics\n", mln.Addr())
	// Both listeners stop together: when one fails, the other is told to.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", srv.MetricsHandler())
	merr := make(chan error, 1)
	go func() {
		merr <- bff.Serve(ctx, mln, mux)
		cancel()
	}()
	err = bff.Serve(ctx, ln, srv)
	cancel()
	if e := <-merr; err == nil && e != nil {
		err = fmt.Errorf("metrics listener: %w", e)
	}
	return err
}

// defaultMetricsAddr is where the metrics are served without
// TETHER_METRICS_ADDR: loopback only.
const defaultMetricsAddr = "127.0.0.1:9100"

// newLogger builds the process logger: JSON when format is "json", else
// text; level is debug, info (default), warn or error.
func newLogger(format, level string, w io.Writer) *slog.Logger {
	var lv slog.Level
	if lv.UnmarshalText([]byte(level)) != nil {
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
