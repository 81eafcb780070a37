// Command tether-demo runs the whole demo in one process, with no
// configuration: the dev provider (a local OAuth server and sample API),
// the BFF with an embedded Redis, and the page in web/ (package bff/demo).
// `make run` builds the page and starts it; Ctrl-C stops everything.
//
// Environment (all optional):
//
//	TETHER_ADDR               the BFF and page (default 127.0.0.1:8080)
//	TETHER_DEV_PROVIDER_ADDR  the dev provider (default 127.0.0.1:9090)
//	TETHER_DEV_ACCESS_TTL     access token lifetime (default 60s)
//	TETHER_DEV_REFRESH_TTL    refresh lifetime from login (default 10m)
//	TETHER_DEV_AUTO_APPROVE   true (or 1) to skip the consent page
//	TETHER_DEV_QUIRKS         github, github-oauth-app or google: the dev provider
//	                          behaves like that provider and the BFF uses its preset
//	TETHER_WEB_DIR            the page (default web)
//	TETHER_LOG_FORMAT         json or text
//	TETHER_REFRESH_BUFFER, TETHER_REDIS_URL, ...: as for the tether command
//	TETHER_DEV_CLIENT_ID, ...: as for the devprovider command
//
// Unless TETHER_VAULT_KEY and TETHER_SESSION_KEYS are set, the demo makes
// throw-away keys for the vault and the session cookie and says so once:
// sessions end when the demo stops, which is what a demo wants.
//
// SIGINT (Ctrl-C) or SIGTERM shuts everything down; the exit status is 0
// when that went cleanly.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/gin-gonic/gin"

	"github.com/tetherauth/tether/bff"
	"github.com/tetherauth/tether/bff/demo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "tether-demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	gin.SetMode(gin.ReleaseMode)
	log := bff.NewLogger(getenv("TETHER_LOG_FORMAT"), getenv("TETHER_LOG_LEVEL"), stderr)
	d, err := demo.Start(ctx, demo.Options{
		Addr:   getenv("TETHER_ADDR"),
		WebDir: getenv("TETHER_WEB_DIR"),
		Getenv: getenv,
		Logger: log,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n  Tether demo: open %s\n  (dev provider at %s; Ctrl-C stops both)\n\n", d.URL, d.DevURL)
	select {
	case <-ctx.Done():
	case err = <-d.Err():
	}
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
