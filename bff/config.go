package bff

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"
)

// Config is everything the BFF needs. FromEnv fills it from TETHER_*
// variables; a program that embeds the BFF may fill it directly.
type Config struct {
	// PublicURL is the origin the browser sees, e.g. https://app.example.
	// The redirect URI is PublicURL + /bff/callback. Cookies are Secure
	// unless it is plain-http localhost.
	PublicURL string

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
	// RetryAfter is what the BFF advises when the provider is down and the
	// provider gave no Retry-After itself. Default 5 seconds.
	RetryAfter time.Duration

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
	durations := []struct {
		name string
		dst  *time.Duration
	}{
		{"TETHER_REFRESH_BUFFER", &c.RefreshBuffer},
		{"TETHER_SESSION_MAX_AGE", &c.SessionMaxAge},
		{"TETHER_PROVIDER_TIMEOUT", &c.ProviderTimeout},
		{"TETHER_RETRY_AFTER", &c.RetryAfter},
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
