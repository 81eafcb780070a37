package replicas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/devprovider"
	"github.com/tetherauth/tether/bff/vault/redistest"
	"github.com/tetherauth/tether/e2e/stack"
	"github.com/tetherauth/tether/shared/wire"
)

// options shape a cluster. Zero values take the defaults in startCluster.
type options struct {
	replicas        int           // BFF processes; default 3
	accessTTL       time.Duration // dev provider access tokens; default 10m
	refreshTTL      time.Duration // dev provider grants; default 1h
	refreshBuffer   time.Duration // TETHER_REFRESH_BUFFER; default the BFF's
	providerTimeout time.Duration // TETHER_PROVIDER_TIMEOUT; default 4s
	retryAfter      time.Duration // TETHER_RETRY_AFTER; default 1s
	redisArgs       []string      // extra redis-server arguments
	env             []string      // more variables for every replica
	devEnv          []string      // more variables for the dev provider
}

// cluster is a redis-server, the dev provider and BFF replicas, each a
// process of its own, all on loopback.
type cluster struct {
	t      *testing.T
	opt    options
	redis  *redistest.Server
	dev    *stack.Proc
	devURL string
	ctl    *devprovider.Controls // the dev provider's /control/ API
	bffs   []*stack.Proc
	urls   []string
	tr     *http.Transport // shared by every session's client
}

func startCluster(t *testing.T, opt options) *cluster {
	t.Helper()
	if opt.replicas == 0 {
		opt.replicas = 3
	}
	if opt.accessTTL == 0 {
		opt.accessTTL = 10 * time.Minute
	}
	if opt.refreshTTL == 0 {
		opt.refreshTTL = time.Hour
	}
	if opt.providerTimeout == 0 {
		opt.providerTimeout = 4 * time.Second
	}
	if opt.retryAfter == 0 {
		opt.retryAfter = time.Second
	}
	c := &cluster{t: t, opt: opt, tr: &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: 30 * time.Second}}
	t.Cleanup(c.tr.CloseIdleConnections)
	// Registered first, so it runs after every process has stopped.
	t.Cleanup(c.checkLogs)

	c.redis = redistest.Start(t, opt.redisArgs...)
	var err error
	c.dev, c.devURL, err = bins.StartDevProvider(append([]string{
		"TETHER_DEV_ACCESS_TTL=" + opt.accessTTL.String(),
		"TETHER_DEV_REFRESH_TTL=" + opt.refreshTTL.String(),
		"TETHER_DEV_AUTO_APPROVE=1",
	}, opt.devEnv...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.dev.Stop)
	c.ctl = &devprovider.Controls{URL: c.devURL}

	vaultKey, sessionKey := stack.RandomKey(), stack.RandomKey()
	for i := range opt.replicas {
		env := []string{
			"TETHER_REDIS_URL=redis://" + c.redis.Addr,
			"TETHER_VAULT_KEY=" + vaultKey,
			"TETHER_SESSION_KEYS=" + sessionKey,
			"TETHER_ISSUER=" + c.devURL,
			"TETHER_CLIENT_ID=" + devprovider.DefaultClientID,
			"TETHER_CLIENT_SECRET=" + devprovider.DefaultClientSecret,
			"TETHER_PROVIDER_TIMEOUT=" + opt.providerTimeout.String(),
			"TETHER_RETRY_AFTER=" + opt.retryAfter.String(),
		}
		if opt.refreshBuffer > 0 {
			env = append(env, "TETHER_REFRESH_BUFFER="+opt.refreshBuffer.String())
		}
		env = append(env, opt.env...)
		p, u, err := bins.StartTether(fmt.Sprintf("tether-%d", i), env...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Stop)
		c.bffs, c.urls = append(c.bffs, p), append(c.urls, u)
	}
	return c
}

// readyz returns the status of GET /readyz on replica i.
func (c *cluster) readyz(i int) int {
	c.t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(c.urls[i] + "/readyz")
	if err != nil {
		c.t.Fatalf("GET /readyz on replica %d: %v", i, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// checkLogs fails the test if a refresh token, an ID token or the client
// secret appears in any process's output, and shows the logs' tails when
// the test failed.
func (c *cluster) checkLogs() {
	procs := append([]*stack.Proc{c.dev}, c.bffs...)
	for _, p := range procs {
		if p == nil {
			continue
		}
		text := p.Output()
		for _, needle := range []string{devprovider.PrefixRefreshToken, devprovider.DefaultClientSecret} {
			if strings.Contains(text, needle) {
				c.t.Errorf("%s logged %q (a refresh token or the client secret)", p.Name, needle)
			}
		}
		if jwt := jwtPattern.FindString(text); jwt != "" {
			c.t.Errorf("%s logged a JWT (an ID token): %.20s…", p.Name, jwt)
		}
		if c.t.Failed() {
			c.t.Logf("--- %s output (tail):\n%s", p.Name, p.Tail(4000))
		}
	}
}

// jwtPattern matches a JWT: two base64url JSON segments and a signature.
var jwtPattern = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+`)

// expire expires every access token at the dev provider.
func (c *cluster) expire() {
	c.t.Helper()
	if _, err := c.ctl.Expire(c.t.Context(), ""); err != nil {
		c.t.Fatal(err)
	}
}

// outage puts the dev provider's token endpoint in mode until the next
// call; delay is for mode slow.
func (c *cluster) outage(mode devprovider.OutageMode, delay time.Duration) {
	c.t.Helper()
	if _, err := c.ctl.Outage(c.t.Context(), mode, 0, delay); err != nil {
		c.t.Fatal(err)
	}
}

// stats returns the dev provider's counters.
func (c *cluster) stats() devprovider.Stats {
	c.t.Helper()
	st, err := c.ctl.Stats(c.t.Context())
	if err != nil {
		c.t.Fatal(err)
	}
	return st
}

// waitStats polls the dev provider's counters until ok holds.
func (c *cluster) waitStats(what string, within time.Duration, ok func(devprovider.Stats) bool) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		s := c.stats()
		if ok(s) {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("waiting for %s: not within %v; stats %+v", what, within, s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sessionRecords counts the vault's session records in Redis, not the
// tombstones that ended sessions leave in their place.
func (c *cluster) sessionRecords() int {
	c.t.Helper()
	v, err := c.redis.Command("EVAL", `local n = 0
for _, k in ipairs(redis.call('KEYS', ARGV[1])) do
	if string.sub(redis.call('GET', k), 1, string.len(ARGV[2])) ~= ARGV[2] then n = n + 1 end
end
return n`, "0", "tether:s:*", "\x00tether-ended:")
	if err != nil {
		c.t.Fatal(err)
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		c.t.Fatalf("counting records: %q", v)
	}
	return n
}

// apiStatus calls the dev provider's /api/me with token.
func (c *cluster) apiStatus(token string) int {
	c.t.Helper()
	r, _ := http.NewRequest(http.MethodGet, c.devURL+"/api/me", nil)
	r.Header.Set(wire.HeaderAuthorization, "Bearer "+token)
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		c.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// session is one browser: its own cookie jar. Go's jar keys cookies by
// host, not port, so a login through replica 0 is a session on all of them.
type session struct {
	id int
	c  *http.Client
}

// login runs the authorization-code flow through replica 0: /bff/login,
// the dev provider's /authorize (auto-approved), /bff/callback, and the
// redirect to return_to.
func (c *cluster) login(id int) (*session, error) {
	jar, _ := cookiejar.New(nil)
	s := &session{id: id, c: &http.Client{Jar: jar, Transport: c.tr, Timeout: 30 * time.Second}}
	resp, err := s.c.Get(c.urls[0] + wire.PathLogin + "?return_to=/")
	if err != nil {
		return nil, fmt.Errorf("login %d: %w", id, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if got := resp.Request.URL; got.Host != strings.TrimPrefix(c.urls[0], "http://") || got.Path != "/" {
		return nil, fmt.Errorf("login %d ended at %s (%d); want %s/", id, got, resp.StatusCode, c.urls[0])
	}
	return s, nil
}

// loginN logs in n sessions, a few at a time.
func (c *cluster) loginN(n int) []*session {
	c.t.Helper()
	out := make([]*session, n)
	errs := make([]error, n)
	runBounded(n, 8, func(i int) { out[i], errs[i] = c.login(i) })
	for _, err := range errs {
		if err != nil {
			c.t.Fatal(err)
		}
	}
	return out
}

// answer is one POST /bff/token as the client saw it.
type answer struct {
	status     int
	tok        wire.TokenResponse
	err        wire.ErrorBody
	retryAfter string
	sent, recv time.Time
	neterr     error
}

func (a answer) String() string {
	switch {
	case a.neterr != nil:
		return "network error: " + a.neterr.Error()
	case a.status == http.StatusOK:
		return fmt.Sprintf("200 degraded=%v expires_at=%d", a.tok.Degraded, a.tok.ExpiresAt)
	default:
		return fmt.Sprintf("%d %s/%s Retry-After=%q", a.status, a.err.Error, a.err.Reason, a.retryAfter)
	}
}

// token calls POST /bff/token on replica i for s, with req as the body
// when not nil. It does not fail the test: callers run it in goroutines.
func (c *cluster) token(s *session, i int, req *wire.TokenRequest) answer {
	var body io.Reader
	if req != nil {
		j, _ := json.Marshal(req)
		body = bytes.NewReader(j)
	}
	r, _ := http.NewRequest(http.MethodPost, c.urls[i]+wire.PathToken, body)
	r.Header.Set(wire.HeaderCSRF, wire.CSRFValue)
	r.Header.Set("Content-Type", "application/json")
	a := answer{sent: time.Now()}
	resp, err := s.c.Do(r)
	a.recv = time.Now()
	if err != nil {
		a.neterr = err
		return a
	}
	defer resp.Body.Close()
	a.status, a.retryAfter = resp.StatusCode, resp.Header.Get(wire.HeaderRetryAfter)
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		a.neterr = err
		return a
	}
	if a.status == http.StatusOK {
		err = json.Unmarshal(raw, &a.tok)
	} else {
		err = json.Unmarshal(raw, &a.err)
	}
	if err != nil {
		a.neterr = fmt.Errorf("status %d, body %.200q: %w", a.status, raw, err)
	}
	return a
}

// mustToken calls POST /bff/token and requires a 200.
func (c *cluster) mustToken(s *session, i int, req *wire.TokenRequest) wire.TokenResponse {
	c.t.Helper()
	a := c.token(s, i, req)
	if a.neterr != nil || a.status != http.StatusOK {
		c.t.Fatalf("session %d, replica %d: POST /bff/token: %v; want 200", s.id, i, a)
	}
	return a.tok
}

// runBounded calls fn(0..n-1) with at most inflight calls at a time.
func runBounded(n, inflight int, fn func(i int)) {
	sem := make(chan struct{}, inflight)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			fn(i)
		})
	}
	wg.Wait()
}
