package bff

import (
	"context"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/tetherauth/tether/bff/vault"
)

// handleLogout revokes the grant at the provider when it can (a failure
// there is logged, not shown), deletes the record, and clears the cookie.
func (s *Handler) handleLogout(c *gin.Context) {
	ctx := c.Request.Context()
	if sid := sessionID(c); sid != "" {
		rec, err := s.vault.Get(ctx, sid)
		if err != nil && !errors.Is(err, vault.ErrNotFound) {
			s.log.Error("logout: reading the vault", "err", err)
			writeStorageError(c, err)
			return
		}
		if rec != nil && (rec.RefreshToken != "" || rec.AccessToken != "") {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ProviderTimeout)
			if err := s.provider.Revoke(rctx, rec.RefreshToken, rec.AccessToken); err != nil {
				s.log.Warn("logout: revocation at the provider failed; the session is removed here anyway", "err", err)
			} else {
				s.metrics.revocations.Inc()
			}
			cancel()
		}
		if err := s.vault.Delete(ctx, sid); err != nil {
			s.log.Error("logout: deleting the record", "err", err)
			writeStorageError(c, err)
			return
		}
		s.api.forget(sid)
	}
	s.clearCookie(c)
	c.Status(http.StatusNoContent)
}
