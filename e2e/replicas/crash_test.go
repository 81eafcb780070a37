package replicas

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/devprovider"
	"github.com/tetherauth/tether/shared/wire"
)

// TestLockHolderKilled kills replicas with kill -9 while they hold sessions'
// refresh locks, at the two moments that matter:
//
//   - replica 2 while its refresh requests hang at the provider (timeout
//     mode), which then fails them without rotating anything: once the
//     lease lapses, replica 0 refreshes those sessions and they survive;
//   - replica 1 after the provider rotated the refresh tokens (slow mode,
//     then answered) but before the replica stored them (Redis writes
//     paused): the vault still holds the old refresh token, now a reuse, so
//     replica 0's refresh gets invalid_grant and those sessions end with
//     reconnect_required. (A provider processes a request whose client
//     vanished, as the dev provider does: that is the common case.)
//
// Every session ends in exactly one of the two within a bounded number of
// calls, not before the lease has lapsed (the lock holds) and not long after
// (a dead holder blocks for one lease at most), and the provider's reuse
// count equals the sessions lost.
func TestLockHolderKilled(t *testing.T) {
	const (
		perVictim = 5
		delay     = 3 * time.Second // < timeout: the provider answers a live replica
		timeout   = 4 * time.Second
		lease     = timeout + 5*time.Second // the BFF's lease
	)
	c := startCluster(t, options{providerTimeout: timeout})
	ss := c.loginN(2 * perVictim)
	old := make([]string, len(ss))
	for i, s := range ss {
		old[i] = c.mustToken(s, 0, nil).AccessToken
	}
	c.expire()
	base := c.stats()

	// Sessions 0..4 die with replica 2, sessions 5..9 with replica 1.
	victim := func(i int) int { return 2 - i/perVictim }
	started := make([]time.Time, len(ss)) // before the victim took the lock
	send := func(replica int) {
		for i, s := range ss {
			if victim(i) == replica {
				started[i] = time.Now()
				go c.token(s, replica, &wire.TokenRequest{Force: true, Rejected: old[i]})
			}
		}
	}

	c.outage(devprovider.OutageTimeout, 0)
	send(2)
	c.waitStats("replica 2's refreshes to reach the provider", 5*time.Second, func(s devprovider.Stats) bool {
		return s.OutageHits-base.OutageHits >= perVictim
	})
	c.bffs[2].Kill() // holding the locks, before the provider answered

	c.outage(devprovider.OutageSlow, delay) // fails replica 2's requests
	send(1)
	c.waitStats("replica 1's refreshes to reach the provider", 5*time.Second, func(s devprovider.Stats) bool {
		return s.OutageHits-base.OutageHits >= 2*perVictim
	})
	if _, err := c.redis.Command("CLIENT", "PAUSE", "30000", "WRITE"); err != nil {
		t.Fatal(err)
	}
	c.waitStats("replica 1's refreshes to be processed", 2*delay, func(s devprovider.Stats) bool {
		return s.RefreshToken-base.RefreshToken >= perVictim
	})
	time.Sleep(300 * time.Millisecond) // the answers reach replica 1, which cannot store them
	c.bffs[1].Kill()
	if _, err := c.redis.Command("CLIENT", "UNPAUSE"); err != nil {
		t.Fatal(err)
	}
	c.outage(devprovider.OutageNone, 0)
	if got := c.stats().RefreshToken - base.RefreshToken; got != perVictim {
		t.Fatalf("the provider processed %d refreshes before the kills; want %d (replica 1's only)", got, perVictim)
	}

	// Replica 0 now serves everyone. Each session gets at most 3 calls.
	outcome := make([]answer, len(ss))
	calls := make([]int, len(ss))
	runBounded(len(ss), len(ss), func(i int) {
		for calls[i] < 3 {
			calls[i]++
			a := c.token(ss[i], 0, &wire.TokenRequest{Force: true, Rejected: old[i]})
			outcome[i] = a
			if a.neterr == nil && a.status == http.StatusServiceUnavailable && a.err.Error == wire.ErrProviderUnavailable {
				wait, _ := strconv.Atoi(a.retryAfter)
				time.Sleep(time.Duration(max(wait, 1)) * time.Second)
				continue
			}
			return
		}
	})

	survived, lost := 0, 0
	for i, a := range outcome {
		took := a.recv.Sub(started[i])
		switch {
		case a.neterr == nil && a.status == http.StatusOK && a.tok.AccessToken != old[i]:
			survived++
			if victim(i) != 2 {
				t.Errorf("session %d (replica %d died after the provider rotated its token) got a new token", i, victim(i))
			}
			if c.apiStatus(a.tok.AccessToken) != http.StatusOK {
				t.Errorf("session %d: the API refuses its new token", i)
			}
		case a.neterr == nil && a.status == http.StatusUnauthorized && a.err.Error == wire.ErrReconnectRequired:
			lost++
			if victim(i) != 1 || a.err.Reason != wire.ReasonRevoked {
				t.Errorf("session %d (died on replica %d) ended with %v; want a refresh", i, victim(i), a)
			}
		default:
			t.Errorf("session %d after %d calls: %v; want a new token or reconnect_required", i, calls[i], a)
			continue
		}
		if took < lease-50*time.Millisecond {
			t.Errorf("session %d was settled %v after the dead replica took its lock; the lease is %v", i, took, lease)
		}
		if took > lease+3*time.Second {
			t.Errorf("session %d was settled only %v after the dead replica took its lock; the lease is %v", i, took, lease)
		}
	}
	after := c.stats()
	t.Logf("%d of %d sessions survived their lock holder's death, %d must reconnect; provider: %d refreshes, %d reuses",
		survived, len(ss), lost, after.RefreshToken-base.RefreshToken, after.RefreshReuse-base.RefreshReuse)
	if reuse := after.RefreshReuse - base.RefreshReuse; reuse != int64(lost) {
		t.Errorf("the provider saw %d reuses; want one per lost session (%d)", reuse, lost)
	}
	if survived != perVictim || lost != perVictim {
		t.Errorf("survived %d, lost %d; want %d and %d", survived, lost, perVictim, perVictim)
	}
	if n := c.sessionRecords(); n != survived {
		t.Errorf("Redis holds %d session records; want %d (the survivors)", n, survived)
	}
}
