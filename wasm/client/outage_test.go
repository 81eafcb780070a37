package client

import (
	"errors"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tetherauth/tether/shared/wire"
)

// Outages: provider_unavailable and network errors degrade, back off and
// recover; they never raise reconnect.

func TestDegradedThenRecovered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{reply: func(n int, c call) (wire.TokenResponse, error) {
			if n < 3 {
				return wire.TokenResponse{}, errOutage
			}
			return tokenN(n+1, 600, 60), nil
		}}
		c, rec := newClient(t, src)
		_, err := c.Token()
		var ue *UnavailableError
		if !errors.Is(err, ErrUnavailable) || !errors.As(err, &ue) || ue.Reason != wire.ErrProviderUnavailable || ue.RetryAfter < 7*Second {
			t.Fatalf("Token() error %v; want UnavailableError(provider_unavailable) with RetryAfter >= 7s", err)
		}
		// Backing off: fail fast.
		if _, err := c.Token(); !errors.Is(err, ErrUnavailable) || src.count() != 1 {
			t.Fatalf("Token() while backing off: %v after %d requests; want ErrUnavailable after 1", err, src.count())
		}
		if s := c.State(); !s.Degraded || s.Connected {
			t.Errorf("State() = %+v", s)
		}
		time.Sleep(6 * time.Second)
		synctest.Wait()
		if src.count() != 1 {
			t.Fatalf("retried before Retry-After")
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if src.count() != 4 {
			t.Fatalf("%d requests; want 4 (three failures, one success)", src.count())
		}
		wantCached(t, c, "tok-4")
		if rec.kinds() != "degraded(provider_unavailable) degraded(provider_unavailable) degraded(provider_unavailable) recovered(degraded) token" {
			t.Errorf("events %q", rec.kinds())
		}
		for _, e := range rec.events() {
			if e.Kind == EventDegraded && e.RetryAfter < 7*Second {
				t.Errorf("degraded RetryAfter %v < Retry-After 7s", e.RetryAfter)
			}
		}
	})
}

func TestBackoffGrows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{reply: failing(errors.New("fetch: offline"))}
		c, rec := newClient(t, src)
		c.Prefetch()
		want := []int64{500, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000}
		for i, w := range want {
			synctest.Wait()
			evs := rec.events()
			if len(evs) != i+1 {
				t.Fatalf("after %d failures, %d events", i+1, len(evs))
			}
			if e := evs[i]; e.Kind != EventDegraded || e.Reason != ReasonNetwork || e.RetryAfter != w {
				t.Fatalf("failure %d: %+v; want degraded(network) retry in %vms", i+1, e, w)
			}
			time.Sleep(time.Duration(w) * time.Millisecond)
		}
		if rec.count(EventReconnect) != 0 {
			t.Error("an outage raised reconnect")
		}
	})
}

func TestDegradedKeepsUsableToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{reply: issuing(600, 60)}
		c, rec := newClient(t, src)
		mustToken(t, c, "tok-1")
		src.set(failing(errOutage), nil)
		time.Sleep(541 * time.Second)
		synctest.Wait()
		wantCached(t, c, "tok-1")
		mustToken(t, c, "tok-1")
		if s := c.State(); !s.Connected || !s.Degraded {
			t.Errorf("State() = %+v; want connected and degraded", s)
		}
		// Once the token has expired and the outage goes on, callers fail fast.
		time.Sleep(60 * time.Second)
		synctest.Wait()
		wantCached(t, c, "")
		n := src.count()
		if _, err := c.Token(); !errors.Is(err, ErrUnavailable) || src.count() != n {
			t.Errorf("Token() = %v after expiry during an outage", err)
		}
		if rec.count(EventReconnect) != 0 || rec.count(EventDegraded) < 2 {
			t.Errorf("events %q", rec.kinds())
		}
	})
}

func TestRequestTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{reply: issuing(600, 60), hold: make(chan struct{})}
		c, _ := newClient(t, src, func(cfg *Config) { cfg.RequestTimeout = 10 * Second })
		start := time.Now()
		_, err := c.Token()
		if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrTimeout) {
			t.Fatalf("Token() = %v; want ErrUnavailable wrapping ErrTimeout", err)
		}
		if d := time.Since(start); d != 10*time.Second {
			t.Errorf("gave up after %v; want 10s", d)
		}
		close(src.hold)
	})
}

func TestDegradedAnswerWithCurrentToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{reply: issuing(600, 60)}
		c, rec := newClient(t, src)
		mustToken(t, c, "tok-1")
		first := time.Now()
		src.set(func(n int, _ call) (wire.TokenResponse, error) {
			if n == 1 {
				tr := tokenN(1, 600, 60)
				tr.ExpiresIn, tr.ExpiresAt = 60, first.Unix()+600
				tr.Degraded, tr.RetryAfter = true, 30
				return tr, nil
			}
			return tokenN(n+1, 600, 60), nil
		}, nil)
		time.Sleep(541 * time.Second)
		synctest.Wait()
		if src.count() != 2 {
			t.Fatalf("%d requests; want 2", src.count())
		}
		wantCached(t, c, "tok-1")
		if s := c.State(); !s.Connected || !s.Degraded {
			t.Errorf("State() = %+v; want connected and degraded", s)
		}
		time.Sleep(29 * time.Second)
		synctest.Wait()
		if src.count() != 2 {
			t.Fatalf("asked again before the BFF's retry_after")
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if src.count() != 3 {
			t.Fatalf("%d requests; want 3; events %+v", src.count(), rec.events())
		}
		wantCached(t, c, "tok-3")
		if rec.kinds() != "token degraded(provider_unavailable) recovered(degraded) token" {
			t.Errorf("events %q", rec.kinds())
		}
	})
}

func TestRecoverDuringOutageKeepsRetrying(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{reply: issuing(600, 60)}
		c, rec := newClient(t, src)
		mustToken(t, c, "tok-1")
		src.set(failing(errOutage), nil)
		time.Sleep(541 * time.Second) // the refresh fails; tok-1 is still usable
		synctest.Wait()
		// An API refuses tok-1: the client has nothing left and is backing off.
		if _, err := c.Recover("tok-1"); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Recover during the outage: %v; want ErrUnavailable", err)
		}
		n := src.count()
		src.set(issuing(600, 60), nil)
		time.Sleep(8 * time.Second) // the retry still comes, by itself
		synctest.Wait()
		if src.count() != n+1 {
			t.Fatalf("%d requests after the backoff; want %d", src.count(), n+1)
		}
		wantCached(t, c, "tok-"+strconv.Itoa(n+1))
		if rec.count(EventRecovered) != 1 || rec.count(EventReconnect) != 0 {
			t.Errorf("events %q", rec.kinds())
		}
	})
}
