package bff

import (
	"errors"
	"net/http"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"

	"github.com/tetherauth/tether/bff/refresh"
	"github.com/tetherauth/tether/bff/vault"
	"github.com/tetherauth/tether/shared/wire"
)

// handleSession answers GET /bff/session without refreshing anything.
func (s *Handler) handleSession(c *gin.Context) {
	sid := sessionID(c)
	if sid == "" {
		c.JSON(http.StatusOK, wire.SessionResponse{})
		return
	}
	rec, err := s.vault.Get(c.Request.Context(), sid)
	if errors.Is(err, vault.ErrNotFound) {
		c.JSON(http.StatusOK, wire.SessionResponse{})
		return
	}
	if err != nil {
		s.log.Error("session: reading the vault", "err", err)
		writeStorageError(c, err)
		return
	}
	c.JSON(http.StatusOK, wire.SessionResponse{
		Authenticated:    true,
		Subject:          rec.Subject,
		Name:             rec.Name,
		AccessExpiresAt:  unix(rec.Expiry),
		RefreshExpiresAt: unix(rec.RefreshExpiry),
	})
}

// writeStorageError answers 503 storage_unavailable for a vault failure.
func writeStorageError(c *gin.Context, err error) {
	writeError(c, wire.ErrStorageUnavailable, "", (&refresh.StorageError{Err: err}).Error())
}

// clearCookie deletes the session cookie.
func (s *Handler) clearCookie(c *gin.Context) {
	sess := sessions.Default(c)
	sess.Clear()
	sess.Options(sessions.Options{Path: "/", MaxAge: -1, Secure: s.cfg.secureCookies(), HttpOnly: true, SameSite: http.SameSiteLaxMode})
	if err := sess.Save(); err != nil {
		s.log.Warn("clearing the session cookie", "err", err)
	}
}
