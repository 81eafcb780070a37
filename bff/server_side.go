package bff

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	gsessions "github.com/gorilla/sessions"
	"golang.org/x/oauth2"

	"github.com/tetherauth/tether/bff/refresh"
	"github.com/tetherauth/tether/bff/vault"
	"github.com/tetherauth/tether/shared/wire"
)

// Server-side access: an application's own Gin handlers see the user's
// session (RequireSession, SessionFrom) and call APIs with the user's
// access token (TokenSource, Client) through the same refresh engine as
// POST /bff/token: one refresh per session across every replica, however
// many calls, browser and server, need one at the same moment.

// Errors of server-side calls, matched with errors.Is; errors.As with
// *ReconnectError or *UnavailableError gives the details. They are the
// refresh engine's.
var (
	// ErrReconnect: the session is over (never was, revoked, expired):
	// the user must sign in again.
	ErrReconnect = refresh.ErrReconnect
	// ErrUnavailable: the provider is failing and no usable token is at
	// hand; the session is kept; try again after RetryAfter.
	ErrUnavailable = refresh.ErrUnavailable
	// ErrStorage: the vault could not be reached; nothing was lost.
	ErrStorage = refresh.ErrStorage
	// ErrThrottled: after an API's 401, the session has used up its forced
	// refreshes for now (Config.ForceRate); try again after RetryAfter.
	ErrThrottled = refresh.ErrThrottled
)

// ReconnectError, UnavailableError and ThrottledError are the refresh
// engine's typed errors (see ErrReconnect, ErrUnavailable, ErrThrottled).
type (
	ReconnectError   = refresh.ReconnectError
	UnavailableError = refresh.UnavailableError
	ThrottledError   = refresh.ThrottledError
)

// Mode says what RequireSession does with a request that has no session.
type Mode int

// Modes of RequireSession.
const (
	// API answers 401 with the contract's error body,
	// {"error":"reconnect_required","reason":"no_session",...}: for
	// routes that fetch calls.
	API Mode = iota + 1
	// Page redirects to the BFF's login, which brings the user back to
	// the page (a GET's path and query; after another method, 303 and the
	// path): for routes a person navigates to.
	Page
)

// Session is the signed-in user, as the application's handlers see it.
// It holds no token.
type Session struct {
	// Subject is the user's stable id at the provider; Name a display name.
	Subject string
	Name    string
	// AccessExpiresAt is when the current access token expires (zero:
	// the provider said nothing); it is refreshed before that.
	AccessExpiresAt time.Time
	// ExpiresAt is when the session ends: the refresh token's expiry
	// (zero: the provider said nothing; the session then lives
	// Config.SessionMaxAge from sign-in).
	ExpiresAt time.Time
}

// sessionKey is where RequireSession leaves the session on a gin.Context.
const sessionKey = "github.com/tetherauth/tether/bff.session"

// bound is a request's session, as RequireSession found it.
type bound struct {
	h   *Handler
	sid string
	s   Session
}

// RequireSession is middleware for the application's routes: it reads
// Tether's session cookie, checks that the vault holds the session, and
// leaves it on the gin.Context for SessionFrom, TokenSource and Client.
// Without a session it answers as mode says and stops the chain. For a
// session that ended (revoked, expired, signed out) the 401's reason says
// why, and the cookie is rewritten to say so, as POST /token does; a
// cookie the vault no longer knows is deleted. When the vault cannot be
// reached it answers 503 storage_unavailable with Retry-After, and the
// session is kept. It costs one vault read per request and refreshes
// nothing.
func (s *Handler) RequireSession(mode Mode) gin.HandlerFunc {
	if mode != API && mode != Page {
		panic("bff: RequireSession needs bff.API or bff.Page")
	}
	return func(c *gin.Context) {
		if s.bind(c) {
			c.Next()
		} else if !c.IsAborted() {
			s.refuse(c, mode)
		}
	}
}

// OptionalSession is middleware that leaves the session on the
// gin.Context when there is one and lets every request through, for
// pages that show something else to a visitor who has not signed in.
// When the vault cannot be reached it answers 503, as RequireSession.
func (s *Handler) OptionalSession() gin.HandlerFunc {
	return func(c *gin.Context) {
		s.bind(c)
		if !c.IsAborted() {
			c.Next()
		}
	}
}

// endedKey is where bind leaves, on a gin.Context, why the request's
// session ended (revoked, expired, signed_out) when it knows.
const endedKey = "github.com/tetherauth/tether/bff.ended"

// bind finds the request's session and puts it on c. It reports false
// when there is none, and aborts c when the vault failed. A session that
// ended leaves its reason on c, and the cookie is replaced by one that
// says so (as POST /token does), or deleted when the vault has forgotten
// it.
func (s *Handler) bind(c *gin.Context) bool {
	if b, ok := c.Get(sessionKey); ok {
		if b, ok := b.(*bound); ok && b.h == s {
			return true
		}
	}
	sid, ended := s.cookieSession(c.Request)
	if sid == "" {
		if ended != "" {
			c.Set(endedKey, ended)
		}
		return false
	}
	rec, err := s.vault.Get(c.Request.Context(), sid)
	var ee *vault.EndedError
	switch {
	case errors.As(err, &ee):
		c.Set(endedKey, ee.Reason)
		s.writeEndedCookie(c.Writer, c.Request, ee.Reason)
		return false
	case errors.Is(err, vault.ErrNotFound):
		s.expireCookie(c.Writer)
		return false
	case err != nil:
		s.log.Error("session: reading the vault", "err", err)
		c.Header(wire.HeaderRetryAfter, strconv.Itoa(seconds(s.cfg.RetryAfter)))
		writeStorageError(c, err)
		c.Abort()
		return false
	}
	c.Set(sessionKey, &bound{h: s, sid: sid, s: Session{
		Subject: rec.Subject, Name: rec.Name,
		AccessExpiresAt: rec.Expiry, ExpiresAt: rec.RefreshExpiry,
	}})
	return true
}

// endedOn is why the request's session ended, as bind found it, or
// wire.ReasonNoSession.
func endedOn(c *gin.Context) string { return knownReason(c.GetString(endedKey)) }

// refuse answers a request without a session.
func (s *Handler) refuse(c *gin.Context, mode Mode) {
	c.Header("Cache-Control", "no-store")
	if mode == API {
		reason := endedOn(c)
		writeError(c, wire.ErrReconnectRequired, reason, reconnectMessage(reason))
		c.Abort()
		return
	}
	if m := c.Request.Method; m == http.MethodGet || m == http.MethodHead {
		c.Redirect(http.StatusFound, s.LoginURL(c.Request.URL.RequestURI()))
	} else {
		c.Redirect(http.StatusSeeOther, s.LoginURL(c.Request.URL.Path))
	}
	c.Abort()
}

// SessionFrom returns the session RequireSession (or OptionalSession)
// found for this request, and false when there is none.
func SessionFrom(c *gin.Context) (Session, bool) {
	b := boundTo(c)
	if b == nil {
		return Session{}, false
	}
	return b.s, true
}

func boundTo(c *gin.Context) *bound {
	v, _ := c.Get(sessionKey)
	b, _ := v.(*bound)
	return b
}

// noSession is what server-side calls on a request without a session
// return: a ReconnectError (errors.Is(err, ErrReconnect)) with the reason
// the session ended, if bind saw it end.
func noSession(c *gin.Context) error {
	reason := endedOn(c)
	msg := "bff: no session on this request: sign in (RequireSession or OptionalSession must run first)"
	if reason != wire.ReasonNoSession {
		msg = "bff: " + reconnectMessage(reason)
	}
	return &refresh.ReconnectError{Reason: refresh.Reason(reason), Msg: msg}
}

// TokenSource returns the user's access token source for this request's
// session (see RequireSession). Each Token call asks the refresh engine,
// as POST /bff/token does: the current token, refreshed first when it is
// inside its refresh buffer, once per session across replicas. It returns
// an error wrapping ErrReconnect when the session is over (or the request
// has none), ErrUnavailable during a provider outage once the token has
// expired, and ErrStorage when the vault is unreachable. Token uses the
// request's context: use the source within the request.
//
// To call an API, Client is simpler: it also recovers from a 401.
func TokenSource(c *gin.Context) oauth2.TokenSource {
	return &tokenSource{b: boundTo(c), req: c.Request, none: noSession(c)}
}

type tokenSource struct {
	b    *bound
	req  *http.Request
	none error // without a session
}

// Token implements oauth2.TokenSource.
func (ts *tokenSource) Token() (*oauth2.Token, error) {
	if ts.b == nil {
		return nil, ts.none
	}
	res, err := ts.b.token(ts.req, refresh.Want{})
	if err != nil {
		return nil, err
	}
	return &oauth2.Token{AccessToken: res.Record.AccessToken, TokenType: wire.TokenTypeBearer, Expiry: res.Record.Expiry}, nil
}

// token asks the refresh engine for the session's token, on r's context.
func (b *bound) token(r *http.Request, want refresh.Want) (refresh.Result, error) {
	res, err := b.h.refresher.Token(r.Context(), b.sid, want)
	if err != nil {
		return res, fmt.Errorf("bff: the user's access token: %w", err)
	}
	return res, nil
}

// Client returns an HTTP client that calls APIs as the user of this
// request's session (see RequireSession), for requests to
// Config.APIOrigins: it attaches the access token (Authorization: Bearer),
// and when the API answers 401 it asks the refresh engine for a token
// other than the refused one (the forced refresh of POST /bff/token,
// {"force":true,"rejected":...}) and sends the request once more if its
// body can be sent again (no body, or Request.GetBody set, as
// http.NewRequest does for bytes, strings and their readers). So a
// hundred concurrent calls that meet an expired token cause one refresh,
// and a call never loops.
//
// Errors wrap ErrReconnect when the session is over (revoked, expired,
// signed out, or no session on the request) — no request is sent then —
// ErrUnavailable during a provider outage, ErrThrottled when the
// session's forced refreshes are used up for now, and ErrStorage when the
// vault is unreachable. A forced refresh of a token that a forced refresh
// issued moments ago (Config.ForceMinAge) brings that token back: the
// 401 is then returned as it is.
// A request to an origin outside Config.APIOrigins fails without being
// sent; a redirect to one is followed without the token. Make requests
// with the request's context, http.NewRequestWithContext(
// c.Request.Context(), ...), so that they end with it; not with c itself:
// Gin reuses a gin.Context once the handler returns, while the HTTP
// transport may still look at a request's context.
func Client(c *gin.Context) *http.Client {
	return &http.Client{Transport: Transport(c, nil)}
}

// Transport is Client's transport over base (nil: http.DefaultTransport),
// for an application that builds its own http.Client.
func Transport(c *gin.Context, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{b: boundTo(c), base: base, none: noSession(c)}
}

type transport struct {
	b    *bound
	base http.RoundTripper
	none error // without a session
}

// RoundTrip implements http.RoundTripper.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.b == nil {
		closeBody(req)
		return nil, t.none
	}
	if gc, ok := req.Context().(*gin.Context); ok && gc.Request != nil {
		// Made with c as its context: the transport below must not keep a
		// gin.Context, which Gin reuses once the handler returns.
		req = req.WithContext(gc.Request.Context())
	}
	if !t.b.h.apiOrigin(req.URL) {
		if req.Response != nil {
			// A redirect the http.Client follows, away from the APIs: it
			// goes on without the token.
			return t.base.RoundTrip(req)
		}
		closeBody(req)
		return nil, fmt.Errorf("bff: %s is not in Config.APIOrigins; the user's token goes only there", origin(req.URL))
	}
	res, err := t.b.token(req, refresh.Want{})
	if err != nil {
		closeBody(req)
		return nil, err
	}
	tok := res.Record.AccessToken
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	resp, err := t.send(req, req.Body, tok)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	// The API refused the token: ask for another one, once. The engine
	// refreshes only if the vault still holds the refused token, so many
	// calls refused at once cause one refresh.
	res, err = t.b.token(req, refresh.Want{Force: true, Rejected: tok})
	if err != nil {
		drain(resp)
		return nil, err
	}
	fresh := res.Record.AccessToken
	if !replayable || fresh == tok {
		return resp, nil
	}
	body := req.Body
	if req.GetBody != nil {
		if body, err = req.GetBody(); err != nil {
			drain(resp)
			return nil, fmt.Errorf("bff: replaying the request body: %w", err)
		}
	}
	drain(resp)
	return t.send(req, body, fresh)
}

// send sends a copy of req with body and the token.
func (t *transport) send(req *http.Request, body io.ReadCloser, token string) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Body = body
	r.Header.Set(wire.HeaderAuthorization, wire.TokenTypeBearer+" "+token)
	return t.base.RoundTrip(r)
}

// drain reads a little of a response that is not handed out, so that
// its connection can be reused, and closes it.
func drain(resp *http.Response) {
	io.CopyN(io.Discard, resp.Body, 4<<10)
	resp.Body.Close()
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// apiOrigin reports whether u's origin is one of Config.APIOrigins.
func (s *Handler) apiOrigin(u *url.URL) bool {
	return slices.Contains(s.cfg.APIOrigins, origin(u))
}

// origin is u's origin in canonical form: lower-case scheme and host, no
// default port.
func origin(u *url.URL) string {
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host
}

// checkAPIOrigins validates c.APIOrigins and puts them in canonical form.
func (c *Config) checkAPIOrigins() error {
	for i, o := range c.APIOrigins {
		u, err := url.Parse(strings.TrimSuffix(o, "/"))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || u.Opaque != "" {
			return &ConfigError{"TETHER_API_ORIGINS", fmt.Errorf("%q is not an origin like https://api.example", o)}
		}
		c.APIOrigins[i] = origin(u)
	}
	return nil
}

// cookieSession reads Tether's session cookie on r: the session id, or
// why the session ended (a cookie POST /token or bind rewrote: revoked,
// expired, signed_out), or neither without a valid cookie. The cookie is
// verified on every call (see cookieStore); it leaves the gin.Context
// alone, so it may be called with or without the session middleware, and
// the application may use gin-contrib/sessions for cookies of its own.
func (s *Handler) cookieSession(r *http.Request) (sid, ended string) {
	return s.cookies.session(r, s.cookieName)
}

// writeEndedCookie replaces the session cookie by one that names no
// session but the reason it ended, as endCookie does on Tether's routes.
func (s *Handler) writeEndedCookie(w http.ResponseWriter, r *http.Request, reason string) {
	sess := gsessions.NewSession(s.cookies, s.cookieName)
	sess.Values[keyEnded] = reason
	sess.Options = &gsessions.Options{
		Path: "/", MaxAge: int(refresh.DefaultEndedTTL / time.Second),
		Secure: s.cfg.secureCookies(), HttpOnly: true, SameSite: http.SameSiteLaxMode,
	}
	if err := s.cookies.Save(r, w, sess); err != nil {
		s.log.Warn("writing the ended-session cookie", "err", err)
	}
}

// expireCookie deletes the session cookie.
func (s *Handler) expireCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: s.cookieName, Path: "/", MaxAge: -1,
		Secure: s.cfg.secureCookies(), HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
}
