package replicas

import (
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/devprovider"
	"github.com/tetherauth/tether/shared/wire"
)

// Timings of the recovery test. Access tokens live 16 s and are due in
// their second half; every round's outage lasts longer than a token, so
// each session goes through degraded (due, still valid) and
// provider_unavailable (expired), and has no usable token left when the
// provider is back.
const (
	recoverySessions = 1000
	recoveryTTL      = 16 * time.Second
	recoveryOutage   = 20 * time.Second
	probeInterval    = 2 * time.Second // the BFF's default TETHER_PROBE_INTERVAL
	recoveryTimeout  = time.Second     // TETHER_PROVIDER_TIMEOUT
	canaries         = 3               // the failures that open the circuit
)

// TestOutageRecoveryAtScale is issue 10 at scale: 1,000 sessions on three
// replicas sharing a real redis-server, the dev provider down for 20 s,
// then healthy, in three ways: 503 with Retry-After: 3600, hanging
// (timeout) and resetting connections. Every session is a client that
// behaves like the browser client: it asks for a token at its refresh
// point and honours retry_after and Retry-After.
//
// The outage is noticed by three clients whose API call was refused
// (a forced refresh) right as it starts: their failures open the circuit,
// and the other sessions come due after it is open. That is the shape of a
// real outage: 1,000 sessions with hour-long tokens come due at about 0.3
// per second, so about three in one provider timeout of 10 s; the test
// keeps that number at the onset while compressing the rest.
//
// The BFFs ask for scope profile only: with openid, the dev provider signs
// an RS256 ID token for each of the 1,000 refreshes at the recovery, which
// on a 2-core machine shared with everything else takes it about 3 s alone
// (measured: the last session then served 4.7 s after the recovery). What
// is measured here is Tether's recovery, not the dev provider's RSA.
//
// Claims, each round: the provider gets at most one call per probe interval
// after the three that opened the circuit (at most 20 s / 2 s + 3 in all);
// once it is back, every session has a fresh token within 3 s (the probe
// interval and a refresh); no session is lost, no refresh token is
// presented twice.
func TestOutageRecoveryAtScale(t *testing.T) {
	start := time.Now()
	c := startCluster(t, options{accessTTL: recoveryTTL, providerTimeout: recoveryTimeout, retryAfter: time.Second,
		env: []string{"TETHER_SCOPES=profile", "TETHER_METRICS_ADDR=127.0.0.1:0"}}) // see above
	c.tr.MaxIdleConnsPerHost = 2 * recoverySessions // every client keeps its connection
	metricsURL, err := c.bffs[0].WaitListening("tether: metrics on ", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ss := make([]*session, recoverySessions)
	errs := make([]error, recoverySessions)
	runBounded(recoverySessions, 48, func(i int) { ss[i], errs[i] = c.login(i) })
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d sessions logged in through replica 0 in %v", recoverySessions, time.Since(start).Round(time.Millisecond))

	parent := c.t
	defer func() { c.t = parent }()
	for i, mode := range []devprovider.OutageMode{devprovider.Outage503, devprovider.OutageTimeout, devprovider.OutageReset} {
		ok := t.Run(string(mode), func(t *testing.T) {
			c.t = t
			if i == 0 {
				// The logins' tokens are not all due yet: wait until the
				// first logged in is, less a few seconds, so that the
				// round sees both phases.
				sleepUntil(start.Add(recoveryTTL/2 - 3*time.Second))
			}
			// Other canaries each round: a forced refresh of a token that a
			// forced refresh issued moments ago is answered with that token
			// (TETHER_FORCE_MIN_AGE), without a provider call.
			recoveryRound(t, c, ss, mode, metricsURL, i*canaries)
		})
		if !ok {
			break
		}
	}
	t.Logf("the whole test took %v", time.Since(start).Round(time.Second))
}

// outcome is how one session's client fared in a round.
type outcome struct {
	served    time.Time // when it got a fresh token after the recovery
	calls     int
	degraded  int // answers with the current token, degraded
	failed    int // provider_unavailable answers
	lost      *answer
	neterrs   int // requests that got no answer (the connection failed)
	maxAdvice time.Duration
}

func recoveryRound(t *testing.T, c *cluster, ss []*session, mode devprovider.OutageMode, metricsURL string, firstCanary int) {
	ctx := t.Context()
	if err := c.ctl.ResetStats(ctx); err != nil {
		t.Fatal(err)
	}
	// The tokens each client holds now.
	current := make([]wire.TokenResponse, len(ss))
	runBounded(len(ss), 64, func(i int) {
		if a := c.token(ss[i], i%len(c.urls), nil); a.neterr == nil && a.status == http.StatusOK {
			current[i] = a.tok
		}
	})
	for i, tok := range current {
		if tok.AccessToken == "" || tok.Degraded {
			t.Fatalf("session %d before the outage: no valid token", i)
		}
	}
	if _, err := c.ctl.Outage(ctx, mode, 0, 0, devprovider.WithRetryAfter(time.Hour)); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	var recovered atomic.Int64 // UnixNano of the recovery; 0 before
	deadline := t0.Add(recoveryOutage + 30*time.Second)

	// Calls and circuit state sampled while the round runs.
	var hitsAtOpen, closedAt atomic.Int64 // closedAt: UnixNano replica 0 showed it closed after the recovery
	hitsAtOpen.Store(-1)
	stopWatch := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stopWatch:
				return
			case <-time.After(20 * time.Millisecond):
			}
			switch {
			case hitsAtOpen.Load() < 0 && circuitOpen(metricsURL):
				st, err := c.ctl.Stats(ctx)
				if err == nil {
					hitsAtOpen.Store(st.OutageHits)
				}
			case recovered.Load() != 0 && closedAt.Load() == 0 && !circuitOpen(metricsURL):
				closedAt.Store(time.Now().UnixNano())
			}
		}
	}()

	out := make([]outcome, len(ss))
	var wg sync.WaitGroup
	for i := range ss {
		canary := i >= firstCanary && i < firstCanary+canaries
		wg.Go(func() { out[i] = c.follow(ss[i], i, current[i], canary, &recovered, deadline) })
	}
	time.Sleep(time.Until(t0.Add(recoveryOutage)))
	st, err := c.ctl.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	recovered.Store(time.Now().UnixNano())
	if _, err := c.ctl.Outage(ctx, devprovider.OutageNone, 0, 0); err != nil {
		t.Fatal(err)
	}
	rec := time.Unix(0, recovered.Load())
	wg.Wait()
	close(stopWatch)
	<-watched
	after := c.stats()

	var (
		last                         time.Time
		slowest                      int
		lost, neverServed            int
		degraded, unavailable, calls int
		neterrs                      int
		maxAdvice                    time.Duration
		latencies                    []time.Duration
	)
	for i, o := range out {
		calls += o.calls
		neterrs += o.neterrs
		degraded += o.degraded
		unavailable += o.failed
		maxAdvice = max(maxAdvice, o.maxAdvice)
		switch {
		case o.lost != nil:
			lost++
			if lost <= 5 {
				t.Errorf("session %d lost: %v", i, *o.lost)
			}
		case o.served.IsZero():
			neverServed++
			if neverServed <= 5 {
				t.Errorf("session %d: no fresh token %v after the recovery (%d calls)", i, deadline.Sub(rec), o.calls)
			}
		default:
			latencies = append(latencies, o.served.Sub(rec))
			if o.served.After(last) {
				last, slowest = o.served, i
			}
		}
	}
	slices.Sort(latencies)
	took := last.Sub(rec)
	opened := hitsAtOpen.Load()
	t.Logf("%s: %d provider calls during the %v outage (%d until the circuit opened on replica 0); circuit closed %v after the recovery; last session served %v after it (session %d; median %v); %d client calls (%d without an answer), %d degraded answers, %d provider_unavailable; largest Retry-After %v; after: %d refreshes, %d reuses",
		mode, st.OutageHits, recoveryOutage, opened, time.Unix(0, closedAt.Load()).Sub(rec).Round(time.Millisecond), took.Round(time.Millisecond), slowest, pct(latencies, 50).Round(time.Millisecond),
		calls, neterrs, degraded, unavailable, maxAdvice, after.RefreshToken, after.RefreshReuse)

	if limit := int64(recoveryOutage/probeInterval) + canaries; st.OutageHits > limit {
		t.Errorf("the provider got %d calls during a %v outage; want at most %d (one probe per %v after the %d that opened the circuit)",
			st.OutageHits, recoveryOutage, limit, probeInterval, canaries)
	}
	if lost > 0 || neverServed > 0 {
		t.Errorf("%d sessions lost, %d without a fresh token; want 0 and 0", lost, neverServed)
	}
	// The target is 3 s (a probe interval and a refresh of 1,000 sessions);
	// the bound allows for make test running the browser suites beside
	// this one on two cores. The measured time is logged above.
	if took > recoveryBound {
		t.Errorf("the last session was served %v after the provider came back; want within 3 s (a probe interval and a refresh), at most %v on a loaded machine", took.Round(time.Millisecond), recoveryBound)
	}
	if after.RefreshReuse != 0 {
		t.Errorf("the provider saw %d reuses of a rotated refresh token; want 0", after.RefreshReuse)
	}
	if after.RefreshToken != int64(len(ss)) {
		t.Errorf("the provider refreshed %d times; want %d, one per session", after.RefreshToken, len(ss))
	}
	if maxAdvice > 30*time.Second {
		t.Errorf("a client was told to wait %v; want at most TETHER_RETRY_AFTER_MAX (30 s)", maxAdvice)
	}
	if degraded == 0 || unavailable == 0 {
		t.Errorf("%d degraded answers, %d provider_unavailable: the round did not go through both phases", degraded, unavailable)
	}
	if n := c.sessionRecords(); n != len(ss) {
		t.Errorf("Redis holds %d session records; want %d", n, len(ss))
	}
}

// follow is session i's client for one round, starting with tok. It asks
// for a token when tok is due (a canary at once, forcing a refresh as
// after an API 401), honours the advice it gets, and stops at the first
// fresh token after the recovery.
func (c *cluster) follow(s *session, i int, tok wire.TokenResponse, canary bool, recovered *atomic.Int64, deadline time.Time) outcome {
	var o outcome
	replica := i % len(c.urls)
	var req *wire.TokenRequest
	if canary {
		req = &wire.TokenRequest{Force: true, Rejected: tok.AccessToken}
	} else {
		sleepUntil(refreshPoint(tok))
	}
	for time.Now().Before(deadline) {
		a := c.token(s, replica, req)
		o.calls++
		var wait time.Duration
		switch {
		case a.neterr != nil:
			// As the browser client does: a network error is not an
			// answer; back off a second and ask again.
			o.neterrs++
			wait = time.Second
		case a.status == http.StatusOK && !a.tok.Degraded && a.tok.AccessToken != tok.AccessToken:
			if rec := recovered.Load(); rec != 0 && a.recv.UnixNano() > rec {
				o.served = a.recv
				return o
			}
			tok, req = a.tok, nil // refreshed before the outage: follow the new one
			sleepUntil(refreshPoint(tok))
			continue
		case a.status == http.StatusOK && a.tok.Degraded:
			o.degraded++
			wait = time.Duration(a.tok.RetryAfter) * time.Second
		case a.status == http.StatusOK:
			time.Sleep(max(time.Until(refreshPoint(a.tok)), 100*time.Millisecond)) // not due yet by the BFF's clock
			continue
		case a.status == http.StatusTooManyRequests && a.err.Error == wire.ErrTooManyRefreshes:
			// A canary's forced refreshes are rationed per session; the
			// browser client waits as told and asks again.
			n, err := strconv.Atoi(a.retryAfter)
			if err != nil || n < 1 {
				o.lost = &a
				return o
			}
			wait = time.Duration(n) * time.Second
		case a.status == http.StatusServiceUnavailable && a.err.Error == wire.ErrProviderUnavailable:
			o.failed++
			n, err := strconv.Atoi(a.retryAfter)
			if err != nil || n < 1 {
				o.lost = &a
				return o
			}
			wait = time.Duration(n) * time.Second
		default:
			o.lost = &a
			return o
		}
		o.maxAdvice = max(o.maxAdvice, wait)
		time.Sleep(wait)
	}
	return o
}

// refreshPoint is when a client asks for a new token: expires_at less the
// refresh buffer.
func refreshPoint(tok wire.TokenResponse) time.Time {
	return time.Unix(tok.ExpiresAt-tok.RefreshBuffer, 0)
}

// circuitOpen reports whether a replica's metrics (at metricsURL) show
// the provider's circuit open or half-open.
func circuitOpen(metricsURL string) bool {
	resp, err := http.Get(metricsURL)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return strings.Contains(string(body), `tether_provider_circuit{state="open"} 1`) ||
		strings.Contains(string(body), `tether_provider_circuit{state="half_open"} 1`)
}

// pct returns the p-th percentile of sorted durations.
func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, len(sorted)*p/100)]
}

// recoveryBound is the most TestOutageRecoveryAtScale accepts from the
// provider's return to the last session served.
const recoveryBound = 4500 * time.Millisecond
