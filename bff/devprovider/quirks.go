package devprovider

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Quirks makes the provider behave like a real one on the wire, so the
// demo and the tests can run the whole stack against it.
type Quirks string

// Quirk modes.
const (
	// QuirksNone is a standard OpenID Connect provider with rotating
	// refresh tokens and reuse detection.
	QuirksNone Quirks = ""
	// QuirksGitHub is a GitHub App with expiring user tokens, served the
	// way GitHub Enterprise Server lays it out (TETHER_PROVIDER=github,
	// TETHER_GITHUB_URL=<issuer>):
	//
	//	GET    /login/oauth/authorize
	//	POST   /login/oauth/access_token  form-encoded unless Accept: application/json
	//	GET    /api/v3/user               {"login","id","name","email"}
	//	DELETE /api/v3/applications/{client_id}/grant  {"access_token"}: 204, else 422
	//
	// No discovery, no ID token, no RFC 7009 endpoint. Token errors come
	// with HTTP 200: bad_refresh_token, bad_verification_code,
	// incorrect_client_credentials. Each refresh token works once; the
	// token_type is "bearer". Lifetimes are AccessTTL and RefreshTTL (GitHub:
	// 8 hours and about 6 months).
	QuirksGitHub Quirks = "github"
	// QuirksGitHubOAuthApp is QuirksGitHub for an OAuth App: access tokens
	// never expire (until revoked), and there is no refresh token.
	QuirksGitHubOAuthApp Quirks = "github-oauth-app"
	// QuirksGoogle is Google: a refresh token only when the authorization
	// request has access_type=offline, and then only at the user's first
	// consent or with prompt=consent; refresh tokens do not rotate (the
	// answer has none and the old one stays valid); no
	// refresh_token_expires_in; revoking an access token revokes its grant.
	QuirksGoogle Quirks = "google"
)

// Valid reports whether q is a known mode.
func (q Quirks) Valid() bool {
	switch q {
	case QuirksNone, QuirksGitHub, QuirksGitHubOAuthApp, QuirksGoogle:
		return true
	}
	return false
}

func (q Quirks) github() bool { return q == QuirksGitHub || q == QuirksGitHubOAuthApp }

// neverExpires is the lifetime of a GitHub OAuth App's tokens.
const neverExpires = 100 * 365 * 24 * time.Hour

// GitHubID is the numeric GitHub user id the GitHub modes give a user.
func GitHubID(subject string) int64 {
	for i, u := range Users {
		if u.Subject == subject {
			return int64(1001 + i)
		}
	}
	return 0
}

// lifetimes are the access and refresh lifetimes in force.
func (p *Provider) lifetimes() (access, refresh time.Duration) {
	if p.cfg.Quirks == QuirksGitHubOAuthApp {
		return neverExpires, neverExpires
	}
	return p.cfg.AccessTTL, p.cfg.RefreshTTL
}

// issuesRefresh decides at authorization time whether the code's
// exchange will yield a refresh token.
func (p *Provider) issuesRefresh(ar authRequest, subject string) bool {
	switch p.cfg.Quirks {
	case QuirksGitHubOAuthApp:
		return false
	case QuirksGoogle:
		if ar.AccessType != "offline" {
			return false
		}
		return p.ledger.offlineConsent(subject, ar.ClientID, strings.Contains(" "+ar.Prompt+" ", " consent "))
	}
	return true
}

// writeTokenResponse answers a successful token request.
func (p *Provider) writeTokenResponse(w http.ResponseWriter, r *http.Request, t tokenResponse) {
	switch {
	case p.cfg.Quirks.github():
		v := url.Values{"access_token": {t.AccessToken}, "token_type": {"bearer"}, "scope": {t.Scope}}
		if p.cfg.Quirks == QuirksGitHub {
			v.Set("expires_in", strconv.FormatInt(t.ExpiresIn, 10))
			v.Set("refresh_token", t.RefreshToken)
			v.Set("refresh_token_expires_in", strconv.FormatInt(t.RefreshTokenExpiresIn, 10))
		}
		writeGitHub(w, r, v)
	case p.cfg.Quirks == QuirksGoogle:
		m := map[string]any{"access_token": t.AccessToken, "token_type": t.TokenType, "expires_in": t.ExpiresIn, "scope": t.Scope}
		if t.RefreshToken != "" {
			m["refresh_token"] = t.RefreshToken
		}
		if t.IDToken != "" {
			m["id_token"] = t.IDToken
		}
		writeJSON(w, http.StatusOK, m)
	default:
		writeJSON(w, http.StatusOK, t)
	}
}

// writeTokenError answers a failed token request; GitHub does so with
// HTTP 200 and its own codes.
func (p *Provider) writeTokenError(w http.ResponseWriter, r *http.Request, e *oauthError, grantType string) {
	if !p.cfg.Quirks.github() {
		p.writeOAuthError(w, e)
		return
	}
	code := e.code
	switch {
	case code == "invalid_grant" && grantType == "refresh_token":
		code = "bad_refresh_token"
	case code == "invalid_grant":
		code = "bad_verification_code"
	case code == "invalid_client":
		code = "incorrect_client_credentials"
	}
	writeGitHub(w, r, url.Values{"error": {code}, "error_description": {e.desc},
		"error_uri": {"https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors"}})
}

// writeGitHub answers v the way GitHub's token endpoint does: JSON when
// the request accepts application/json, else form-encoded. Numbers stay
// numbers in JSON.
func writeGitHub(w http.ResponseWriter, r *http.Request, v url.Values) {
	w.Header().Set("Cache-Control", "no-store")
	if !strings.Contains(r.Header.Get("Accept"), "application/json") {
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, v.Encode())
		return
	}
	m := make(map[string]any, len(v))
	for k := range v {
		m[k] = v.Get(k)
		if n, err := strconv.ParseInt(v.Get(k), 10, 64); err == nil && strings.HasSuffix(k, "expires_in") {
			m[k] = n
		}
	}
	writeJSON(w, http.StatusOK, m)
}

// githubUser is GET /api/v3/user.
type githubUser struct {
	Login string `json:"login"`
	ID    int64  `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
	Type  string `json:"type"`
}

// handleGitHubUser answers GET /api/v3/user, with GitHub's 401 body when
// the token is bad. GitHub takes "token" as well as "Bearer".
func (p *Provider) handleGitHubUser(w http.ResponseWriter, r *http.Request) {
	if scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "token") {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	tok, _ := bearerToken(r)
	info, why := p.ledger.checkAccess(p.now(), tok)
	if why != "" {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
		return
	}
	u, _ := lookupUser(info.subject)
	writeJSON(w, http.StatusOK, githubUser{Login: u.Subject, ID: GitHubID(u.Subject), Name: u.Name, Email: u.Email, Type: "User"})
}

// handleGitHubDeleteGrant answers DELETE /api/v3/applications/{client_id}/grant:
// Basic client credentials and {"access_token": …} revoke that token's
// whole grant (204); a token that is not live is 422, another client 404.
func (p *Provider) handleGitHubDeleteGrant(w http.ResponseWriter, r *http.Request) {
	clientID, oe := p.authenticateClient(r)
	if oe != nil || clientID != r.PathValue("client_id") {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
		return
	}
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&body); err != nil || body.AccessToken == "" ||
		!p.ledger.revokeGrantOf(p.now(), body.AccessToken, clientID) {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"message": "Validation Failed"})
		return
	}
	p.stats.revoke.Add(1)
	w.WriteHeader(http.StatusNoContent)
}
