// Package provider is Tether's side of the OAuth 2.0 / OpenID Connect
// protocol: endpoints (explicit or from discovery), the authorization-code
// flow with PKCE, refresh, RFC 7009 revocation, ID-token verification, and
// the one decision the rest of Tether depends on: was a failed refresh a
// revocation (the grant is gone) or an outage (keep everything, retry)?
//
// It is the only package that imports golang.org/x/oauth2 and go-oidc.
package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Config names a provider and Tether's registration with it. Either Issuer
// (OpenID Connect discovery) or AuthURL and TokenURL must be set; explicit
// URLs override what discovery found.
type Config struct {
	Issuer       string
	AuthURL      string
	TokenURL     string
	RevokeURL    string
	UserinfoURL  string
	ClientID     string
	ClientSecret string
	Scopes       []string
	// RedirectURL is the BFF's callback, registered at the provider.
	RedirectURL string
	// HTTPClient talks to the provider; its Timeout bounds every call.
	// Default: a client with a 10-second timeout.
	HTTPClient *http.Client
	// Now is the clock that expires_in counts from. Default time.Now.
	Now func() time.Time
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
}

// Provider talks to one authorization server. It is safe for concurrent use.
type Provider struct {
	oauth       oauth2.Config
	client      *http.Client
	verifier    *oidc.IDTokenVerifier // nil for plain OAuth 2.0
	revokeURL   string
	userinfoURL string
	now         func() time.Time
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
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	p := &Provider{
		client:      client,
		revokeURL:   cfg.RevokeURL,
		userinfoURL: cfg.UserinfoURL,
		now:         cfg.Now,
		oauth: oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			RedirectURL:  cfg.RedirectURL,
			Scopes:       cfg.Scopes,
			Endpoint: oauth2.Endpoint{
				AuthURL: cfg.AuthURL, TokenURL: cfg.TokenURL,
				AuthStyle: authStyle(cfg.ClientSecret, nil),
			},
		},
	}
	if cfg.Issuer != "" {
		if err := p.discover(ctx, cfg); err != nil {
			return nil, err
		}
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
// /.well-known/openid-configuration.
func (p *Provider) discover(ctx context.Context, cfg Config) error {
	op, err := oidc.NewProvider(oidc.ClientContext(ctx, p.client), cfg.Issuer)
	if err != nil {
		return fmt.Errorf("provider: discovery at %s: %w", cfg.Issuer, err)
	}
	var meta struct {
		Revocation  string   `json:"revocation_endpoint"`
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
	p.oauth.Endpoint.AuthStyle = authStyle(cfg.ClientSecret, meta.AuthMethods)
	if p.revokeURL == "" {
		p.revokeURL = meta.Revocation
	}
	if p.userinfoURL == "" {
		p.userinfoURL = meta.Userinfo
	}
	if slices.Contains(cfg.Scopes, oidc.ScopeOpenID) {
		p.verifier = op.Verifier(&oidc.Config{ClientID: cfg.ClientID, Now: func() time.Time { return p.now() }})
	}
	return nil
}

// authStyle picks, once, how the client authenticates at the token
// endpoint, so that x/oauth2 never probes: its probe repeats a failed
// request the other way, which presents a refresh token twice (perhaps
// after the server rotated it) and doubles the time an outage takes.
// HTTP Basic is what every server must support (RFC 6749 section 2.3.1,
// the RFC 8414 default); a public client, or a server that lists
// client_secret_post but not client_secret_basic, gets the form.
func authStyle(secret string, methods []string) oauth2.AuthStyle {
	if secret == "" || len(methods) > 0 && !slices.Contains(methods, "client_secret_basic") && slices.Contains(methods, "client_secret_post") {
		return oauth2.AuthStyleInParams
	}
	return oauth2.AuthStyleInHeader
}

// OIDC reports whether logins carry a nonce and return a verified ID token.
func (p *Provider) OIDC() bool { return p.verifier != nil }

// CanRevoke reports whether the provider has an RFC 7009 revocation endpoint.
func (p *Provider) CanRevoke() bool { return p.revokeURL != "" }

// NewVerifier returns a fresh PKCE code verifier (RFC 7636, 32 random bytes).
func NewVerifier() string { return oauth2.GenerateVerifier() }

// AuthCodeURL is where the browser goes to log in: PKCE S256 always, and a
// nonce when the provider speaks OpenID Connect.
func (p *Provider) AuthCodeURL(state, verifier, nonce string) string {
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	if nonce != "" && p.OIDC() {
		opts = append(opts, oidc.Nonce(nonce))
	}
	return p.oauth.AuthCodeURL(state, opts...)
}

// Exchange trades an authorization code for a Grant, verifying the ID token
// and its nonce when the provider speaks OpenID Connect.
func (p *Provider) Exchange(ctx context.Context, code, verifier, nonce string) (*Grant, error) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, p.client)
	tok, err := p.oauth.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, fmt.Errorf("provider: code exchange: %w", classify(err, code, verifier, p.oauth.ClientSecret))
	}
	g := p.grant(tok)
	if p.OIDC() {
		raw, _ := tok.Extra("id_token").(string)
		if raw == "" {
			return nil, fmt.Errorf("provider: code exchange: %w: no id_token in the token response", ErrBadResponse)
		}
		idt, err := p.verifier.Verify(ctx, raw)
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
		g.Subject, g.Name = idt.Subject, c.displayName()
	}
	if g.Subject == "" && p.userinfoURL != "" {
		if err := p.userinfo(ctx, g); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// Refresh redeems a refresh token. A returned error wraps ErrRevoked when
// the provider says the grant is gone, else ErrUnavailable.
func (p *Provider) Refresh(ctx context.Context, refreshToken string) (*Grant, error) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, p.client)
	tok, err := p.oauth.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		return nil, fmt.Errorf("provider: refresh: %w", classify(err, refreshToken, p.oauth.ClientSecret))
	}
	g := p.grant(tok)
	if g.RefreshToken == refreshToken {
		// x/oauth2 copies the old refresh token when none came back; say so
		// plainly: the provider did not rotate.
		g.RefreshToken = ""
	}
	return g, nil
}

// grant converts an x/oauth2 token.
func (p *Provider) grant(tok *oauth2.Token) *Grant {
	g := &Grant{
		AccessToken:  tok.AccessToken,
		TokenType:    tok.TokenType,
		RefreshToken: tok.RefreshToken,
		Expiry:       tok.Expiry,
	}
	// x/oauth2 counts from time.Now; count from our clock instead. It
	// leaves ExpiresIn zero for a form-encoded response.
	if secs := max(tok.ExpiresIn, extraSeconds(tok.Extra("expires_in"))); secs > 0 {
		g.Expiry = p.now().Add(time.Duration(secs) * time.Second)
	}
	if g.TokenType == "" || strings.EqualFold(g.TokenType, "bearer") {
		g.TokenType = "Bearer"
	}
	if s, ok := tok.Extra("scope").(string); ok {
		g.Scope = s
	}
	if secs := extraSeconds(tok.Extra("refresh_token_expires_in")); secs > 0 {
		g.RefreshExpiry = p.now().Add(time.Duration(secs) * time.Second)
	}
	return g
}

// claims are the ID-token and userinfo members used for display.
type claims struct {
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
