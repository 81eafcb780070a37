// Command tether is the Tether BFF. It reads its configuration from TETHER_*
// variables (`tether -h` lists them: bff.EnvVars; the README says more),
// serves /bff/* and, with TETHER_WEB_DIR, the page or a built SPA, and
// stops gracefully on SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/gin-gonic/gin"

	"github.com/tetherauth/tether/bff"
)

func main() {
	flag.Usage = func() {
		fmt.Fprint(flag.CommandLine.Output(), "usage: tether\n\nThe Tether BFF reads these variables:\n\n"+bff.EnvHelp(bff.EnvVars))
	}
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
	log := newLogger(getenv("TETHER_LOG_FORMAT"), getenv("TETHER_LOG_LEVEL"), stderr)
	addr := getenv("TETHER_ADDR")
	if addr == "" {
		addr = "127.0.0.1:8080"
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
	fmt.Fprintf(stdout, "tether: listening on http://%s (public URL %s)\n", ln.Addr(), cfg.PublicURL)
	return bff.Serve(ctx, ln, srv)
}

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
