package refresh

import (
	"context"
	"fmt"
)

// Ended is what ending a user's, or a provider session's, sessions did.
type Ended struct {
	// Ended counts the sessions this call ended (a session that had
	// already ended, or expired, is not counted).
	Ended int
	// Revoked and RevokeFailed count the grants revoked at the provider,
	// and those whose revocation failed (with EndSubject's revoke).
	Revoked      int
	RevokeFailed int
}

// EndSubject ends every session of subject (as the vault's records name
// the user) for reason, as End does each. With revoke, it also revokes
// each ended session's grant at the provider (RFC 7009, when the provider
// can); a failure there is counted and logged, and the session stays
// ended. It returns a *StorageError when the vault cannot be reached,
// with what it did before.
func (r *Refresher) EndSubject(ctx context.Context, subject string, reason Reason, revoke bool) (Ended, error) {
	ids, err := r.store.SubjectSessions(ctx, subject)
	if err != nil {
		return Ended{}, &StorageError{Err: err}
	}
	return r.endHashed(ctx, ids, reason, revoke)
}

// EndProviderSession ends every session logged in through the provider's
// session psid (the ID token's sid claim), for reason, as End does each;
// their grants are not revoked (the provider ended them, and says so).
func (r *Refresher) EndProviderSession(ctx context.Context, psid string, reason Reason) (Ended, error) {
	ids, err := r.store.ProviderSessions(ctx, psid)
	if err != nil {
		return Ended{}, &StorageError{Err: err}
	}
	return r.endHashed(ctx, ids, reason, false)
}

// endHashed ends the sessions whose hashed ids are ids.
func (r *Refresher) endHashed(ctx context.Context, ids []string, reason Reason, revoke bool) (Ended, error) {
	var out Ended
	rv, canRevoke := r.provider.(revoker)
	if c, ok := r.provider.(interface{ CanRevoke() bool }); ok && !c.CanRevoke() {
		canRevoke = false // no endpoint: nothing would be revoked
	}
	for _, hid := range ids {
		_, rec, err := r.store.EndHashed(ctx, hid, string(reason), r.cfg.EndedTTL)
		if err != nil {
			return out, &StorageError{Err: fmt.Errorf("ending %d sessions, %d done: %w", len(ids), out.Ended, err)}
		}
		if rec == nil {
			continue // it had ended or expired
		}
		out.Ended++
		if !revoke || !canRevoke || (rec.RefreshToken == "" && rec.AccessToken == "") {
			continue
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.ProviderTimeout)
		if err := rv.Revoke(rctx, rec.RefreshToken, rec.AccessToken); err != nil {
			out.RevokeFailed++
			r.log.Warn("ending sessions: revoking a grant at the provider failed; the session ended anyway", "err", err)
		} else {
			out.Revoked++
		}
		cancel()
	}
	return out, nil
}
