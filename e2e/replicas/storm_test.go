package replicas

import (
	"net/http"
	"testing"
	"time"

	"github.com/tetherauth/tether/shared/wire"
)

// TestRefreshStormExactlyOnce: 50 sessions, their access tokens expired at
// the provider, then 2,000 concurrent forced /bff/token calls (what clients
// send after an API's 401) spread over three replicas. The provider must
// see exactly one refresh per session and no reuse of a rotated refresh
// token, and every caller of a session must get that session's one new
// token.
func TestRefreshStormExactlyOnce(t *testing.T) {
	const (
		sessions = 50
		calls    = 2000
		perSess  = calls / sessions
		inflight = 200
	)
	c := startCluster(t, options{})
	ss := c.loginN(sessions)
	old := make([]string, sessions)
	for i, s := range ss {
		old[i] = c.mustToken(s, i%len(c.urls), nil).AccessToken
	}
	before := c.stats()
	c.expire()
	expired := time.Now()

	// Call k is session k/perSess on replica k%3: a session's callers start
	// together and hit every replica, the harshest order for the lock.
	answers := make([]answer, calls)
	runBounded(calls, inflight, func(k int) {
		i := k / perSess
		answers[k] = c.token(ss[i], k%len(c.urls), &wire.TokenRequest{Force: true, Rejected: old[i]})
	})
	var last time.Time
	for _, a := range answers {
		if a.recv.After(last) {
			last = a.recv
		}
	}
	after := c.stats()
	t.Logf("%d calls over %d replicas: last caller served %v after the expiry", calls, len(c.urls), last.Sub(expired).Round(time.Millisecond))

	if got := after.RefreshToken - before.RefreshToken; got != sessions {
		t.Errorf("the provider saw %d refreshes for %d sessions; want exactly one each", got, sessions)
	}
	if got := after.RefreshReuse - before.RefreshReuse; got != 0 {
		t.Errorf("the provider saw %d reuses of a rotated refresh token; want 0", got)
	}
	bad := 0
	fresh := make([]string, sessions)
	for k, a := range answers {
		i := k / perSess
		switch {
		case a.neterr != nil || a.status != http.StatusOK:
			bad++
			if bad <= 5 {
				t.Errorf("session %d, replica %d: %v; want 200", i, k%len(c.urls), a)
			}
		case a.tok.AccessToken == old[i]:
			bad++
			if bad <= 5 {
				t.Errorf("session %d, replica %d: got the rejected token back", i, k%len(c.urls))
			}
		case fresh[i] == "":
			fresh[i] = a.tok.AccessToken
		case fresh[i] != a.tok.AccessToken:
			bad++
			if bad <= 5 {
				t.Errorf("session %d, replica %d: a different new token than another caller of the same session got", i, k%len(c.urls))
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d calls went wrong", bad, calls)
	}
	for i, tok := range fresh {
		if tok != "" && c.apiStatus(tok) != http.StatusOK {
			t.Errorf("session %d: the API refuses the new token", i)
		}
	}
	if n := c.sessionRecords(); n != sessions {
		t.Errorf("Redis holds %d session records; want %d", n, sessions)
	}
}
