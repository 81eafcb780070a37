package bff

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/provider"
)

// testEnv is a map-backed getenv.
type testEnv map[string]string

func (e testEnv) get(k string) string { return e[k] }

// with returns a copy of e with kv (key, value, key, value...) applied;
// an empty value unsets the key.
func (e testEnv) with(kv ...string) testEnv {
	c := make(testEnv, len(e)+len(kv)/2)
	for k, v := range e {
		c[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(c, kv[i])
		} else {
			c[kv[i]] = kv[i+1]
		}
	}
	return c
}

// testKey is a 32-byte key whose bytes are all b.
func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

const configSecret = "client-secret-never-in-errors"

// minimalEnv is the smallest valid environment.
var minimalEnv = testEnv{
	"TETHER_PUBLIC_URL":    "http://127.0.0.1:8080",
	"TETHER_ISSUER":        "http://127.0.0.1:9090",
	"TETHER_CLIENT_ID":     "tether-dev",
	"TETHER_CLIENT_SECRET": configSecret,
}

// githubEnv is the two-line GitHub configuration, plus the public URL.
var githubEnv = testEnv{
	"TETHER_PUBLIC_URL":    "https://app.example",
	"TETHER_PROVIDER":      "github",
	"TETHER_CLIENT_ID":     "Iv1.0123456789abcdef",
	"TETHER_CLIENT_SECRET": configSecret,
}

func TestFromEnvErrors(t *testing.T) {
	short := base64.StdEncoding.EncodeToString(make([]byte, 16))
	good := base64.StdEncoding.EncodeToString(testKey(1))
	cases := []struct {
		name string
		env  testEnv
		want string // ConfigError.Var
	}{
		{"public URL empty", minimalEnv.with("TETHER_PUBLIC_URL", ""), "TETHER_PUBLIC_URL"},
		{"public URL without scheme", minimalEnv.with("TETHER_PUBLIC_URL", "app.example"), "TETHER_PUBLIC_URL"},
		{"public URL ftp", minimalEnv.with("TETHER_PUBLIC_URL", "ftp://app.example"), "TETHER_PUBLIC_URL"},
		{"public URL with a path", minimalEnv.with("TETHER_PUBLIC_URL", "https://app.example/app"), "TETHER_PUBLIC_URL"},
		{"public URL with a query", minimalEnv.with("TETHER_PUBLIC_URL", "https://app.example?x=1"), "TETHER_PUBLIC_URL"},
		{"public URL with a fragment", minimalEnv.with("TETHER_PUBLIC_URL", "https://app.example#top"), "TETHER_PUBLIC_URL"},
		{"public URL with user info", minimalEnv.with("TETHER_PUBLIC_URL", "https://me:pw@app.example"), "TETHER_PUBLIC_URL"},
		{"public URL plain http", minimalEnv.with("TETHER_PUBLIC_URL", "http://app.example"), "TETHER_PUBLIC_URL"},
		{"public URL plain http, 127. name", minimalEnv.with("TETHER_PUBLIC_URL", "http://127.attacker.example"), "TETHER_PUBLIC_URL"},
		{"public URL plain http, localhost. name", minimalEnv.with("TETHER_PUBLIC_URL", "http://localhost.attacker.example"), "TETHER_PUBLIC_URL"},
		{"client id empty", minimalEnv.with("TETHER_CLIENT_ID", ""), "TETHER_CLIENT_ID"},
		{"no issuer, no endpoints", minimalEnv.with("TETHER_ISSUER", ""), "TETHER_ISSUER"},
		{"no issuer, auth URL only", minimalEnv.with("TETHER_ISSUER", "", "TETHER_AUTH_URL", "https://idp.example/a"), "TETHER_ISSUER"},
		{"no issuer, token URL only", minimalEnv.with("TETHER_ISSUER", "", "TETHER_TOKEN_URL", "https://idp.example/t"), "TETHER_ISSUER"},
		{"issuer not a URL", minimalEnv.with("TETHER_ISSUER", "idp.example"), "TETHER_ISSUER"},
		{"token URL relative", minimalEnv.with("TETHER_TOKEN_URL", "/token"), "TETHER_TOKEN_URL"},
		{"auth URL relative", minimalEnv.with("TETHER_AUTH_URL", "authorize"), "TETHER_AUTH_URL"},
		{"revoke URL ftp", minimalEnv.with("TETHER_REVOKE_URL", "ftp://idp.example/revoke"), "TETHER_REVOKE_URL"},
		{"userinfo URL without host", minimalEnv.with("TETHER_USERINFO_URL", "https:///userinfo"), "TETHER_USERINFO_URL"},
		{"refresh buffer abc", minimalEnv.with("TETHER_REFRESH_BUFFER", "abc"), "TETHER_REFRESH_BUFFER"},
		{"refresh buffer -5s", minimalEnv.with("TETHER_REFRESH_BUFFER", "-5s"), "TETHER_REFRESH_BUFFER"},
		{"refresh buffer -5", minimalEnv.with("TETHER_REFRESH_BUFFER", "-5"), "TETHER_REFRESH_BUFFER"},
		{"refresh buffer 1.5", minimalEnv.with("TETHER_REFRESH_BUFFER", "1.5"), "TETHER_REFRESH_BUFFER"},
		{"refresh buffer 10x", minimalEnv.with("TETHER_REFRESH_BUFFER", "10x"), "TETHER_REFRESH_BUFFER"},
		{"session max age bad", minimalEnv.with("TETHER_SESSION_MAX_AGE", "30d"), "TETHER_SESSION_MAX_AGE"},
		{"provider timeout bad", minimalEnv.with("TETHER_PROVIDER_TIMEOUT", "fast"), "TETHER_PROVIDER_TIMEOUT"},
		{"retry after negative", minimalEnv.with("TETHER_RETRY_AFTER", "-1m"), "TETHER_RETRY_AFTER"},
		{"vault key not base64", minimalEnv.with("TETHER_VAULT_KEY", "not base64!!"), "TETHER_VAULT_KEY"},
		{"vault key 16 bytes", minimalEnv.with("TETHER_VAULT_KEY", short), "TETHER_VAULT_KEY"},
		{"session keys second bad", minimalEnv.with("TETHER_SESSION_KEYS", good+",not base64!!"), "TETHER_SESSION_KEYS"},
		{"session keys second short", minimalEnv.with("TETHER_SESSION_KEYS", good+","+short), "TETHER_SESSION_KEYS"},
		{"session keys trailing comma", minimalEnv.with("TETHER_SESSION_KEYS", good+","), "TETHER_SESSION_KEYS"},
		{"unknown provider", minimalEnv.with("TETHER_PROVIDER", "gitlab"), "TETHER_PROVIDER"},
		{"provider in capitals", minimalEnv.with("TETHER_PROVIDER", "GitHub"), "TETHER_PROVIDER"},
		{"oidc without issuer", minimalEnv.with("TETHER_PROVIDER", "oidc", "TETHER_ISSUER", ""), "TETHER_ISSUER"},
		{"github with an issuer", minimalEnv.with("TETHER_PROVIDER", "github"), "TETHER_ISSUER"},
		{"github URL relative", githubEnv.with("TETHER_GITHUB_URL", "ghe.example.com"), "TETHER_GITHUB_URL"},
		{"github URL with a query", githubEnv.with("TETHER_GITHUB_URL", "https://ghe.example.com?x=1"), "TETHER_GITHUB_URL"},
		{"github API URL ftp", githubEnv.with("TETHER_GITHUB_API_URL", "ftp://ghe.example.com/api/v3"), "TETHER_GITHUB_API_URL"},
		{"github URL without github", minimalEnv.with("TETHER_GITHUB_URL", "https://ghe.example.com"), "TETHER_GITHUB_URL"},
		{"github API URL with google", minimalEnv.with("TETHER_PROVIDER", "google", "TETHER_GITHUB_API_URL", "https://ghe.example.com/api/v3"), "TETHER_GITHUB_API_URL"},
		{"entra without tenant", minimalEnv.with("TETHER_PROVIDER", "entra", "TETHER_ISSUER", ""), "TETHER_ENTRA_TENANT"},
		{"entra tenant with a slash", minimalEnv.with("TETHER_PROVIDER", "entra", "TETHER_ISSUER", "", "TETHER_ENTRA_TENANT", "common/../x"), "TETHER_ENTRA_TENANT"},
		{"entra tenant without entra", minimalEnv.with("TETHER_ENTRA_TENANT", "common"), "TETHER_ENTRA_TENANT"},
		{"auth params not a query", minimalEnv.with("TETHER_AUTH_PARAMS", "a=%zz"), "TETHER_AUTH_PARAMS"},
		{"auth params set state", minimalEnv.with("TETHER_AUTH_PARAMS", "audience=x&state=forged"), "TETHER_AUTH_PARAMS"},
		{"auth params set scope", minimalEnv.with("TETHER_AUTH_PARAMS", "scope=admin"), "TETHER_AUTH_PARAMS"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromEnv(tc.env.get)
			if err == nil {
				t.Fatalf("FromEnv succeeded; want an error naming %s", tc.want)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("FromEnv error %v (%T) is not a *ConfigError", err, err)
			}
			if ce.Var != tc.want {
				t.Errorf("ConfigError.Var = %q; want %q (error: %v)", ce.Var, tc.want, err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "bff: ") {
				t.Errorf("error %q does not start with bff: and name %s", err, tc.want)
			}
			for _, k := range []string{"TETHER_CLIENT_SECRET", "TETHER_VAULT_KEY", "TETHER_SESSION_KEYS"} {
				if v := tc.env[k]; len(v) > 12 && strings.Contains(err.Error(), v) {
					t.Errorf("error %q contains the value of %s", err, k)
				}
			}
		})
	}
}

func TestFromEnvDefaults(t *testing.T) {
	c, err := FromEnv(minimalEnv.get)
	if err != nil {
		t.Fatalf("FromEnv: %v", err)
	}
	if c.RefreshBuffer != 5*time.Minute || c.SessionMaxAge != 720*time.Hour || c.ProviderTimeout != 10*time.Second || c.RetryAfter != 5*time.Second {
		t.Errorf("durations %v %v %v %v; want 5m 720h 10s 5s", c.RefreshBuffer, c.SessionMaxAge, c.ProviderTimeout, c.RetryAfter)
	}
	if !slices.Equal(c.Scopes, []string{"openid", "profile"}) {
		t.Errorf("Scopes = %q; want [openid profile] with an issuer", c.Scopes)
	}
	if c.VaultKey != nil || c.SessionKeys != nil {
		t.Error("keys set without TETHER_VAULT_KEY or TETHER_SESSION_KEYS")
	}
	if c.Logger == nil || c.Now == nil {
		t.Error("Logger or Now left nil")
	}
	if c.PublicURL != "http://127.0.0.1:8080" || c.Issuer != "http://127.0.0.1:9090" || c.ClientID != "tether-dev" || c.ClientSecret != configSecret {
		t.Errorf("Config %+v does not carry the environment", c)
	}
	if c.secureCookies() {
		t.Error("secureCookies() = true for plain-http loopback")
	}

	// Plain OAuth 2.0 (no issuer) gets no default scopes.
	c, err = FromEnv(minimalEnv.with("TETHER_ISSUER", "", "TETHER_AUTH_URL", "https://idp.example/a", "TETHER_TOKEN_URL", "https://idp.example/t").get)
	if err != nil {
		t.Fatalf("FromEnv with endpoints: %v", err)
	}
	if c.Scopes != nil {
		t.Errorf("Scopes = %q without an issuer; want none", c.Scopes)
	}
}

func TestFromEnvValues(t *testing.T) {
	k1, k2, k3 := testKey(1), testKey(2), testKey(3)
	env := minimalEnv.with(
		"TETHER_PUBLIC_URL", "https://app.example/",
		"TETHER_SCOPES", "openid profile,email, offline_access,,",
		"TETHER_REFRESH_BUFFER", "90",
		"TETHER_SESSION_MAX_AGE", "2m",
		"TETHER_PROVIDER_TIMEOUT", "1m30s",
		"TETHER_RETRY_AFTER", "0",
		"TETHER_VAULT_KEY", base64.RawURLEncoding.EncodeToString(k3),
		"TETHER_SESSION_KEYS", base64.StdEncoding.EncodeToString(k1)+", "+base64.RawStdEncoding.EncodeToString(k2)+","+base64.URLEncoding.EncodeToString(k3),
		"TETHER_REDIS_URL", "redis://127.0.0.1:6379/0",
		"TETHER_WEB_DIR", "/srv/web",
		"TETHER_REVOKE_URL", "https://idp.example/revoke",
		"TETHER_USERINFO_URL", "https://idp.example/userinfo",
	)
	c, err := FromEnv(env.get)
	if err != nil {
		t.Fatalf("FromEnv: %v", err)
	}
	if c.PublicURL != "https://app.example" {
		t.Errorf("PublicURL = %q; want the trailing slash trimmed", c.PublicURL)
	}
	if !c.secureCookies() {
		t.Error("secureCookies() = false for https")
	}
	if want := []string{"openid", "profile", "email", "offline_access"}; !slices.Equal(c.Scopes, want) {
		t.Errorf("Scopes = %q; want %q", c.Scopes, want)
	}
	if c.RefreshBuffer != 90*time.Second || c.SessionMaxAge != 2*time.Minute || c.ProviderTimeout != 90*time.Second {
		t.Errorf("durations %v %v %v; want 1m30s 2m 1m30s", c.RefreshBuffer, c.SessionMaxAge, c.ProviderTimeout)
	}
	if c.RetryAfter != DefaultRetryAfter {
		t.Errorf("RetryAfter = %v for \"0\"; want the default %v", c.RetryAfter, DefaultRetryAfter)
	}
	if !bytes.Equal(c.VaultKey, k3) {
		t.Errorf("VaultKey = %x", c.VaultKey)
	}
	if len(c.SessionKeys) != 3 || !bytes.Equal(c.SessionKeys[0], k1) || !bytes.Equal(c.SessionKeys[1], k2) || !bytes.Equal(c.SessionKeys[2], k3) {
		t.Errorf("SessionKeys = %x; want k1, k2, k3 in order", c.SessionKeys)
	}
	if c.RedisURL != "redis://127.0.0.1:6379/0" || c.WebDir != "/srv/web" || c.RevokeURL != "https://idp.example/revoke" || c.UserinfoURL != "https://idp.example/userinfo" {
		t.Errorf("Config %+v does not carry the environment", c)
	}
}

func TestFromEnvLoopbackPublicURLs(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:8080", "http://localhost:3000", "http://[::1]:8080", "http://127.0.0.2", "https://app.example"} {
		t.Run(u, func(t *testing.T) {
			if _, err := FromEnv(minimalEnv.with("TETHER_PUBLIC_URL", u).get); err != nil {
				t.Errorf("FromEnv with TETHER_PUBLIC_URL=%s: %v", u, err)
			}
		})
	}
}

func TestFromEnvPresets(t *testing.T) {
	cases := []struct {
		name                                  string
		env                                   testEnv
		issuer, auth, token, revoke, userinfo string
		scopes                                []string
		params                                url.Values
		flavor                                provider.Flavor
	}{
		{name: "github.com", env: githubEnv,
			auth: "https://github.com/login/oauth/authorize", token: "https://github.com/login/oauth/access_token",
			revoke: "https://api.github.com/applications/Iv1.0123456789abcdef/grant", userinfo: "https://api.github.com/user",
			params: url.Values{}, flavor: provider.FlavorGitHub},
		{name: "GitHub Enterprise Server", env: githubEnv.with("TETHER_GITHUB_URL", "https://ghe.example.com/"),
			auth: "https://ghe.example.com/login/oauth/authorize", token: "https://ghe.example.com/login/oauth/access_token",
			revoke: "https://ghe.example.com/api/v3/applications/Iv1.0123456789abcdef/grant", userinfo: "https://ghe.example.com/api/v3/user",
			params: url.Values{}, flavor: provider.FlavorGitHub},
		{name: "GitHub Enterprise Server, own API URL and token URL", env: githubEnv.with("TETHER_GITHUB_URL", "https://ghe.example.com",
			"TETHER_GITHUB_API_URL", "https://api.ghe.example.com", "TETHER_TOKEN_URL", "https://proxy.example/token", "TETHER_SCOPES", "read:user"),
			auth: "https://ghe.example.com/login/oauth/authorize", token: "https://proxy.example/token",
			revoke: "https://api.ghe.example.com/applications/Iv1.0123456789abcdef/grant", userinfo: "https://api.ghe.example.com/user",
			scopes: []string{"read:user"}, params: url.Values{}, flavor: provider.FlavorGitHub},
		{name: "google", env: minimalEnv.with("TETHER_PROVIDER", "google", "TETHER_ISSUER", ""),
			issuer: "https://accounts.google.com", scopes: []string{"openid", "email", "profile"},
			params: url.Values{"access_type": {"offline"}, "prompt": {"consent"}}, flavor: provider.FlavorGoogle},
		{name: "google, issuer overridden, prompt removed, audience added",
			env:    minimalEnv.with("TETHER_PROVIDER", "google", "TETHER_AUTH_PARAMS", "prompt=&audience=https%3A%2F%2Fapi.example"),
			issuer: "http://127.0.0.1:9090", scopes: []string{"openid", "email", "profile"},
			params: url.Values{"access_type": {"offline"}, "audience": {"https://api.example"}}, flavor: provider.FlavorGoogle},
		{name: "entra", env: minimalEnv.with("TETHER_PROVIDER", "entra", "TETHER_ISSUER", "", "TETHER_ENTRA_TENANT", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
			issuer: "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0", scopes: []string{"openid", "profile", "offline_access"},
			params: url.Values{}, flavor: provider.FlavorEntra},
		{name: "entra, own scopes", env: minimalEnv.with("TETHER_PROVIDER", "entra", "TETHER_ISSUER", "", "TETHER_ENTRA_TENANT", "organizations",
			"TETHER_SCOPES", "openid offline_access api://tether/access"),
			issuer: "https://login.microsoftonline.com/organizations/v2.0", scopes: []string{"openid", "offline_access", "api://tether/access"},
			params: url.Values{}, flavor: provider.FlavorEntra},
		{name: "oidc", env: minimalEnv.with("TETHER_PROVIDER", "oidc", "TETHER_AUTH_PARAMS", "audience=x"),
			issuer: "http://127.0.0.1:9090", scopes: []string{"openid", "profile"}, params: url.Values{"audience": {"x"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := FromEnv(tc.env.get)
			if err != nil {
				t.Fatalf("FromEnv: %v", err)
			}
			// validate runs again in New: it must not change anything.
			again := c
			if err := again.validate(); err != nil || again.Issuer != c.Issuer || again.AuthURL != c.AuthURL || !slices.Equal(again.Scopes, c.Scopes) {
				t.Errorf("validate twice = %v, %+v", err, again)
			}
			got := c.providerConfig()
			if got.Issuer != tc.issuer || got.AuthURL != tc.auth || got.TokenURL != tc.token || got.RevokeURL != tc.revoke || got.UserinfoURL != tc.userinfo {
				t.Errorf("endpoints %q %q %q %q %q", got.Issuer, got.AuthURL, got.TokenURL, got.RevokeURL, got.UserinfoURL)
			}
			if !slices.Equal(got.Scopes, tc.scopes) || got.Flavor != tc.flavor || !reflect.DeepEqual(got.AuthParams, tc.params) {
				t.Errorf("scopes %q, flavor %q, params %v; want %q, %q, %v", got.Scopes, got.Flavor, got.AuthParams, tc.scopes, tc.flavor, tc.params)
			}
			if got.RedirectURL != c.PublicURL+"/bff/callback" || got.ClientSecret != configSecret {
				t.Errorf("redirect %q or secret wrong", got.RedirectURL)
			}
		})
	}
}

// TestPresetVars: every field provider.Preset can name in an error (and
// the preset's name) maps to a variable that FromEnv reads.
func TestPresetVars(t *testing.T) {
	read := map[string]bool{}
	if _, err := FromEnv(func(k string) string { read[k] = true; return minimalEnv[k] }); err != nil {
		t.Fatalf("FromEnv: %v", err)
	}
	fields := []string{"Preset"}
	for _, f := range reflect.VisibleFields(reflect.TypeFor[provider.PresetOptions]()) {
		if !f.Anonymous && f.Name != "FieldNames" {
			fields = append(fields, f.Name)
		}
	}
	if len(fields) != len(presetVars) {
		t.Errorf("presetVars has %d entries for %d fields %q", len(presetVars), len(fields), fields)
	}
	for _, f := range fields {
		if v, ok := presetVars[f]; !ok || !read[v] {
			t.Errorf("PresetOptions field %s: variable %q, read by FromEnv: %v", f, v, read[v])
		}
	}
}
