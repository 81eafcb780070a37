package refresh

import (
	"context"
	"time"

	"github.com/tetherauth/tether/bff/vault"
)

// Forced refreshes are bounded twice, so that a client (or a stolen
// cookie) asking again and again with the current token cannot make the
// provider refresh without end: a token a forced refresh issued is not
// replaced by another forced refresh before its minimum age, and each
// session has a bucket of forced refreshes that reach the provider, shared
// through the vault. An honest client asks once per 401, and a new token
// is rarely refused at once: it meets neither bound.

// forceMinAge is how old a token a forced refresh issued must be before
// another forced refresh replaces it: Config.ForceMinAge, but at most a
// quarter of its lifetime, so that short-lived tokens can be replaced
// after a 401 well before they expire.
func (r *Refresher) forceMinAge(rec *vault.Record) time.Duration {
	age := r.cfg.ForceMinAge
	if life := rec.Expiry.Sub(rec.IssuedAt); !rec.Expiry.IsZero() && life > 0 && life/4 < age {
		age = life / 4
	}
	return age
}

// tooSoon reports whether a forced refresh of rec's token is to be
// answered with that token: a forced refresh issued it, less than its
// minimum age ago.
func (r *Refresher) tooSoon(rec *vault.Record) bool {
	return rec.Forced && r.cfg.Now().Sub(rec.IssuedAt) < r.forceMinAge(rec)
}

// throttle takes a token from sid's bucket of forced refreshes before one
// goes to the provider. done reports that out is the answer instead: a
// *ThrottledError past the bucket, or a *StorageError.
func (r *Refresher) throttle(ctx context.Context, sid string) (out outcome, done bool) {
	wait, err := r.store.Allow(ctx, sid, r.cfg.Now(), r.cfg.ForceEvery, r.cfg.ForceBurst)
	if err != nil {
		r.log.Error("refresh: the forced-refresh bucket", "err", err)
		return storageDown(err), true
	}
	if wait > 0 {
		r.obs.Refreshed(OutcomeThrottled)
		return outcome{err: &ThrottledError{RetryAfter: wait, Msg: "too many forced refreshes for this session; try again shortly"}}, true
	}
	return outcome{}, false
}
