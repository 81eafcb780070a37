package devprovider

import (
	"net/http"
	"strconv"
	"strings"
)

// bearerToken extracts an RFC 6750 Bearer token from the Authorization header.
func bearerToken(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// authenticate checks the Bearer token and, when it fails, answers 401 as
// RFC 6750 section 3 says: without an error code when no token came, with
// error="invalid_token" when one did.
func (p *Provider) authenticate(w http.ResponseWriter, r *http.Request) (accessInfo, bool) {
	tok, ok := bearerToken(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tether-dev"`)
		writeError(w, http.StatusUnauthorized, "invalid_request", "no Bearer token in the Authorization header")
		return accessInfo{}, false
	}
	info, why := p.ledger.checkAccess(p.now(), tok)
	if why != "" {
		w.Header().Set("WWW-Authenticate",
			`Bearer realm="tether-dev", error="invalid_token", error_description=`+strconv.Quote(why))
		writeError(w, http.StatusUnauthorized, "invalid_token", why)
		return accessInfo{}, false
	}
	return info, true
}

type meResponse struct {
	Subject        string `json:"subject"`
	Name           string `json:"name"`
	Email          string `json:"email"`
	Scope          string `json:"scope"`
	TokenExpiresAt int64  `json:"token_expires_at"`
	ServedAt       int64  `json:"served_at"`
}

// handleAPIMe is the sample API: who the token belongs to.
func (p *Provider) handleAPIMe(w http.ResponseWriter, r *http.Request) {
	info, ok := p.authenticate(w, r)
	if !ok {
		p.stats.api401.Add(1)
		return
	}
	p.stats.apiOK.Add(1)
	u, _ := lookupUser(info.subject)
	writeJSON(w, http.StatusOK, meResponse{
		Subject:        info.subject,
		Name:           u.Name,
		Email:          u.Email,
		Scope:          info.scope,
		TokenExpiresAt: info.expires.Unix(),
		ServedAt:       p.now().UnixMilli(),
	})
}

// handleAPIPublic needs no token and says whether one arrived, so tests can
// prove that a client did not attach a token to an origin it must not.
func (p *Provider) handleAPIPublic(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]bool{
		"ok":                   true,
		"authorization_header": r.Header.Get("Authorization") != "",
	})
}

func (p *Provider) handleUserInfo(w http.ResponseWriter, r *http.Request) {
	info, ok := p.authenticate(w, r)
	if !ok {
		return
	}
	u, _ := lookupUser(info.subject)
	writeJSON(w, http.StatusOK, u)
}
