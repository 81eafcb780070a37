package provider

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"golang.org/x/oauth2"
)

// ErrRevoked means the provider refused the grant for good (RFC 6749
// invalid_grant, or a provider's equivalent): the refresh token was revoked,
// expired or already used. The session must be cleared and the user must
// reconnect.
var ErrRevoked = errors.New("grant revoked")

// ErrUnavailable means the provider could not answer usefully right now:
// a network error, a timeout, a 5xx, or an error code that is not about the
// grant. Nothing should be deleted; try again later.
var ErrUnavailable = errors.New("provider unavailable")

// ErrBadResponse means the provider answered, but with something Tether
// cannot use (a malformed body, an ID token that does not verify). It wraps
// ErrUnavailable for refresh purposes: it is never taken as revocation.
var ErrBadResponse = fmt.Errorf("bad response: %w", ErrUnavailable)

// revokedCodes are the error codes that mean the grant is gone.
var revokedCodes = map[string]bool{
	"invalid_grant":     true,
	"bad_refresh_token": true, // GitHub, with HTTP 200
}

// Error is a failed token-endpoint call, reduced to what is safe to log:
// the HTTP status, the OAuth error code and a trimmed description. It never
// holds the response body, which may echo a token.
type Error struct {
	Status      int           // HTTP status; 0 when there was no response
	Code        string        // RFC 6749 error code, when the provider gave one
	Description string        // error_description, at most 200 bytes
	RetryAfter  time.Duration // from a Retry-After header, when present
	kind        error         // ErrRevoked or ErrUnavailable
	cause       error         // a transport error, when there was no response
}

// Error describes the failure without any token material.
func (e *Error) Error() string {
	switch {
	case e.Status == 0 && e.cause != nil:
		return fmt.Sprintf("%v: %v", e.kind, e.cause)
	case e.Code != "":
		return fmt.Sprintf("%v: HTTP %d %s %q", e.kind, e.Status, e.Code, e.Description)
	default:
		return fmt.Sprintf("%v: HTTP %d", e.kind, e.Status)
	}
}

// Unwrap lets errors.Is match ErrRevoked or ErrUnavailable, and the
// transport cause (context.DeadlineExceeded, say).
func (e *Error) Unwrap() []error {
	if e.cause != nil {
		return []error{e.kind, e.cause}
	}
	return []error{e.kind}
}

// classify turns an x/oauth2 error into an *Error. secrets (the refresh
// token, the client secret, a code or verifier) are cut out of the
// provider's error_description, which may echo them.
func classify(err error, secrets ...string) error {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		// No usable response: the connection failed, timed out, or the body
		// did not parse. x/oauth2's parse errors quote a byte or two of the
		// body at most; keep only our own words for them.
		e := &Error{kind: ErrUnavailable, cause: err}
		if !isTransport(err) {
			e.kind, e.cause = ErrBadResponse, errors.New("malformed token response")
		}
		return e
	}
	e := &Error{Code: re.ErrorCode, Description: trim(redact(re.ErrorDescription, secrets), 200), kind: ErrUnavailable}
	if re.Response != nil {
		e.Status = re.Response.StatusCode
		e.RetryAfter = retryAfter(re.Response.Header.Get("Retry-After"))
	}
	if revokedCodes[re.ErrorCode] && e.Status < 500 {
		e.kind = ErrRevoked
	}
	return e
}

// isTransport reports whether err came from the HTTP round trip (dial,
// reset, timeout, cancellation) rather than from parsing.
func isTransport(err error) bool {
	var ue interface{ Timeout() bool }
	return errors.As(err, &ue) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// RetryAfterOf returns the provider's Retry-After advice carried by err, or 0.
func RetryAfterOf(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

// redact replaces, in a provider's error_description, each of secrets and
// every word that looks like a token (20 or more token characters, with
// letters and digits) by "[redacted]".
func redact(s string, secrets []string) string {
	for _, v := range secrets {
		if v != "" {
			s = strings.ReplaceAll(s, v, "[redacted]")
		}
	}
	return tokenLike.ReplaceAllStringFunc(s, func(w string) string {
		if strings.ContainsAny(w, "0123456789") && strings.IndexFunc(w, unicode.IsLetter) >= 0 {
			return "[redacted]"
		}
		return w
	})
}

// tokenLike matches runs of the characters opaque tokens, JWTs and base64
// are made of.
var tokenLike = regexp.MustCompile(`[A-Za-z0-9_.~+/=-]{20,}`)

func trim(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// extraSeconds reads a token-response member that should be a number of
// seconds but may arrive as a JSON number or a string.
func extraSeconds(v any) int64 {
	switch x := v.(type) {
	case float64:
		return int64(x)
	case int64: // a number in a form-encoded response (GitHub), via Token.Extra
		return x
	case json.Number:
		n, _ := x.Int64()
		return n
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return 0
}

// doJSON performs req and decodes a 2xx JSON answer into v.
func doJSON(c *http.Client, req *http.Request, v any) error {
	resp, err := c.Do(req)
	if err != nil {
		return &Error{kind: ErrUnavailable, cause: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return &Error{Status: resp.StatusCode, kind: ErrUnavailable}
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v); err != nil {
		return &Error{Status: resp.StatusCode, kind: ErrBadResponse, cause: errors.New("malformed JSON")}
	}
	return nil
}
