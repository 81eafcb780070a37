package bff

import (
	"context"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/tetherauth/tether/bff/refresh"
	"github.com/tetherauth/tether/bff/vault"
	"github.com/tetherauth/tether/shared/wire"
)

// handleLogout ends the session, then revokes its grant at the provider
// when it can (a failure there is logged, not shown), and leaves a cookie
// that names no session but says it was signed out.
//
// The session ends first, through the refresh engine: its record is
// replaced by a tombstone, so a refresh already in flight (from a stolen
// cookie, say) cannot bring it back, and every tab and replica answers
// reconnect_required/signed_out.
func (s *Handler) handleLogout(c *gin.Context) {
	ctx := c.Request.Context()
	if sid := sessionID(c); sid != "" {
		rec, err := s.vault.Get(ctx, sid)
		if err != nil && !errors.Is(err, vault.ErrNotFound) {
			s.log.Error("logout: reading the vault", "err", err)
			writeStorageError(c, err)
			return
		}
		if err := s.refresher.End(ctx, sid, refresh.ReasonSignedOut); err != nil {
			s.log.Error("logout: ending the session", "err", err)
			writeStorageError(c, err)
			return
		}
		s.api.forget(sid)
		if rec != nil && (rec.RefreshToken != "" || rec.AccessToken != "") {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ProviderTimeout)
			if err := s.provider.Revoke(rctx, rec.RefreshToken, rec.AccessToken); err != nil {
				s.log.Warn("logout: revocation at the provider failed; the session is removed here anyway", "err", err)
			} else {
				s.metrics.revocations.Inc()
			}
			cancel()
		}
	}
	s.endCookie(c, wire.ReasonSignedOut)
	c.Status(http.StatusNoContent)
}
