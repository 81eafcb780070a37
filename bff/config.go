package bff

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tetherauth/tether/bff/provider"
	"github.com/tetherauth/tether/bff/refresh"
)

// Config is everything the BFF needs. FromEnv fills it from TETHER_*
// variables; a program that embeds the BFF may fill it directly.
type Config struct {
	// PublicURL is the origin the browser sees, e.g. https://app.example.
	// The redirect URI is PublicURL + BasePath + /callback. Cookies are
	// Secure unless it is plain-http localhost.
	PublicURL string
	// BasePath is where the BFF's routes live, e.g. /auth. Default /bff
	// (wire.BasePath). The browser client is started with the same path.
	BasePath string

	// Provider names a preset (see provider.Preset): "github", "google",
	// "entra", or "oidc" (generic discovery from Issuer). A preset fills
	// the endpoints, scopes and authorization parameters left empty and
	// selects its quirk handling; explicit values override its endpoints
	// and keep the quirks. Empty: generic, from Issuer or explicit
	// endpoints.
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

	// Endpoints: Issuer enables OpenID Connect discovery; AuthURL,
	// TokenURL, RevokeURL and UserinfoURL set or override endpoints.
	provider.Endpoints

	ClientID     string
	ClientSecret string
	Scopes       []string

	// RedisURL selects the vault's Redis; empty starts an in-process
	// miniredis (one replica only).
	RedisURL string
	// VaultKey is the 32-byte AES-256 key for vault records; nil generates
	// one per process (sessions do not survive a restart).
	VaultKey []byte
	// VaultPreviousKeys open records but seal none: the keys a rotation
	// replaces (TETHER_VAULT_KEY=new,old).
	VaultPreviousKeys [][]byte
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

	// ForceMinAge: a forced refresh ({"force":true}) of a token that a
	// forced refresh issued less than min(ForceMinAge, a quarter of its
	// lifetime) ago is answered with that token, without calling the
	// provider. Default 5 seconds (TETHER_FORCE_MIN_AGE).
	ForceMinAge time.Duration
	// ForceRate forced refreshes per ForcePer reach the provider per
	// session, ForceBurst at once; past that, 429 too_many_refreshes.
	// Defaults 6, a minute and 3 (TETHER_FORCE_RATE=6/m,
	// TETHER_FORCE_BURST=3).
	ForceRate  int
	ForcePer   time.Duration
	ForceBurst int
	// SessionIdle ends a session unused that long: the next token request
	// answers reconnect_required/expired. Default 14 days; negative turns
	// it off (TETHER_SESSION_IDLE=0).
	SessionIdle time.Duration

	// The live event stream, GET /bff/events (events.go):
	// EventsHeartbeat is the time between heartbeats (default 25 s);
	// EventsRetry what a stream advises the browser to wait before it
	// reconnects (5 s, plus up to half again of jitter); EventsPerSession
	// bounds one session's streams on a replica (4), EventsMaxStreams a
	// replica's (10,000).
	EventsHeartbeat  time.Duration
	EventsRetry      time.Duration
	EventsPerSession int
	EventsMaxStreams int

	// WebDir, when set, is served at / for everything outside /bff/
	// (the demo page and the WASM client, or a built single-page app).
	WebDir string
	// WebFallback, with WebDir, is the page (a path in WebDir, such as
	// index.html) served with status 200 for a single-page app's routes:
	// a GET that accepts text/html, of a path with no file behind it and
	// no extension in its last segment, outside /bff/, /healthz, /readyz
	// and /metrics. Empty: such paths are 404s.
	WebFallback string

	// APIOrigins are the APIs' origins (scheme://host[:port]): the page
	// calls them (the client's apiOrigins), so its Content-Security-Policy
	// allows fetches to them besides this origin (connect-src); and
	// Client sends the user's access token to them, and only to them,
	// from server-side code.
	APIOrigins []string
	// CSP, when set, replaces the page's whole Content-Security-Policy.
	CSP string
	// ExtensionOrigins are browser extensions' origins
	// (chrome-extension://<id>, moz-extension://<uuid>) that a login's
	// return_to may lead back to: exactly such an origin followed by a
	// path (see cleanExtensionReturnTo). Empty: return_to is a path on
	// this site only.
	ExtensionOrigins []string

	// Proxy mode (proxyconfig.go). APIRoutes are the APIs the BFF calls
	// for the page at /bff/api/<name>/…, with the session's access token;
	// none: no proxy. APITimeout bounds connecting to an upstream and its
	// response headers (default 30 s); APIStreamTimeout a whole exchange
	// once its request is in, streams and WebSockets included (1 h).
	// APIMaxBody bounds a request body (10 MiB); bodies up to APIRetryBody
	// (64 KiB) are kept to send again after an upstream 401 and a refresh.
	// APIForwarded sets X-Forwarded-For/-Host/-Proto upstream.
	// APISessionCache is how long a replica reuses a session's record for
	// proxied calls (1 s; negative: never, every call reads the vault).
	// TokenEndpointOff turns POST /bff/token off (404): no access token
	// ever reaches the browser.
	APIRoutes        []APIRoute
	APITimeout       time.Duration
	APIStreamTimeout time.Duration
	APIMaxBody       int64
	APIRetryBody     int64
	APIForwarded     bool
	APISessionCache  time.Duration
	TokenEndpointOff bool

	Logger *slog.Logger
	// Now is the clock; tests move it. Default time.Now.
	Now func() time.Time

	// resolved is the provider configuration validate worked out from
	// the preset and the fields above; providerConfig completes it.
	resolved provider.Config
}

// Defaults for Config's zero values. Those the refresh engine also has
// are its own, so that the BFF and a Refresher built directly agree.
const (
	DefaultRefreshBuffer   = refresh.DefaultBuffer
	DefaultSessionMaxAge   = refresh.DefaultSessionMaxAge
	DefaultProviderTimeout = refresh.DefaultProviderTimeout
	DefaultRetryAfter      = refresh.DefaultRetryAfter
	DefaultProbeInterval   = refresh.DefaultProbeInterval
	DefaultRetryAfterMax   = refresh.DefaultRetryAfterMax
	DefaultForceMinAge     = refresh.DefaultForceMinAge
	DefaultForceRate       = int(time.Minute / refresh.DefaultForceEvery) // a minute
	DefaultForceBurst      = refresh.DefaultForceBurst
	DefaultSessionIdle     = 14 * 24 * time.Hour
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
		BasePath:     getenv("TETHER_BASE_PATH"),
		Endpoints: provider.Endpoints{
			Issuer:      getenv("TETHER_ISSUER"),
			AuthURL:     getenv("TETHER_AUTH_URL"),
			TokenURL:    getenv("TETHER_TOKEN_URL"),
			RevokeURL:   getenv("TETHER_REVOKE_URL"),
			UserinfoURL: getenv("TETHER_USERINFO_URL"),
		},
		ClientID:     getenv("TETHER_CLIENT_ID"),
		ClientSecret: getenv("TETHER_CLIENT_SECRET"),
		RedisURL:     getenv("TETHER_REDIS_URL"),
		WebDir:       getenv("TETHER_WEB_DIR"),
		WebFallback:  getenv("TETHER_WEB_FALLBACK"),
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
	if c.ForceMinAge, err = parseDuration(getenv("TETHER_FORCE_MIN_AGE")); err != nil {
		return c, &ConfigError{"TETHER_FORCE_MIN_AGE", err}
	}
	if v := getenv("TETHER_FORCE_RATE"); v != "" {
		if c.ForceRate, c.ForcePer, err = parseRate(v); err != nil {
			return c, &ConfigError{"TETHER_FORCE_RATE", err}
		}
	}
	if v := getenv("TETHER_FORCE_BURST"); v != "" {
		if c.ForceBurst, err = strconv.Atoi(v); err != nil || c.ForceBurst < 1 {
			return c, &ConfigError{"TETHER_FORCE_BURST", fmt.Errorf("%q is not a whole number of at least 1", v)}
		}
	}
	if v := getenv("TETHER_SESSION_IDLE"); v != "" {
		if c.SessionIdle, err = parseDuration(v); err != nil {
			return c, &ConfigError{"TETHER_SESSION_IDLE", err}
		}
		if c.SessionIdle == 0 {
			c.SessionIdle = -1 // "0": no idle timeout
		}
	}
	if err := apiFromEnv(getenv, &c); err != nil {
		return c, err
	}
	if v := getenv("TETHER_VAULT_KEY"); v != "" {
		// A list, like TETHER_SESSION_KEYS: the first seals, all open.
		for i, k := range strings.Split(v, ",") {
			key, err := decodeKey(strings.TrimSpace(k))
			if err != nil {
				return c, &ConfigError{"TETHER_VAULT_KEY", err}
			}
			if i == 0 {
				c.VaultKey = key
			} else {
				c.VaultPreviousKeys = append(c.VaultPreviousKeys, key)
			}
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
	if v := getenv("TETHER_API_ORIGINS"); v != "" {
		c.APIOrigins = strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' })
	}
	c.CSP = strings.TrimSpace(getenv("TETHER_CSP"))
	if v := getenv("TETHER_EXTENSION_ORIGINS"); v != "" {
		c.ExtensionOrigins = strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' })
	}
	return c, c.validate()
}

// parseRate reads "N/unit": N a whole number, unit s, m, h or a duration
// ("6/m", "100/h", "1/30s").
func parseRate(s string) (int, time.Duration, error) {
	bad := fmt.Errorf("%q is not a rate like 6/m, 100/h or 1/30s", s)
	ns, unit, ok := strings.Cut(s, "/")
	n, err := strconv.Atoi(ns)
	if !ok || err != nil || n < 1 {
		return 0, 0, bad
	}
	per := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour}[unit]
	if per == 0 {
		if per, err = time.ParseDuration(unit); err != nil || per <= 0 {
			return 0, 0, bad
		}
	}
	if per/time.Duration(n) < time.Millisecond {
		return 0, 0, fmt.Errorf("%q is more than one a millisecond", s)
	}
	return n, per, nil
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
	if err := c.checkBasePath(); err != nil {
		return err
	}
	if err := c.checkAPIOrigins(); err != nil {
		return err
	}
	if c.ClientID == "" {
		return &ConfigError{"TETHER_CLIENT_ID", errors.New("is empty")}
	}
	pc, err := provider.Preset(c.Provider, provider.PresetOptions{
		Endpoints: c.Endpoints, Scopes: c.Scopes, AuthParams: c.AuthParams, ClientID: c.ClientID,
		GitHubURL: c.GitHubURL, GitHubAPIURL: c.GitHubAPIURL, EntraTenant: c.EntraTenant,
		FieldNames: presetVars,
	})
	if err != nil {
		var pe *provider.PresetError
		if errors.As(err, &pe) {
			return &ConfigError{pe.Name, pe.Err}
		}
		return &ConfigError{"TETHER_PROVIDER", err}
	}
	c.Endpoints, c.Scopes, c.resolved = pc.Endpoints, pc.Scopes, pc
	if c.VaultKey != nil && len(c.VaultKey) != 32 {
		return &ConfigError{"TETHER_VAULT_KEY", fmt.Errorf("key is %d bytes; want 32", len(c.VaultKey))}
	}
	for _, k := range c.VaultPreviousKeys {
		if c.VaultKey == nil {
			return &ConfigError{"TETHER_VAULT_KEY", errors.New("previous keys are set without a current key")}
		}
		if len(k) != 32 {
			return &ConfigError{"TETHER_VAULT_KEY", fmt.Errorf("a previous key is %d bytes; want 32", len(k))}
		}
	}
	for _, k := range c.SessionKeys {
		if len(k) != 32 {
			return &ConfigError{"TETHER_SESSION_KEYS", fmt.Errorf("a key is %d bytes; want 32", len(k))}
		}
	}
	for _, o := range c.APIOrigins {
		if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.ContainsAny(o, " ;,'\"") {
			return &ConfigError{"TETHER_API_ORIGINS", fmt.Errorf("%q is not an origin like https://api.example", o)}
		}
	}
	for _, r := range c.CSP {
		if r < 0x20 || r == 0x7f {
			return &ConfigError{"TETHER_CSP", errors.New("has a control character; write the policy on one line")}
		}
	}
	for _, o := range c.ExtensionOrigins {
		if err := checkExtensionOrigin(o); err != nil {
			return &ConfigError{"TETHER_EXTENSION_ORIGINS", err}
		}
	}
	if c.WebFallback != "" {
		if c.WebDir == "" {
			return &ConfigError{"TETHER_WEB_FALLBACK", errors.New("needs TETHER_WEB_DIR, the directory it is in")}
		}
		name := filepath.ToSlash(c.WebFallback)
		if !fs.ValidPath(name) || strings.HasPrefix(name, ".") || strings.Contains(name, "/.") || path.Ext(name) != ".html" {
			return &ConfigError{"TETHER_WEB_FALLBACK", fmt.Errorf("%q is not an .html file's path inside TETHER_WEB_DIR, like index.html", c.WebFallback)}
		}
		if info, err := os.Stat(filepath.Join(c.WebDir, filepath.FromSlash(name))); err != nil || !info.Mode().IsRegular() {
			return &ConfigError{"TETHER_WEB_FALLBACK", fmt.Errorf("%s is not a file in TETHER_WEB_DIR %s", name, c.WebDir)}
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
	if c.ForceMinAge == 0 {
		c.ForceMinAge = DefaultForceMinAge
	}
	if c.ForceRate == 0 {
		c.ForceRate = DefaultForceRate
	}
	if c.ForcePer == 0 {
		c.ForcePer = time.Minute
	}
	if c.ForceBurst == 0 {
		c.ForceBurst = DefaultForceBurst
	}
	if c.ForceRate < 1 || c.ForcePer/time.Duration(max(c.ForceRate, 1)) < time.Millisecond || c.ForceBurst < 1 || c.ForceMinAge < 0 {
		return &ConfigError{"TETHER_FORCE_RATE", fmt.Errorf("%d per %v, burst %d, min age %v is not a usable bound", c.ForceRate, c.ForcePer, c.ForceBurst, c.ForceMinAge)}
	}
	if c.SessionIdle == 0 {
		c.SessionIdle = DefaultSessionIdle
	}
	if err := c.validateAPI(); err != nil {
		return err
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// forceEvery is the interval between forced refreshes of a session's
// bucket; 0 (the engine's default) when unset.
func (c *Config) forceEvery() time.Duration {
	if c.ForceRate <= 0 {
		return 0
	}
	return c.ForcePer / time.Duration(c.ForceRate)
}

// idleTimeout is the refresh engine's IdleTimeout: 0 when turned off.
func (c *Config) idleTimeout() time.Duration { return max(c.SessionIdle, 0) }

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

// presetVars names the variable behind each provider.PresetOptions field
// and the preset's name: what provider.Preset's errors call them.
var presetVars = map[string]string{
	"Preset":       "TETHER_PROVIDER",
	"Issuer":       "TETHER_ISSUER",
	"AuthURL":      "TETHER_AUTH_URL",
	"TokenURL":     "TETHER_TOKEN_URL",
	"RevokeURL":    "TETHER_REVOKE_URL",
	"UserinfoURL":  "TETHER_USERINFO_URL",
	"Scopes":       "TETHER_SCOPES",
	"AuthParams":   "TETHER_AUTH_PARAMS",
	"ClientID":     "TETHER_CLIENT_ID",
	"GitHubURL":    "TETHER_GITHUB_URL",
	"GitHubAPIURL": "TETHER_GITHUB_API_URL",
	"EntraTenant":  "TETHER_ENTRA_TENANT",
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

// providerConfig is what provider.New needs: the configuration validate
// resolved (endpoints, scopes, the preset's quirks and its authorization
// parameters under c.AuthParams), with the secret and the redirect URL.
func (c *Config) providerConfig() provider.Config {
	pc := c.resolved
	pc.ClientSecret, pc.RedirectURL = c.ClientSecret, c.PublicURL+c.BasePath+routeCallback
	return pc
}
