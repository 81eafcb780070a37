package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// MaxLifetime caps expires_in and refresh_token_expires_in: a longer
// lifetime is taken as this long (and logged once). A token is still used
// until an API rejects it, so the cap only moves the proactive refresh.
const MaxLifetime = 366 * 24 * time.Hour

// tokenResponse is a token endpoint's successful answer, JSON or
// form-encoded (GitHub without Accept: application/json).
type tokenResponse struct {
	AccessToken  string
	TokenType    string
	RefreshToken string
	Scope        string
	IDToken      string
	// ExpiresIn and RefreshExpiresIn are raw: nil when absent, else a
	// json.Number or a string.
	ExpiresIn        any
	RefreshExpiresIn any
}

// postToken sends an RFC 6749 token request and reads the answer. It makes
// exactly one request: a failure is never retried another way, which
// would present a refresh token twice (perhaps after the server rotated
// it). secrets (a code, a verifier, a refresh token) are cut out of the
// provider's error_description, as is the client secret.
func (p *Provider) postToken(ctx context.Context, form url.Values, secrets ...string) (*tokenResponse, error) {
	secrets = append(secrets, p.oauth.ClientSecret)
	inHeader := p.oauth.Endpoint.AuthStyle == oauth2.AuthStyleInHeader
	if !inHeader {
		form.Set("client_id", p.oauth.ClientID)
		if p.oauth.ClientSecret != "" {
			form.Set("client_secret", p.oauth.ClientSecret)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.oauth.Endpoint.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// GitHub answers form-encoded unless asked for JSON; everyone else
	// answers JSON anyway.
	req.Header.Set("Accept", "application/json")
	if inHeader {
		// RFC 6749 section 2.3.1: each part form-encoded first.
		req.SetBasicAuth(url.QueryEscape(p.oauth.ClientID), url.QueryEscape(p.oauth.ClientSecret))
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, &Error{kind: ErrUnavailable, cause: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		// Cut off mid-body: the network, not the provider's answer.
		return nil, &Error{Status: resp.StatusCode, kind: ErrUnavailable, cause: err}
	}
	ok := resp.StatusCode/100 == 2
	get, err := parseBody(resp.Header.Get("Content-Type"), body)
	if err != nil {
		if ok {
			return nil, &Error{Status: resp.StatusCode, kind: ErrBadResponse, cause: errors.New("malformed token response")}
		}
		return nil, &Error{Status: resp.StatusCode, kind: ErrUnavailable, RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	}
	if code := str(get("error")); code != "" || !ok {
		// Some servers (GitHub) answer errors with HTTP 200.
		e := &Error{
			Status:      resp.StatusCode,
			Code:        trim(redact(code, secrets), 64),
			Description: trim(redact(str(get("error_description")), secrets), 200),
			RetryAfter:  retryAfter(resp.Header.Get("Retry-After")),
			kind:        ErrUnavailable,
		}
		if revokedCodes[code] && resp.StatusCode < 500 {
			e.kind = ErrRevoked
		}
		return nil, e
	}
	tr := &tokenResponse{
		AccessToken:      str(get("access_token")),
		TokenType:        str(get("token_type")),
		RefreshToken:     str(get("refresh_token")),
		Scope:            str(get("scope")),
		IDToken:          str(get("id_token")),
		ExpiresIn:        get("expires_in"),
		RefreshExpiresIn: get("refresh_token_expires_in"),
	}
	if tr.AccessToken == "" {
		return nil, &Error{Status: resp.StatusCode, kind: ErrBadResponse, cause: errors.New("no access_token in the token response")}
	}
	return tr, nil
}

// parseBody reads a token-endpoint body as a form (application/x-www-
// form-urlencoded or text/plain, as GitHub may answer) or as a JSON
// object, and returns a lookup: nil for an absent member, else a string
// or, from JSON, a json.Number, bool, slice or map.
func parseBody(contentType string, body []byte) (func(string) any, error) {
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "application/x-www-form-urlencoded" || mt == "text/plain" {
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, err
		}
		return func(k string) any {
			if !vals.Has(k) {
				return nil
			}
			return vals.Get(k)
		}, nil
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("not a JSON object")
	}
	return func(k string) any { return m[k] }, nil
}

// str is a member's text: a string as is, a number as written, anything
// else empty.
func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	}
	return ""
}

// lifetime reads expires_in or refresh_token_expires_in. It reports
// ok=false when the value is absent or unusable, with why (for the log):
// absent, not a number, zero or negative. Fractions are dropped; values
// over MaxLifetime are capped, with capped=true.
func lifetime(v any) (d time.Duration, ok, capped bool, why string) {
	if v == nil || v == "" {
		return 0, false, false, "absent"
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(str(v)), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false, false, "not a number"
	}
	if f < 1 {
		return 0, false, false, "zero or negative"
	}
	if f > MaxLifetime.Seconds() {
		return MaxLifetime, true, true, ""
	}
	return time.Duration(f) * time.Second, true, false, ""
}

// expiries turns a token response's lifetimes into times on the
// Provider's clock. A missing, zero, negative or unreadable expires_in
// means "unknown": the token is used until an API rejects it (a zero
// Expiry), never "expired already", which would refresh on every call.
// Each oddity is logged once per Provider.
func (p *Provider) expiries(tr *tokenResponse) (access, refresh time.Time) {
	now := p.now()
	d, ok, capped, why := lifetime(tr.ExpiresIn)
	switch {
	case ok:
		access = now.Add(d)
	case why == "absent":
		p.once("no expires_in", "provider: the token response has no expires_in; access tokens are used until an API rejects them (logged once)")
	default:
		p.once("bad expires_in", "provider: the token response's expires_in is "+why+"; treated as unknown: access tokens are used until an API rejects them (logged once)")
	}
	if capped {
		p.once("capped expires_in", "provider: expires_in is over a year; capped at "+MaxLifetime.String()+" (logged once)", "expires_in", str(tr.ExpiresIn))
	}
	d, ok, capped, why = lifetime(tr.RefreshExpiresIn)
	switch {
	case ok:
		refresh = now.Add(d)
	case why != "absent":
		p.once("bad refresh_token_expires_in", "provider: the token response's refresh_token_expires_in is "+why+"; ignored (logged once)")
	}
	if capped {
		p.once("capped refresh_token_expires_in", "provider: refresh_token_expires_in is over a year; capped at "+MaxLifetime.String()+" (logged once)", "refresh_token_expires_in", str(tr.RefreshExpiresIn))
	}
	return access, refresh
}

// once logs msg at most once per Provider for key.
func (p *Provider) once(key, msg string, args ...any) {
	if _, seen := p.logged.LoadOrStore(key, true); !seen {
		p.log.Warn(msg, args...)
	}
}
