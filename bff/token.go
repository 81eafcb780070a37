package bff

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"

	"github.com/tetherauth/tether/bff/refresh"
	"github.com/tetherauth/tether/shared/wire"
)

// maxTokenBody bounds POST /bff/token's JSON body.
const maxTokenBody = 8 << 10

// sessionID is the browser's session id, or "" without a valid cookie.
func sessionID(c *gin.Context) string {
	sid, _ := sessions.Default(c).Get(keySID).(string)
	return sid
}

// handleToken answers POST /bff/token through the refresh engine.
func (s *Handler) handleToken(c *gin.Context) {
	req, err := readTokenRequest(c.Request)
	if err != nil {
		s.metrics.tokenRequests.WithLabelValues("bad_request").Inc()
		writeError(c, wire.ErrInvalidRequest, "", err.Error())
		return
	}
	sid := sessionID(c)
	if sid == "" {
		// No session, or one that ended: say which, as the tab that saw
		// it end was told.
		s.metrics.tokenRequests.WithLabelValues("reconnect").Inc()
		reason := endedReason(c)
		writeError(c, wire.ErrReconnectRequired, reason, reconnectMessage(reason))
		return
	}
	res, err := s.refresher.Token(c.Request.Context(), sid, refresh.Want{Force: req.Force, Rejected: req.Rejected})
	if err != nil {
		code, reason, retryAfter := wireError(err)
		if code == wire.ErrStorageUnavailable {
			retryAfter = min(s.cfg.RetryAfter, s.cfg.RetryAfterMax) // every 503 of /bff/token says when to retry
		}
		s.metrics.tokenRequests.WithLabelValues(code).Inc()
		if retryAfter > 0 {
			c.Header(wire.HeaderRetryAfter, strconv.Itoa(seconds(retryAfter)))
		}
		if code == wire.ErrReconnectRequired {
			if reason == wire.ReasonNoSession {
				s.clearCookie(c)
			} else {
				s.endCookie(c, reason)
			}
		}
		writeError(c, code, reason, err.Error())
		return
	}
	if res.Degraded {
		s.metrics.tokenRequests.WithLabelValues("degraded").Inc()
	} else {
		s.metrics.tokenOK.Inc()
	}
	c.JSON(http.StatusOK, s.tokenResponse(res))
}

// reconnectMessage is the message of a reconnect_required answer made
// from the cookie alone.
func reconnectMessage(reason string) string {
	if reason == wire.ReasonNoSession {
		return "no session: sign in"
	}
	return "this session ended (" + reason + "): sign in again"
}

// wireError maps the refresh engine's errors to the contract's code,
// reason and Retry-After.
func wireError(err error) (code, reason string, retryAfter time.Duration) {
	var re *refresh.ReconnectError
	var ue *refresh.UnavailableError
	var te *refresh.ThrottledError
	switch {
	case errors.As(err, &re):
		return wire.ErrReconnectRequired, string(re.Reason), 0
	case errors.As(err, &ue):
		return wire.ErrProviderUnavailable, "", ue.RetryAfter
	case errors.As(err, &te):
		return wire.ErrTooManyRefreshes, "", te.RetryAfter
	case errors.Is(err, refresh.ErrStorage):
		return wire.ErrStorageUnavailable, "", 0
	}
	return wire.ErrInternal, "", 0
}

// tokenResponse is what the browser learns of a record: the access token
// and its timing, never the refresh token.
func (s *Handler) tokenResponse(res refresh.Result) wire.TokenResponse {
	rec := res.Record
	r := wire.TokenResponse{
		AccessToken: rec.AccessToken,
		TokenType:   wire.TokenTypeBearer,
		Scope:       rec.Scope,
		Degraded:    res.Degraded,
	}
	if !rec.Expiry.IsZero() {
		r.ExpiresAt = rec.Expiry.Unix()
		r.ExpiresIn = max(0, int64(rec.Expiry.Sub(s.cfg.Now())/time.Second))
		r.RefreshBuffer = int64(s.refresher.Buffer(rec) / time.Second)
	}
	if res.Degraded {
		r.RetryAfter = int64(seconds(res.RetryAfter))
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
