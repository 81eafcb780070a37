package client

import "github.com/tetherauth/tether/shared/wire"

// JSON member names the client reads and writes. The browser's JSON.parse
// does the parsing, so these are the only link to shared/wire's struct
// tags; a test keeps them equal.
const (
	FieldAccessToken   = "access_token"
	FieldTokenType     = "token_type"
	FieldExpiresAt     = "expires_at"
	FieldExpiresIn     = "expires_in"
	FieldRefreshBuffer = "refresh_buffer"
	FieldScope         = "scope"
	FieldDegraded      = "degraded"
	FieldRetryAfter    = "retry_after"

	FieldError   = "error"
	FieldReason  = "reason"
	FieldMessage = "message"

	FieldForce    = "force"
	FieldRejected = "rejected"
)

// MaxRetryAfter caps a Retry-After (the header, or retry_after in a
// degraded token response) the client honours, in milliseconds: the BFF's
// own cap (TETHER_RETRY_AFTER_MAX, 30 s by default), so a provider's
// "come back in an hour" never parks a tab past the BFF's next probe.
const MaxRetryAfter = 30 * Second

// ErrBadToken is returned for a token response the client cannot use.
var ErrBadToken error = constError("client: bad token response")

// Object is a parsed JSON object, as the browser's JSON.parse gives it.
// String, Number and Bool report false when the member is missing or of
// another type.
type Object interface {
	String(name string) (string, bool)
	Number(name string) (float64, bool)
	Bool(name string) (value, ok bool)
}

// DecodeToken reads a 200 body of POST /bff/token. It refuses a missing or
// malformed access token and a token type other than Bearer (with an error
// wrapping ErrBadToken), and turns negative or fractional times into whole
// non-negative seconds.
func DecodeToken(o Object) (wire.TokenResponse, error) {
	var tr wire.TokenResponse
	tr.AccessToken, _ = o.String(FieldAccessToken)
	if !ValidToken(tr.AccessToken) {
		return wire.TokenResponse{}, &wrapError{"client: " + FieldAccessToken + " missing or malformed", ErrBadToken}
	}
	tr.TokenType, _ = o.String(FieldTokenType)
	if !equalFold(tr.TokenType, wire.TokenTypeBearer) {
		return wire.TokenResponse{}, &wrapError{"client: " + FieldTokenType + " is not Bearer", ErrBadToken}
	}
	tr.TokenType = wire.TokenTypeBearer
	tr.ExpiresAt = seconds(o, FieldExpiresAt)
	tr.ExpiresIn = seconds(o, FieldExpiresIn)
	tr.RefreshBuffer = seconds(o, FieldRefreshBuffer)
	tr.Scope, _ = o.String(FieldScope)
	tr.Degraded, _ = o.Bool(FieldDegraded)
	tr.RetryAfter = min(seconds(o, FieldRetryAfter), MaxRetryAfter/Second)
	return tr, nil
}

// DecodeError reads a BFF error body; members that are missing or of the
// wrong type come back empty.
func DecodeError(o Object) wire.ErrorBody {
	var b wire.ErrorBody
	b.Error, _ = o.String(FieldError)
	b.Reason, _ = o.String(FieldReason)
	b.Message, _ = o.String(FieldMessage)
	return b
}

// seconds reads a member as whole non-negative seconds, 0 when absent.
func seconds(o Object, name string) int64 {
	f, ok := o.Number(name)
	if !ok || f != f || f <= 0 { // f != f: NaN
		return 0
	}
	if f > 1<<53 {
		return 1 << 53
	}
	return int64(f)
}

// ValidToken reports whether s is a non-empty RFC 6750 b64token:
// letters, digits and -._~+/ followed by optional '=' padding. Anything
// else could not travel in an Authorization header.
func ValidToken(s string) bool {
	if s == "" || len(s) > 16<<10 {
		return false
	}
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/') {
			break
		}
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// ParseRetryAfter reads a Retry-After header in delay-seconds, the form the
// BFF sends, and returns milliseconds: 0 for an empty value or another form
// (an HTTP date), at most MaxRetryAfter.
func ParseRetryAfter(v string) int64 {
	n, ok := atoi(trimSpace(v))
	if !ok || n <= 0 {
		return 0
	}
	if n > MaxRetryAfter/Second {
		return MaxRetryAfter
	}
	return n * Second
}

// ResponseError is a BFF answer other than 200 to a token request. A
// TokenSource returns it, unwrapped, so that the client can tell a refusal
// from a network failure.
type ResponseError struct {
	Status     int
	Body       wire.ErrorBody
	RetryAfter int64 // milliseconds, from the Retry-After header
}

// Error names the status and the error code, never a token.
func (e *ResponseError) Error() string {
	return "client: bff answered " + itoa(int64(e.Status)) + " " + e.Body.Error
}

// reconnect reports whether the answer means the grant is gone, and why.
func (e *ResponseError) reconnect() (reason string, ok bool) {
	if e.Body.Error != wire.ErrReconnectRequired && (e.Status != 401 || e.Body.Error != "") {
		return "", false
	}
	if e.Body.Reason == "" {
		return wire.ReasonNoSession, true
	}
	return e.Body.Reason, true
}

// wrapError is what fmt.Errorf("%s: %w") would build.
type wrapError struct {
	msg string
	err error
}

func (e *wrapError) Error() string { return e.msg + ": " + e.err.Error() }
func (e *wrapError) Unwrap() error { return e.err }
