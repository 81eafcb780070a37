package bff

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/tetherauth/tether/bff/provider"
	"github.com/tetherauth/tether/bff/refresh"
	"github.com/tetherauth/tether/shared/wire"
)

// Config is everything the BFF needs. FromEnv fills it from TETHER_*
// variables; a program that embeds the BFF may fill it directly.
type Config struct {
	// PublicURL is the origin the browser sees, e.g. https://app.example.
	// The redirect URI is PublicURL + /bff/callback. Cookies are Secure
	// unless it is plain-http localhost.
	PublicURL string

	// Provider names a preset: "github", "google", "entra", or "oidc"
	// (generic discovery from Issuer). A preset fills the endpoints, scopes
	// and authorization parameters left empty and selects its quirk
	// handling; explicit values override its endpoints and keep the
	// quirks. Empty: generic, from Issuer or explicit endpoints.
	Provider string
	// GitHubURL and GitHubAPIURL point the github preset at a GitHub
	// Enterprise Server (https://ghe.example and, by default, its /api/v3).
	GitHubURL    string
	GitHubAPIURL string
	// EntraTenant is the entra preset's tenant: the directory (tenant) id,
	// a verified domain, or common, organizations or consumers.
	EntraTenant string
	// AuthParams are extra authorization request parameters (Auth0's
	// audience, say), over the preset's; an empty value removes one of the
	// preset's (prompt=).
	AuthParams url.Values

	// Issuer enables OpenID Connect discovery. AuthURL, TokenURL, RevokeURL
	// and UserinfoURL set or override endpoints.
	Issuer      string
	AuthURL     string
	TokenURL    string
	RevokeURL   string
	UserinfoURL string

	ClientID     string
	ClientSecret string
	Scopes       []string

	// RedisURL selects the vault's Redis; empty starts an in-process
	// miniredis (one replica only).
	RedisURL string
	// VaultKey is the 32-byte AES-256 key for vault records; nil generates
	// one per process (sessions do not survive a restart).
	VaultKey []byte
	// SessionKeys authenticate and encrypt the session cookie. The first
	// signs new cookies; all are accepted, for rotation. Nil generates one.
	SessionKeys [][]byte

	// RefreshBuffer is how long before expiry a token is refreshed; it is
	// capped at half the token's lifetime. Default 5 minutes.
	RefreshBuffer time.Duration
	// SessionMaxAge bounds a session when the provider does not say when
	// its refresh token expires. Default 30 days.
	SessionMaxAge time.Duration
	// ProviderTimeout bounds each call to the provider. Default 10 seconds.
	ProviderTimeout time.Duration
	// RetryAfter is what the BFF advises when the session store is
	// unreachable or a refresh cannot be attempted. Default 5 seconds.
	RetryAfter time.Duration

	// ProbeInterval is how often, while the provider's circuit breaker is
	// open, one refresh in the whole deployment is let through as a probe
	// (plus up to a tenth of jitter); the Retry-After of provider_unavailable
	// is the time to that probe. Default 2 seconds.
	ProbeInterval time.Duration
	// RetryAfterMax caps every Retry-After the BFF sends, whatever the
	// provider asked for. Default 30 seconds.
	RetryAfterMax time.Duration

	// WebDir, when set, is served at / for everything outside /bff/
	// (the demo page and the WASM client).
	WebDir string

	Logger *slog.Logger
	// Now is the clock; tests move it. Default time.Now.
	Now func() time.Time
}

// Defaults for Config's zero values.
const (
	DefaultRefreshBuffer   = 5 * time.Minute
	DefaultSessionMaxAge   = 30 * 24 * time.Hour
	DefaultProviderTimeout = 10 * time.Second
	DefaultRetryAfter      = 5 * time.Second
	DefaultProbeInterval   = refresh.DefaultProbeInterval
	DefaultRetryAfterMax   = refresh.DefaultRetryAfterMax
)

// ConfigError is a configuration mistake; Var names the variable.
type ConfigError struct {
	Var string
	Err error
}

func (e *ConfigError) Error() string { return fmt.Sprintf("bff: config %s: %v", e.Var, e.Err) }

// Unwrap returns the underlying problem.
func (e *ConfigError) Unwrap() error { return e.Err }

// FromEnv reads the TETHER_* variables through getenv (os.Getenv in a
// program, a map in tests). It checks every value it reads and names the
// variable in the error.
func FromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		Provider:     getenv("TETHER_PROVIDER"),
		GitHubURL:    getenv("TETHER_GITHUB_URL"),
		GitHubAPIURL: getenv("TETHER_GITHUB_API_URL"),
		EntraTenant:  getenv("TETHER_ENTRA_TENANT"),
		PublicURL:    getenv("TETHER_PUBLIC_URL"),
		Issuer:       getenv("TETHER_ISSUER"),
		AuthURL:      getenv("TETHER_AUTH_URL"),
		TokenURL:     getenv("TETHER_TOKEN_URL"),
		RevokeURL:    getenv("TETHER_REVOKE_URL"),
		UserinfoURL:  getenv("TETHER_USERINFO_URL"),
		ClientID:     getenv("TETHER_CLIENT_ID"),
		ClientSecret: getenv("TETHER_CLIENT_SECRET"),
		RedisURL:     getenv("TETHER_REDIS_URL"),
		WebDir:       getenv("TETHER_WEB_DIR"),
	}
	if s := getenv("TETHER_SCOPES"); s != "" {
		c.Scopes = strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' })
	}
	var err error
	if v := getenv("TETHER_AUTH_PARAMS"); v != "" {
		if c.AuthParams, err = url.ParseQuery(v); err != nil {
			return c, &ConfigError{"TETHER_AUTH_PARAMS", fmt.Errorf("is not a query string like audience=https%%3A%%2F%%2Fapi.example&prompt=login: %w", err)}
		}
	}
	durations := []struct {
		name string
		dst  *time.Duration
	}{
		{"TETHER_REFRESH_BUFFER", &c.RefreshBuffer},
		{"TETHER_SESSION_MAX_AGE", &c.SessionMaxAge},
		{"TETHER_PROVIDER_TIMEOUT", &c.ProviderTimeout},
		{"TETHER_RETRY_AFTER", &c.RetryAfter},
		{"TETHER_PROBE_INTERVAL", &c.ProbeInterval},
		{"TETHER_RETRY_AFTER_MAX", &c.RetryAfterMax},
	}
	for _, d := range durations {
		if *d.dst, err = parseDuration(getenv(d.name)); err != nil {
			return c, &ConfigError{d.name, err}
		}
	}
	if v := getenv("TETHER_VAULT_KEY"); v != "" {
		if c.VaultKey, err = decodeKey(v); err != nil {
			return c, &ConfigError{"TETHER_VAULT_KEY", err}
		}
	}
	if v := getenv("TETHER_SESSION_KEYS"); v != "" {
		for _, k := range strings.Split(v, ",") {
			key, err := decodeKey(strings.TrimSpace(k))
			if err != nil {
				return c, &ConfigError{"TETHER_SESSION_KEYS", err}
			}
			c.SessionKeys = append(c.SessionKeys, key)
		}
	}
	return c, c.validate()
}

// parseDuration accepts Go durations ("90s", "5m", "720h") and plain seconds.
func parseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		var secs int64
		if _, err2 := fmt.Sscanf(s, "%d", &secs); err2 != nil || fmt.Sprint(secs) != s {
			return 0, fmt.Errorf("%q is not a duration like 90s, 5m or 720h", s)
		}
		d = time.Duration(secs) * time.Second
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return d, nil
}

// decodeKey reads a 32-byte key written in base64 (standard or URL
// alphabet, padded or not).
func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != 32 {
				return nil, fmt.Errorf("key is %d bytes; want 32 (make one with: openssl rand -base64 32)", len(b))
			}
			return b, nil
		}
	}
	return nil, errors.New("key is not base64 (make one with: openssl rand -base64 32)")
}

// validate checks a Config and fills defaults.
func (c *Config) validate() error {
	if c.PublicURL == "" {
		return &ConfigError{"TETHER_PUBLIC_URL", errors.New("is empty; set it to the origin the browser uses, e.g. http://127.0.0.1:8080")}
	}
	u, err := url.Parse(c.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return &ConfigError{"TETHER_PUBLIC_URL", fmt.Errorf("%q is not an origin like https://app.example", c.PublicURL)}
	}
	c.PublicURL = strings.TrimSuffix(c.PublicURL, "/")
	if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
		return &ConfigError{"TETHER_PUBLIC_URL", fmt.Errorf("%q is plain http on a non-loopback host; session cookies need https", c.PublicURL)}
	}
	if c.ClientID == "" {
		return &ConfigError{"TETHER_CLIENT_ID", errors.New("is empty")}
	}
	if err := c.applyPreset(); err != nil {
		return err
	}
	if c.Issuer == "" && (c.AuthURL == "" || c.TokenURL == "") {
		return &ConfigError{"TETHER_ISSUER", errors.New("is empty, and TETHER_AUTH_URL and TETHER_TOKEN_URL are not both set")}
	}
	urls := []struct{ name, v string }{
		{"TETHER_ISSUER", c.Issuer}, {"TETHER_AUTH_URL", c.AuthURL}, {"TETHER_TOKEN_URL", c.TokenURL},
		{"TETHER_REVOKE_URL", c.RevokeURL}, {"TETHER_USERINFO_URL", c.UserinfoURL},
	}
	for _, x := range urls {
		if x.v == "" {
			continue
		}
		if pu, err := url.Parse(x.v); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return &ConfigError{x.name, fmt.Errorf("%q is not an absolute http(s) URL", x.v)}
		}
	}
	if len(c.Scopes) == 0 {
		c.Scopes = []string{"openid", "profile"}
		if c.Issuer == "" {
			c.Scopes = nil
		}
	}
	if c.VaultKey != nil && len(c.VaultKey) != 32 {
		return &ConfigError{"TETHER_VAULT_KEY", fmt.Errorf("key is %d bytes; want 32", len(c.VaultKey))}
	}
	for _, k := range c.SessionKeys {
		if len(k) != 32 {
			return &ConfigError{"TETHER_SESSION_KEYS", fmt.Errorf("a key is %d bytes; want 32", len(k))}
		}
	}
	if c.RefreshBuffer == 0 {
		c.RefreshBuffer = DefaultRefreshBuffer
	}
	if c.SessionMaxAge == 0 {
		c.SessionMaxAge = DefaultSessionMaxAge
	}
	if c.ProviderTimeout == 0 {
		c.ProviderTimeout = DefaultProviderTimeout
	}
	if c.RetryAfter == 0 {
		c.RetryAfter = DefaultRetryAfter
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = DefaultProbeInterval
	}
	if c.RetryAfterMax == 0 {
		c.RetryAfterMax = DefaultRetryAfterMax
	}
	if c.RetryAfterMax < time.Second {
		return &ConfigError{"TETHER_RETRY_AFTER_MAX", fmt.Errorf("%v is less than a second (Retry-After is in whole seconds)", c.RetryAfterMax)}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// secureCookies reports whether cookies must be Secure: everywhere but
// plain-http loopback.
func (c *Config) secureCookies() bool {
	return !strings.HasPrefix(c.PublicURL, "http://")
}

// isLoopbackHost reports whether h is localhost or a loopback IP address
// (not a DNS name like 127.attacker.example).
func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Presets, the values of TETHER_PROVIDER.
const (
	PresetGitHub = "github"
	PresetGoogle = "google"
	PresetEntra  = "entra"
	PresetOIDC   = "oidc"
)

// entraTenant is a tenant id, a domain, or common/organizations/consumers.
var entraTenant = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]*$`)

// preset returns the provider skeleton c.Provider names (endpoints,
// scopes, authorization parameters, quirks); the zero Config for none.
func (c *Config) preset() provider.Config {
	switch c.Provider {
	case PresetGitHub:
		return provider.GitHub(c.GitHubURL, c.GitHubAPIURL, c.ClientID)
	case PresetGoogle:
		return provider.Google()
	case PresetEntra:
		return provider.Entra(c.EntraTenant)
	}
	return provider.Config{}
}

// applyPreset checks the preset variables and fills what the preset knows
// into the endpoints and scopes left empty.
func (c *Config) applyPreset() error {
	if c.Provider != PresetGitHub {
		for _, v := range []struct{ name, value string }{{"TETHER_GITHUB_URL", c.GitHubURL}, {"TETHER_GITHUB_API_URL", c.GitHubAPIURL}} {
			if v.value != "" {
				return &ConfigError{v.name, errors.New("is set, but TETHER_PROVIDER is not github")}
			}
		}
	}
	if c.Provider != PresetEntra && c.EntraTenant != "" {
		return &ConfigError{"TETHER_ENTRA_TENANT", errors.New("is set, but TETHER_PROVIDER is not entra")}
	}
	for k := range c.AuthParams {
		if provider.ReservedAuthParam(k) {
			return &ConfigError{"TETHER_AUTH_PARAMS", fmt.Errorf("cannot set %q: Tether sends it (scopes go in TETHER_SCOPES)", k)}
		}
	}
	switch c.Provider {
	case "":
		return nil
	case PresetOIDC:
		if c.Issuer == "" {
			return &ConfigError{"TETHER_ISSUER", errors.New("is empty; TETHER_PROVIDER=oidc discovers everything from it")}
		}
		return nil
	case PresetGitHub:
		if c.Issuer != "" {
			return &ConfigError{"TETHER_ISSUER", errors.New("is set, but GitHub has no OpenID Connect issuer: leave it empty with TETHER_PROVIDER=github")}
		}
		for _, v := range []struct{ name, value string }{{"TETHER_GITHUB_URL", c.GitHubURL}, {"TETHER_GITHUB_API_URL", c.GitHubAPIURL}} {
			if v.value == "" {
				continue
			}
			if u, err := url.Parse(v.value); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
				return &ConfigError{v.name, fmt.Errorf("%q is not a base URL like https://ghe.example.com", v.value)}
			}
		}
	case PresetGoogle:
	case PresetEntra:
		if c.EntraTenant == "" && c.Issuer == "" {
			return &ConfigError{"TETHER_ENTRA_TENANT", errors.New("is empty; set the Directory (tenant) ID, a verified domain, or common, organizations or consumers for a multi-tenant app")}
		}
		if c.EntraTenant != "" && !entraTenant.MatchString(c.EntraTenant) {
			return &ConfigError{"TETHER_ENTRA_TENANT", fmt.Errorf("%q is not a tenant id, a domain, common, organizations or consumers", c.EntraTenant)}
		}
	default:
		return &ConfigError{"TETHER_PROVIDER", fmt.Errorf("%q is not github, google, entra or oidc", c.Provider)}
	}
	p := c.preset()
	fill := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	fill(&c.Issuer, p.Issuer)
	fill(&c.AuthURL, p.AuthURL)
	fill(&c.TokenURL, p.TokenURL)
	fill(&c.RevokeURL, p.RevokeURL)
	fill(&c.UserinfoURL, p.UserinfoURL)
	if len(c.Scopes) == 0 && len(p.Scopes) > 0 {
		c.Scopes = p.Scopes
	}
	return nil
}

// providerVar names the variable to blame when the provider cannot be set
// up: the issuer when discovery was involved, else the preset or the
// token endpoint.
func (c *Config) providerVar() string {
	switch {
	case c.Issuer != "":
		return "TETHER_ISSUER"
	case c.Provider != "":
		return "TETHER_PROVIDER"
	}
	return "TETHER_TOKEN_URL"
}

// providerConfig is what provider.New needs: the endpoints, the preset's
// quirks and its authorization parameters under c.AuthParams.
func (c *Config) providerConfig() provider.Config {
	p := c.preset()
	params := url.Values{}
	for k, vs := range p.AuthParams {
		params[k] = vs
	}
	for k, vs := range c.AuthParams {
		if len(vs) == 0 || strings.TrimSpace(vs[0]) == "" {
			delete(params, k)
		} else {
			params[k] = vs[:1]
		}
	}
	return provider.Config{
		Flavor: p.Flavor, Issuer: c.Issuer, AuthURL: c.AuthURL, TokenURL: c.TokenURL,
		RevokeURL: c.RevokeURL, UserinfoURL: c.UserinfoURL,
		ClientID: c.ClientID, ClientSecret: c.ClientSecret, Scopes: c.Scopes, AuthParams: params,
		RedirectURL: c.PublicURL + wire.PathCallback,
	}
}
