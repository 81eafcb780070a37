// Command devprovider runs Tether's local OAuth 2.0 / OpenID Connect
// provider and sample API (package bff/devprovider). It is for `make run`,
// the demo and tests: never for production.
//
// Environment:
//
//	TETHER_DEV_PROVIDER_ADDR   listen address (default 127.0.0.1:9090; port 0 picks one)
//	TETHER_DEV_ISSUER          public base URL (default http://<addr>)
//	TETHER_DEV_ACCESS_TTL      access token lifetime (default 60s)
//	TETHER_DEV_REFRESH_TTL     refresh lifetime from login (default 10m)
//	TETHER_DEV_AUTO_APPROVE    1 to skip the consent page
//	TETHER_DEV_ALLOW_ORIGINS   comma-separated CORS origins (default: any loopback http origin)
//	TETHER_DEV_CLIENT_ID       default tether-dev
//	TETHER_DEV_CLIENT_SECRET   default tether-dev-secret
//	TETHER_DEV_QUIRKS          github, github-oauth-app or google: behave like that provider on the wire
//	TETHER_LOG_FORMAT          text (default) or json
//
// A bad value exits with status 2 and a message naming the variable.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tetherauth/tether/bff/devprovider"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	m := NewMain()
	if err := m.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		var ce *ConfigError
		if errors.As(err, &ce) {
			os.Exit(2)
		}
		os.Exit(1)
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-m.serveErr:
	}
	stop()
	if err := errors.Join(serveErr, m.Close()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// Main is the program, apart from signals and exit codes, so tests can run it.
type Main struct {
	// Getenv reads the configuration. Default os.Getenv.
	Getenv func(string) string
	// Stdout receives the "listening on" line; Stderr the request log.
	Stdout, Stderr io.Writer

	// URL is the base URL it serves, set by Run.
	URL string
	// Provider is the running provider, set by Run.
	Provider *devprovider.Provider

	server   *http.Server
	serveErr chan error
}

// NewMain returns a Main reading the process environment.
func NewMain() *Main {
	return &Main{Getenv: os.Getenv, Stdout: os.Stdout, Stderr: os.Stderr}
}

// ConfigError is a bad environment variable.
type ConfigError struct {
	Var    string
	Value  string
	Reason string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("devprovider: %s=%q: %s", e.Var, e.Value, e.Reason)
}

// settings is what the environment says.
type settings struct {
	addr      string
	logFormat string
	cfg       devprovider.Config
}

func (m *Main) settings() (s settings, err error) {
	get := func(k, def string) string {
		if v := strings.TrimSpace(m.Getenv(k)); v != "" {
			return v
		}
		return def
	}
	s = settings{
		addr:      get("TETHER_DEV_PROVIDER_ADDR", "127.0.0.1:9090"),
		logFormat: get("TETHER_LOG_FORMAT", "text"),
	}
	if _, port, err := net.SplitHostPort(s.addr); err != nil {
		return s, &ConfigError{"TETHER_DEV_PROVIDER_ADDR", s.addr, "want host:port"}
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return s, &ConfigError{"TETHER_DEV_PROVIDER_ADDR", s.addr, "bad port"}
	}
	if s.logFormat != "text" && s.logFormat != "json" {
		return s, &ConfigError{"TETHER_LOG_FORMAT", s.logFormat, "want text or json"}
	}
	c := &s.cfg
	if c.Issuer = get("TETHER_DEV_ISSUER", ""); c.Issuer != "" {
		if u, err := url.Parse(c.Issuer); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return s, &ConfigError{"TETHER_DEV_ISSUER", c.Issuer, "want an absolute http(s) URL"}
		}
	}
	for _, d := range []struct {
		name string
		dst  *time.Duration
		def  string
	}{
		{"TETHER_DEV_ACCESS_TTL", &c.AccessTTL, "60s"},
		{"TETHER_DEV_REFRESH_TTL", &c.RefreshTTL, "10m"},
	} {
		v := get(d.name, d.def)
		ttl, err := time.ParseDuration(v)
		if err != nil || ttl <= 0 {
			return s, &ConfigError{d.name, v, "want a positive Go duration such as 60s"}
		}
		*d.dst = ttl
	}
	v := get("TETHER_DEV_AUTO_APPROVE", "0")
	if c.AutoApprove, err = strconv.ParseBool(v); err != nil {
		return s, &ConfigError{"TETHER_DEV_AUTO_APPROVE", v, "want 1 or 0"}
	}
	if v := get("TETHER_DEV_ALLOW_ORIGINS", ""); v != "" {
		for _, o := range strings.Split(v, ",") {
			o = strings.TrimSpace(o)
			u, err := url.Parse(o)
			if err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" || u.RawQuery != "" {
				return s, &ConfigError{"TETHER_DEV_ALLOW_ORIGINS", v, fmt.Sprintf("%q is not an origin (scheme://host[:port])", o)}
			}
			c.AllowOrigins = append(c.AllowOrigins, o)
		}
	}
	if c.Quirks = devprovider.Quirks(get("TETHER_DEV_QUIRKS", "")); !c.Quirks.Valid() {
		return s, &ConfigError{"TETHER_DEV_QUIRKS", string(c.Quirks), "want github, github-oauth-app or google"}
	}
	c.ClientID = get("TETHER_DEV_CLIENT_ID", devprovider.DefaultClientID)
	c.ClientSecret = get("TETHER_DEV_CLIENT_SECRET", devprovider.DefaultClientSecret)
	return s, nil
}

// Run reads the environment, listens and starts serving in the background.
// It prints the URL it listens on. Call Close to stop.
func (m *Main) Run(ctx context.Context) error {
	s, err := m.settings()
	if err != nil {
		return err
	}
	var h slog.Handler = slog.NewTextHandler(m.Stderr, nil)
	if s.logFormat == "json" {
		h = slog.NewJSONHandler(m.Stderr, nil)
	}
	s.cfg.Logger = slog.New(h)

	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.addr)
	if err != nil {
		return fmt.Errorf("devprovider: listen: %w", err)
	}
	host, _, _ := net.SplitHostPort(s.addr)
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	m.URL = "http://" + net.JoinHostPort(host, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	if s.cfg.Issuer == "" {
		s.cfg.Issuer = m.URL
	}
	if m.Provider, err = devprovider.New(s.cfg); err != nil {
		ln.Close()
		return err
	}
	m.server = &http.Server{Handler: m.Provider, ReadHeaderTimeout: 10 * time.Second}
	m.serveErr = make(chan error, 1)
	go func() {
		if err := m.server.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			m.serveErr <- fmt.Errorf("devprovider: serve: %w", err)
		}
	}()
	quirks := ""
	if s.cfg.Quirks != devprovider.QuirksNone {
		quirks = ", " + string(s.cfg.Quirks) + " quirks"
	}
	fmt.Fprintf(m.Stdout, "devprovider: listening on %s (issuer %s%s; development only)\n", m.URL, s.cfg.Issuer, quirks)
	return nil
}

// Close releases requests held by an outage, then shuts the server down,
// waiting up to 5 seconds for requests in flight.
func (m *Main) Close() error {
	if m.server == nil {
		return nil
	}
	m.Provider.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.server.Shutdown(ctx); err != nil {
		return fmt.Errorf("devprovider: shutdown: %w", err)
	}
	return nil
}
