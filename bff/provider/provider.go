// Package provider is Tether's client of an authorization server (GitHub,
// Google, Entra ID, any OpenID Connect provider), whereas bff/devprovider
// is an authorization server.
//
// It speaks OAuth 2.0 and OpenID Connect: presets, endpoints (explicit or
// from discovery), the authorization-code flow with PKCE, refresh, RFC
// 7009 revocation, ID-token verification, and the one decision the rest
// of Tether depends on: was a failed refresh a revocation (the grant is
// gone) or an outage (keep everything, retry)?
//
// It is the only package that imports golang.org/x/oauth2 and go-oidc.
package provider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Endpoints are where an authorization server is. Either Issuer (OpenID
// Connect discovery) or AuthURL and TokenURL must be set; explicit URLs
// override what discovery finds.
type Endpoints struct {
	// Issuer enables OpenID Connect discovery at
	// Issuer/.well-known/openid-configuration.
	Issuer string
	// AuthURL and TokenURL are the authorization and token endpoints.
	AuthURL  string
	TokenURL string
	// RevokeURL is the RFC 7009 endpoint; with FlavorGitHub, the
	// DELETE /applications/{client_id}/grant URL.
	RevokeURL string
	// UserinfoURL identifies the user when there is no ID token; with
	// FlavorGitHub, the REST API's /user.
	UserinfoURL string
}

// Config names a provider and Tether's registration with it. Preset
// builds one from a preset's name and options; GitHub, Google and Entra
// return the endpoints, scopes and Flavor of those providers alone.
type Config struct {
	// Flavor selects quirk handling; explicit URLs do not change it (a
	// GitHub Enterprise Server is FlavorGitHub with its own URLs).
	Flavor Flavor
	Endpoints
	ClientID     string
	ClientSecret string
	Scopes       []string
	// AuthParams are added to every authorization request (Google's
	// access_type=offline, Auth0's audience); see ReservedAuthParam.
	AuthParams url.Values
	// RedirectURL is the BFF's callback, registered at the provider.
	RedirectURL string
	// HTTPClient talks to the provider; its Timeout bounds every call.
	// Default: a client with a 10-second timeout.
	HTTPClient *http.Client
	// Now is the clock that expires_in counts from. Default time.Now.
	Now func() time.Time
	// Logger receives warnings about odd token responses (no expires_in,
	// say), each once per Provider. Default: discard.
	Logger *slog.Logger
	// Discovery, with Issuer, is a discovery document fetched earlier
	// (Provider.Discovery): New uses it instead of fetching one.
	Discovery *Discovery
}

// Grant is what a successful code exchange or refresh produced.
type Grant struct {
	AccessToken  string
	TokenType    string
	RefreshToken string // empty when the provider did not send one
	Scope        string
	// Expiry is when AccessToken expires; zero when the provider gave no
	// expires_in (the token is then used until an API rejects it).
	Expiry time.Time
	// RefreshExpiry is when RefreshToken expires, from the non-standard but
	// common refresh_token_expires_in; zero when unknown.
	RefreshExpiry time.Time
	// Subject and Name identify the user: from the verified ID token, else
	// from the userinfo endpoint, else empty.
	Subject string
	Name    string
	// SessionID is the provider's session, the ID token's sid claim
	// (OpenID Connect Front- and Back-Channel Logout); empty without one.
	SessionID string
}

// Provider talks to one authorization server. It is safe for concurrent use.
type Provider struct {
	flavor     Flavor
	oauth      oauth2.Config
	authParams url.Values
	client     *http.Client
	verifier   *oidc.IDTokenVerifier // nil for plain OAuth 2.0
	// logout verifies back-channel logout tokens; nil without a JWKS.
	logout *oidc.IDTokenVerifier
	// issuerTemplate is Entra's multi-tenant issuer with {tenantid}, which
	// each ID token's iss must match with its own tid; "" when the
	// verifier checks one fixed issuer.
	issuerTemplate string
	// issuer is the one go-oidc checks; schemelessIssuer is Google's other
	// form of it, checked by checkIssuer.
	issuer           string
	schemelessIssuer string
	revokeURL        string
	userinfoURL      string
	discovery        *Discovery // the document used; nil without an issuer
	now              func() time.Time
	log              *slog.Logger
	logged           sync.Map // keys of the warnings already logged

	// respIssuer is the discovery document's issuer, which RFC 9207's
	// iss must equal; respIssRequired: the document advertises
	// authorization_response_iss_parameter_supported.
	respIssuer      string
	respIssRequired bool
}

// New builds a Provider, running OpenID Connect discovery when cfg.Issuer
// is set. Errors name the configuration that is wrong.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	if cfg.ClientID == "" {
		return nil, errors.New("provider: client id is empty")
	}
	if cfg.RedirectURL == "" {
		return nil, errors.New("provider: redirect URL is empty")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	switch cfg.Flavor {
	case FlavorGeneric, FlavorGoogle, FlavorEntra:
	case FlavorGitHub:
		if cfg.Issuer != "" {
			return nil, errors.New("provider: GitHub has no OpenID Connect issuer; set its endpoints")
		}
	default:
		return nil, fmt.Errorf("provider: unknown flavor %q", cfg.Flavor)
	}
	p := &Provider{
		flavor:      cfg.Flavor,
		authParams:  cfg.AuthParams,
		client:      client,
		revokeURL:   cfg.RevokeURL,
		userinfoURL: cfg.UserinfoURL,
		now:         cfg.Now,
		log:         cfg.Logger,
		oauth: oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			RedirectURL:  cfg.RedirectURL,
			Scopes:       cfg.Scopes,
			Endpoint: oauth2.Endpoint{
				AuthURL: cfg.AuthURL, TokenURL: cfg.TokenURL,
				AuthStyle: authStyle(cfg.Flavor, cfg.ClientSecret, nil),
			},
		},
	}
	if cfg.Issuer != "" {
		if err := p.discover(ctx, cfg); err != nil {
			return nil, err
		}
	}
	if p.flavor == FlavorGitHub && p.userinfoURL == "" {
		return nil, errors.New("provider: GitHub needs its REST API's /user URL to identify the user")
	}
	if p.oauth.Endpoint.AuthURL == "" || p.oauth.Endpoint.TokenURL == "" {
		return nil, errors.New("provider: no authorization or token endpoint: set an issuer or both endpoint URLs")
	}
	for _, u := range []string{p.oauth.Endpoint.AuthURL, p.oauth.Endpoint.TokenURL, p.revokeURL, p.userinfoURL} {
		if u == "" {
			continue
		}
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" {
			return nil, fmt.Errorf("provider: endpoint %q is not an absolute http(s) URL", u)
		}
	}
	return p, nil
}

// discover fills endpoints and the ID-token verifier from the issuer's
// /.well-known/openid-configuration, fetched now or given in
// cfg.Discovery. Failures that may pass wrap ErrDiscovery.
func (p *Provider) discover(ctx context.Context, cfg Config) error {
	d := cfg.Discovery
	if d == nil {
		var err error
		if d, err = p.fetchDiscovery(ctx, cfg.Issuer); err != nil {
			return err
		}
	}
	client, err := p.discoveryClient(cfg.Issuer, d.Document)
	if err != nil {
		return err
	}
	ctx = oidc.ClientContext(ctx, client)
	if p.flavor == FlavorEntra {
		if ctx, err = p.entraIssuer(ctx, cfg.Issuer, d.Document); err != nil {
			return err
		}
	}
	op, err := oidc.NewProvider(ctx, cfg.Issuer)
	if err != nil {
		if isIssuerMismatch(err) {
			return fmt.Errorf("provider: discovery at %s: %w", cfg.Issuer, err)
		}
		return fmt.Errorf("provider: discovery at %s: %w: %w", cfg.Issuer, ErrDiscovery, err)
	}
	p.discovery = d
	var meta struct {
		Issuer      string   `json:"issuer"`
		IssParam    bool     `json:"authorization_response_iss_parameter_supported"`
		Revocation  string   `json:"revocation_endpoint"`
		JWKS        string   `json:"jwks_uri"`
		SigningAlgs []string `json:"id_token_signing_alg_values_supported"`
		Userinfo    string   `json:"userinfo_endpoint"`
		AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	}
	if err := op.Claims(&meta); err != nil {
		return fmt.Errorf("provider: discovery document of %s: %w", cfg.Issuer, err)
	}
	ep := op.Endpoint()
	if p.oauth.Endpoint.AuthURL == "" {
		p.oauth.Endpoint.AuthURL = ep.AuthURL
	}
	if p.oauth.Endpoint.TokenURL == "" {
		p.oauth.Endpoint.TokenURL = ep.TokenURL
	}
	p.oauth.Endpoint.AuthStyle = authStyle(p.flavor, cfg.ClientSecret, meta.AuthMethods)
	p.respIssuer, p.respIssRequired = meta.Issuer, meta.IssParam
	if p.revokeURL == "" {
		p.revokeURL = meta.Revocation
	}
	if p.userinfoURL == "" {
		p.userinfoURL = meta.Userinfo
	}
	if p.flavor == FlavorGoogle {
		// go-oidc checked that discovery states cfg.Issuer exactly.
		p.issuer, p.schemelessIssuer = cfg.Issuer, googleSchemeless(cfg.Issuer)
	}
	if meta.JWKS != "" {
		p.logout = p.newLogoutVerifier(cfg.Issuer, meta.JWKS, cfg.ClientID, meta.SigningAlgs, p.client)
	}
	if slices.Contains(cfg.Scopes, oidc.ScopeOpenID) {
		p.verifier = op.Verifier(&oidc.Config{
			ClientID: cfg.ClientID, Now: func() time.Time { return p.now() },
			// checkIssuer does it: Entra's template, Google's two forms.
			SkipIssuerCheck: p.issuerTemplate != "" || p.schemelessIssuer != "",
		})
	}
	return nil
}

// authStyle picks, once, how the client authenticates at the token
// endpoint; it is never probed (a probe repeats a failed request the
// other way, which presents a refresh token twice, perhaps after the
// server rotated it, and doubles the time an outage takes). HTTP Basic is
// what every server must support (RFC 6749 section 2.3.1, the RFC 8414
// default); a public client, or a server that lists client_secret_post but
// not client_secret_basic, gets the form. The presets use the form, which
// is what GitHub, Google and Microsoft document (and Basic would need
// secrets with + / = form-encoded, which not every server decodes).
func authStyle(f Flavor, secret string, methods []string) oauth2.AuthStyle {
	if f != FlavorGeneric || secret == "" || len(methods) > 0 && !slices.Contains(methods, "client_secret_basic") && slices.Contains(methods, "client_secret_post") {
		return oauth2.AuthStyleInParams
	}
	return oauth2.AuthStyleInHeader
}

// OIDC reports whether logins carry a nonce and return a verified ID token.
func (p *Provider) OIDC() bool { return p.verifier != nil }

// AuthorizationResponseIssuer returns what the iss parameter of an
// authorization response (RFC 9207) must be: the discovery document's
// issuer (with Entra's multi-tenant authorities, a template with
// {tenantid}), and whether the document advertises
// authorization_response_iss_parameter_supported, in which case iss is
// required. The issuer is "" without discovery.
func (p *Provider) AuthorizationResponseIssuer() (issuer string, required bool) {
	return p.respIssuer, p.respIssRequired
}

// CanRevoke reports whether logout can end the grant at the provider: an
// RFC 7009 revocation endpoint, or GitHub's grant endpoint.
func (p *Provider) CanRevoke() bool { return p.revokeURL != "" }

// Flavor reports the quirk handling in use.
func (p *Provider) Flavor() Flavor { return p.flavor }

// NewVerifier returns a fresh PKCE code verifier (RFC 7636, 32 random bytes).
func NewVerifier() string { return oauth2.GenerateVerifier() }

// AuthCodeURL is where the browser goes to log in: PKCE S256 always, a
// nonce when the provider speaks OpenID Connect, and Config.AuthParams.
func (p *Provider) AuthCodeURL(state, verifier, nonce string) string {
	var opts []oauth2.AuthCodeOption
	for k, vs := range p.authParams {
		if len(vs) > 0 && vs[0] != "" && !ReservedAuthParam(k) {
			opts = append(opts, oauth2.SetAuthURLParam(k, vs[0]))
		}
	}
	opts = append(opts, oauth2.S256ChallengeOption(verifier))
	if nonce != "" && p.OIDC() {
		opts = append(opts, oidc.Nonce(nonce))
	}
	return p.oauth.AuthCodeURL(state, opts...)
}

// ReservedAuthParam reports whether name is an authorization request
// parameter that Config.AuthParams cannot set: Tether's own (state, PKCE,
// nonce, client, redirect, response type) and scope (set Scopes).
func ReservedAuthParam(name string) bool {
	switch name {
	case "state", "code_challenge", "code_challenge_method", "nonce",
		"client_id", "redirect_uri", "response_type", "scope":
		return true
	}
	return false
}

// Exchange trades an authorization code for a Grant, verifying the ID token
// and its nonce when the provider speaks OpenID Connect, else asking the
// userinfo endpoint (GitHub: GET /user) who the user is.
func (p *Provider) Exchange(ctx context.Context, code, verifier, nonce string) (*Grant, error) {
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {p.oauth.RedirectURL},
		"code_verifier": {verifier},
	}
	tr, err := p.postToken(ctx, form, code, verifier)
	if err != nil {
		return nil, fmt.Errorf("provider: code exchange: %w", err)
	}
	g := p.grant(tr)
	if p.OIDC() {
		if tr.IDToken == "" {
			return nil, fmt.Errorf("provider: code exchange: %w: no id_token in the token response", ErrBadResponse)
		}
		idt, err := p.verifier.Verify(oidc.ClientContext(ctx, p.client), tr.IDToken)
		if err != nil {
			return nil, fmt.Errorf("provider: id token: %w: %w", ErrBadResponse, err)
		}
		if idt.Nonce != nonce {
			return nil, fmt.Errorf("provider: id token: %w: nonce does not match", ErrBadResponse)
		}
		var c claims
		if err := idt.Claims(&c); err != nil {
			return nil, fmt.Errorf("provider: id token claims: %w: %w", ErrBadResponse, err)
		}
		if err := p.checkIssuer(idt.Issuer, c.TenantID); err != nil {
			return nil, err
		}
		g.Subject, g.Name, g.SessionID = idt.Subject, c.displayName(), c.SID
	}
	if g.Subject == "" && p.userinfoURL != "" {
		identify := p.userinfo
		if p.flavor == FlavorGitHub {
			identify = p.githubUser
		}
		if err := identify(ctx, g); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// Refresh redeems a refresh token. A returned error wraps ErrRevoked when
// the provider says the grant is gone, else ErrUnavailable. The Grant's
// RefreshToken is empty when the provider did not rotate (Google): keep
// the old one.
func (p *Provider) Refresh(ctx context.Context, refreshToken string) (*Grant, error) {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	if p.flavor == FlavorEntra && len(p.oauth.Scopes) > 0 {
		// Entra's v2.0 refresh request lists scope as required.
		form.Set("scope", strings.Join(p.oauth.Scopes, " "))
	}
	tr, err := p.postToken(ctx, form, refreshToken)
	if err != nil {
		return nil, fmt.Errorf("provider: refresh: %w", err)
	}
	g := p.grant(tr)
	if g.RefreshToken == refreshToken {
		g.RefreshToken = "" // sent back unchanged: not a rotation
	}
	return g, nil
}

// grant converts a token response, counting lifetimes from our clock.
func (p *Provider) grant(tr *tokenResponse) *Grant {
	g := &Grant{
		AccessToken:  tr.AccessToken,
		TokenType:    tr.TokenType,
		RefreshToken: tr.RefreshToken,
		Scope:        tr.Scope,
	}
	g.Expiry, g.RefreshExpiry = p.expiries(tr)
	// RFC 6749 says token_type is case-insensitive; GitHub sends "bearer",
	// some servers nothing at all.
	if g.TokenType == "" || strings.EqualFold(g.TokenType, "bearer") {
		g.TokenType = "Bearer"
	}
	return g
}

// claims are the ID-token and userinfo members used for display.
type claims struct {
	TenantID          string `json:"tid"` // Entra
	SID               string `json:"sid"` // the provider's session
	Subject           string `json:"sub"`
	Name              string `json:"name"`
	PreferredUsername string `json:"preferred_username"`
	Email             string `json:"email"`
}

func (c claims) displayName() string {
	for _, s := range []string{c.Name, c.PreferredUsername, c.Email} {
		if s != "" {
			return s
		}
	}
	return ""
}

// userinfo fills Subject and Name from the userinfo endpoint.
func (p *Provider) userinfo(ctx context.Context, g *Grant) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.userinfoURL, nil)
	if err != nil {
		return fmt.Errorf("provider: userinfo: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+g.AccessToken)
	req.Header.Set("Accept", "application/json")
	var c claims
	if err := doJSON(p.client, req, &c); err != nil {
		return fmt.Errorf("provider: userinfo: %w", err)
	}
	g.Subject, g.Name = c.Subject, c.displayName()
	return nil
}
