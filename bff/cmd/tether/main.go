// Command tether is the Tether BFF. It reads its configuration from TETHER_*
// variables (`tether -h` lists them: bff.EnvVars), serves /bff/* and, with
// TETHER_WEB_DIR, the page or a built SPA on TETHER_ADDR, the Prometheus
// metrics on TETHER_METRICS_ADDR (a listener of their own, loopback by
// default), and stops gracefully on SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/gin-gonic/gin"

	"github.com/tetherauth/tether/bff"
)

func main() {
	flag.Usage = func() { fmt.Fprint(flag.CommandLine.Output(), "usage: tether\n\n"+bff.EnvHelp(bff.EnvVars)) }
	flag.Parse()
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
	log := bff.NewLogger(getenv("TETHER_LOG_FORMAT"), getenv("TETHER_LOG_LEVEL"), stderr)
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
	if mln != nil {
		fmt.Fprintf(stdout, "tether: metrics on http://%s/metrics\n", mln.Addr())
	}
	return bff.ServeWithMetrics(ctx, ln, mln, srv)
}

// defaultMetricsAddr is where the metrics are served without
// TETHER_METRICS_ADDR: loopback only.
const defaultMetricsAddr = "127.0.0.1:9100"
