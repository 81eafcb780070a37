package provider

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
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

// Preset names, the values of Preset's name. The empty name is no preset:
// plain OAuth 2.0 or OpenID Connect, from an issuer or explicit endpoints.
const (
	PresetGitHub = "github" // GitHub or GitHub Enterprise Server; see GitHub
	PresetGoogle = "google" // Google; see Google
	PresetEntra  = "entra"  // Microsoft Entra ID; see Entra
	PresetOIDC   = "oidc"   // any OpenID Connect provider; needs an Issuer
)

// PresetOptions are what Preset reads besides the preset's name: explicit
// settings, which override what the preset fills in and keep its Flavor
// (a proxy in front of GitHub's token endpoint is still GitHub), and the
// options of the github and entra presets.
type PresetOptions struct {
	// Endpoints set here override the preset's.
	Endpoints
	// Scopes, when not empty, replace the preset's.
	Scopes []string
	// AuthParams go over the preset's authorization parameters; an empty
	// value removes one of the preset's (prompt=). See ReservedAuthParam.
	AuthParams url.Values
	// ClientID is Tether's registration; the github preset puts it in
	// its grant-revocation URL.
	ClientID string
	// GitHubURL and GitHubAPIURL point the github preset at a GitHub
	// Enterprise Server (see GitHub); the other presets refuse them.
	GitHubURL    string
	GitHubAPIURL string
	// EntraTenant is the entra preset's tenant (see Entra), required
	// unless Issuer is set; the other presets refuse it.
	EntraTenant string

	// FieldNames are what errors call the settings, by Go field name
	// ("Issuer", "GitHubURL", ...; "Preset" for the preset's name): the
	// names the caller's users know, such as environment variables.
	// Settings it does not name go by their Go names.
	FieldNames map[string]string
}

// PresetError is a mistake Preset found.
type PresetError struct {
	// Field is the setting at fault: a PresetOptions field as Go spells
	// it ("Issuer", "GitHubURL", "AuthParams", ...), or "Preset" for the
	// preset's name.
	Field string
	// Name is what PresetOptions.FieldNames calls Field; Field if nothing.
	Name string
	// Err is the problem, worded after Name ("is empty; ...").
	Err error
}

// Error names the setting and the problem.
func (e *PresetError) Error() string { return "provider: " + e.Name + ": " + e.Err.Error() }

// Unwrap returns the problem.
func (e *PresetError) Unwrap() error { return e.Err }

// Preset returns the Config of the preset name with opts over it: the
// preset's Flavor; its endpoints under those set in opts; its scopes
// unless opts has some, and with neither, openid profile when there is an
// issuer; its authorization parameters under opts.AuthParams; and
// opts.ClientID. The caller adds ClientSecret, RedirectURL and the rest.
//
// Preset checks what it can without the network and reports the first
// mistake as a *PresetError: an unknown name, another preset's options, a
// reserved authorization parameter, what the preset needs or refuses
// (PresetOIDC an issuer, PresetGitHub any issuer, PresetEntra a tenant or
// an issuer), and endpoints that are missing or not absolute http(s)
// URLs. New checks the rest after discovery.
func Preset(name string, opts PresetOptions) (Config, error) {
	if err := opts.check(name); err != nil {
		return Config{}, err
	}
	var p Config
	switch name {
	case PresetGitHub:
		p = GitHub(opts.GitHubURL, opts.GitHubAPIURL, opts.ClientID)
	case PresetGoogle:
		p = Google()
	case PresetEntra:
		p = Entra(opts.EntraTenant)
	}
	c := Config{
		Flavor:     p.Flavor,
		Endpoints:  withDefaults(opts.Endpoints, p.Endpoints),
		ClientID:   opts.ClientID,
		Scopes:     opts.Scopes,
		AuthParams: overAuthParams(p.AuthParams, opts.AuthParams),
	}
	if err := opts.checkEndpoints(c.Endpoints); err != nil {
		return Config{}, err
	}
	if len(c.Scopes) == 0 {
		c.Scopes = p.Scopes
	}
	if len(c.Scopes) == 0 {
		c.Scopes = nil // plain OAuth 2.0: the provider's default scopes
		if c.Issuer != "" {
			c.Scopes = []string{"openid", "profile"}
		}
	}
	return c, nil
}

// entraTenant is a tenant id, a domain, or common/organizations/consumers.
var entraTenant = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]*$`)

// check checks the preset's name and the options it reads, before
// anything is filled in.
func (o *PresetOptions) check(name string) error {
	github := []struct{ field, value string }{{"GitHubURL", o.GitHubURL}, {"GitHubAPIURL", o.GitHubAPIURL}}
	if name != PresetGitHub {
		for _, f := range github {
			if f.value != "" {
				return o.fail(f.field, fmt.Errorf("is set, but %s is not github", o.nameOf("Preset")))
			}
		}
	}
	if name != PresetEntra && o.EntraTenant != "" {
		return o.fail("EntraTenant", fmt.Errorf("is set, but %s is not entra", o.nameOf("Preset")))
	}
	for k := range o.AuthParams {
		if ReservedAuthParam(k) {
			return o.fail("AuthParams", fmt.Errorf("cannot set %q: Tether sends it (scopes go in %s)", k, o.nameOf("Scopes")))
		}
	}
	switch name {
	case "", PresetGoogle:
	case PresetOIDC:
		if o.Issuer == "" {
			return o.fail("Issuer", fmt.Errorf("is empty; %s=oidc discovers everything from it", o.nameOf("Preset")))
		}
	case PresetGitHub:
		if o.Issuer != "" {
			return o.fail("Issuer", fmt.Errorf("is set, but GitHub has no OpenID Connect issuer: leave it empty with %s=github", o.nameOf("Preset")))
		}
		for _, f := range github {
			if f.value == "" {
				continue
			}
			if u, err := url.Parse(f.value); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
				return o.fail(f.field, fmt.Errorf("%q is not a base URL like https://ghe.example.com", f.value))
			}
		}
	case PresetEntra:
		if o.EntraTenant == "" && o.Issuer == "" {
			return o.fail("EntraTenant", errors.New("is empty; set the Directory (tenant) ID, a verified domain, or common, organizations or consumers for a multi-tenant app"))
		}
		if o.EntraTenant != "" && !entraTenant.MatchString(o.EntraTenant) {
			return o.fail("EntraTenant", fmt.Errorf("%q is not a tenant id, a domain, common, organizations or consumers", o.EntraTenant))
		}
	default:
		return o.fail("Preset", fmt.Errorf("%q is not github, google, entra or oidc", name))
	}
	return nil
}

// checkEndpoints reports endpoints that cannot work: neither an issuer
// nor both the authorization and token endpoints, or a URL that is not
// absolute http(s).
func (o *PresetOptions) checkEndpoints(e Endpoints) error {
	if e.Issuer == "" && (e.AuthURL == "" || e.TokenURL == "") {
		return o.fail("Issuer", fmt.Errorf("is empty, and %s and %s are not both set", o.nameOf("AuthURL"), o.nameOf("TokenURL")))
	}
	for _, f := range []struct{ field, value string }{
		{"Issuer", e.Issuer}, {"AuthURL", e.AuthURL}, {"TokenURL", e.TokenURL},
		{"RevokeURL", e.RevokeURL}, {"UserinfoURL", e.UserinfoURL},
	} {
		if f.value == "" {
			continue
		}
		if u, err := url.Parse(f.value); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return o.fail(f.field, fmt.Errorf("%q is not an absolute http(s) URL", f.value))
		}
	}
	return nil
}

// nameOf is what errors call field.
func (o *PresetOptions) nameOf(field string) string {
	if n := o.FieldNames[field]; n != "" {
		return n
	}
	return field
}

// fail returns the PresetError of field.
func (o *PresetOptions) fail(field string, err error) *PresetError {
	return &PresetError{Field: field, Name: o.nameOf(field), Err: err}
}

// withDefaults returns e with its empty URLs taken from d.
func withDefaults(e, d Endpoints) Endpoints {
	for _, f := range []struct {
		dst *string
		v   string
	}{
		{&e.Issuer, d.Issuer}, {&e.AuthURL, d.AuthURL}, {&e.TokenURL, d.TokenURL},
		{&e.RevokeURL, d.RevokeURL}, {&e.UserinfoURL, d.UserinfoURL},
	} {
		if *f.dst == "" {
			*f.dst = f.v
		}
	}
	return e
}

// overAuthParams returns base with over applied: a value in over replaces
// base's (its first counts), an empty one removes it. The result is a new,
// never nil, map.
func overAuthParams(base, over url.Values) url.Values {
	params := url.Values{}
	for k, vs := range base {
		params[k] = vs
	}
	for k, vs := range over {
		if len(vs) == 0 || strings.TrimSpace(vs[0]) == "" {
			delete(params, k)
		} else {
			params[k] = vs[:1]
		}
	}
	return params
}
