package replicas

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/devprovider"
	"github.com/tetherauth/tether/shared/wire"
)

// Timings of the fault matrix: tokens live 4 s and are due for a refresh
// in their second half (the buffer is capped at half the lifetime).
const (
	faultTTL     = 4 * time.Second
	faultTimeout = time.Second // TETHER_PROVIDER_TIMEOUT
	faultRetry   = time.Second // TETHER_RETRY_AFTER
)

// TestProviderFaultMatrix: for each way the token endpoint can fail, a
// burst of /bff/token calls over three replicas for sessions whose tokens
// are due but valid, then another once they have expired. While the
// provider fails, no session is deleted and nobody is told to reconnect;
// a valid token keeps being served (degraded, once this replica has seen
// the failure) and provider_unavailable (with Retry-After) comes only once
// the token has expired; a caller waits at most about one provider timeout.
// When the provider is back, every session gets a fresh token with exactly
// one refresh, and the provider never sees a rotated refresh token again.
//
// The last row is a provider slower than TETHER_PROVIDER_TIMEOUT that
// still completes the refresh: callers are answered after the timeout, but
// the BFF keeps the call going and stores the late rotation, so once a
// token has expired a caller may get that late token instead of
// provider_unavailable, and no session is lost (no rotated refresh token
// is ever presented again).
func TestProviderFaultMatrix(t *testing.T) {
	const sessions = 12
	c := startCluster(t, options{accessTTL: faultTTL, providerTimeout: faultTimeout, retryAfter: faultRetry})
	ss := c.loginN(sessions)
	rows := []struct {
		mode        devprovider.OutageMode
		delay       time.Duration // for mode slow
		rotatesLate bool
	}{
		{devprovider.Outage503, 0, false}, {devprovider.Outage500, 0, false},
		{devprovider.OutageTimeout, 0, false}, {devprovider.OutageReset, 0, false},
		{devprovider.OutageMalformed, 0, false}, {devprovider.OutageError200, 0, false},
		// Last: answers after the BFF's timeout.
		{devprovider.OutageSlow, 2 * faultTimeout, true},
	}
	parent := c.t
	defer func() { c.t = parent }()
	for _, row := range rows {
		name := string(row.mode)
		if row.delay > 0 {
			name += "&delay=" + row.delay.String()
		}
		t.Run(name, func(t *testing.T) {
			c.t = t
			fault(t, c, ss, row.mode, row.delay, row.rotatesLate)
		})
	}
}

// TestSlowProviderStorm: the provider takes most of TETHER_PROVIDER_TIMEOUT
// to answer, and a burst of calls over three replicas hits sessions that
// are due. Every session is refreshed exactly once; every caller gets the
// new token or, while another replica is still waiting for it, the
// current one (still valid), never an error; nobody waits much longer than
// the provider does.
func TestSlowProviderStorm(t *testing.T) {
	const (
		sessions = 12
		delay    = 600 * time.Millisecond
	)
	c := startCluster(t, options{accessTTL: faultTTL, providerTimeout: faultTimeout, retryAfter: faultRetry})
	ss := c.loginN(sessions)
	toks, at := fresh(c, ss)
	base := c.stats()
	sleepUntil(latest(at).Add(faultTTL/2 + 100*time.Millisecond))
	c.outage(devprovider.OutageSlow, delay)
	answers := burst(c, ss, 9)
	after := c.stats()
	if got := after.RefreshToken - base.RefreshToken; got != sessions {
		t.Errorf("the provider processed %d refreshes; want %d, one per session", got, sessions)
	}
	if got := after.RefreshReuse - base.RefreshReuse; got != 0 {
		t.Errorf("the provider saw %d reuses of a rotated refresh token", got)
	}
	newTok := make([]string, sessions)
	current, slowest := 0, time.Duration(0)
	for k, a := range answers {
		i := k % sessions
		slowest = max(slowest, a.recv.Sub(a.sent))
		if a.neterr != nil || a.status != http.StatusOK || a.tok.Degraded {
			t.Errorf("session %d: %v; want 200, not degraded", i, a)
			continue
		}
		switch tok := a.tok.AccessToken; {
		case tok == toks[i].AccessToken:
			current++
		case newTok[i] == "":
			newTok[i] = tok
		case newTok[i] != tok:
			t.Errorf("session %d: two different new tokens", i)
		}
		if d := a.recv.Sub(a.sent); d > delay+700*time.Millisecond {
			t.Errorf("session %d: a caller waited %v; the provider takes %v", i, d.Round(time.Millisecond), delay)
		}
	}
	for i, tok := range newTok {
		if tok == "" {
			t.Errorf("session %d: no caller got a new token", i)
		}
	}
	t.Logf("%d calls: %d got the still-valid current token, the rest the new one; slowest %v", len(answers), current, slowest.Round(time.Millisecond))
}

// fresh gives every session a new token (a forced refresh) and returns
// them with the time each was received.
func fresh(c *cluster, ss []*session) ([]wire.TokenResponse, []time.Time) {
	c.t.Helper()
	toks, at := make([]wire.TokenResponse, len(ss)), make([]time.Time, len(ss))
	for i, s := range ss {
		r := len(c.urls)
		cur := c.mustToken(s, i%r, nil)
		toks[i] = c.mustToken(s, i%r, &wire.TokenRequest{Force: true, Rejected: cur.AccessToken})
		at[i] = time.Now()
		if toks[i].AccessToken == cur.AccessToken || toks[i].Degraded {
			c.t.Fatalf("session %d: a forced refresh did not give a fresh token", i)
		}
	}
	return toks, at
}

// burst makes perSession calls for every session, spread over the
// replicas, all at once.
func burst(c *cluster, ss []*session, perSession int) []answer {
	out := make([]answer, len(ss)*perSession)
	runBounded(len(out), len(out), func(k int) {
		out[k] = c.token(ss[k%len(ss)], (k/len(ss))%len(c.urls), nil)
	})
	return out
}

func fault(t *testing.T, c *cluster, ss []*session, mode devprovider.OutageMode, delay time.Duration, rotatesLate bool) {
	toks, at := fresh(c, ss)
	base := c.stats()
	sleepUntil(latest(at).Add(faultTTL/2 + 100*time.Millisecond)) // every token is due
	c.outage(mode, delay)

	// While the tokens are valid.
	degraded, slowest := 0, time.Duration(0)
	for k, a := range burst(c, ss, 9) {
		i := k % len(ss)
		expiry := time.Unix(toks[i].ExpiresAt, 0) // rounded down
		slowest = max(slowest, a.recv.Sub(a.sent))
		switch {
		case a.neterr != nil:
			t.Errorf("session %d: %v", i, a)
		case a.status == http.StatusOK && a.tok.AccessToken == toks[i].AccessToken && a.tok.Degraded == (a.tok.RetryAfter > 0):
			// Degraded once this replica saw the provider fail; before that
			// (another replica is trying) the valid token as it is.
			if a.tok.Degraded {
				degraded++
			}
		case a.status == http.StatusServiceUnavailable && a.err.Error == wire.ErrProviderUnavailable && a.retryAfter != "":
			if a.recv.Before(expiry) {
				t.Errorf("session %d: provider_unavailable %v before its token expired; want the token, degraded", i, expiry.Sub(a.recv))
			}
		default:
			t.Errorf("session %d, token still valid: %v; want 200 with the current token", i, a)
		}
		if d := a.recv.Sub(a.sent); d > faultTimeout+700*time.Millisecond {
			t.Errorf("session %d: a caller waited %v (provider timeout %v)", i, d.Round(time.Millisecond), faultTimeout)
		}
	}
	if degraded == 0 {
		t.Fatalf("no caller got a degraded token: the burst came too late to test anything")
	}

	// Once every token has expired.
	sleepUntil(time.Unix(maxExpiry(toks)+1, 0).Add(50 * time.Millisecond))
	unavailable := 0
	for k, a := range burst(c, ss, 3) {
		i := k % len(ss)
		if a.neterr == nil && a.status == http.StatusServiceUnavailable && a.err.Error == wire.ErrProviderUnavailable && a.retryAfter != "" {
			unavailable++
			continue
		}
		if rotatesLate && a.neterr == nil && a.status == http.StatusOK && !a.tok.Degraded && a.tok.AccessToken != toks[i].AccessToken {
			continue // the slow provider's late rotation, stored
		}
		t.Errorf("session %d, token expired: %v; want 503 provider_unavailable with Retry-After", i, a)
	}
	if n := c.sessionRecords(); n != len(ss) {
		t.Errorf("during the outage Redis holds %d session records; want %d", n, len(ss))
	}

	// Recovery: each session, on one replica, until it gets a fresh token.
	c.outage(devprovider.OutageNone, 0)
	recovered := make([]answer, len(ss))
	calls := make([]int, len(ss))
	runBounded(len(ss), len(ss), func(i int) {
		for calls[i] < 8 {
			calls[i]++
			a := c.token(ss[i], i%len(c.urls), nil)
			recovered[i] = a
			if a.neterr != nil || a.status != http.StatusServiceUnavailable {
				return
			}
			wait, _ := strconv.Atoi(a.retryAfter)
			time.Sleep(time.Duration(min(max(wait, 1), 6)) * time.Second)
		}
	})
	after := c.stats()
	refreshes, reuses := after.RefreshToken-base.RefreshToken, after.RefreshReuse-base.RefreshReuse
	lost := 0
	for i, a := range recovered {
		switch {
		case a.neterr == nil && a.status == http.StatusOK && !a.tok.Degraded && a.tok.AccessToken != toks[i].AccessToken:
		default:
			t.Errorf("session %d after the outage, %d calls: %v; want a fresh token", i, calls[i], a)
		}
	}
	t.Logf("%s: %d degraded answers, slowest %v; %d provider_unavailable after expiry; %d outage hits; recovery: %d refreshes, %d reuses, %d of %d sessions lost",
		mode, degraded, slowest.Round(time.Millisecond), unavailable, after.OutageHits-base.OutageHits, refreshes, reuses, lost, len(ss))
	if n := c.sessionRecords(); n != len(ss)-lost {
		t.Errorf("after the recovery Redis holds %d session records; want %d", n, len(ss)-lost)
	}
	if rotatesLate {
		// Late rotations happen during the outage; each was kept.
		if refreshes < int64(len(ss)) || reuses != 0 {
			t.Errorf("slow provider: %d refreshes, %d reuses; want at least %d and none", refreshes, reuses, len(ss))
		}
		return
	}
	if refreshes != int64(len(ss)) {
		t.Errorf("the provider processed %d refreshes during the outage and the recovery; want %d (one per session, at the recovery)", refreshes, len(ss))
	}
	if reuses != 0 {
		t.Errorf("the provider saw %d reuses of a rotated refresh token", reuses)
	}
}

func latest(ts []time.Time) time.Time {
	var l time.Time
	for _, t := range ts {
		if t.After(l) {
			l = t
		}
	}
	return l
}

func maxExpiry(toks []wire.TokenResponse) int64 {
	var m int64
	for _, t := range toks {
		m = max(m, t.ExpiresAt)
	}
	return m
}

func sleepUntil(t time.Time) { time.Sleep(time.Until(t)) }
