// Command tether is the Tether BFF. It reads its configuration from TETHER_*
// variables (`tether -h` lists them: bff.EnvVars), serves /bff/* and, with
// TETHER_WEB_DIR, the page or a built SPA on TETHER_ADDR, the Prometheus
// metrics on TETHER_METRICS_ADDR (a listener of their own, loopback by
// default), the admin API on TETHER_ADMIN_ADDR (with TETHER_ADMIN_TOKEN),
// and stops gracefully on SIGINT or SIGTERM.
//
// `tether sessions list|end --subject alice` calls a running BFF's admin
// API instead (package admin).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/gin-gonic/gin"

	"github.com/tetherauth/tether/bff"
	"github.com/tetherauth/tether/bff/admin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) > 1 && os.Args[1] == "sessions" {
		if err := admin.RunCLI(ctx, os.Args[2:], os.Getenv, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "tether:", err)
			os.Exit(map[bool]int{true: 2, false: 1}[errors.Is(err, admin.ErrUsage)])
		}
		return
	}
	flag.Usage = func() {
		fmt.Fprint(flag.CommandLine.Output(), "usage: tether\n\n"+bff.EnvHelp(bff.EnvVars)+"\n"+admin.Usage)
	}
	flag.Parse()
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
	ls, err := bff.Listen(getenv, log)
	if err != nil {
		return err
	}
	ls.Announce(stdout, cfg.PublicURL)
	return bff.ServeListeners(ctx, ls, srv)
}
