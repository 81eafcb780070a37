package refresh

import (
	"context"
	"crypto/subtle"
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/tetherauth/tether/bff/provider"
	"github.com/tetherauth/tether/bff/vault"
)

// outcome is the engine's answer inside the package: a record to hand
// out, or the error that explains why there is none.
type outcome struct {
	rec        *vault.Record
	degraded   bool          // rec is served because a refresh failed transiently
	retryAfter time.Duration // with degraded
	err        error         // *ReconnectError, *UnavailableError or *StorageError when rec is nil
	backoff    time.Duration // how long not to call the provider again for this session
}

func (o outcome) result() (Result, error) {
	if o.rec == nil {
		return Result{}, o.err
	}
	return Result{Record: o.rec, Degraded: o.degraded, RetryAfter: o.retryAfter}, nil
}

func reconnect(reason Reason, msg string) outcome {
	return outcome{err: &ReconnectError{Reason: reason, Msg: msg}}
}

func storageDown(err error) outcome {
	return outcome{err: &StorageError{Err: err}}
}

func unavailableErr(wait time.Duration, msg string) outcome {
	return outcome{err: &UnavailableError{RetryAfter: wait, Msg: msg}}
}

// Buffer is how long before its expiry rec's access token is refreshed:
// the configured buffer, but never more than half the token's lifetime.
func (r *Refresher) Buffer(rec *vault.Record) time.Duration {
	b := r.cfg.Buffer
	if life := rec.Expiry.Sub(rec.IssuedAt); life > 0 && b > life/2 {
		b = life / 2
	}
	return b
}

// needsRefresh reports whether rec's access token is inside the buffer.
// A token without an expiry never needs one: it is used until an API
// rejects it.
func (r *Refresher) needsRefresh(rec *vault.Record, now time.Time) bool {
	return !rec.Expiry.IsZero() && !now.Before(rec.Expiry.Add(-r.Buffer(rec)))
}

// RecordTTL is how long the vault keeps rec: until its refresh token
// expires when the provider said so, else SessionMaxAge from login. A
// session without a refresh token lives as long as its access token. Both
// get a minute more, to answer "expired" rather than "no session".
func (r *Refresher) RecordTTL(rec *vault.Record) time.Duration {
	now := r.cfg.Now()
	end := rec.Created.Add(r.cfg.SessionMaxAge)
	switch {
	case rec.RefreshToken == "" && !rec.Expiry.IsZero():
		end = minTime(end, rec.Expiry.Add(time.Minute))
	case !rec.RefreshExpiry.IsZero():
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

// Token answers for session sid: the current access token if it is
// outside the buffer (or, with Force, if it is not the one an API
// rejected), else a refreshed one.
//
// A refresh is made once per session across every process sharing the
// vault: calls in this process share one flight, processes share a lease
// lock in the vault, and a waiter adopts the token another process stored.
// The flight runs detached from ctx, so a caller that goes away cannot
// abort it between the provider's rotation and the vault write; a provider
// slower than ProviderTimeout still has its answer stored, while callers
// are answered on time.
func (r *Refresher) Token(ctx context.Context, sid string, want Want) (Result, error) {
	rec, err := r.store.Get(ctx, sid)
	if errors.Is(err, vault.ErrNotFound) {
		return gone(err).result()
	}
	if err != nil {
		r.log.Error("token: reading the vault", "err", err)
		return storageDown(err).result()
	}
	if out, done := r.idle(ctx, sid, rec); done {
		return out.result()
	}
	if want.Force {
		if !sameToken(rec.AccessToken, want.Rejected) {
			return Result{Record: rec}, nil // already replaced: hand out the new one
		}
		if r.tooSoon(rec) {
			r.obs.Refreshed(OutcomeThrottled)
			return Result{Record: rec}, nil // see force.go
		}
	} else if !r.needsRefresh(rec, r.cfg.Now()) {
		return Result{Record: rec}, nil
	}
	// While the provider's circuit is open it alone decides; closed, a
	// session that just failed waits on its own.
	g := r.brk.admit(ctx, r.usable(rec, want.Force), func(pctx context.Context) outcome {
		return r.refresh(pctx, sid, rec.AccessToken, want.Force)
	})
	switch {
	case g.out != nil: // this caller's refresh was the breaker's probe
		return g.out.result()
	case !g.pass:
		return r.unavailable(rec, want.Force, g.wait).result()
	}
	if wait := r.backingOff(sid); wait > 0 {
		return r.unavailable(rec, want.Force, wait).result()
	}
	return r.refresh(ctx, sid, rec.AccessToken, want.Force).result()
}

// backingOff is how long this process still waits before calling the
// provider again for sid after a transient failure; 0 means go ahead.
func (r *Refresher) backingOff(sid string) time.Duration {
	v, ok := r.backoff.Load(sid)
	if !ok {
		return 0
	}
	wait := v.(time.Time).Sub(r.cfg.Now())
	if wait <= 0 {
		r.backoff.Delete(sid)
		return 0
	}
	return wait
}

// unavailable answers while the provider is failing: the current token if
// it has not expired (and was not rejected), else an UnavailableError.
// Either way it advises when to try again (see advise).
func (r *Refresher) unavailable(rec *vault.Record, rejected bool, wait time.Duration) outcome {
	wait = r.advise(wait)
	if r.usable(rec, rejected) {
		return outcome{rec: rec, degraded: true, retryAfter: wait}
	}
	return unavailableErr(wait, "the sign-in provider is unavailable; your session is kept, try again shortly")
}

// usable reports whether rec's token may still be handed out: it has not
// expired and no API rejected it.
func (r *Refresher) usable(rec *vault.Record, rejected bool) bool {
	return !rejected && (rec.Expiry.IsZero() || r.cfg.Now().Before(rec.Expiry))
}

// advise turns a wait into the Retry-After to hand out: whole seconds,
// rounded down (a client that honours it comes back just before the
// breaker's probe, and is held for it), at least one, at most
// RetryAfterMax.
func (r *Refresher) advise(wait time.Duration) time.Duration {
	return min(max(wait.Truncate(time.Second), time.Second), r.cfg.RetryAfterMax)
}

func sameToken(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// refresh replaces the access token seen (or rejected) by the caller, at
// most once per session across every replica sharing the vault.
func (r *Refresher) refresh(ctx context.Context, sid, seen string, rejected bool) outcome {
	ch := r.flight.DoChan(sid, func() (any, error) {
		return r.refreshOnce(context.WithoutCancel(ctx), sid, seen, rejected), nil
	})
	select {
	case res := <-ch:
		return res.Val.(outcome)
	case <-ctx.Done():
		return unavailableErr(r.advise(r.cfg.RetryAfter), "request cancelled")
	}
}

// refreshOnce takes the session's lock, re-reads the record and refreshes
// only if the token is still the one that needed replacing.
func (r *Refresher) refreshOnce(ctx context.Context, sid, seen string, rejected bool) outcome {
	start := time.Now()
	lock, out, done := r.acquire(ctx, sid, seen, rejected)
	r.obs.LockWait(time.Since(start))
	if done {
		return out
	}
	stopRenew := r.keepLock(ctx, lock)
	release := func() {
		stopRenew()
		if err := lock.Release(ctx); err != nil && !errors.Is(err, vault.ErrLockLost) {
			r.log.Warn("refresh: releasing the lock", "err", err)
		}
	}
	rec, out, done := r.recheck(ctx, sid, seen, rejected)
	if !done && rejected {
		out, done = r.throttle(ctx, sid)
	}
	if done {
		release()
		return out
	}
	// The provider call may outlive the callers' patience. A provider that
	// answers late has still rotated the refresh token, so the call goes on
	// (holding the lock) and its result is stored; the callers get the
	// current token, or an UnavailableError, after ProviderTimeout.
	res := make(chan outcome, 1)
	var late atomic.Bool // the callers were answered without this result
	call := newProviderCall(ctx)
	go func() {
		defer release()
		o := r.redeem(ctx, sid, rec, rejected, call)
		if o.backoff > 0 && !late.Load() {
			// A late failure does not extend the back-off the callers got.
			r.backoff.Store(sid, r.cfg.Now().Add(o.backoff))
		}
		res <- o
	}()
	// The callers' patience runs from when the call leaves: waiting for a
	// call slot is this process's queue, not the provider's slowness.
	select {
	case o := <-res:
		return o
	case <-call.begun:
	}
	select {
	case o := <-res:
		return o
	case <-time.After(r.cfg.ProviderTimeout):
		late.Store(true)
		r.obs.Refreshed(OutcomeSlow)
		r.log.Warn("refresh: the provider is slow; answering without waiting, the refresh goes on", "subject", rec.Subject)
		r.brk.settle(call, errSlow)
		wait := r.nextAttempt(nil)
		r.backoff.Store(sid, r.cfg.Now().Add(wait))
		return r.unavailable(rec, rejected, wait)
	}
}

// recheck re-reads the record under the lock and settles the cases that
// need no provider call. done reports that out is the answer.
func (r *Refresher) recheck(ctx context.Context, sid, seen string, rejected bool) (*vault.Record, outcome, bool) {
	rec, err := r.store.Get(ctx, sid)
	switch {
	case errors.Is(err, vault.ErrNotFound):
		return nil, gone(err), true
	case err != nil:
		r.log.Error("refresh: re-reading the vault", "err", err)
		return nil, storageDown(err), true
	case !sameToken(rec.AccessToken, seen):
		r.obs.Refreshed(OutcomeAdopted)
		return nil, outcome{rec: rec}, true // another replica refreshed while we waited
	}

	now := r.cfg.Now()
	if rec.RefreshToken == "" || (!rec.RefreshExpiry.IsZero() && !now.Before(rec.RefreshExpiry)) {
		unexpired := rec.Expiry.IsZero() || now.Before(rec.Expiry)
		if !rejected && unexpired {
			return nil, outcome{rec: rec}, true // cannot refresh, but still valid: use it to the end
		}
		if rec.RefreshToken == "" && unexpired {
			// An API refused a token that had not expired and there is
			// nothing to refresh it with (a GitHub OAuth App's token, which
			// never expires): access was revoked.
			r.obs.Refreshed(OutcomeRevoked)
			return nil, r.drop(ctx, sid, ReasonRevoked), true
		}
		r.obs.Refreshed(OutcomeExpired)
		return nil, r.drop(ctx, sid, ReasonExpired), true
	}
	return rec, outcome{}, false
}

// redeem calls the provider with rec's refresh token and stores the
// result: the new tokens, or nothing on an outage, or the session's end on
// revocation. Its deadline is longer than the callers' wait (see
// refreshOnce).
func (r *Refresher) redeem(ctx context.Context, sid string, rec *vault.Record, rejected bool, call *providerCall) outcome {
	r.slots <- struct{}{} // at most MaxProviderCalls out at a time
	if !r.brk.mayCall(ctx, call) {
		<-r.slots
		call.callOff()
		return r.unavailable(rec, rejected, r.nextAttempt(nil))
	}
	pctx, cancel := context.WithTimeout(ctx, r.redeemTimeout())
	t0 := time.Now()
	call.begin(r.cfg.Now())
	grant, err := r.provider.Refresh(pctx, rec.RefreshToken)
	cancel()
	<-r.slots
	r.obs.ProviderLatency(time.Since(t0))
	r.brk.settle(call, err)
	if errors.Is(err, provider.ErrRevoked) {
		r.obs.Refreshed(OutcomeRevoked)
		r.log.Info("refresh: the provider revoked the grant; clearing the session", "subject", rec.Subject, "err", err)
		return r.drop(ctx, sid, ReasonRevoked)
	}
	if err != nil {
		r.obs.Refreshed(OutcomeUnavailable)
		wait := r.nextAttempt(err)
		r.log.Warn("refresh: provider unavailable; keeping the session", "subject", rec.Subject, "err", err)
		o := r.unavailable(rec, rejected, wait)
		o.backoff = wait
		return o
	}
	r.backoff.Delete(sid)

	now := r.cfg.Now()
	next := *rec
	next.AccessToken, next.IssuedAt, next.Expiry = grant.AccessToken, now, grant.Expiry
	next.Forced, next.LastUsed = rejected, now
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
	if err := r.storeRefreshed(ctx, sid, &next); errors.Is(err, vault.ErrNotFound) {
		// The session ended (a logout, say) while the provider answered:
		// it stays ended, and nobody gets the new tokens.
		r.obs.Refreshed(OutcomeEnded)
		r.log.Info("refresh: the session ended while the provider answered; dropping its new tokens", "subject", rec.Subject)
		r.discard(ctx, grant)
		return gone(err)
	} else if err != nil {
		// The provider has rotated the refresh token and we could not keep
		// the new one: the session cannot be refreshed again. Say so loudly.
		r.obs.Refreshed(OutcomeStoreFailed)
		r.log.Error("refresh: could not store the rotated token; the session will need a reconnect", "subject", rec.Subject, "err", err)
		return storageDown(err)
	}
	r.obs.Refreshed(OutcomeOK)
	return outcome{rec: &next}
}

// nextAttempt is how long a session waits before its refresh is tried
// again after err: until the breaker's next probe, or one probe interval;
// without a breaker, the provider's Retry-After or else RetryAfter.
func (r *Refresher) nextAttempt(err error) time.Duration {
	if r.brk != nil {
		return r.brk.retryIn()
	}
	if wait := provider.RetryAfterOf(err); wait > 0 {
		return wait
	}
	return r.cfg.RetryAfter
}

// redeemTimeout bounds a provider refresh call: longer than the callers'
// wait, so a slow provider's rotation is not thrown away.
func (r *Refresher) redeemTimeout() time.Duration { return 3 * r.cfg.ProviderTimeout }

// acquire takes the session's refresh lock. While another replica holds it,
// it watches the record: if the token changes, that replica's result is
// adopted; if the record disappears, the session is over. A caller whose
// token was not rejected and is still valid waits for the other replica
// at most half a provider timeout, then gets that token: otherwise, while
// the provider hangs, it would wait for each replica's attempt in turn
// and see its token expire meanwhile. done reports that out is the final
// answer and no lock is held.
func (r *Refresher) acquire(ctx context.Context, sid, seen string, rejected bool) (lock *vault.Lock, out outcome, done bool) {
	start := time.Now()
	deadline := start.Add(r.lease + r.cfg.ProviderTimeout)
	for {
		lock, err := r.store.TryLock(ctx, sid, r.lease)
		if err == nil {
			return lock, outcome{}, false
		}
		if !errors.Is(err, vault.ErrLocked) {
			r.log.Error("refresh: taking the lock", "err", err)
			return nil, storageDown(err), true
		}
		if time.Now().After(deadline) {
			return nil, unavailableErr(r.advise(r.cfg.RetryAfter), "a refresh is taking too long; try again shortly"), true
		}
		time.Sleep(lockPoll/2 + rand.N(lockPoll))
		rec, err := r.store.Get(ctx, sid)
		switch {
		case errors.Is(err, vault.ErrNotFound):
			return nil, gone(err), true
		case err != nil:
			return nil, storageDown(err), true
		case !sameToken(rec.AccessToken, seen):
			r.obs.Refreshed(OutcomeAdopted)
			return nil, outcome{rec: rec}, true
		case !rejected && time.Since(start) >= r.cfg.ProviderTimeout/2 &&
			(rec.Expiry.IsZero() || r.cfg.Now().Before(rec.Expiry)):
			return nil, outcome{rec: rec}, true
		}
	}
}

// keepLock renews the lock's lease until the returned func is called.
func (r *Refresher) keepLock(ctx context.Context, lock *vault.Lock) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(r.lease / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if err := lock.Renew(ctx, r.lease); err != nil {
					r.log.Warn("refresh: renewing the lock", "err", err)
					return
				}
			}
		}
	}()
	return func() { close(done) }
}
