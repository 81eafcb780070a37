package bff

import (
	"crypto/rand"
	"crypto/subtle"
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

// keySID is the session cookie's one value: an opaque session id, never a
// token.
const keySID = "sid"

// handleLogin starts the authorization-code flow: PKCE S256, a single-use
// state, a nonce for OpenID Connect. All of it goes into this login's own
// cookie (see loginCookies); nothing is written on the server.
func (s *Handler) handleLogin(c *gin.Context) {
	returnTo, ok := s.returnTo(c.Query("return_to"))
	if !ok {
		s.metrics.logins.WithLabelValues("invalid_return_to").Inc()
		msg := "return_to must be a path on this site of at most 512 bytes, like /app"
		if len(s.cfg.ExtensionOrigins) > 0 {
			msg += ", or a path in one of the extensions of TETHER_EXTENSION_ORIGINS"
		}
		writeError(c, wire.ErrInvalidReturnTo, "", msg)
		return
	}
	if !s.loginPossible(c, returnTo) {
		return
	}
	l := &pendingLogin{State: randomID(), Verifier: provider.NewVerifier(), ReturnTo: returnTo, Created: s.cfg.Now().Unix()}
	if s.provider.OIDC() {
		l.Nonce = randomID()
	}
	if err := s.logins.issue(c.Writer, c.Request, l); err != nil {
		s.log.Error("login: writing the login cookie", "err", err)
		s.errorPage(c, http.StatusInternalServerError, "Sign-in failed", "The sign-in cookie could not be written.", returnTo)
		return
	}
	c.Redirect(http.StatusFound, s.provider.AuthCodeURL(l.State, l.Verifier, l.Nonce))
}

// handleCallback finishes the flow: the state must match one of this
// browser's login cookies (which it clears) and not have been used; the
// code is exchanged with the verifier; only then is the state remembered
// as used; a new session id is issued (no fixation) and the tokens go to
// the vault.
func (s *Handler) handleCallback(c *gin.Context) {
	if !s.loginPossible(c, "/") {
		return // the login's cookie is kept: its state is still good once the provider is back
	}
	ctx := c.Request.Context()
	q := c.Request.URL.Query()
	l := s.logins.take(c.Writer, c.Request, q.Get("state"))
	if l != nil {
		// RFC 9207: the answer must come from the provider this login went
		// to (a mix-up attack swaps in another's), errors included.
		if issuer, required := s.provider.AuthorizationResponseIssuer(); !checkResponseIssuer(q, issuer, required) {
			s.metrics.logins.WithLabelValues("wrong_issuer").Inc()
			s.log.Warn("callback: the authorization response's iss is not the provider's issuer", "want", issuer, "required", required)
			s.errorPage(c, http.StatusBadRequest, "Sign-in failed",
				"The sign-in answer did not come from the configured provider. Please try again.", l.ReturnTo)
			return
		}
	}

	if e := q.Get("error"); e != "" {
		// The provider refused (access_denied, say). The login's cookie is
		// gone, so the flow cannot be resumed; show a page, not JSON. The
		// provider's words only with this browser's state: anyone can send
		// a link to /bff/callback?error=…&error_description=<a lure>, and
		// the page is on the app's origin.
		s.metrics.logins.WithLabelValues("provider_error").Inc()
		if l == nil {
			s.errorPage(c, http.StatusBadRequest, "Sign-in was not completed",
				"The sign-in was cancelled or refused, or this link is not from a sign-in started here. Please start again from the app.", "/")
			return
		}
		s.errorPage(c, http.StatusBadRequest, "Sign-in was not completed",
			"The sign-in provider answered: "+describeProviderError(e, q.Get("error_description")), l.ReturnTo)
		return
	}
	if l == nil {
		s.invalidState(c)
		return
	}
	code := q.Get("code")
	if code == "" || len(code) > 2048 {
		s.metrics.logins.WithLabelValues("invalid_code").Inc()
		s.errorPage(c, http.StatusBadRequest, "Sign-in was not completed", "The provider sent no authorization code.", l.ReturnTo)
		return
	}
	// A replay with a copy of the login cookie: refused before the code
	// goes anywhere (the provider's single-use code is the second line).
	used, err := s.vault.LoginUsed(ctx, l.State)
	if err != nil {
		s.log.Error("callback: reading the used states", "err", err)
		s.errorPage(c, http.StatusServiceUnavailable, "Sign-in failed", "The session store could not be reached. Please try again in a moment.", l.ReturnTo)
		return
	}
	if used {
		s.invalidState(c)
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
	// The first write of a login: only a code the provider accepted gets
	// here. SET NX also settles two concurrent replays.
	first, err := s.vault.MarkLoginUsed(ctx, l.State, loginTTL)
	if err != nil {
		s.metrics.logins.WithLabelValues("store_failed").Inc()
		s.log.Error("callback: remembering the used state", "err", err)
		s.errorPage(c, http.StatusServiceUnavailable, "Sign-in failed", "The session store could not be reached. Please try again in a moment.", l.ReturnTo)
		return
	}
	if !first {
		s.invalidState(c)
		return
	}
	sess := sessions.Default(c)
	now := s.cfg.Now()
	rec := &vault.Record{
		AccessToken: grant.AccessToken, TokenType: grant.TokenType, RefreshToken: grant.RefreshToken,
		Scope: grant.Scope, Subject: grant.Subject, Name: grant.Name, ProviderSID: grant.SessionID,
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
// since the BFF started, and no stored discovery document was usable).
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

// invalidState answers a callback whose state is missing, foreign,
// expired or used.
func (s *Handler) invalidState(c *gin.Context) {
	s.metrics.logins.WithLabelValues("invalid_state").Inc()
	writeError(c, wire.ErrInvalidState, "", "this sign-in link is invalid, expired or was already used; start again from the app")
}

// tenantPlaceholder is where Entra's multi-tenant issuer names a tenant.
const tenantPlaceholder = "{tenantid}"

// checkResponseIssuer applies RFC 9207 to a callback's query: without a
// known issuer (plain OAuth 2.0) there is nothing to compare; else iss,
// when present (and it must be when required), must be exactly issuer,
// once. An issuer with {tenantid} (Entra's common and organizations)
// accepts any tenant id there.
func checkResponseIssuer(q url.Values, issuer string, required bool) bool {
	if issuer == "" {
		return true
	}
	iss, present := q["iss"]
	if !present {
		return !required
	}
	if len(iss) != 1 {
		return false
	}
	before, after, templ := strings.Cut(issuer, tenantPlaceholder)
	if !templ {
		return subtle.ConstantTimeCompare([]byte(iss[0]), []byte(issuer)) == 1
	}
	tenant, ok := strings.CutPrefix(iss[0], before)
	if !ok {
		return false
	}
	tenant, ok = strings.CutSuffix(tenant, after)
	return ok && isTenantID(tenant)
}

// isTenantID reports whether s is a directory (tenant) id: a GUID, hex
// digits in either case, 8-4-4-4-12.
func isTenantID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if r != '-' {
				return false
			}
		case !('0' <= r && r <= '9' || 'a' <= r && r <= 'f' || 'A' <= r && r <= 'F'):
			return false
		}
	}
	return true
}

// cleanReturnTo accepts a same-origin path ("/x?y") of at most
// maxReturnTo bytes and nothing else: not "//host", not "/\host", not a
// scheme, not control characters. Empty means "/".
func cleanReturnTo(s string) (string, bool) {
	if s == "" {
		return "/", true
	}
	if len(s) > maxReturnTo || s[0] != '/' || strings.HasPrefix(s, "//") || strings.HasPrefix(s, "/\\") {
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

// errorPageStyle is the error page's one inline style, allowed by its
// hash in errorPageCSP.
const errorPageStyle = `body{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem;color:#1f2328}
h1{font-size:1.4rem}a.button{display:inline-block;margin-top:1rem;padding:.6rem 1.1rem;border-radius:.4rem;background:#0b5cad;color:#fff;text-decoration:none}`

var errorPageTmpl = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{.Title}}</title>
<style>` + errorPageStyle + `</style>
</head><body><h1>{{.Title}}</h1><p>{{.Message}}</p>
<a class="button" href="{{.Retry}}">Try again</a></body></html>
`))

// errorPage shows a readable page with a "try again" link: callbacks are
// navigations, so JSON would be a dead end for the user.
func (s *Handler) errorPage(c *gin.Context, status int, title, msg, returnTo string) {
	c.Header("Content-Type", "text/html; charset=utf-8")
	c.Header("Content-Security-Policy", errorPageCSP)
	c.Header("Cross-Origin-Opener-Policy", "same-origin")
	c.Status(status)
	retry := s.LoginURL(returnTo) // back to the page, or to the extension's tab
	if err := errorPageTmpl.Execute(c.Writer, map[string]string{"Title": title, "Message": msg, "Retry": retry}); err != nil {
		s.log.Error("rendering the error page", "err", err)
	}
}
