// Package tether is Tether's browser client as a Go package, for user
// interfaces written in Go and compiled to WebAssembly: Start it with the
// BFF's base path and the API origins, and call APIs with
// &http.Client{Transport: t}. It is the policy of wasm/client — the token
// goes only to the API origins, concurrent calls share one token request,
// the token is refreshed before it expires, a call refused with 401 gets
// one new token and one retry, and a revoked grant ends in a reconnect
// event rather than a loop — over net/http, which under js/wasm is the
// browser's fetch.
//
// Unlike the standalone client (tether.wasm with web/tether.js, which
// carries neither net/http nor encoding/json to stay small), this package
// links net/http and encoding/json: a Go user interface links them
// anyway. It runs on the host too (the BFF's base must then be an
// absolute URL, and the http.Client needs a cookie jar), which is how its
// tests drive it against the real BFF.
//
// Tabs of a Go UI do not coordinate with each other (no navigator.locks
// or BroadcastChannel): each asks the BFF on its own, and the BFF still
// refreshes once per session.
package tether

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tetherauth/tether/shared/wire"
	"github.com/tetherauth/tether/wasm/client"
)

// Options configure Start. Only APIOrigins is needed in a browser.
type Options struct {
	// BFF is the BFF's base: a path on the page's origin (default "/bff",
	// wire.BasePath; the BFF's Config.BasePath) or an absolute URL.
	BFF string
	// APIOrigins are the origins that receive the access token, e.g.
	// "https://api.example". Requests to other origins go out untouched.
	APIOrigins []string
	// OnEvent receives the client's events (EventToken, EventReconnect,
	// EventDegraded, EventRecovered, EventLogout) on the client's own
	// goroutines. It must not block for long. Events never carry a token.
	OnEvent func(Event)
	// Base sends the API requests; default http.DefaultTransport (under
	// js/wasm, the browser's fetch).
	Base http.RoundTripper
	// HTTPClient sends the requests to the BFF; default a client over
	// Base. In a browser the page's cookie goes with them by itself; on
	// the host give it a cookie jar.
	HTTPClient *http.Client
	// RequestTimeout bounds one token request; default 30 s.
	RequestTimeout time.Duration
}

// Event is something the user interface may want to show. It never
// carries a token. RetryAfter is in milliseconds; ExpiresAt in Unix
// seconds.
type Event = client.Event

// Event kinds.
const (
	EventToken     = client.EventToken     // a new token; ExpiresAt set
	EventReconnect = client.EventReconnect // the grant is gone; Reason: no_session, revoked, expired
	EventDegraded  = client.EventDegraded  // a token request failed; Reason and RetryAfter set
	EventRecovered = client.EventRecovered // Reason "degraded" (outage over) or "rejected" (new token after a 401)
	EventLogout    = client.EventLogout    // Logout ended the session
)

// State is a snapshot: whether a usable token is held, its expiry (Unix
// seconds), whether the client is backing off, and why a reconnect is
// required ("" when it is not).
type State = client.State

// Errors of RoundTrip and Token, matched with errors.Is; errors.As with
// *client.ReconnectError or *client.UnavailableError gives the reason.
var (
	// ErrReconnect: the user must sign in again (see LoginURL); no request
	// is sent until Restart.
	ErrReconnect = client.ErrReconnect
	// ErrUnavailable: no token for now; the client retries by itself.
	ErrUnavailable = client.ErrUnavailable
)

// Tether is a started client. It is an http.RoundTripper and safe for
// concurrent use.
type Tether struct {
	c    *client.Client
	bff  string // absolute base URL of the BFF, no trailing slash
	base http.RoundTripper
	http *http.Client
}

var _ http.RoundTripper = (*Tether)(nil)

// Start builds the client and asks the BFF for a first token in the
// background (the outcome arrives as an event).
func Start(o Options) (*Tether, error) {
	bff, err := resolveBFF(o.BFF)
	if err != nil {
		return nil, err
	}
	if o.Base == nil {
		o.Base = http.DefaultTransport
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Transport: o.Base}
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 30 * time.Second
	}
	t := &Tether{bff: bff, base: o.Base, http: o.HTTPClient}
	t.c, err = client.New(client.Config{
		Source:         &source{t: t, timeout: o.RequestTimeout},
		APIOrigins:     o.APIOrigins,
		OnEvent:        o.OnEvent,
		Now:            func() int64 { return time.Now().UnixMilli() },
		AfterFunc:      afterFunc,
		Rand:           rand.Float64,
		RequestTimeout: o.RequestTimeout.Milliseconds() + client.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("tether: %w", err)
	}
	t.c.Prefetch()
	return t, nil
}

// resolveBFF makes the BFF's base absolute: against the page's URL in a
// browser; on the host it must be absolute already.
func resolveBFF(b string) (string, error) {
	if b == "" {
		b = wire.BasePath
	}
	u, err := url.Parse(b)
	if err != nil {
		return "", fmt.Errorf("tether: Options.BFF %q: %w", b, err)
	}
	if !u.IsAbs() {
		page, err := url.Parse(pageURL())
		if err != nil || !page.IsAbs() {
			return "", fmt.Errorf("tether: Options.BFF %q is a path and there is no page to resolve it against: give an absolute URL", b)
		}
		u = page.ResolveReference(u)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("tether: Options.BFF %q is not http or https", b)
	}
	u.RawQuery, u.Fragment = "", ""
	return strings.TrimSuffix(u.String(), "/"), nil
}

// RoundTrip sends req. For an API origin it attaches the access token
// (Authorization: Bearer); when the API answers 401, it asks for a new
// token once and, if the body can be sent again (no body, or GetBody),
// sends the request once more; otherwise, or when no new token comes, the
// 401 is returned (the event says why: reconnect or degraded). It fails
// with an error matching ErrReconnect after a reconnect, and
// ErrUnavailable while the BFF is failing and no token is left. Requests
// to other origins are sent untouched.
func (t *Tether) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.c.Allowed(origin(req.URL)) {
		return t.base.RoundTrip(req)
	}
	tok, err := wait(req.Context(), t.c.Token)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	resp, err := t.send(req, req.Body, tok)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	fresh, err := wait(req.Context(), func() (string, error) { return t.c.Recover(tok) })
	if err != nil || !replayable || fresh == "" || fresh == tok {
		return resp, nil
	}
	body := req.Body
	if req.GetBody != nil {
		if body, err = req.GetBody(); err != nil {
			return resp, nil
		}
	}
	io.CopyN(io.Discard, resp.Body, 4<<10)
	resp.Body.Close()
	return t.send(req, body, fresh)
}

func (t *Tether) send(req *http.Request, body io.ReadCloser, token string) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Body = body
	r.Header.Set(wire.HeaderAuthorization, wire.TokenTypeBearer+" "+token)
	return t.base.RoundTrip(r)
}

// Token returns a usable access token, asking the BFF when none is held;
// for code that attaches it itself. Prefer RoundTrip.
func (t *Tether) Token(ctx context.Context) (string, error) { return wait(ctx, t.c.Token) }

// State returns a snapshot for the user interface.
func (t *Tether) State() State { return t.c.State() }

// LoginURL is the BFF's login, which comes back to returnTo (a path on
// the page's site). Navigate there to sign in or reconnect.
func (t *Tether) LoginURL(returnTo string) string {
	if returnTo == "" {
		returnTo = "/"
	}
	return t.bff + "/login?return_to=" + url.QueryEscape(returnTo)
}

// Restart forgets a reconnect or a back-off and asks for a token again.
func (t *Tether) Restart() {
	t.c.Reset()
	t.c.Prefetch()
}

// Logout ends the session at the BFF (which revokes the grant), then
// forgets the token and emits EventLogout; later calls fail with
// ErrReconnect (reason logged_out).
func (t *Tether) Logout(ctx context.Context) error {
	resp, err := t.bffCall(ctx, http.MethodPost, "/logout", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("tether: logout answered %d", resp.StatusCode)
	}
	t.c.Logout()
	return nil
}

// Session asks the BFF who is signed in (GET session); it refreshes
// nothing.
func (t *Tether) Session(ctx context.Context) (wire.SessionResponse, error) {
	var s wire.SessionResponse
	resp, err := t.bffCall(ctx, http.MethodGet, "/session", nil)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("tether: session answered %d", resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&s); err != nil {
		return s, fmt.Errorf("tether: session: %w", err)
	}
	return s, nil
}

// Close stops the client's timer; later calls fail.
func (t *Tether) Close() { t.c.Close() }

// bffCall sends a request to the BFF with the CSRF header.
func (t *Tether) bffCall(ctx context.Context, method, route string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, t.bff+route, rd)
	if err != nil {
		return nil, fmt.Errorf("tether: %w", err)
	}
	req.Header.Set(wire.HeaderCSRF, wire.CSRFValue)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return t.http.Do(req)
}

// source asks the BFF for tokens: POST token, with
// {"force":true,"rejected":...} after an API's 401.
type source struct {
	t       *Tether
	timeout time.Duration
}

// RequestToken implements client.TokenSource; its answers are read by the
// same code as the standalone client's (client.DecodeToken, DecodeError).
func (s *source) RequestToken(force bool, rejected string) (wire.TokenResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	var body []byte
	if force {
		body, _ = json.Marshal(wire.TokenRequest{Force: true, Rejected: rejected})
	}
	resp, err := s.t.bffCall(ctx, http.MethodPost, "/token", body)
	if err != nil {
		return wire.TokenResponse{}, err
	}
	defer resp.Body.Close()
	var o object
	jsonErr := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&o)
	if resp.StatusCode == http.StatusOK {
		if jsonErr != nil {
			return wire.TokenResponse{}, fmt.Errorf("tether: token response: %w", jsonErr)
		}
		return client.DecodeToken(o)
	}
	re := &client.ResponseError{Status: resp.StatusCode, RetryAfter: client.ParseRetryAfter(resp.Header.Get(wire.HeaderRetryAfter))}
	if jsonErr == nil {
		re.Body = client.DecodeError(o)
	}
	return wire.TokenResponse{}, re
}

// object is a decoded JSON object, read as client.Object.
type object map[string]any

func (o object) String(name string) (string, bool) { v, ok := o[name].(string); return v, ok }

func (o object) Number(name string) (float64, bool) { v, ok := o[name].(float64); return v, ok }

func (o object) Bool(name string) (bool, bool) { v, ok := o[name].(bool); return v, ok }

var _ client.Object = object(nil)

// wait runs f, giving up when ctx ends first (f goes on: its answer is
// shared with other callers).
func wait(ctx context.Context, f func() (string, error)) (string, error) {
	if ctx.Done() == nil {
		return f()
	}
	type answer struct {
		tok string
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		tok, err := f()
		ch <- answer{tok, err}
	}()
	select {
	case a := <-ch:
		return a.tok, a.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// timer adapts time.Timer to client.Timer.
type timer struct{ t *time.Timer }

func (t timer) Stop() bool { return t.t.Stop() }

func afterFunc(ms int64, f func()) client.Timer {
	return timer{time.AfterFunc(time.Duration(ms)*time.Millisecond, f)}
}

// origin is u's origin as a browser serialises it.
func origin(u *url.URL) string { return u.Scheme + "://" + u.Host }

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
