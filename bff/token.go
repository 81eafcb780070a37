package bff

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

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

// serveToken answers POST /bff/token, the hot path, in plain net/http.
// It does itself what Tether's Gin middleware does on the other routes
// (the panic handler, the security headers, no-store, the X-CSRF rule,
// the access log), so that the Handler answers it before Gin's router
// (ServeHTTP: Gin's context, router and middleware chain were about 6%
// of the process's CPU on this route) and so that it is the same route
// under an application's router (Register).
func (s *Handler) serveToken(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	status := 0 // the answer's status once written, for the access log
	defer func() {
		if v := recover(); v != nil {
			s.recovered(w, r, v, status != 0)
			status = http.StatusInternalServerError
		}
		s.logRequest(r, status, start)
	}()
	h := w.Header()
	setSecurityHeaders(h)
	setNoStore(h)
	if !hasCSRF(r) {
		status = writeCSRFError(w)
		return
	}
	status = s.token(w, r)
}

// ginToken is serveToken as a Gin handler, for the routers that carry
// it (see Register and routes).
func (s *Handler) ginToken(c *gin.Context) { s.serveToken(c.Writer, c.Request) }

// token answers a token request that passed the X-CSRF rule through the
// refresh engine and returns the status it wrote. The hot path (a valid
// token outside its buffer) is one vault read; the rest of it allocates
// little: the cookie is read with cookieSession, an empty body is not
// read, and the answer is encoded by appendTokenResponse.
func (s *Handler) token(w http.ResponseWriter, r *http.Request) int {
	req, err := readTokenRequest(r)
	if err != nil {
		s.metrics.tokenRequests.WithLabelValues("bad_request").Inc()
		return writeErrorTo(w, wire.ErrInvalidRequest, "", err.Error())
	}
	sid, ended := s.cookieSession(r)
	if sid == "" {
		// No session, or one that ended: say which, as the tab that saw
		// it end was told.
		s.metrics.tokenRequests.WithLabelValues("reconnect").Inc()
		reason := knownReason(ended)
		return writeErrorTo(w, wire.ErrReconnectRequired, reason, reconnectMessage(reason))
	}
	res, err := s.refresher.Token(r.Context(), sid, refresh.Want{Force: req.Force, Rejected: req.Rejected})
	if err != nil {
		code, reason, retryAfter := wireError(err)
		if code == wire.ErrStorageUnavailable {
			retryAfter = min(s.cfg.RetryAfter, s.cfg.RetryAfterMax) // every 503 of /bff/token says when to retry
		}
		s.metrics.tokenRequests.WithLabelValues(code).Inc()
		if retryAfter > 0 {
			w.Header().Set(wire.HeaderRetryAfter, strconv.Itoa(seconds(retryAfter)))
		}
		if code == wire.ErrReconnectRequired {
			if reason == wire.ReasonNoSession {
				s.expireCookie(w)
			} else {
				s.writeEndedCookie(w, r, reason)
			}
		}
		return writeErrorTo(w, code, reason, err.Error())
	}
	if res.Degraded {
		s.metrics.tokenRequests.WithLabelValues("degraded").Inc()
	} else {
		s.metrics.tokenOK.Inc()
	}
	t := s.tokenResponse(res)
	writeTokenResponse(w, &t)
	return http.StatusOK
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
	if r.Body == nil || r.Body == http.NoBody {
		return wire.TokenRequest{}, nil // the usual request: net/http says it has no body
	}
	var req wire.TokenRequest // on the heap (json.Unmarshal), so declared only here
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

// hdrJSON is the Content-Type of JSON answers, as Gin writes it.
var hdrJSON = []string{"application/json; charset=utf-8"}

// tokenBuffers holds the buffers writeTokenResponse encodes into.
var tokenBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// writeTokenResponse sends r as a 200 JSON answer, byte for byte what
// Gin's c.JSON(200, r) sends, without reflection.
func writeTokenResponse(w http.ResponseWriter, r *wire.TokenResponse) {
	bp := tokenBuffers.Get().(*[]byte)
	b := appendTokenResponse((*bp)[:0], r)
	w.Header()["Content-Type"] = hdrJSON
	w.WriteHeader(http.StatusOK)
	w.Write(b)
	if cap(b) <= 64<<10 {
		*bp = b
		tokenBuffers.Put(bp)
	}
}

// appendTokenResponse appends r's JSON encoding to b, as encoding/json
// writes it (field order, omitempty, HTML-safe string escapes).
func appendTokenResponse(b []byte, r *wire.TokenResponse) []byte {
	b = append(b, `{"access_token":`...)
	b = appendJSONString(b, r.AccessToken)
	b = append(b, `,"token_type":`...)
	b = appendJSONString(b, r.TokenType)
	b = append(b, `,"expires_at":`...)
	b = strconv.AppendInt(b, r.ExpiresAt, 10)
	b = append(b, `,"expires_in":`...)
	b = strconv.AppendInt(b, r.ExpiresIn, 10)
	b = append(b, `,"refresh_buffer":`...)
	b = strconv.AppendInt(b, r.RefreshBuffer, 10)
	if r.Scope != "" {
		b = append(b, `,"scope":`...)
		b = appendJSONString(b, r.Scope)
	}
	if r.Degraded {
		b = append(b, `,"degraded":true`...)
	}
	if r.RetryAfter != 0 {
		b = append(b, `,"retry_after":`...)
		b = strconv.AppendInt(b, r.RetryAfter, 10)
	}
	return append(b, '}')
}

// jsonSafe are the ASCII bytes encoding/json writes as they are (its
// htmlSafeSet).
var jsonSafe = func() (ok [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		ok[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return ok
}()

// appendJSONString appends s as a JSON string, escaped as encoding/json
// escapes it: \", \\, \b, \f, \n, \r, \t, other control characters and
// <, >, & as \u00XX, U+2028 and U+2029 as \u2028 and \u2029, and invalid
// UTF-8 as \ufffd.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
