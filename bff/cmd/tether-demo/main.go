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
//	TETHER_DEV_AUTO_APPROVE   1 to skip the consent page
//	TETHER_DEV_QUIRKS         github, github-oauth-app or google: the dev provider
//	                          behaves like that provider and the BFF uses its preset
//	TETHER_WEB_DIR            the page (default web)
//	TETHER_LOG_FORMAT         json or text
//	TETHER_REFRESH_BUFFER, TETHER_REDIS_URL, ...: as for the tether command
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
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tetherauth/tether/bff"
	"github.com/tetherauth/tether/bff/demo"
	"github.com/tetherauth/tether/bff/devprovider"
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
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if getenv("TETHER_LOG_FORMAT") == "json" {
		log = slog.New(slog.NewJSONHandler(stderr, nil))
	}
	var ttls [2]time.Duration
	for i, name := range []string{"TETHER_DEV_ACCESS_TTL", "TETHER_DEV_REFRESH_TTL"} {
		if v := getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return fmt.Errorf("%s: %q is not a positive duration like 60s", name, v)
			}
			ttls[i] = d
		}
	}
	d, err := demo.Start(ctx, demo.Options{
		Addr:    getenv("TETHER_ADDR"),
		DevAddr: getenv("TETHER_DEV_PROVIDER_ADDR"),
		WebDir:  getenv("TETHER_WEB_DIR"),
		Getenv:  getenv,
		Logger:  log,
		Dev: func(c *devprovider.Config) {
			c.AccessTTL, c.RefreshTTL = ttls[0], ttls[1]
			c.AutoApprove = getenv("TETHER_DEV_AUTO_APPROVE") == "1"
		},
		BFF: func(c *bff.Config) {
			if throwAwayKeys(c) {
				log.Info("the demo uses throw-away keys: its sessions end when it stops")
			}
		},
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

// throwAwayKeys fills in a random vault key and session cookie key where
// the environment gave none, and reports whether it made any. The BFF
// would make them too, but warns, as a production deployment must not run
// that way; for the demo it is the point.
func throwAwayKeys(c *bff.Config) bool {
	made := false
	if c.VaultKey == nil {
		c.VaultKey = randomKey()
		made = true
	}
	if c.SessionKeys == nil {
		c.SessionKeys = [][]byte{randomKey()}
		made = true
	}
	return made
}

// randomKey is a fresh 32-byte key.
func randomKey() []byte {
	k := make([]byte, 32)
	rand.Read(k) // never fails (crypto/rand)
	return k
}
