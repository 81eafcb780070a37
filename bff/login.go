package bff

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"

	"github.com/tetherauth/tether/bff/provider"
	"github.com/tetherauth/tether/bff/vault"
	"github.com/tetherauth/tether/shared/wire"
)

// Cookie keys. The cookie holds an opaque session id and, during a login,
// the state that binds the callback to this browser; never a token.
const (
	keySID   = "sid"
	keyState = "state"
)

// handleLogin starts the authorization-code flow: PKCE S256, a single-use
// state kept in the vault for ten minutes and bound to this browser's
// cookie, and a nonce for OpenID Connect.
func (s *Handler) handleLogin(c *gin.Context) {
	returnTo, ok := cleanReturnTo(c.Query("return_to"))
	if !ok {
		s.metrics.logins.WithLabelValues("invalid_return_to").Inc()
		writeError(c, wire.ErrInvalidReturnTo, "", "return_to must be a path on this site, like /app")
		return
	}
	if !s.loginPossible(c, returnTo) {
		return
	}
	state, verifier := randomID(), provider.NewVerifier()
	var nonce string
	if s.provider.OIDC() {
		nonce = randomID()
	}
	l := &vault.Login{Verifier: verifier, Nonce: nonce, ReturnTo: returnTo, Created: s.cfg.Now()}
	if err := s.vault.PutLogin(c.Request.Context(), state, l, loginTTL); err != nil {
		s.log.Error("login: storing state", "err", err)
		s.errorPage(c, http.StatusServiceUnavailable, "Sign-in is unavailable", "The session store could not be reached. Please try again in a moment.", returnTo)
		return
	}
	sess := sessions.Default(c)
	sess.Set(keyState, state)
	if err := sess.Save(); err != nil {
		s.log.Error("login: saving cookie", "err", err)
		s.errorPage(c, http.StatusInternalServerError, "Sign-in failed", "The session cookie could not be written.", returnTo)
		return
	}
	c.Redirect(http.StatusFound, s.provider.AuthCodeURL(state, verifier, nonce))
}

// handleCallback finishes the flow: the state must match this browser's
// cookie and be unused; the code is exchanged with the verifier; a new
// session id is issued (no fixation) and the tokens go to the vault.
func (s *Handler) handleCallback(c *gin.Context) {
	ctx := c.Request.Context()
	sess := sessions.Default(c)
	q := c.Request.URL.Query()
	state := q.Get("state")
	cookieState, _ := sess.Get(keyState).(string)

	if e := q.Get("error"); e != "" {
		// The provider refused (access_denied, say). Use up the state so the
		// flow cannot be resumed, and show a page, not JSON.
		l := s.takeLogin(c, state, cookieState)
		returnTo := "/"
		if l != nil {
			returnTo = l.ReturnTo
		}
		s.metrics.logins.WithLabelValues("provider_error").Inc()
		s.errorPage(c, http.StatusBadRequest, "Sign-in was not completed",
			"The sign-in provider answered: "+describeProviderError(e, q.Get("error_description")), returnTo)
		return
	}
	if !s.loginPossible(c, "/") {
		return
	}
	l := s.takeLogin(c, state, cookieState)
	if l == nil {
		s.metrics.logins.WithLabelValues("invalid_state").Inc()
		writeError(c, wire.ErrInvalidState, "", "this sign-in link is invalid, expired or was already used; start again from the app")
		return
	}
	code := q.Get("code")
	if code == "" || len(code) > 2048 {
		s.metrics.logins.WithLabelValues("invalid_code").Inc()
		s.errorPage(c, http.StatusBadRequest, "Sign-in was not completed", "The provider sent no authorization code.", l.ReturnTo)
		return
	}
	grant, err := s.provider.Exchange(ctx, code, l.Verifier, l.Nonce)
	if err != nil {
		s.metrics.logins.WithLabelValues("exchange_failed").Inc()
		s.log.Warn("callback: code exchange failed", "err", err)
		status, msg := http.StatusBadGateway, "The sign-in provider could not be reached or answered badly. Please try again."
		if errors.Is(err, provider.ErrRevoked) {
			status, msg = http.StatusBadRequest, "The sign-in code was refused by the provider (it may have expired). Please try again."
		}
		s.errorPage(c, status, "Sign-in failed", msg, l.ReturnTo)
		return
	}
	now := s.cfg.Now()
	rec := &vault.Record{
		AccessToken: grant.AccessToken, TokenType: grant.TokenType, RefreshToken: grant.RefreshToken,
		Scope: grant.Scope, Subject: grant.Subject, Name: grant.Name,
		IssuedAt: now, Expiry: grant.Expiry, RefreshExpiry: grant.RefreshExpiry, Created: now,
	}
	if old, _ := sess.Get(keySID).(string); old != "" {
		// A second login replaces the first; its tokens are dropped here.
		if err := s.vault.Delete(ctx, old); err != nil {
			s.log.Warn("callback: deleting the previous session", "err", err)
		}
	}
	sid := randomID()
	if err := s.vault.Put(ctx, sid, rec, s.refresher.RecordTTL(rec)); err != nil {
		s.metrics.logins.WithLabelValues("store_failed").Inc()
		s.log.Error("callback: storing tokens", "err", err)
		s.errorPage(c, http.StatusServiceUnavailable, "Sign-in failed", "The session store could not be reached. Please try again in a moment.", l.ReturnTo)
		return
	}
	sess.Clear()
	sess.Set(keySID, sid)
	if err := sess.Save(); err != nil {
		s.log.Error("callback: saving cookie", "err", err)
		s.errorPage(c, http.StatusInternalServerError, "Sign-in failed", "The session cookie could not be written.", l.ReturnTo)
		return
	}
	s.metrics.logins.WithLabelValues("ok").Inc()
	s.log.Info("login", "subject", rec.Subject, "access_expires", rec.Expiry, "refresh_token", rec.RefreshToken != "")
	c.Redirect(http.StatusFound, l.ReturnTo)
}

// loginPossible answers 503 with a readable page, and reports false, while
// the provider's endpoints are not known (its discovery has not succeeded
// since the BFF started).
func (s *Handler) loginPossible(c *gin.Context, returnTo string) bool {
	if ok, status := s.providerReady(); !ok {
		s.metrics.logins.WithLabelValues("provider_unknown").Inc()
		s.log.Warn("login: the provider is not set up yet", "status", status)
		c.Header(wire.HeaderRetryAfter, strconv.Itoa(seconds(min(s.cfg.RetryAfter, s.cfg.RetryAfterMax))))
		s.errorPage(c, http.StatusServiceUnavailable, "Sign-in is unavailable",
			"The sign-in provider cannot be reached right now, so nobody can sign in. Sessions already open keep working. Please try again in a minute.", returnTo)
		return false
	}
	return true
}

// takeLogin consumes the login state when the query's state matches the
// cookie's; nil means invalid, expired or replayed.
func (s *Handler) takeLogin(c *gin.Context, state, cookieState string) *vault.Login {
	if state == "" || len(state) > 128 || state != cookieState {
		return nil
	}
	l, err := s.vault.TakeLogin(c.Request.Context(), state)
	if err != nil {
		if !errors.Is(err, vault.ErrNotFound) {
			s.log.Error("callback: reading state", "err", err)
		}
		return nil
	}
	if s.cfg.Now().Sub(l.Created) > loginTTL {
		return nil
	}
	return l
}

// cleanReturnTo accepts a same-origin path ("/x?y") and nothing else: not
// "//host", not "/\host", not a scheme, not control characters. Empty
// means "/".
func cleanReturnTo(s string) (string, bool) {
	if s == "" {
		return "/", true
	}
	if len(s) > 2048 || s[0] != '/' || strings.HasPrefix(s, "//") || strings.HasPrefix(s, "/\\") {
		return "", false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return "", false
		}
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, "/") {
		return "", false
	}
	return s, true
}

// describeProviderError keeps a provider's error short and printable.
func describeProviderError(code, desc string) string {
	msg := code
	if desc != "" {
		msg += " (" + desc + ")"
	}
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return msg
}

// randomID returns 32 random bytes, base64url: session ids, states, nonces.
func randomID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

var errorPageTmpl = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{.Title}}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem;color:#1f2328}
h1{font-size:1.4rem}a.button{display:inline-block;margin-top:1rem;padding:.6rem 1.1rem;border-radius:.4rem;background:#0b5cad;color:#fff;text-decoration:none}</style>
</head><body><h1>{{.Title}}</h1><p>{{.Message}}</p>
<a class="button" href="{{.Retry}}">Try again</a></body></html>
`))

// errorPage shows a readable page with a "try again" link: callbacks are
// navigations, so JSON would be a dead end for the user.
func (s *Handler) errorPage(c *gin.Context, status int, title, msg, returnTo string) {
	c.Header("Content-Type", "text/html; charset=utf-8")
	c.Status(status)
	retry := wire.PathLogin + "?return_to=" + url.QueryEscape(returnTo)
	if err := errorPageTmpl.Execute(c.Writer, map[string]string{"Title": title, "Message": msg, "Retry": retry}); err != nil {
		s.log.Error("rendering the error page", "err", err)
	}
}
