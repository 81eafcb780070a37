// Command tether-demo runs the whole demo in one process, with no
// configuration: the dev provider (a local OAuth server and sample API),
// the BFF with an embedded Redis, and the page in web/. `make run` builds
// the page and starts it; Ctrl-C stops everything.
//
// Environment (all optional):
//
//	TETHER_ADDR               the BFF and page (default 127.0.0.1:8080)
//	TETHER_DEV_PROVIDER_ADDR  the dev provider (default 127.0.0.1:9090)
//	TETHER_DEV_ACCESS_TTL     access token lifetime (default 60s)
//	TETHER_DEV_REFRESH_TTL    refresh lifetime from login (default 10m)
//	TETHER_DEV_AUTO_APPROVE   1 to skip the consent page
//	TETHER_WEB_DIR            the page (default web)
//	TETHER_REFRESH_BUFFER, TETHER_REDIS_URL, TETHER_LOG_FORMAT, ...: as for tether
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/sync/errgroup"

	"github.com/tetherauth/tether/bff"
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
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if getenv("TETHER_LOG_FORMAT") == "json" {
		log = slog.New(slog.NewJSONHandler(stderr, nil))
	}

	devLn, err := net.Listen("tcp", env("TETHER_DEV_PROVIDER_ADDR", "127.0.0.1:9090"))
	if err != nil {
		return fmt.Errorf("TETHER_DEV_PROVIDER_ADDR: %w", err)
	}
	defer devLn.Close()
	bffLn, err := net.Listen("tcp", env("TETHER_ADDR", "127.0.0.1:8080"))
	if err != nil {
		return fmt.Errorf("TETHER_ADDR: %w", err)
	}
	defer bffLn.Close()
	devURL, publicURL := "http://"+devLn.Addr().String(), "http://"+bffLn.Addr().String()

	dcfg := devprovider.Config{
		Issuer:       devURL,
		AutoApprove:  getenv("TETHER_DEV_AUTO_APPROVE") == "1",
		AllowOrigins: []string{publicURL},
		Logger:       log.With("component", "devprovider"),
	}
	for _, d := range []struct {
		name string
		dst  *time.Duration
	}{{"TETHER_DEV_ACCESS_TTL", &dcfg.AccessTTL}, {"TETHER_DEV_REFRESH_TTL", &dcfg.RefreshTTL}} {
		if v := getenv(d.name); v != "" {
			if *d.dst, err = time.ParseDuration(v); err != nil || *d.dst <= 0 {
				return fmt.Errorf("%s: %q is not a positive duration like 60s", d.name, v)
			}
		}
	}
	dev, err := devprovider.New(dcfg)
	if err != nil {
		return err
	}
	defer dev.Close()

	// The BFF's own variables still apply; the demo fills in the rest.
	bffEnv := map[string]string{
		"TETHER_PUBLIC_URL":    publicURL,
		"TETHER_ISSUER":        devURL,
		"TETHER_CLIENT_ID":     devprovider.DefaultClientID,
		"TETHER_CLIENT_SECRET": devprovider.DefaultClientSecret,
		"TETHER_SCOPES":        "openid profile email",
		"TETHER_WEB_DIR":       env("TETHER_WEB_DIR", "web"),
	}
	cfg, err := bff.FromEnv(func(k string) string {
		if v := getenv(k); v != "" && k != "TETHER_PUBLIC_URL" && k != "TETHER_ISSUER" {
			return v
		}
		return bffEnv[k]
	})
	if err != nil {
		return err
	}
	cfg.Logger = log.With("component", "bff")

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return bff.Serve(gctx, devLn, dev) })
	// The BFF discovers the provider at start, so the provider serves first.
	srv, err := bff.New(gctx, cfg)
	if err != nil {
		dev.Close()
		return errors.Join(err, g.Wait())
	}
	defer srv.Close()
	g.Go(func() error { return bff.Serve(gctx, bffLn, srv.Handler()) })

	fmt.Fprintf(stdout, "\n  Tether demo: open %s\n  (dev provider at %s; Ctrl-C stops both)\n\n", publicURL, devURL)
	return g.Wait()
}
