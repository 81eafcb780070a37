package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff"
	"github.com/tetherauth/tether/bff/demo"
	"github.com/tetherauth/tether/bff/devprovider"
)

// stackOptions tune one test's demo; zero values keep the demo's defaults.
type stackOptions struct {
	accessTTL       time.Duration // the dev provider's access token lifetime
	autoApprove     bool          // skip the consent page
	providerTimeout time.Duration // the BFF's bound on a call to the provider
	retryAfter      time.Duration // the BFF's advice when the provider gives none
	revokeOnRefresh bool          // a refresh kills the earlier access tokens at once (GitHub, Hydra)
}

// stack is a running demo: the page, the BFF and the dev provider.
type stack struct {
	t    testing.TB
	d    *demo.Demo
	logs *lockedBuffer
}

// startStack starts a demo on loopback ports chosen at runtime, serving the
// repository's web/; it stops with the test. On failure the test's log
// shows the servers' log lines.
func startStack(t testing.TB, o stackOptions) *stack {
	t.Helper()
	logs := &lockedBuffer{}
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
		},
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatalf("starting the demo: %v", err)
	}
	s := &stack{t: t, d: d, logs: logs}
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

// control posts to one of the dev provider's /control/ endpoints, as the
// page's buttons do, and fails the test unless it answers 200.
func (s *stack) control(pathAndQuery string) {
	s.t.Helper()
	res, err := http.Post(s.d.DevURL+pathAndQuery, "application/x-www-form-urlencoded", nil)
	if err != nil {
		s.t.Fatalf("POST %s: %v", pathAndQuery, err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		s.t.Fatalf("POST %s: %d %s", pathAndQuery, res.StatusCode, body)
	}
}

// httpStats reads GET /control/stats, the dev provider's counters as JSON.
func (s *stack) httpStats() devprovider.Stats {
	s.t.Helper()
	var st devprovider.Stats
	s.getJSON(s.d.DevURL+"/control/stats", &st)
	return st
}

func (s *stack) getJSON(url string, v any) {
	s.t.Helper()
	res, err := http.Get(url)
	if err != nil {
		s.t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		s.t.Fatalf("GET %s: %d", url, res.StatusCode)
	}
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		s.t.Fatalf("GET %s: %v", url, err)
	}
}

// tokenRequests reads the BFF's /metrics: POST /bff/token answers by result.
func (s *stack) tokenRequests() map[string]int {
	s.t.Helper()
	res, err := http.Get(s.d.URL + "/metrics")
	if err != nil {
		s.t.Fatalf("GET /metrics: %v", err)
	}
	defer res.Body.Close()
	counts := map[string]int{}
	sc := bufio.NewScanner(res.Body)
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

// lockedBuffer is a bytes.Buffer safe for the servers' goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
