package e2e

import (
	"bufio"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff"
	"github.com/tetherauth/tether/bff/demo"
	"github.com/tetherauth/tether/bff/devprovider"
	"github.com/tetherauth/tether/internal/logbuf"
)

// stackOptions tune one test's demo; zero values keep the demo's defaults.
type stackOptions struct {
	accessTTL        time.Duration // the dev provider's access token lifetime
	autoApprove      bool          // skip the consent page
	providerTimeout  time.Duration // the BFF's bound on a call to the provider
	retryAfter       time.Duration // the BFF's advice when the provider gives none
	csp              string        // replaces the page's Content-Security-Policy (TETHER_CSP)
	revokeOnRefresh  bool          // a refresh kills the earlier access tokens at once (GitHub, Hydra)
	proxy            bool          // proxy mode, /bff/token off (TETHER_DEMO_MODE=proxy)
	forceMinAge      time.Duration // TETHER_FORCE_MIN_AGE
	forceBurst       int           // TETHER_FORCE_BURST
	routes           bool          // a proxy route "dev" to the sample API, /bff/token on
	eventsPerSession int           // Config.EventsPerSession
	extensions       []string      // TETHER_EXTENSION_ORIGINS
}

// stack is a running demo: the page, the BFF and the dev provider.
type stack struct {
	t    testing.TB
	d    *demo.Demo
	ctl  *devprovider.Controls // the dev provider's /control/ API, as the page uses it
	logs *logbuf.Buffer
}

// startStack starts a demo on loopback ports chosen at runtime, serving the
// repository's web/; it stops with the test. On failure the test's log
// shows the servers' log lines.
func startStack(t testing.TB, o stackOptions) *stack {
	t.Helper()
	logs := &logbuf.Buffer{}
	d, err := demo.Start(context.Background(), demo.Options{
		Addr:    "127.0.0.1:0",
		DevAddr: "127.0.0.1:0",
		WebDir:  filepath.Join(repoRoot, "web"),
		Dev: func(c *devprovider.Config) {
			c.AccessTTL = o.accessTTL
			c.AutoApprove = o.autoApprove
			c.RevokeAccessOnRefresh = o.revokeOnRefresh
		},
		BFF: func(c *bff.Config) {
			c.ProviderTimeout = o.providerTimeout
			c.RetryAfter = o.retryAfter
			c.CSP = o.csp
			if o.forceMinAge > 0 {
				c.ForceMinAge = o.forceMinAge
			}
			if o.forceBurst > 0 {
				c.ForceBurst = o.forceBurst
			}
			c.EventsPerSession = o.eventsPerSession
			c.ExtensionOrigins = o.extensions
			if o.routes {
				c.APIRoutes = []bff.APIRoute{{Name: "dev", URL: c.Issuer + "/api"}}
			}
		},
		Getenv: func(k string) string {
			if o.proxy && k == "TETHER_DEMO_MODE" {
				return "proxy"
			}
			return ""
		},
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatalf("starting the demo: %v", err)
	}
	s := &stack{t: t, d: d, ctl: &devprovider.Controls{URL: d.DevURL}, logs: logs}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("stopping the demo: %v", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return s
}

// stats are the dev provider's counters.
func (s *stack) stats() devprovider.Stats { return s.d.Dev.Stats() }

// apiCalls counts the requests /api/me answered.
func (s *stack) apiCalls() int64 {
	st := s.stats()
	return st.APIOK + st.API401
}

// tokenRequests reads the BFF's metrics (in process: the demo does not
// serve them): POST /bff/token answers by result.
func (s *stack) tokenRequests() map[string]int {
	s.t.Helper()
	rec := httptest.NewRecorder()
	s.d.BFF.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	counts := map[string]int{}
	sc := bufio.NewScanner(rec.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, `tether_token_requests_total{result="`)
		if !ok {
			continue
		}
		result, value, ok := strings.Cut(rest, `"} `)
		n, err := strconv.ParseFloat(value, 64)
		if !ok || err != nil {
			s.t.Fatalf("/metrics: cannot read %q", line)
		}
		counts[result] = int(n)
	}
	if err := sc.Err(); err != nil {
		s.t.Fatalf("GET /metrics: %v", err)
	}
	return counts
}

// tokenTotal is the number of POST /bff/token requests the BFF answered.
func (s *stack) tokenTotal() int {
	n := 0
	for _, v := range s.tokenRequests() {
		n += v
	}
	return n
}
