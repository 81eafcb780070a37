package refresh

import (
	"context"
	"errors"
	"time"

	"github.com/tetherauth/tether/bff/provider"
	"github.com/tetherauth/tether/bff/vault"
)

// End ends session sid for reason (ReasonSignedOut on logout): its record
// is replaced by a tombstone, so that every replica answers a
// ReconnectError with reason for up to Config.EndedTTL, and a refresh
// already in flight cannot bring the session back: its write is refused
// and the tokens it obtained are dropped. It returns a *StorageError when
// the vault cannot be reached.
//
// A session ends once: if it had already ended, the earlier reason stands.
func (r *Refresher) End(ctx context.Context, sid string, reason Reason) error {
	_, err := r.end(ctx, sid, reason)
	return err
}

// end ends sid and returns the reason in force.
func (r *Refresher) end(ctx context.Context, sid string, reason Reason) (Reason, error) {
	r.backoff.Delete(sid)
	got, err := r.store.End(ctx, sid, string(reason), r.cfg.EndedTTL)
	if err != nil {
		return reason, &StorageError{Err: err}
	}
	if _, known := messages[Reason(got)]; known {
		reason = Reason(got)
	}
	return reason, nil
}

// drop ends a session whose grant is gone, logging a failure, and returns
// the answer: the reason in force, which is reason unless the session had
// already ended (signed out while its refresh was in flight, say).
func (r *Refresher) drop(ctx context.Context, sid string, reason Reason) outcome {
	reason, err := r.end(ctx, sid, reason)
	if err != nil {
		r.log.Error("ending a session", "reason", reason, "err", err)
	}
	return reconnect(reason, messages[reason])
}

// messages are the ReconnectErrors' texts, for the user.
var messages = map[Reason]string{
	ReasonNoSession: "no session: sign in",
	ReasonRevoked:   "access was revoked at the provider: reconnect",
	ReasonExpired:   "the sign-in expired: reconnect",
	ReasonSignedOut: "this session was signed out: sign in again",
}

// gone answers for a session without a record (err is ErrNotFound): the
// reason its tombstone gives, or no_session.
func gone(err error) outcome {
	reason := ReasonNoSession
	var ee *vault.EndedError
	if errors.As(err, &ee) {
		if _, known := messages[Reason(ee.Reason)]; known {
			reason = Reason(ee.Reason)
		}
	}
	return reconnect(reason, messages[reason])
}

// revoker is what a Provider may also do: revoke tokens (RFC 7009).
type revoker interface {
	Revoke(ctx context.Context, refreshToken, accessToken string) error
}

// discard revokes, when the provider can, the tokens of a refresh whose
// session ended while the provider answered: nobody holds them any more.
func (r *Refresher) discard(ctx context.Context, g *provider.Grant) {
	rv, ok := r.provider.(revoker)
	if !ok {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, r.cfg.ProviderTimeout)
	defer cancel()
	if err := rv.Revoke(rctx, g.RefreshToken, g.AccessToken); err != nil {
		r.log.Warn("refresh: revoking the tokens of a session that ended meanwhile", "err", err)
	}
}

// storeRefreshed writes a refreshed record over the session's record, and
// only over it, retrying briefly: it holds a refresh token the provider
// has already rotated, so giving up loses the session. A session that
// ended meanwhile is not retried: the write is refused for good.
func (r *Refresher) storeRefreshed(ctx context.Context, sid string, rec *vault.Record) error {
	var err error
	for i := range storeRetries {
		if i > 0 {
			time.Sleep(time.Duration(i*i) * 100 * time.Millisecond)
		}
		wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err = r.store.Update(wctx, sid, rec, r.RecordTTL(rec))
		cancel()
		if err == nil || errors.Is(err, vault.ErrNotFound) {
			return err
		}
	}
	return err
}
