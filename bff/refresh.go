package bff

import (
	"context"
	"crypto/subtle"
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/tetherauth/tether/bff/provider"
	"github.com/tetherauth/tether/bff/vault"
	"github.com/tetherauth/tether/shared/wire"
)

// outcome is the result of asking for a session's token: a record to hand
// out, or the contract error that explains why there is none.
type outcome struct {
	rec        *vault.Record
	degraded   bool          // rec is served because a refresh failed transiently
	code       string        // wire error code when rec is nil
	reason     string        // wire reason for reconnect_required
	retryAfter time.Duration // with provider_unavailable, or degraded
	backoff    time.Duration // how long not to call the provider again for this session
	msg        string
}

func reconnect(reason, msg string) outcome {
	return outcome{code: wire.ErrReconnectRequired, reason: reason, msg: msg}
}

func storageDown() outcome {
	return outcome{code: wire.ErrStorageUnavailable, msg: "the session store is unreachable; nothing was lost, try again"}
}

// buffer is how long before its expiry rec's access token is refreshed:
// the configured buffer, but never more than half the token's lifetime.
func (s *Server) buffer(rec *vault.Record) time.Duration {
	b := s.cfg.RefreshBuffer
	if life := rec.Expiry.Sub(rec.IssuedAt); life > 0 && b > life/2 {
		b = life / 2
	}
	return b
}

// needsRefresh reports whether rec's access token is inside the buffer.
// A token without an expiry never needs one: it is used until an API
// rejects it.
func (s *Server) needsRefresh(rec *vault.Record, now time.Time) bool {
	return !rec.Expiry.IsZero() && !now.Before(rec.Expiry.Add(-s.buffer(rec)))
}

// recordTTL is how long the vault keeps rec: until its refresh token
// expires when the provider said so, else SessionMaxAge from login. A
// session without a refresh token lives as long as its access token. Both
// get a minute more, to answer "expired" rather than "no session".
func (s *Server) recordTTL(rec *vault.Record) time.Duration {
	now := s.cfg.Now()
	end := rec.Created.Add(s.cfg.SessionMaxAge)
	switch {
	case rec.RefreshToken == "" && !rec.Expiry.IsZero():
		end = minTime(end, rec.Expiry.Add(time.Minute))
	case !rec.RefreshExpiry.IsZero():
		// A minute past the refresh token's end, so the BFF can still say
		// "expired" rather than "no session".
		end = rec.RefreshExpiry.Add(time.Minute)
	}
	if ttl := end.Sub(now); ttl > time.Second {
		return ttl
	}
	return time.Second
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// token answers POST /bff/token for session sid: the current access token
// if it is outside the buffer (or, with force, if it is not the one an API
// rejected), else a refreshed one.
func (s *Server) token(ctx context.Context, sid string, req wire.TokenRequest) outcome {
	rec, err := s.vault.Get(ctx, sid)
	if errors.Is(err, vault.ErrNotFound) {
		return reconnect(wire.ReasonNoSession, "no session: sign in")
	}
	if err != nil {
		s.log.Error("token: reading the vault", "err", err)
		return storageDown()
	}
	if req.Force {
		if !sameToken(rec.AccessToken, req.Rejected) {
			return outcome{rec: rec} // already replaced: hand out the new one
		}
	} else if !s.needsRefresh(rec, s.cfg.Now()) {
		return outcome{rec: rec}
	}
	if wait := s.backingOff(sid); wait > 0 {
		return s.unavailable(rec, req.Force, wait)
	}
	return s.refresh(ctx, sid, rec.AccessToken, req.Force)
}

// backingOff is how long this process still waits before calling the
// provider again for sid after a transient failure; 0 means go ahead.
func (s *Server) backingOff(sid string) time.Duration {
	v, ok := s.backoff.Load(sid)
	if !ok {
		return 0
	}
	wait := v.(time.Time).Sub(s.cfg.Now())
	if wait <= 0 {
		s.backoff.Delete(sid)
		return 0
	}
	return wait
}

// unavailable answers while the provider is failing: the current token if
// it has not expired (and was not rejected), else provider_unavailable.
func (s *Server) unavailable(rec *vault.Record, rejected bool, wait time.Duration) outcome {
	if !rejected && (rec.Expiry.IsZero() || s.cfg.Now().Before(rec.Expiry)) {
		return outcome{rec: rec, degraded: true, retryAfter: wait}
	}
	return outcome{code: wire.ErrProviderUnavailable, retryAfter: wait,
		msg: "the sign-in provider is unavailable; your session is kept, try again shortly"}
}

func sameToken(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// refresh replaces the access token seen (or rejected) by the caller,
// at most once per session across every replica sharing the vault. Calls
// in this process share one flight; the flight runs detached from the
// caller's context, so a client that goes away cannot abort it between the
// provider's rotation and the vault write.
func (s *Server) refresh(ctx context.Context, sid, seen string, rejected bool) outcome {
	ch := s.flight.DoChan(sid, func() (any, error) {
		return s.refreshOnce(context.WithoutCancel(ctx), sid, seen, rejected), nil
	})
	select {
	case r := <-ch:
		return r.Val.(outcome)
	case <-ctx.Done():
		return outcome{code: wire.ErrProviderUnavailable, msg: "request cancelled", retryAfter: s.cfg.RetryAfter}
	}
}

// refreshOnce takes the session's lock, re-reads the record and refreshes
// only if the token is still the one that needed replacing.
func (s *Server) refreshOnce(ctx context.Context, sid, seen string, rejected bool) outcome {
	start := time.Now()
	lock, out, done := s.acquire(ctx, sid, seen, rejected)
	s.metrics.lockWait.Observe(time.Since(start).Seconds())
	if done {
		return out
	}
	stopRenew := s.keepLock(ctx, lock)
	release := func() {
		stopRenew()
		if err := lock.Release(ctx); err != nil && !errors.Is(err, vault.ErrLockLost) {
			s.log.Warn("refresh: releasing the lock", "err", err)
		}
	}
	rec, out, done := s.recheck(ctx, sid, seen, rejected)
	if done {
		release()
		return out
	}
	// The provider call may outlive the callers' patience. A provider that
	// answers late has still rotated the refresh token, so the call goes on
	// (holding the lock) and its result is stored; the callers get the
	// current token, or provider_unavailable, after ProviderTimeout.
	res := make(chan outcome, 1)
	var late atomic.Bool // the callers were answered without this result
	go func() {
		defer release()
		o := s.redeem(ctx, sid, rec, rejected)
		if o.backoff > 0 && !late.Load() {
			// A late failure does not extend the back-off the callers got.
			s.backoff.Store(sid, s.cfg.Now().Add(o.backoff))
		}
		res <- o
	}()
	select {
	case o := <-res:
		return o
	case <-time.After(s.cfg.ProviderTimeout):
		late.Store(true)
		s.metrics.refreshes.WithLabelValues("slow").Inc()
		s.log.Warn("refresh: the provider is slow; answering without waiting, the refresh goes on", "subject", rec.Subject)
		s.backoff.Store(sid, s.cfg.Now().Add(s.cfg.RetryAfter))
		return s.unavailable(rec, rejected, s.cfg.RetryAfter)
	}
}

// recheck re-reads the record under the lock and settles the cases that
// need no provider call. done reports that out is the answer.
func (s *Server) recheck(ctx context.Context, sid, seen string, rejected bool) (*vault.Record, outcome, bool) {
	rec, err := s.vault.Get(ctx, sid)
	switch {
	case errors.Is(err, vault.ErrNotFound):
		return nil, reconnect(wire.ReasonNoSession, "the session ended"), true
	case err != nil:
		s.log.Error("refresh: re-reading the vault", "err", err)
		return nil, storageDown(), true
	case !sameToken(rec.AccessToken, seen):
		s.metrics.refreshes.WithLabelValues("adopted").Inc()
		return nil, outcome{rec: rec}, true // another replica refreshed while we waited
	}

	now := s.cfg.Now()
	if rec.RefreshToken == "" || (!rec.RefreshExpiry.IsZero() && !now.Before(rec.RefreshExpiry)) {
		unexpired := rec.Expiry.IsZero() || now.Before(rec.Expiry)
		if !rejected && unexpired {
			return nil, outcome{rec: rec}, true // cannot refresh, but still valid: use it to the end
		}
		s.drop(ctx, sid)
		if rec.RefreshToken == "" && unexpired {
			// An API refused a token that had not expired and there is
			// nothing to refresh it with (a GitHub OAuth App's token, which
			// never expires): access was revoked.
			s.metrics.refreshes.WithLabelValues("revoked").Inc()
			return nil, reconnect(wire.ReasonRevoked, "access was revoked at the provider: reconnect"), true
		}
		s.metrics.refreshes.WithLabelValues("expired").Inc()
		return nil, reconnect(wire.ReasonExpired, "the sign-in expired: reconnect"), true
	}
	return rec, outcome{}, false
}

// redeem calls the provider with rec's refresh token and stores the
// result: the new tokens, or nothing on an outage, or the session's end on
// revocation. Its deadline is longer than the callers' wait (see
// refreshOnce).
func (s *Server) redeem(ctx context.Context, sid string, rec *vault.Record, rejected bool) outcome {
	pctx, cancel := context.WithTimeout(ctx, s.redeemTimeout())
	t0 := time.Now()
	grant, err := s.provider.Refresh(pctx, rec.RefreshToken)
	cancel()
	s.metrics.refreshLatency.Observe(time.Since(t0).Seconds())
	if errors.Is(err, provider.ErrRevoked) {
		s.metrics.refreshes.WithLabelValues("revoked").Inc()
		s.log.Info("refresh: the provider revoked the grant; clearing the session", "subject", rec.Subject, "err", err)
		s.drop(ctx, sid)
		return reconnect(wire.ReasonRevoked, "access was revoked at the provider: reconnect")
	}
	if err != nil {
		s.metrics.refreshes.WithLabelValues("unavailable").Inc()
		wait := provider.RetryAfterOf(err)
		if wait <= 0 {
			wait = s.cfg.RetryAfter
		}
		s.log.Warn("refresh: provider unavailable; keeping the session", "subject", rec.Subject, "err", err)
		o := s.unavailable(rec, rejected, wait)
		o.backoff = wait
		return o
	}
	s.backoff.Delete(sid)

	now := s.cfg.Now()
	next := *rec
	next.AccessToken, next.IssuedAt, next.Expiry = grant.AccessToken, now, grant.Expiry
	if grant.TokenType != "" {
		next.TokenType = grant.TokenType
	}
	if grant.Scope != "" {
		next.Scope = grant.Scope
	}
	if grant.RefreshToken != "" {
		next.RefreshToken = grant.RefreshToken
	}
	if !grant.RefreshExpiry.IsZero() {
		next.RefreshExpiry = grant.RefreshExpiry
	}
	if err := s.store(ctx, sid, &next); err != nil {
		// The provider has rotated the refresh token and we could not keep
		// the new one: the session cannot be refreshed again. Say so loudly.
		s.metrics.refreshes.WithLabelValues("store_failed").Inc()
		s.log.Error("refresh: could not store the rotated token; the session will need a reconnect", "subject", rec.Subject, "err", err)
		return storageDown()
	}
	s.metrics.refreshes.WithLabelValues("ok").Inc()
	return outcome{rec: &next}
}

// redeemTimeout bounds a provider refresh call: longer than the callers'
// wait, so a slow provider's rotation is not thrown away.
func (s *Server) redeemTimeout() time.Duration { return 3 * s.cfg.ProviderTimeout }

// acquire takes the session's refresh lock. While another replica holds it,
// it watches the record: if the token changes, that replica's result is
// adopted; if the record disappears, the session is over. A caller whose
// token was not rejected and is still valid waits for the other replica
// at most half a provider timeout, then gets that token: otherwise, while
// the provider hangs, it would wait for each replica's attempt in turn
// and see its token expire meanwhile. done reports that out is the final
// answer and no lock is held.
func (s *Server) acquire(ctx context.Context, sid, seen string, rejected bool) (lock *vault.Lock, out outcome, done bool) {
	start := time.Now()
	deadline := start.Add(s.lease + s.cfg.ProviderTimeout)
	for {
		lock, err := s.vault.TryLock(ctx, sid, s.lease)
		if err == nil {
			return lock, outcome{}, false
		}
		if !errors.Is(err, vault.ErrLocked) {
			s.log.Error("refresh: taking the lock", "err", err)
			return nil, storageDown(), true
		}
		if time.Now().After(deadline) {
			return nil, outcome{code: wire.ErrProviderUnavailable, retryAfter: s.cfg.RetryAfter,
				msg: "a refresh is taking too long; try again shortly"}, true
		}
		time.Sleep(lockPoll/2 + rand.N(lockPoll))
		rec, err := s.vault.Get(ctx, sid)
		switch {
		case errors.Is(err, vault.ErrNotFound):
			return nil, reconnect(wire.ReasonNoSession, "the session ended"), true
		case err != nil:
			return nil, storageDown(), true
		case !sameToken(rec.AccessToken, seen):
			s.metrics.refreshes.WithLabelValues("adopted").Inc()
			return nil, outcome{rec: rec}, true
		case !rejected && time.Since(start) >= s.cfg.ProviderTimeout/2 &&
			(rec.Expiry.IsZero() || s.cfg.Now().Before(rec.Expiry)):
			return nil, outcome{rec: rec}, true
		}
	}
}

// keepLock renews the lock's lease until the returned func is called.
func (s *Server) keepLock(ctx context.Context, lock *vault.Lock) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(s.lease / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if err := lock.Renew(ctx, s.lease); err != nil {
					s.log.Warn("refresh: renewing the lock", "err", err)
					return
				}
			}
		}
	}()
	return func() { close(done) }
}

// store writes a refreshed record, retrying briefly: it holds a refresh
// token the provider has already rotated, so giving up loses the session.
func (s *Server) store(ctx context.Context, sid string, rec *vault.Record) error {
	var err error
	for i := range storeRetries {
		if i > 0 {
			time.Sleep(time.Duration(i*i) * 100 * time.Millisecond)
		}
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err = s.vault.Put(wctx, sid, rec, s.recordTTL(rec))
		cancel()
		if err == nil {
			return nil
		}
	}
	return err
}

// drop deletes a session whose grant is gone.
func (s *Server) drop(ctx context.Context, sid string) {
	s.backoff.Delete(sid)
	if err := s.vault.Delete(ctx, sid); err != nil {
		s.log.Error("deleting a revoked session", "err", err)
	}
}
