package demo

import (
	"github.com/tetherauth/tether/bff"
	"github.com/tetherauth/tether/bff/devprovider"
)

// demoVars are what the demo itself reads; bff.EnvVars it sets itself
// (the provider is the dev provider) are left out of EnvHelp.
var demoVars = []bff.EnvVar{
	{Name: "TETHER_ADDR", Meaning: "the BFF and the page", Default: "127.0.0.1:8080"},
	{Name: "TETHER_WEB_DIR", Meaning: "the page and its client (make web builds web/dist)", Default: "web"},
	{Name: "TETHER_LOG_FORMAT", Meaning: "json or text", Default: "text"},
	{Name: "TETHER_VAULT_KEY", Meaning: "32 bytes, base64: keep sessions across restarts", Default: "throw-away, said once"},
	{Name: "TETHER_SESSION_KEYS", Meaning: "cookie keys, base64, comma-separated", Default: "throw-away, said once"},
	{Name: "TETHER_DEMO_MODE", Meaning: "proxy: the BFF calls the sample API for the page (no token in it)", Default: "token"},
	{Name: "TETHER_FORCE_MIN_AGE", Meaning: "as for tether, looser for the demo's quick presses", Default: demoForceMinAge.String()},
	{Name: "TETHER_FORCE_RATE", Meaning: "as for tether, looser for the demo's quick presses", Default: "120/m"},
	{Name: "TETHER_FORCE_BURST", Meaning: "as for tether, looser for the demo's quick presses", Default: "30"},
	{Name: "TETHER_DEV_BACKCHANNEL_URI", Meaning: "where the dev provider sends back-channel logout tokens; off for none", Default: "the BFF's /bff/backchannel"},
}

// fixedVars are the BFF variables the demo sets to point the BFF at its
// dev provider and page, or that it does not read.
var fixedVars = []string{
	"TETHER_PUBLIC_URL", "TETHER_CLIENT_ID", "TETHER_CLIENT_SECRET", "TETHER_PROVIDER", "TETHER_ISSUER",
	"TETHER_AUTH_URL", "TETHER_TOKEN_URL", "TETHER_REVOKE_URL", "TETHER_USERINFO_URL", "TETHER_SCOPES",
	"TETHER_AUTH_PARAMS", "TETHER_GITHUB_URL", "TETHER_GITHUB_API_URL", "TETHER_ENTRA_TENANT",
	"TETHER_API_ORIGINS", "TETHER_ADDR", "TETHER_METRICS_ADDR", "TETHER_ADMIN_ADDR", "TETHER_ADMIN_TOKEN", "TETHER_WEB_DIR", "TETHER_LOG_FORMAT", "TETHER_LOG_LEVEL",
	"TETHER_VAULT_KEY", "TETHER_SESSION_KEYS", "TETHER_API_ROUTES", "TETHER_TOKEN_ENDPOINT",
	"TETHER_FORCE_MIN_AGE", "TETHER_FORCE_RATE", "TETHER_FORCE_BURST",
}

// EnvHelp is what `tether-demo -h` prints: every variable the demo reads,
// with its default, one a line.
func EnvHelp() string {
	return "The demo reads (all optional):\n\n" + bff.EnvHelp(demoVars) +
		"\nthe BFF's, as for tether (the demo sets the provider's and the public URL itself):\n\n" +
		bff.EnvHelp(bff.EnvVarsBut(fixedVars...)) + "\n" + devprovider.EnvHelp
}
