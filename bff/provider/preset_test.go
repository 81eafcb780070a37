package provider_test

import (
	"errors"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tetherauth/tether/bff/provider"
)

const presetClientID = "Iv1.0123456789abcdef"

// issuerOpts is the smallest valid generic configuration.
var issuerOpts = provider.PresetOptions{
	Endpoints: provider.Endpoints{Issuer: "http://127.0.0.1:9090"},
	ClientID:  presetClientID,
}

// with returns a copy of o changed by f.
func with(o provider.PresetOptions, f func(*provider.PresetOptions)) provider.PresetOptions {
	f(&o)
	return o
}

func TestPresetErrors(t *testing.T) {
	github := provider.PresetOptions{ClientID: presetClientID}
	cases := []struct {
		name   string
		preset string
		opts   provider.PresetOptions
		want   string // PresetError.Field
	}{
		{"no issuer, no endpoints", "", provider.PresetOptions{}, "Issuer"},
		{"no issuer, auth URL only", "", provider.PresetOptions{Endpoints: provider.Endpoints{AuthURL: "https://idp.example/a"}}, "Issuer"},
		{"no issuer, token URL only", "", provider.PresetOptions{Endpoints: provider.Endpoints{TokenURL: "https://idp.example/t"}}, "Issuer"},
		{"issuer not a URL", "", with(issuerOpts, func(o *provider.PresetOptions) { o.Issuer = "idp.example" }), "Issuer"},
		{"token URL relative", "", with(issuerOpts, func(o *provider.PresetOptions) { o.TokenURL = "/token" }), "TokenURL"},
		{"auth URL relative", "", with(issuerOpts, func(o *provider.PresetOptions) { o.AuthURL = "authorize" }), "AuthURL"},
		{"revoke URL ftp", "", with(issuerOpts, func(o *provider.PresetOptions) { o.RevokeURL = "ftp://idp.example/revoke" }), "RevokeURL"},
		{"userinfo URL without host", "", with(issuerOpts, func(o *provider.PresetOptions) { o.UserinfoURL = "https:///userinfo" }), "UserinfoURL"},
		{"google's issuer overridden badly", provider.PresetGoogle, with(issuerOpts, func(o *provider.PresetOptions) { o.Issuer = "accounts.google.com" }), "Issuer"},
		{"unknown preset", "gitlab", issuerOpts, "Preset"},
		{"preset in capitals", "GitHub", issuerOpts, "Preset"},
		{"oidc without issuer", provider.PresetOIDC, provider.PresetOptions{Endpoints: provider.Endpoints{AuthURL: "https://idp.example/a", TokenURL: "https://idp.example/t"}}, "Issuer"},
		{"github with an issuer", provider.PresetGitHub, issuerOpts, "Issuer"},
		{"github URL relative", provider.PresetGitHub, with(github, func(o *provider.PresetOptions) { o.GitHubURL = "ghe.example.com" }), "GitHubURL"},
		{"github URL with a query", provider.PresetGitHub, with(github, func(o *provider.PresetOptions) { o.GitHubURL = "https://ghe.example.com?x=1" }), "GitHubURL"},
		{"github URL with a fragment", provider.PresetGitHub, with(github, func(o *provider.PresetOptions) { o.GitHubURL = "https://ghe.example.com#x" }), "GitHubURL"},
		{"github URL with user info", provider.PresetGitHub, with(github, func(o *provider.PresetOptions) { o.GitHubURL = "https://me:pw@ghe.example.com" }), "GitHubURL"},
		{"github API URL ftp", provider.PresetGitHub, with(github, func(o *provider.PresetOptions) { o.GitHubAPIURL = "ftp://ghe.example.com/api/v3" }), "GitHubAPIURL"},
		{"github token URL relative", provider.PresetGitHub, with(github, func(o *provider.PresetOptions) { o.TokenURL = "/token" }), "TokenURL"},
		{"github URL without github", "", with(issuerOpts, func(o *provider.PresetOptions) { o.GitHubURL = "https://ghe.example.com" }), "GitHubURL"},
		{"github API URL with google", provider.PresetGoogle, with(issuerOpts, func(o *provider.PresetOptions) { o.GitHubAPIURL = "https://ghe.example.com/api/v3" }), "GitHubAPIURL"},
		{"github URL with an unknown preset", "gitlab", with(issuerOpts, func(o *provider.PresetOptions) { o.GitHubURL = "https://ghe.example.com" }), "GitHubURL"},
		{"entra without tenant", provider.PresetEntra, provider.PresetOptions{}, "EntraTenant"},
		{"entra tenant with a slash", provider.PresetEntra, provider.PresetOptions{EntraTenant: "common/../x"}, "EntraTenant"},
		{"entra tenant with a space", provider.PresetEntra, provider.PresetOptions{EntraTenant: "contoso .com"}, "EntraTenant"},
		{"entra tenant without entra", "", with(issuerOpts, func(o *provider.PresetOptions) { o.EntraTenant = "common" }), "EntraTenant"},
		{"entra tenant with oidc", provider.PresetOIDC, with(issuerOpts, func(o *provider.PresetOptions) { o.EntraTenant = "common" }), "EntraTenant"},
		{"auth params: audience allowed, state not", "", with(issuerOpts, func(o *provider.PresetOptions) {
			o.AuthParams = url.Values{"audience": {"x"}, "state": {"forged"}}
		}), "AuthParams"},
		{"auth params set scope, google", provider.PresetGoogle, with(issuerOpts, func(o *provider.PresetOptions) { o.AuthParams = url.Values{"scope": {"admin"}} }), "AuthParams"},
	}
	for _, k := range []string{"state", "code_challenge", "code_challenge_method", "nonce", "client_id", "redirect_uri", "response_type", "scope"} {
		cases = append(cases, struct {
			name   string
			preset string
			opts   provider.PresetOptions
			want   string
		}{"auth params set " + k, "", with(issuerOpts, func(o *provider.PresetOptions) { o.AuthParams = url.Values{k: {"x"}} }), "AuthParams"})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := provider.Preset(tc.preset, tc.opts)
			if err == nil {
				t.Fatalf("Preset(%q) = %+v; want an error naming %s", tc.preset, c, tc.want)
			}
			var pe *provider.PresetError
			if !errors.As(err, &pe) {
				t.Fatalf("Preset error %v (%T) is not a *PresetError", err, err)
			}
			if pe.Field != tc.want || pe.Name != tc.want {
				t.Errorf("PresetError.Field, Name = %q, %q; want %q for both without FieldNames (error: %v)", pe.Field, pe.Name, tc.want, err)
			}
			if !strings.HasPrefix(err.Error(), "provider: "+tc.want+": ") || pe.Err == nil || errors.Unwrap(err) != pe.Err {
				t.Errorf("error %q does not read provider: %s: <problem>, or does not unwrap to it", err, tc.want)
			}
			if strings.Contains(err.Error(), "TETHER_") {
				t.Errorf("error %q names a variable; the provider package knows none", err)
			}
			if !reflect.DeepEqual(c, provider.Config{}) {
				t.Errorf("Preset returned %+v with its error; want the zero Config", c)
			}
		})
	}
}

// TestPresetErrorFieldNames: errors call the settings what FieldNames
// says, in PresetError.Name and in the problem; others keep Go's names.
func TestPresetErrorFieldNames(t *testing.T) {
	names := map[string]string{"Preset": "--provider", "Issuer": "--issuer", "AuthURL": "--auth-url", "TokenURL": "--token-url", "Scopes": "--scopes"}
	named := func(o provider.PresetOptions) provider.PresetOptions { o.FieldNames = names; return o }
	cases := []struct {
		preset      string
		opts        provider.PresetOptions
		field, name string
		err         string // PresetError.Err
	}{
		{"", named(provider.PresetOptions{}), "Issuer", "--issuer", "is empty, and --auth-url and --token-url are not both set"},
		{provider.PresetOIDC, named(provider.PresetOptions{Endpoints: provider.Endpoints{AuthURL: "https://idp.example/a", TokenURL: "https://idp.example/t"}}),
			"Issuer", "--issuer", "is empty; --provider=oidc discovers everything from it"},
		{provider.PresetGitHub, named(issuerOpts), "Issuer", "--issuer", "is set, but GitHub has no OpenID Connect issuer: leave it empty with --provider=github"},
		{provider.PresetGoogle, named(with(issuerOpts, func(o *provider.PresetOptions) { o.GitHubURL = "https://ghe.example.com" })),
			"GitHubURL", "GitHubURL", "is set, but --provider is not github"},
		{"", named(with(issuerOpts, func(o *provider.PresetOptions) { o.EntraTenant = "common" })), "EntraTenant", "EntraTenant", "is set, but --provider is not entra"},
		{"", named(with(issuerOpts, func(o *provider.PresetOptions) { o.AuthParams = url.Values{"scope": {"x"}} })),
			"AuthParams", "AuthParams", `cannot set "scope": Tether sends it (scopes go in --scopes)`},
		{"gitlab", named(issuerOpts), "Preset", "--provider", `"gitlab" is not github, google, entra or oidc`},
		{"", named(with(issuerOpts, func(o *provider.PresetOptions) { o.TokenURL = "/token" })), "TokenURL", "--token-url", `"/token" is not an absolute http(s) URL`},
	}
	for _, tc := range cases {
		_, err := provider.Preset(tc.preset, tc.opts)
		var pe *provider.PresetError
		if !errors.As(err, &pe) {
			t.Errorf("Preset(%q) error = %v; want a *PresetError", tc.preset, err)
			continue
		}
		if pe.Field != tc.field || pe.Name != tc.name || pe.Err.Error() != tc.err || err.Error() != "provider: "+tc.name+": "+tc.err {
			t.Errorf("Preset(%q): Field %q, Name %q, Err %q, Error() %q; want %q, %q, %q", tc.preset, pe.Field, pe.Name, pe.Err, err, tc.field, tc.name, tc.err)
		}
	}
}

func TestPreset(t *testing.T) {
	github := provider.PresetOptions{ClientID: presetClientID}
	cases := []struct {
		name                                  string
		preset                                string
		opts                                  provider.PresetOptions
		issuer, auth, token, revoke, userinfo string
		scopes                                []string
		params                                url.Values
		flavor                                provider.Flavor
	}{
		{name: "generic, issuer", opts: issuerOpts,
			issuer: "http://127.0.0.1:9090", scopes: []string{"openid", "profile"}, params: url.Values{}},
		{name: "generic, endpoints only: no default scopes",
			opts: provider.PresetOptions{Endpoints: provider.Endpoints{AuthURL: "https://idp.example/a", TokenURL: "https://idp.example/t"}, Scopes: []string{}},
			auth: "https://idp.example/a", token: "https://idp.example/t", params: url.Values{}},
		{name: "github.com", preset: provider.PresetGitHub, opts: github,
			auth: "https://github.com/login/oauth/authorize", token: "https://github.com/login/oauth/access_token",
			revoke: "https://api.github.com/applications/Iv1.0123456789abcdef/grant", userinfo: "https://api.github.com/user",
			params: url.Values{}, flavor: provider.FlavorGitHub},
		{name: "GitHub Enterprise Server", preset: provider.PresetGitHub,
			opts: with(github, func(o *provider.PresetOptions) { o.GitHubURL = "https://ghe.example.com/" }),
			auth: "https://ghe.example.com/login/oauth/authorize", token: "https://ghe.example.com/login/oauth/access_token",
			revoke: "https://ghe.example.com/api/v3/applications/Iv1.0123456789abcdef/grant", userinfo: "https://ghe.example.com/api/v3/user",
			params: url.Values{}, flavor: provider.FlavorGitHub},
		{name: "GitHub Enterprise Server, own API URL and token URL", preset: provider.PresetGitHub,
			opts: with(github, func(o *provider.PresetOptions) {
				o.GitHubURL, o.GitHubAPIURL, o.TokenURL, o.Scopes = "https://ghe.example.com", "https://api.ghe.example.com", "https://proxy.example/token", []string{"read:user"}
			}),
			auth: "https://ghe.example.com/login/oauth/authorize", token: "https://proxy.example/token",
			revoke: "https://api.ghe.example.com/applications/Iv1.0123456789abcdef/grant", userinfo: "https://api.ghe.example.com/user",
			scopes: []string{"read:user"}, params: url.Values{}, flavor: provider.FlavorGitHub},
		{name: "google", preset: provider.PresetGoogle, opts: provider.PresetOptions{ClientID: presetClientID},
			issuer: "https://accounts.google.com", scopes: []string{"openid", "email", "profile"},
			params: url.Values{"access_type": {"offline"}, "prompt": {"consent"}}, flavor: provider.FlavorGoogle},
		{name: "google, issuer overridden, prompt removed, audience added (its first value)", preset: provider.PresetGoogle,
			opts: with(issuerOpts, func(o *provider.PresetOptions) {
				o.AuthParams = url.Values{"prompt": {""}, "audience": {"https://api.example", "ignored"}}
			}),
			issuer: "http://127.0.0.1:9090", scopes: []string{"openid", "email", "profile"},
			params: url.Values{"access_type": {"offline"}, "audience": {"https://api.example"}}, flavor: provider.FlavorGoogle},
		{name: "entra", preset: provider.PresetEntra, opts: provider.PresetOptions{EntraTenant: "72f988bf-86f1-41af-91ab-2d7cd011db47"},
			issuer: "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0", scopes: []string{"openid", "profile", "offline_access"},
			params: url.Values{}, flavor: provider.FlavorEntra},
		{name: "entra, own scopes", preset: provider.PresetEntra,
			opts:   provider.PresetOptions{EntraTenant: "organizations", Scopes: []string{"openid", "offline_access", "api://tether/access"}},
			issuer: "https://login.microsoftonline.com/organizations/v2.0", scopes: []string{"openid", "offline_access", "api://tether/access"},
			params: url.Values{}, flavor: provider.FlavorEntra},
		{name: "entra, another cloud's issuer and no tenant", preset: provider.PresetEntra,
			opts:   provider.PresetOptions{Endpoints: provider.Endpoints{Issuer: "https://login.microsoftonline.us/contoso.us/v2.0"}},
			issuer: "https://login.microsoftonline.us/contoso.us/v2.0", scopes: []string{"openid", "profile", "offline_access"},
			params: url.Values{}, flavor: provider.FlavorEntra},
		{name: "oidc", preset: provider.PresetOIDC, opts: with(issuerOpts, func(o *provider.PresetOptions) { o.AuthParams = url.Values{"audience": {"x"}} }),
			issuer: "http://127.0.0.1:9090", scopes: []string{"openid", "profile"}, params: url.Values{"audience": {"x"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.opts.AuthParams.Encode()
			got, err := provider.Preset(tc.preset, tc.opts)
			if err != nil {
				t.Fatalf("Preset: %v", err)
			}
			if got.Issuer != tc.issuer || got.AuthURL != tc.auth || got.TokenURL != tc.token || got.RevokeURL != tc.revoke || got.UserinfoURL != tc.userinfo {
				t.Errorf("endpoints %q %q %q %q %q", got.Issuer, got.AuthURL, got.TokenURL, got.RevokeURL, got.UserinfoURL)
			}
			if !slices.Equal(got.Scopes, tc.scopes) || (got.Scopes == nil) != (tc.scopes == nil) || got.Flavor != tc.flavor || !reflect.DeepEqual(got.AuthParams, tc.params) {
				t.Errorf("scopes %#v, flavor %q, params %v; want %#v, %q, %v", got.Scopes, got.Flavor, got.AuthParams, tc.scopes, tc.flavor, tc.params)
			}
			if got.ClientID != tc.opts.ClientID || got.ClientSecret != "" || got.RedirectURL != "" {
				t.Errorf("client id %q, secret %q, redirect %q; want %q and the rest for the caller", got.ClientID, got.ClientSecret, got.RedirectURL, tc.opts.ClientID)
			}
			if after := tc.opts.AuthParams.Encode(); after != before {
				t.Errorf("Preset changed opts.AuthParams from %q to %q", before, after)
			}
			// Fed its own endpoints and scopes back, Preset gives the same
			// Config: what a caller that stores them (bff.Config) relies on.
			again := tc.opts
			again.Endpoints, again.Scopes = got.Endpoints, got.Scopes
			if got2, err := provider.Preset(tc.preset, again); err != nil || !reflect.DeepEqual(got2, got) {
				t.Errorf("Preset on its own result = %+v, %v; want %+v", got2, err, got)
			}
		})
	}
}
