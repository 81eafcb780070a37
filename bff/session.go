package bff

import (
	"errors"
	"net/http"
	"time"

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
		c.JSON(http.StatusOK, wire.SessionResponse{Reason: endedReason(c)})
		return
	}
	rec, err := s.vault.Get(c.Request.Context(), sid)
	if errors.Is(err, vault.ErrNotFound) {
		// Ended elsewhere (another tab's logout, another replica, a
		// back-channel logout, the admin): its tombstone says why.
		reason := wire.ReasonNoSession
		var ee *vault.EndedError
		if errors.As(err, &ee) {
			reason = knownReason(ee.Reason)
		}
		c.JSON(http.StatusOK, wire.SessionResponse{Reason: reason})
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

// keyEnded is the cookie key that, once a session has ended, names the
// reason instead of a session id.
const keyEnded = "ended"

// endCookie replaces the session cookie by one that names no session but
// says why it ended (revoked, expired, signed_out), for as long as the
// vault keeps an ended session's tombstone: every tab of this browser then
// hears the same reason, not no_session, until the user signs in again
// (the callback's new cookie replaces it).
func (s *Handler) endCookie(c *gin.Context, reason string) {
	sess := sessions.Default(c)
	sess.Clear()
	sess.Set(keyEnded, reason)
	sess.Options(sessions.Options{Path: "/", MaxAge: int(refresh.DefaultEndedTTL / time.Second), Secure: s.cfg.secureCookies(), HttpOnly: true, SameSite: http.SameSiteLaxMode})
	if err := sess.Save(); err != nil {
		s.log.Warn("writing the ended-session cookie", "err", err)
	}
}

// endedReason is the reason the cookie's session ended, or
// wire.ReasonNoSession when it names none.
func endedReason(c *gin.Context) string {
	r, _ := sessions.Default(c).Get(keyEnded).(string)
	return knownReason(r)
}

// knownReason is r when it is a reason of the contract a session can end
// for (revoked, expired, signed_out), else wire.ReasonNoSession: what a
// cookie or a tombstone says, as the browser is told it.
func knownReason(r string) string {
	switch r {
	case wire.ReasonRevoked, wire.ReasonExpired, wire.ReasonSignedOut:
		return r
	}
	return wire.ReasonNoSession
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
