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

// revokedCodes are the error codes that mean the grant (or, at the code
// exchange, the code) is gone. Only with a status below 500.
var revokedCodes = map[string]bool{
	"invalid_grant":         true, // RFC 6749; Google, Entra (AADSTS… in the description)
	"bad_refresh_token":     true, // GitHub, with HTTP 200 (some report 400)
	"bad_verification_code": true, // GitHub's invalid_grant for a code, with HTTP 200
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
	cause       error         // a transport error, or what was wrong with the body
}

// Error describes the failure without any token material: the class, the
// HTTP status, the error code with its (redacted) description, and the
// transport error, each when there is one.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.kind.Error())
	if e.Status != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
	}
	if e.Code != "" {
		fmt.Fprintf(&b, " %s %q", e.Code, e.Description)
	}
	if e.cause != nil {
		fmt.Fprintf(&b, ": %v", e.cause)
	}
	return b.String()
}

// Unwrap lets errors.Is match ErrRevoked or ErrUnavailable, and the
// transport cause (context.DeadlineExceeded, say).
func (e *Error) Unwrap() []error {
	if e.cause != nil {
		return []error{e.kind, e.cause}
	}
	return []error{e.kind}
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
