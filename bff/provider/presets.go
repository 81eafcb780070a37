package provider

import (
	"net/url"
	"strings"
)

// Flavor selects a provider's quirk handling. The zero value is plain
// OAuth 2.0 / OpenID Connect.
type Flavor string

// Flavors Tether knows.
const (
	// FlavorGeneric is standard OAuth 2.0 / OpenID Connect (Auth0, Okta,
	// Keycloak, Ory Hydra, Dex, Zitadel, the dev provider).
	FlavorGeneric Flavor = ""
	// FlavorGitHub is a GitHub App or OAuth App on github.com or GitHub
	// Enterprise Server: no OpenID Connect (the user comes from GET /user),
	// client credentials in the form, and logout by DELETE
	// /applications/{client_id}/grant with the access token.
	FlavorGitHub Flavor = "github"
	// FlavorGoogle is Google: discovery, plus access_type=offline and
	// prompt=consent on the authorization request.
	FlavorGoogle Flavor = "google"
	// FlavorEntra is Microsoft Entra ID (v2.0 endpoints): the multi-tenant
	// authorities (common, organizations) publish an issuer template with
	// {tenantid}, checked against each ID token's tid claim.
	FlavorEntra Flavor = "entra"
)

// Public endpoints of the presets.
const (
	GitHubURL      = "https://github.com"
	GitHubAPIURL   = "https://api.github.com"
	GoogleIssuer   = "https://accounts.google.com"
	EntraAuthority = "https://login.microsoftonline.com"
)

// GitHub returns the Config for a GitHub App or OAuth App on github.com
// (webURL and apiURL empty) or on GitHub Enterprise Server (webURL like
// https://ghe.example.com; apiURL defaults to webURL + /api/v3). clientID
// is part of the grant-revocation URL; the caller still sets ClientID,
// ClientSecret and RedirectURL. No scope is needed for the user's public
// profile.
func GitHub(webURL, apiURL, clientID string) Config {
	webURL = strings.TrimRight(webURL, "/")
	if webURL == "" {
		webURL = GitHubURL
	}
	if apiURL == "" {
		apiURL = webURL + "/api/v3"
		if webURL == GitHubURL {
			apiURL = GitHubAPIURL
		}
	}
	apiURL = strings.TrimRight(apiURL, "/")
	return Config{
		Flavor: FlavorGitHub,
		Endpoints: Endpoints{
			AuthURL:     webURL + "/login/oauth/authorize",
			TokenURL:    webURL + "/login/oauth/access_token",
			UserinfoURL: apiURL + "/user",
			RevokeURL:   apiURL + "/applications/" + url.PathEscape(clientID) + "/grant",
		},
	}
}

// Google returns the Config for Google (discovery at
// https://accounts.google.com): scopes openid email profile, and
// access_type=offline with prompt=consent so that every login yields a
// refresh token.
func Google() Config {
	return Config{
		Flavor:     FlavorGoogle,
		Endpoints:  Endpoints{Issuer: GoogleIssuer},
		Scopes:     []string{"openid", "email", "profile"},
		AuthParams: url.Values{"access_type": {"offline"}, "prompt": {"consent"}},
	}
}

// Entra returns the Config for Microsoft Entra ID's v2.0 endpoints of
// tenant: a directory (tenant) id, a verified domain, or one of the
// multi-tenant authorities common, organizations and consumers. Scopes
// openid profile offline_access (offline_access is what yields a refresh
// token).
func Entra(tenant string) Config {
	return Config{
		Flavor:    FlavorEntra,
		Endpoints: Endpoints{Issuer: EntraAuthority + "/" + url.PathEscape(tenant) + "/v2.0"},
		Scopes:    []string{"openid", "profile", "offline_access"},
	}
}
