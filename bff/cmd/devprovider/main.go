// Command devprovider runs Tether's local OAuth 2.0 / OpenID Connect
// provider and sample API (package bff/devprovider). It is for `make run`,
// the demo and tests: never for production.
//
// It reads the TETHER_DEV_* variables that `devprovider -h` lists
// (devprovider.EnvHelp), and TETHER_LOG_FORMAT: text (default) or json. A
// bad value exits with status 2 and a message naming the variable.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/tetherauth/tether/bff/devprovider"
)

func main() {
	flag.Usage = func() { fmt.Fprint(flag.CommandLine.Output(), "usage: devprovider\n\n"+devprovider.EnvHelp) }
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if errors.As(err, new(*devprovider.ConfigError)) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// run is main without the process: tests call it with their own
// environment. It prints the URL it serves and returns when ctx is done.
func run(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	addr, err := devprovider.AddrFromEnv(getenv)
	if err != nil {
		return err
	}
	cfg, err := devprovider.FromEnv(getenv)
	if err != nil {
		return err
	}
	switch f := strings.TrimSpace(getenv("TETHER_LOG_FORMAT")); f {
	case "", "text":
		cfg.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	case "json":
		cfg.Logger = slog.New(slog.NewJSONHandler(stderr, nil))
	default:
		return &devprovider.ConfigError{Var: "TETHER_LOG_FORMAT", Value: f, Reason: "want text or json"}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("devprovider: listen: %w", err)
	}
	host, _, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	u := "http://" + net.JoinHostPort(host, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	if cfg.Issuer == "" {
		cfg.Issuer = u
	}
	p, err := devprovider.New(cfg)
	if err != nil {
		ln.Close()
		return err
	}
	quirks := ""
	if cfg.Quirks != devprovider.QuirksNone {
		quirks = ", " + string(cfg.Quirks) + " quirks"
	}
	fmt.Fprintf(stdout, "devprovider: listening on %s (issuer %s%s; development only)\n", u, cfg.Issuer, quirks)
	return p.Serve(ctx, ln)
}
