package bff

import (
	"slices"
	"strings"

	"github.com/tetherauth/tether/bff/admin"
)

// EnvVar is one variable that FromEnv or the tether command reads.
type EnvVar struct {
	Name    string
	Meaning string
	// Default is what an unset variable means: a value, "required", or
	// what happens instead.
	Default string
}

// EnvVars lists every TETHER_* variable that FromEnv and the tether
// command read, in the order `tether -h` prints them. The README's
// configuration tables say more about each.
var EnvVars = []EnvVar{
	{"TETHER_PUBLIC_URL", "the origin the browser uses; the redirect URI is this + /bff/callback", "required"},
	{"TETHER_BASE_PATH", "where the BFF's routes live (start the client with the same bff option)", "/bff"},
	{"TETHER_CLIENT_ID", "the client's registration at the provider", "required"},
	{"TETHER_CLIENT_SECRET", "its secret", "none, a public client"},
	{"TETHER_PROVIDER", "preset: github, google, entra or oidc", "none, generic: the issuer or the endpoints"},
	{"TETHER_ISSUER", "OpenID Connect issuer; discovery finds the endpoints", "none"},
	{"TETHER_AUTH_URL", "authorization endpoint (plain OAuth 2.0, or over discovery)", "from discovery or the preset"},
	{"TETHER_TOKEN_URL", "token endpoint", "from discovery or the preset"},
	{"TETHER_REVOKE_URL", "revocation endpoint (RFC 7009)", "from discovery or the preset"},
	{"TETHER_USERINFO_URL", "userinfo endpoint", "from discovery or the preset"},
	{"TETHER_SCOPES", "space- or comma-separated scopes", "openid profile with an issuer; the preset's"},
	{"TETHER_AUTH_PARAMS", "extra authorization parameters as a query string (audience=...)", "none"},
	{"TETHER_GITHUB_URL", "github preset: GitHub Enterprise Server web URL", "https://github.com"},
	{"TETHER_GITHUB_API_URL", "github preset: its REST API", "https://api.github.com, or TETHER_GITHUB_URL + /api/v3"},
	{"TETHER_ENTRA_TENANT", "entra preset: tenant id, domain, common, organizations or consumers", "none; required with entra"},
	{"TETHER_REDIS_URL", "the vault: redis://, rediss://, unix://, redis+cluster://, redis+sentinel://", "an in-process Redis, one replica only"},
	{"TETHER_VAULT_KEY", "comma-separated 32-byte base64 keys for vault records; the first seals, all open", "random per process, with a warning"},
	{"TETHER_SESSION_KEYS", "comma-separated 32-byte base64 cookie keys; the first signs, all verify", "random per process, with a warning"},
	{"TETHER_REFRESH_BUFFER", "refresh this long before expiry (at most half the lifetime)", "5m"},
	{"TETHER_SESSION_MAX_AGE", "session lifetime when the provider does not say", "720h"},
	{"TETHER_PROVIDER_TIMEOUT", "bound on each provider call", "10s"},
	{"TETHER_RETRY_AFTER", "advice during an outage when the provider gives none", "5s"},
	{"TETHER_RETRY_AFTER_MAX", "the most Retry-After an outage answer advises, whatever the provider asks", "30s"},
	{"TETHER_PROBE_INTERVAL", "while the provider's circuit is open, one probe refresh this often (deployment-wide)", "2s"},
	{"TETHER_FORCE_MIN_AGE", "a forced refresh of a token forced this recently gets it back", "5s"},
	{"TETHER_FORCE_RATE", "forced refreshes reaching the provider per session (N/s, N/m, N/h, N/30s)", "6/m"},
	{"TETHER_FORCE_BURST", "of which this many at once", "3"},
	{"TETHER_SESSION_IDLE", "end a session unused this long; 0 turns it off", "336h"},
	{"TETHER_WEB_DIR", "serve this directory outside /bff/ (the page, or a built SPA)", "none, only the BFF's routes"},
	{"TETHER_WEB_FALLBACK", "page served for an SPA's routes (index.html), in TETHER_WEB_DIR", "none, unknown paths are 404s"},
	{"TETHER_API_ORIGINS", "origins the page calls, space- or comma-separated: its CSP's connect-src", "none, this origin only"},
	{"TETHER_EXTENSION_ORIGINS", "browser extensions a login may return to: chrome-extension://<id>, moz-extension://<uuid>", "none, return_to is a path on this site"},
	{"TETHER_CSP", "replaces the page's whole Content-Security-Policy (one line)", "the BFF's page policy"},
	{"TETHER_API_ROUTES", "proxy mode: name=url pairs, comma-separated (/bff/api/<name>/...)", "none, no proxy"},
	{"TETHER_TOKEN_ENDPOINT", "off: POST /bff/token answers 404 (proxy mode only)", "on"},
	{"TETHER_API_TIMEOUT", "proxy: bound on connecting and the API's response headers", "30s"},
	{"TETHER_API_STREAM_TIMEOUT", "proxy: bound on a whole exchange once its request is in", "1h"},
	{"TETHER_API_MAX_BODY", "proxy: request body bound (65536, 64KiB, 10MiB)", "10MiB"},
	{"TETHER_API_RETRY_BODY", "proxy: bodies kept for the retry after a 401", "64KiB"},
	{"TETHER_API_FORWARDED", "proxy: on sends X-Forwarded-For, -Host, -Proto", "off"},
	{"TETHER_API_SESSION_CACHE", "proxy: reuse of a session's record per replica; off", "1s"},
	{"TETHER_ADDR", "listen address", DefaultAddr},
	{"TETHER_METRICS_ADDR", "listen address of GET /metrics, a listener of its own; off for none", DefaultMetricsAddr},
	{"TETHER_ADMIN_ADDR", "listen address of the admin API (tether sessions list|end); off for none", admin.DefaultAddr},
	{"TETHER_ADMIN_TOKEN", "bearer token the admin API requires, at least 16 bytes", "none: the admin listener is off"},
	{"TETHER_LOG_FORMAT", "json or text", "text"},
	{"TETHER_LOG_LEVEL", "debug, info, warn or error", "info"},
}

// EnvHelp formats vars for a command's -h: one line each, the name, what
// it is and its default.
func EnvHelp(vars []EnvVar) string {
	width := 0
	for _, v := range vars {
		width = max(width, len(v.Name))
	}
	var b strings.Builder
	for _, v := range vars {
		def := "(default: " + v.Default + ")"
		if v.Default == "required" {
			def = "(required)"
		}
		b.WriteString("  " + v.Name + strings.Repeat(" ", width-len(v.Name)+2) + v.Meaning + " " + def + "\n")
	}
	return b.String()
}

// EnvVarsBut returns EnvVars without the named ones (those a program such
// as the demo sets itself).
func EnvVarsBut(names ...string) []EnvVar {
	return slices.DeleteFunc(slices.Clone(EnvVars), func(v EnvVar) bool { return slices.Contains(names, v.Name) })
}
