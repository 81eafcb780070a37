package devprovider

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// oauthError is an RFC 6749 section 5.2 error with its HTTP status.
type oauthError struct {
	status int
	code   string
	desc   string
}

func (e *oauthError) Error() string { return "devprovider: " + e.code + ": " + e.desc }

func errInvalidGrant(desc string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: "invalid_grant", desc: desc}
}

func errInvalidRequest(desc string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: "invalid_request", desc: desc}
}

func (p *Provider) writeOAuthError(w http.ResponseWriter, e *oauthError) {
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="tether-dev"`)
	}
	writeError(w, e.status, e.code, e.desc)
}

// ID tokens live for AccessTTL or this long, whichever is longer.
const minIDTokenTTL = 5 * time.Minute

type discovery struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	RevocationEndpoint                string   `json:"revocation_endpoint"`
	UserinfoEndpoint                  string   `json:"userinfo_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	ResponseModesSupported            []string `json:"response_modes_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported"`
	ScopesSupported                   []string `json:"scopes_supported"`
	ClaimsSupported                   []string `json:"claims_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethods     []string `json:"revocation_endpoint_auth_methods_supported"`
	SubjectTypesSupported             []string `json:"subject_types_supported"`
	AuthorizationResponseIssParameter bool     `json:"authorization_response_iss_parameter_supported"`
	EndSessionEndpoint                string   `json:"end_session_endpoint"`
	BackchannelLogoutSupported        bool     `json:"backchannel_logout_supported"`
	BackchannelLogoutSessionSupported bool     `json:"backchannel_logout_session_supported"`
}

func (p *Provider) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	auth := []string{"client_secret_basic", "client_secret_post"}
	writeJSON(w, http.StatusOK, discovery{
		Issuer:                            p.issuer,
		AuthorizationEndpoint:             p.issuer + "/authorize",
		TokenEndpoint:                     p.issuer + "/token",
		RevocationEndpoint:                p.issuer + "/revoke",
		UserinfoEndpoint:                  p.issuer + "/userinfo",
		JWKSURI:                           p.issuer + "/jwks",
		ResponseTypesSupported:            []string{"code"},
		ResponseModesSupported:            []string{"query"},
		GrantTypesSupported:               []string{"authorization_code", "refresh_token"},
		CodeChallengeMethodsSupported:     []string{"S256"},
		IDTokenSigningAlgValuesSupported:  []string{"RS256"},
		ScopesSupported:                   []string{"openid", "profile", "email", "offline_access"},
		ClaimsSupported:                   []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "sid", "name", "email"},
		TokenEndpointAuthMethodsSupported: auth,
		RevocationEndpointAuthMethods:     auth,
		SubjectTypesSupported:             []string{"public"},
		AuthorizationResponseIssParameter: true,
		EndSessionEndpoint:                p.issuer + "/logout",
		BackchannelLogoutSupported:        true,
		BackchannelLogoutSessionSupported: true,
	})
}

func (p *Provider) handleJWKS(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: &p.key.PublicKey, KeyID: p.keyID, Algorithm: string(jose.RS256), Use: "sig",
	}}})
}

// authenticateClient accepts HTTP Basic (RFC 6749 2.3.1, form-encoded
// parts) or client_secret_post.
func (p *Provider) authenticateClient(r *http.Request) (string, *oauthError) {
	id, secret, basic := r.BasicAuth()
	if basic {
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return "", &oauthError{status: http.StatusUnauthorized, code: "invalid_client", desc: "malformed Basic credentials"}
		}
		if formID := r.PostForm.Get("client_id"); formID != "" && formID != id {
			return "", errInvalidRequest("client_id differs from the Basic credentials")
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	idOK := subtle.ConstantTimeCompare([]byte(id), []byte(p.cfg.ClientID)) == 1
	secretOK := subtle.ConstantTimeCompare([]byte(secret), []byte(p.cfg.ClientSecret)) == 1
	if !idOK || !secretOK {
		return "", &oauthError{status: http.StatusUnauthorized, code: "invalid_client", desc: "unknown client or bad secret"}
	}
	return id, nil
}

type tokenResponse struct {
	AccessToken           string `json:"access_token"`
	TokenType             string `json:"token_type"`
	ExpiresIn             int64  `json:"expires_in"`
	RefreshToken          string `json:"refresh_token"`
	RefreshTokenExpiresIn int64  `json:"refresh_token_expires_in"`
	Scope                 string `json:"scope"`
	IDToken               string `json:"id_token,omitempty"`
}

func (p *Provider) handleToken(w http.ResponseWriter, r *http.Request) {
	if p.serveOutage(w, r) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		p.stats.tokenErrors.Add(1)
		p.writeTokenError(w, r, errInvalidRequest("cannot parse the form body"), "")
		return
	}
	gt := r.PostForm.Get("grant_type")
	noteGrantType(r, gt)
	switch gt {
	case "authorization_code":
		p.stats.authorizationCode.Add(1)
	case "refresh_token":
		p.stats.refreshToken.Add(1)
	}
	out, oe := p.token(r, gt)
	if oe != nil {
		p.stats.tokenErrors.Add(1)
		p.writeTokenError(w, r, oe, gt)
		return
	}
	p.writeTokenResponse(w, r, out)
}

func (p *Provider) token(r *http.Request, gt string) (tokenResponse, *oauthError) {
	clientID, oe := p.authenticateClient(r)
	if oe != nil {
		return tokenResponse{}, oe
	}
	now := p.now()
	accessTTL, refreshTTL := p.lifetimes()
	var (
		iss   issued
		nonce bool
	)
	switch gt {
	case "authorization_code":
		code, verifier := r.PostForm.Get("code"), r.PostForm.Get("code_verifier")
		if code == "" || verifier == "" {
			return tokenResponse{}, errInvalidRequest("code and code_verifier are required")
		}
		verify := func(challenge string) bool { return pkceS256Matches(verifier, challenge) }
		iss, oe = p.ledger.exchangeCode(now, code, clientID, r.PostForm.Get("redirect_uri"), verify, accessTTL, refreshTTL)
		nonce = true
	case "refresh_token":
		rt := r.PostForm.Get("refresh_token")
		if rt == "" {
			return tokenResponse{}, errInvalidRequest("refresh_token is required")
		}
		var reuse bool
		iss, reuse, oe = p.ledger.refreshGrant(now, rt, clientID, r.PostForm.Get("scope"), accessTTL, p.cfg.RevokeAccessOnRefresh, p.cfg.Quirks != QuirksGoogle)
		if reuse {
			p.stats.refreshReuse.Add(1)
		}
	case "":
		return tokenResponse{}, errInvalidRequest("grant_type is required")
	default:
		return tokenResponse{}, &oauthError{status: http.StatusBadRequest, code: "unsupported_grant_type", desc: "only authorization_code and refresh_token"}
	}
	if oe != nil {
		return tokenResponse{}, oe
	}
	resp := tokenResponse{
		AccessToken:           iss.access,
		TokenType:             "Bearer",
		ExpiresIn:             int64(iss.accessExpires.Sub(now) / time.Second),
		RefreshToken:          iss.refresh,
		RefreshTokenExpiresIn: int64(iss.refreshExpiry.Sub(now) / time.Second),
		Scope:                 iss.scope,
	}
	if slices.Contains(strings.Fields(iss.scope), "openid") && !p.cfg.Quirks.github() {
		idt, err := p.idToken(now, iss, clientID, nonce)
		if err != nil {
			return tokenResponse{}, &oauthError{status: http.StatusInternalServerError, code: "server_error", desc: "cannot sign the ID token"}
		}
		resp.IDToken = idt
	}
	return resp, nil
}

// pkceS256Matches checks an RFC 7636 verifier against an S256 challenge.
func pkceS256Matches(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	sum := sha256.Sum256([]byte(verifier))
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) == 1
}

type idClaims struct {
	jwt.Claims
	AuthTime int64  `json:"auth_time"`
	Nonce    string `json:"nonce,omitempty"`
	SID      string `json:"sid,omitempty"`
	Name     string `json:"name,omitempty"`
	Email    string `json:"email,omitempty"`
}

// idToken signs an OIDC ID token. The nonce goes only into the code
// grant's token (OIDC Core 12.2).
func (p *Provider) idToken(now time.Time, iss issued, clientID string, withNonce bool) (string, error) {
	u, _ := lookupUser(iss.subject)
	ttl := max(p.cfg.AccessTTL, minIDTokenTTL)
	c := idClaims{
		Claims: jwt.Claims{
			Issuer:   p.issuer,
			Subject:  iss.subject,
			Audience: jwt.Audience{clientID},
			Expiry:   jwt.NewNumericDate(now.Add(ttl)),
			IssuedAt: jwt.NewNumericDate(now),
		},
		AuthTime: iss.authTime.Unix(),
		SID:      iss.sid,
		Name:     u.Name,
		Email:    u.Email,
	}
	if withNonce {
		c.Nonce = iss.nonce
	}
	return jwt.Signed(p.signer).Claims(c).Serialize()
}

// handleRevoke implements RFC 7009.
func (p *Provider) handleRevoke(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		p.writeOAuthError(w, errInvalidRequest("cannot parse the form body"))
		return
	}
	clientID, oe := p.authenticateClient(r)
	if oe != nil {
		p.writeOAuthError(w, oe)
		return
	}
	tok := r.PostForm.Get("token")
	if tok == "" {
		p.writeOAuthError(w, errInvalidRequest("token is required"))
		return
	}
	p.ledger.revokeToken(p.now(), tok, clientID, p.cfg.Quirks == QuirksGoogle)
	p.stats.revoke.Add(1)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}
