// Package demo wires the whole Tether demo in one process: the dev
// provider, the BFF (with an embedded Redis unless told otherwise) and the
// page in web/. `make run` (bff/cmd/tether-demo) and the browser tests in
// e2e/ both start it, so the tests exercise exactly what a person sees.
//
// Besides the BFF's routes it serves GET /demo/config.json, which tells the
// page where the sample API and the dev provider's controls are.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/tetherauth/tether/bff"
	"github.com/tetherauth/tether/bff/devprovider"
	"github.com/tetherauth/tether/shared/wire"
)

// Options configure a demo. Zero values are the `make run` defaults.
type Options struct {
	Addr    string // the BFF and the page; default 127.0.0.1:8080 (port 0 picks one)
	DevAddr string // the dev provider; default TETHER_DEV_PROVIDER_ADDR, else 127.0.0.1:9090
	WebDir  string // default "web"

	// Dev adjusts the dev provider's Config (lifetimes, auto-approve) after
	// the demo filled it in.
	Dev func(*devprovider.Config)
	// BFF adjusts the BFF's Config after the demo filled it in.
	BFF func(*bff.Config)
	// Getenv supplies TETHER_* variables for the BFF and TETHER_DEV_* ones
	// for the dev provider (devprovider.FromEnv; its issuer and CORS origin
	// are the demo's own); default none.
	Getenv func(string) string
	Logger *slog.Logger
}

// Config is the body of GET /demo/config.json.
type Config struct {
	// APIOrigin is the sample API's origin: the page passes it to
	// Tether.start as its only apiOrigins entry.
	APIOrigin string `json:"apiOrigin"`
	// API is the sample endpoint the page calls.
	API string `json:"api"`
	// Controls is the dev provider's base URL for /control/*.
	Controls string `json:"controls"`
	// Mode is "proxy" when the BFF calls APIs for the page (its API
	// routes, in APIs: name -> base URL); the page passes both to
	// Tether.start. Empty: the page holds the token (apiOrigins).
	Mode string            `json:"mode,omitempty"`
	APIs map[string]string `json:"apis,omitempty"`
}

// Demo is a running demo.
type Demo struct {
	URL    string // the page, e.g. http://127.0.0.1:8080
	DevURL string // the dev provider
	Dev    *devprovider.Provider
	BFF    *bff.Handler

	cancel context.CancelFunc
	wg     sync.WaitGroup
	errs   chan error
}

// Start listens, builds everything and serves in the background until
// Close (or ctx ends).
func Start(ctx context.Context, o Options) (*Demo, error) {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:8080"
	}
	if o.WebDir == "" {
		o.WebDir = "web"
	}
	if o.Getenv == nil {
		o.Getenv = func(string) string { return "" }
	}
	var err error
	if o.DevAddr == "" {
		if o.DevAddr, err = devprovider.AddrFromEnv(o.Getenv); err != nil {
			return nil, err
		}
	}
	dcfg, err := devprovider.FromEnv(o.Getenv)
	if err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	devLn, err := net.Listen("tcp", o.DevAddr)
	if err != nil {
		return nil, fmt.Errorf("demo: dev provider address: %w", err)
	}
	bffLn, err := net.Listen("tcp", o.Addr)
	if err != nil {
		devLn.Close()
		return nil, fmt.Errorf("demo: BFF address: %w", err)
	}
	d := &Demo{
		URL:    "http://" + bffLn.Addr().String(),
		DevURL: "http://" + devLn.Addr().String(),
		errs:   make(chan error, 2),
	}
	ctx, d.cancel = context.WithCancel(ctx)
	fail := func(err error) (*Demo, error) {
		d.cancel()
		devLn.Close()
		bffLn.Close()
		d.wg.Wait()
		return nil, err
	}

	dcfg.Issuer = d.DevURL
	dcfg.AllowOrigins = []string{d.URL}
	// The dev provider tells the BFF when a user's session ends there
	// (its logout, /control/backchannel): OpenID Connect Back-Channel
	// Logout to the BFF's route, unless TETHER_DEV_BACKCHANNEL_URI says
	// otherwise (off for none).
	if dcfg.BackchannelLogoutURI == "" && o.Getenv("TETHER_DEV_BACKCHANNEL_URI") != "off" && dcfg.Quirks == devprovider.QuirksNone {
		dcfg.BackchannelLogoutURI = d.URL + wire.PathBackchannel
	}
	dcfg.Logger = o.Logger.With("component", "devprovider")
	if o.Dev != nil {
		o.Dev(&dcfg)
	}
	if dcfg.ClientID == "" {
		dcfg.ClientID = devprovider.DefaultClientID
	}
	if dcfg.ClientSecret == "" {
		dcfg.ClientSecret = devprovider.DefaultClientSecret
	}
	if d.Dev, err = devprovider.New(dcfg); err != nil {
		return fail(err)
	}
	d.serve(ctx, devLn, d.Dev)

	fixed := map[string]string{
		"TETHER_PUBLIC_URL":    d.URL,
		"TETHER_ISSUER":        d.DevURL,
		"TETHER_CLIENT_ID":     dcfg.ClientID,
		"TETHER_CLIENT_SECRET": dcfg.ClientSecret,
		"TETHER_SCOPES":        "openid profile email",
		"TETHER_WEB_DIR":       o.WebDir,
		// The page calls the sample API and the controls on the dev
		// provider's origin: its CSP must allow them.
		"TETHER_API_ORIGINS": d.DevURL,
	}
	// TETHER_DEMO_MODE=proxy: the BFF calls the sample API for the page
	// and hands the browser no token at all.
	if o.Getenv("TETHER_DEMO_MODE") == "proxy" {
		fixed["TETHER_API_ROUTES"], fixed["TETHER_TOKEN_ENDPOINT"] = "dev="+d.DevURL+"/api", "off"
	}
	// In a quirk mode the BFF uses the matching preset, pointed at the dev
	// provider, exactly as it would be pointed at the real one.
	switch dcfg.Quirks {
	case devprovider.QuirksGitHub, devprovider.QuirksGitHubOAuthApp:
		fixed["TETHER_PROVIDER"], fixed["TETHER_GITHUB_URL"], fixed["TETHER_ISSUER"], fixed["TETHER_SCOPES"] = "github", d.DevURL, "", ""
	case devprovider.QuirksGoogle:
		fixed["TETHER_PROVIDER"] = "google"
	}
	cfg, err := bff.FromEnv(func(k string) string {
		if v, ok := fixed[k]; ok {
			return v
		}
		return o.Getenv(k)
	})
	if err != nil {
		return fail(err)
	}
	cfg.Logger = o.Logger.With("component", "bff")
	// The demo's buttons are pressed in quick succession (Expire, then an
	// outage, then Expire again, then Revoke), and each API 401 must reach
	// the provider to show its consequence: the bounds on forced refreshes
	// are loosened unless the environment sets them. Production keeps the
	// defaults (5 s, 6 a minute, burst 3).
	if o.Getenv("TETHER_FORCE_MIN_AGE") == "" {
		cfg.ForceMinAge = demoForceMinAge
	}
	if o.Getenv("TETHER_FORCE_RATE") == "" && o.Getenv("TETHER_FORCE_BURST") == "" {
		cfg.ForceRate, cfg.ForcePer, cfg.ForceBurst = 120, time.Minute, 30
	}
	if throwAwayKeys(&cfg) {
		o.Logger.Info("the demo uses throw-away keys: its sessions end when it stops")
	}
	if o.BFF != nil {
		o.BFF(&cfg)
	}
	if d.BFF, err = bff.New(ctx, cfg); err != nil {
		d.Dev.Close()
		return fail(err)
	}
	mux := http.NewServeMux()
	page := Config{APIOrigin: d.DevURL, API: d.DevURL + "/api/me", Controls: d.DevURL}
	if len(cfg.APIRoutes) > 0 {
		page.Mode, page.APIs = "proxy", map[string]string{}
		for _, r := range cfg.APIRoutes {
			page.APIs[r.Name] = r.URL
		}
	}
	conf, _ := json.Marshal(page)
	mux.HandleFunc("GET /demo/config.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(conf)
	})
	mux.Handle("/", d.BFF)
	d.serve(ctx, bffLn, mux)
	return d, nil
}

func (d *Demo) serve(ctx context.Context, ln net.Listener, h http.Handler) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := bff.Serve(ctx, ln, h); err != nil {
			d.errs <- err
		}
	}()
}

// Err reports a server that stopped by itself.
func (d *Demo) Err() <-chan error { return d.errs }

// Close stops both servers (waiting for requests in flight) and the vault.
func (d *Demo) Close() error {
	d.Dev.Close() // unblock requests held by an outage first
	d.cancel()
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(bff.ShutdownGrace + time.Second):
		return errors.New("demo: servers did not stop in time")
	}
	return d.BFF.Close()
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

// demoForceMinAge is the demo's TETHER_FORCE_MIN_AGE unless the
// environment sets one.
const demoForceMinAge = 100 * time.Millisecond
