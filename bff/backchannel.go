package bff

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tetherauth/tether/bff/provider"
	"github.com/tetherauth/tether/bff/refresh"
	"github.com/tetherauth/tether/shared/wire"
)

// logRefusedEvery spaces the log lines about refused logout tokens.
const logRefusedEvery = 10 * time.Second

// maxBackchannelBody bounds a back-channel logout request's body: a form
// with one JWT (a few kilobytes at most).
const maxBackchannelBody = 16 << 10

// handleBackchannel is OpenID Connect Back-Channel Logout 1.0: the
// provider POSTs a logout_token when a user's session there ends. The
// token is verified as the provider's (see
// provider.Provider.VerifyLogoutToken) before anything is written: its
// jti is then remembered (a replay is refused), and the sessions it names
// end with reason signed_out, through the vault's one ending path (the
// tombstone that every replica and tab reads). The grants are not
// revoked: the provider ended them itself.
//
// It is called by the provider, not the browser: no cookie, no X-CSRF.
// Answers: 200 (Cache-Control: no-store) once the sessions ended, 400
// invalid_request for any token that does not verify (nothing ended,
// nothing written), 404 when the provider has no JWKS to verify with
// (plain OAuth 2.0: GitHub), 503 while the provider's discovery or the
// vault is unavailable.
func (s *Handler) handleBackchannel(c *gin.Context) {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxBackchannelBody)
	if ok, _ := s.providerReady(); !ok {
		s.metrics.backchannel.WithLabelValues("unavailable").Inc()
		c.Header(wire.HeaderRetryAfter, strconv.Itoa(seconds(min(s.cfg.RetryAfter, s.cfg.RetryAfterMax))))
		writeError(c, wire.ErrProviderUnavailable, "", "the provider's keys are not known yet")
		return
	}
	raw, ok := logoutTokenOf(c.Request)
	if !ok {
		s.backchannelInvalid(c, "the body is not a form with one logout_token")
		return
	}
	ctx := c.Request.Context()
	tok, err := s.provider.VerifyLogoutToken(ctx, raw)
	switch {
	case errors.Is(err, provider.ErrNoBackchannel):
		writeError(c, wire.ErrNotFound, "", "the provider sends no back-channel logout that could be verified (no OpenID Connect JWKS)")
		return
	case err != nil:
		if s.refusedLog.allow() {
			s.log.InfoContext(ctx, "backchannel: a logout token was refused (at most one such line every 10 s)", "err", err)
		}
		s.backchannelInvalid(c, "the logout token is not valid")
		return
	}
	first, err := s.vault.MarkTokenSeen(ctx, tok.Issuer, tok.ID, tok.RememberFor)
	if err != nil {
		s.metrics.backchannel.WithLabelValues("unavailable").Inc()
		s.log.Error("backchannel: remembering the token", "err", err)
		writeStorageError(c, err)
		return
	}
	if !first {
		s.metrics.backchannel.WithLabelValues("replay").Inc()
		if s.replayedLog.allow() {
			s.log.WarnContext(ctx, "backchannel: a logout token was replayed (at most one such line every 10 s)", "subject", tok.Subject)
		}
		writeError(c, wire.ErrInvalidRequest, "", "the logout token was used before")
		return
	}
	var ended refresh.Ended
	by := "sid"
	if tok.SessionID != "" {
		ended, err = s.refresher.EndProviderSession(ctx, tok.SessionID, refresh.ReasonSignedOut)
	} else {
		by = "sub"
		ended, err = s.refresher.EndSubject(ctx, tok.Subject, refresh.ReasonSignedOut, false)
	}
	if err != nil {
		s.metrics.backchannel.WithLabelValues("unavailable").Inc()
		s.log.Error("backchannel: ending the sessions", "by", by, "ended", ended.Ended, "err", err)
		// The provider may retry: its token must not be taken for a replay.
		if ferr := s.vault.ForgetTokenSeen(context.WithoutCancel(ctx), tok.Issuer, tok.ID); ferr != nil {
			s.log.Error("backchannel: forgetting the token", "err", ferr)
		}
		writeStorageError(c, err)
		return
	}
	s.metrics.backchannel.WithLabelValues("ok").Inc()
	s.log.Info("backchannel logout", "by", by, "subject", tok.Subject, "ended", ended.Ended)
	c.Header("Cache-Control", "no-store")
	c.Status(http.StatusOK)
}

func (s *Handler) backchannelInvalid(c *gin.Context, msg string) {
	s.metrics.backchannel.WithLabelValues("invalid").Inc()
	writeError(c, wire.ErrInvalidRequest, "", msg)
}

// logoutTokenOf reads the one logout_token of an
// application/x-www-form-urlencoded body (a query does not count).
func logoutTokenOf(r *http.Request) (string, bool) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return "", false
	}
	if err := r.ParseForm(); err != nil {
		return "", false
	}
	v := r.PostForm["logout_token"]
	if len(v) != 1 || v[0] == "" {
		return "", false
	}
	return v[0], true
}

// logLimiter spaces the log lines of one kind about refused logout
// tokens to one per logRefusedEvery for the process, whatever the number
// of senders: made-up or replayed tokens cost the sender a request each
// and must not cost the logs a line each (the metric counts them all).
// Each kind has its own, so that a flood of made-up tokens does not hide
// a replayed one, which only a holder of a real token can send.
type logLimiter struct {
	last atomic.Int64 // when a line was last allowed (Unix ns)
}

// allow reports whether a line may be logged now, and if so counts it.
func (l *logLimiter) allow() bool {
	last, now := l.last.Load(), time.Now().UnixNano()
	return now-last >= int64(logRefusedEvery) && l.last.CompareAndSwap(last, now)
}
