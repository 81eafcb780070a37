package bff

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"

	"github.com/tetherauth/tether/bff/vault"
	"github.com/tetherauth/tether/shared/wire"
)

// maxTokenBody bounds POST /bff/token's JSON body.
const maxTokenBody = 8 << 10

// sessionID is the browser's session id, or "" without a valid cookie.
func sessionID(c *gin.Context) string {
	sid, _ := sessions.Default(c).Get(keySID).(string)
	return sid
}

// handleSession answers GET /bff/session without refreshing anything.
func (s *Server) handleSession(c *gin.Context) {
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
		o := storageDown()
		writeError(c, o.code, "", o.msg)
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

// handleToken answers POST /bff/token.
func (s *Server) handleToken(c *gin.Context) {
	req, err := readTokenRequest(c.Request)
	if err != nil {
		s.metrics.tokenRequests.WithLabelValues("bad_request").Inc()
		writeError(c, wire.ErrInvalidRequest, "", err.Error())
		return
	}
	sid := sessionID(c)
	if sid == "" {
		s.metrics.tokenRequests.WithLabelValues("reconnect").Inc()
		writeError(c, wire.ErrReconnectRequired, wire.ReasonNoSession, "no session: sign in")
		return
	}
	o := s.token(c.Request.Context(), sid, req)
	if o.rec == nil {
		if o.code == wire.ErrStorageUnavailable && o.retryAfter == 0 {
			o.retryAfter = s.cfg.RetryAfter // every 503 of /bff/token says when to retry
		}
		s.metrics.tokenRequests.WithLabelValues(o.code).Inc()
		if o.retryAfter > 0 {
			c.Header(wire.HeaderRetryAfter, strconv.Itoa(seconds(o.retryAfter)))
		}
		if o.code == wire.ErrReconnectRequired {
			s.clearCookie(c)
		}
		writeError(c, o.code, o.reason, o.msg)
		return
	}
	if o.degraded {
		s.metrics.tokenRequests.WithLabelValues("degraded").Inc()
	} else {
		s.metrics.tokenOK.Inc()
	}
	c.JSON(http.StatusOK, s.tokenResponse(o))
}

// tokenResponse is what the browser learns of a record: the access token
// and its timing, never the refresh token.
func (s *Server) tokenResponse(o outcome) wire.TokenResponse {
	rec := o.rec
	r := wire.TokenResponse{
		AccessToken: rec.AccessToken,
		TokenType:   wire.TokenTypeBearer,
		Scope:       rec.Scope,
		Degraded:    o.degraded,
	}
	if !rec.Expiry.IsZero() {
		r.ExpiresAt = rec.Expiry.Unix()
		r.ExpiresIn = max(0, int64(rec.Expiry.Sub(s.cfg.Now())/time.Second))
		r.RefreshBuffer = int64(s.buffer(rec) / time.Second)
	}
	if o.degraded {
		r.RetryAfter = int64(seconds(o.retryAfter))
	}
	return r
}

// readTokenRequest parses the optional JSON body of POST /bff/token.
func readTokenRequest(r *http.Request) (wire.TokenRequest, error) {
	var req wire.TokenRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, maxTokenBody+1))
	if err != nil {
		return req, errors.New("could not read the request body")
	}
	if len(body) > maxTokenBody {
		return req, errors.New("the request body is too large")
	}
	if len(body) == 0 {
		return req, nil
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return req, errors.New(`the body must be JSON like {"force":true,"rejected":"<access token>"}`)
	}
	if req.Force && req.Rejected == "" {
		return req, errors.New(`"force" needs "rejected": the access token the API refused`)
	}
	return req, nil
}

// handleLogout revokes the grant at the provider when it can (a failure
// there is logged, not shown), deletes the record, and clears the cookie.
func (s *Server) handleLogout(c *gin.Context) {
	ctx := c.Request.Context()
	if sid := sessionID(c); sid != "" {
		rec, err := s.vault.Get(ctx, sid)
		if err != nil && !errors.Is(err, vault.ErrNotFound) {
			s.log.Error("logout: reading the vault", "err", err)
			o := storageDown()
			writeError(c, o.code, "", o.msg)
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
			o := storageDown()
			writeError(c, o.code, "", o.msg)
			return
		}
	}
	s.clearCookie(c)
	c.Status(http.StatusNoContent)
}

// clearCookie deletes the session cookie.
func (s *Server) clearCookie(c *gin.Context) {
	sess := sessions.Default(c)
	sess.Clear()
	sess.Options(sessions.Options{Path: "/", MaxAge: -1, Secure: s.cfg.secureCookies(), HttpOnly: true, SameSite: http.SameSiteLaxMode})
	if err := sess.Save(); err != nil {
		s.log.Warn("clearing the session cookie", "err", err)
	}
}

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// seconds rounds d up to whole seconds, at least 1.
func seconds(d time.Duration) int {
	return max(1, int((d+time.Second-1)/time.Second))
}
