package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tetherauth/tether/bff/devprovider"
	"github.com/tetherauth/tether/bff/vault/redistest"
	"github.com/tetherauth/tether/e2e/stack"
	"github.com/tetherauth/tether/shared/wire"
)

// testbed is what the benchmark runs against: redis-server, the dev
// provider and one BFF, each its own process, on loopback.
type testbed struct {
	dir    string            // binaries and Redis's data
	redis  *redistest.Server // also for measurements, not for the code under test
	dev    *devprovider.Controls
	bffURL string
	// metricsURL is the BFF's metrics listener (TETHER_METRICS_ADDR).
	metricsURL string
	bff        *stack.Proc
	bins       stack.Binaries
	env        []string // the BFF's environment, to start another like it
	procs      []*stack.Proc
	tr         *http.Transport // logins and the storm
}

// startTestbed builds the tether and devprovider binaries and starts the
// three processes. Close stops them.
func startTestbed(ctx context.Context) (b *testbed, err error) {
	b = &testbed{tr: &http.Transport{MaxIdleConnsPerHost: 256}}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	if b.dir, err = os.MkdirTemp("", "tether-bench-"); err != nil {
		return b, fmt.Errorf("tether-bench: %w", err)
	}
	if b.bins, err = stack.Build(ctx, b.dir); err != nil {
		return b, err
	}
	if b.redis, err = redistest.Run(b.dir); err != nil {
		return b, err
	}
	dev, devURL, err := b.bins.StartDevProvider(
		"TETHER_DEV_ACCESS_TTL=1h", "TETHER_DEV_REFRESH_TTL=24h", "TETHER_DEV_AUTO_APPROVE=1")
	if err != nil {
		return b, err
	}
	b.procs = append(b.procs, dev)
	b.dev = &devprovider.Controls{URL: devURL}
	maddr, err := stack.FreeAddr()
	if err != nil {
		return b, err
	}
	b.metricsURL = "http://" + maddr
	b.env = []string{
		"TETHER_REDIS_URL=redis://" + b.redis.Addr,
		"TETHER_VAULT_KEY=" + stack.RandomKey(), "TETHER_SESSION_KEYS=" + stack.RandomKey(),
		"TETHER_ISSUER=" + devURL,
		"TETHER_CLIENT_ID=" + devprovider.DefaultClientID, "TETHER_CLIENT_SECRET=" + devprovider.DefaultClientSecret,
		"TETHER_API_ROUTES=" + proxyRoute + "=" + devURL + "/api", // proxy mode, for proxyBench
	}
	bff, bffURL, err := b.bins.StartTether("tether", append([]string{"TETHER_METRICS_ADDR=" + maddr}, b.env...)...)
	if err != nil {
		return b, err
	}
	b.procs, b.bff, b.bffURL = append(b.procs, bff), bff, bffURL
	return b, nil
}

// Close stops every process and removes the temporary directory.
func (b *testbed) Close() {
	for i := len(b.procs) - 1; i >= 0; i-- {
		b.procs[i].Stop()
	}
	if b.redis != nil {
		b.redis.Stop()
	}
	b.tr.CloseIdleConnections()
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}

// logs returns the output of every process but Redis, for a scan.
func (b *testbed) logs() string {
	var sb strings.Builder
	for _, p := range b.procs {
		fmt.Fprintf(&sb, "--- %s\n%s\n", p.Name, p.Output())
	}
	return sb.String()
}

// login runs the authorization-code flow (the dev provider approves at
// once) and returns the session cookie as a Cookie header value.
func (b *testbed) login(ctx context.Context) (string, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Transport: b.tr, Timeout: 30 * time.Second}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.bffURL+wire.PathLogin+"?return_to=/", nil)
	resp, err := c.Do(req)
	if err != nil {
		return "", fmt.Errorf("tether-bench: login: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	u, _ := url.Parse(b.bffURL)
	var parts []string
	for _, ck := range jar.Cookies(u) {
		parts = append(parts, ck.Name+"="+ck.Value)
	}
	if resp.Request.URL.Path != "/" || len(parts) == 0 {
		return "", fmt.Errorf("tether-bench: login ended at %s (%d) without a session", resp.Request.URL, resp.StatusCode)
	}
	return strings.Join(parts, "; "), nil
}

// records returns the keys of the vault's session records that one SCAN
// of count finds.
func (b *testbed) records(count int) ([]string, error) {
	v, err := b.redis.Command("EVAL", "return table.concat(redis.call('SCAN', '0', 'MATCH', ARGV[1], 'COUNT', ARGV[2])[2], ' ')",
		"0", "tether:s:*", strconv.Itoa(count))
	if err != nil {
		return nil, fmt.Errorf("tether-bench: scan: %w", err)
	}
	return strings.Fields(v), nil
}

// redisInt sends a command whose reply is an integer (STRLEN, MEMORY
// USAGE).
func (b *testbed) redisInt(args ...string) (int64, error) {
	v, err := b.redis.Command(args...)
	if err != nil {
		return 0, fmt.Errorf("tether-bench: %w", err)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("tether-bench: %s: %w", args[0], err)
	}
	return n, nil
}

// infoField reads one field of Redis's INFO section.
func (b *testbed) infoField(section, name string) (string, error) {
	info, err := b.redis.Command("INFO", section)
	if err != nil {
		return "", fmt.Errorf("tether-bench: %w", err)
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("tether-bench: no %s in INFO %s", name, section)
}
