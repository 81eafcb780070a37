package devprovider

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultAddr is where the dev provider listens unless
// TETHER_DEV_PROVIDER_ADDR says otherwise.
const DefaultAddr = "127.0.0.1:9090"

// EnvHelp lists the variables that AddrFromEnv and FromEnv read, for a
// command's -h.
const EnvHelp = `The dev provider reads (all optional):

  TETHER_DEV_PROVIDER_ADDR   listen address (default 127.0.0.1:9090; port 0 picks one)
  TETHER_DEV_ISSUER          public base URL (default http://<addr>)
  TETHER_DEV_ACCESS_TTL      access token lifetime (default 60s)
  TETHER_DEV_REFRESH_TTL     refresh lifetime from login (default 10m)
  TETHER_DEV_AUTO_APPROVE    true (or 1) to skip the consent page
  TETHER_DEV_ALLOW_ORIGINS   comma-separated CORS origins (default: any loopback http origin)
  TETHER_DEV_CLIENT_ID       default tether-dev
  TETHER_DEV_CLIENT_SECRET   default tether-dev-secret
  TETHER_DEV_QUIRKS          github, github-oauth-app or google: behave like that provider on the wire
  TETHER_DEV_BACKCHANNEL_URI the client's back-channel logout URI (the demo: its BFF's /bff/backchannel; off for none)
`

// ConfigError is a bad configuration variable.
type ConfigError struct {
	Var    string // e.g. TETHER_DEV_ACCESS_TTL
	Value  string
	Reason string
}

// Error names the variable, its value and what is wrong with it.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("devprovider: %s=%q: %s", e.Var, e.Value, e.Reason)
}

// AddrFromEnv returns the listen address in TETHER_DEV_PROVIDER_ADDR,
// read through getenv, or DefaultAddr when it is unset. Anything but
// host:port with a port from 0 to 65535 is a *ConfigError.
func AddrFromEnv(getenv func(string) string) (string, error) {
	addr := strings.TrimSpace(getenv("TETHER_DEV_PROVIDER_ADDR"))
	if addr == "" {
		return DefaultAddr, nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", &ConfigError{"TETHER_DEV_PROVIDER_ADDR", addr, "want host:port"}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", &ConfigError{"TETHER_DEV_PROVIDER_ADDR", addr, "bad port"}
	}
	return addr, nil
}

// FromEnv reads a Config from the TETHER_DEV_* variables in EnvHelp
// (but the address: see AddrFromEnv) through getenv. An unset variable
// leaves its field zero, for New's default; booleans are what
// strconv.ParseBool accepts. A bad value is a *ConfigError naming the
// variable. Issuer, when unset, is the caller's to fill in, as are Now and
// Logger.
func FromEnv(getenv func(string) string) (Config, error) {
	var c Config
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	if c.Issuer = get("TETHER_DEV_ISSUER"); c.Issuer != "" {
		if u, err := url.Parse(c.Issuer); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return c, &ConfigError{"TETHER_DEV_ISSUER", c.Issuer, "want an absolute http(s) URL"}
		}
	}
	for _, ttl := range []struct {
		name string
		dst  *time.Duration
	}{
		{"TETHER_DEV_ACCESS_TTL", &c.AccessTTL},
		{"TETHER_DEV_REFRESH_TTL", &c.RefreshTTL},
	} {
		v := get(ttl.name)
		if v == "" {
			continue
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return c, &ConfigError{ttl.name, v, "want a positive Go duration such as 60s"}
		}
		*ttl.dst = d
	}
	if v := get("TETHER_DEV_AUTO_APPROVE"); v != "" {
		var err error
		if c.AutoApprove, err = strconv.ParseBool(v); err != nil {
			return c, &ConfigError{"TETHER_DEV_AUTO_APPROVE", v, "want true or false (1 or 0)"}
		}
	}
	if v := get("TETHER_DEV_ALLOW_ORIGINS"); v != "" {
		for _, o := range strings.Split(v, ",") {
			o = strings.TrimSpace(o)
			u, err := url.Parse(o)
			if err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" || u.RawQuery != "" {
				return c, &ConfigError{"TETHER_DEV_ALLOW_ORIGINS", v, fmt.Sprintf("%q is not an origin (scheme://host[:port])", o)}
			}
			c.AllowOrigins = append(c.AllowOrigins, o)
		}
	}
	if c.Quirks = Quirks(get("TETHER_DEV_QUIRKS")); !c.Quirks.Valid() {
		return c, &ConfigError{"TETHER_DEV_QUIRKS", string(c.Quirks), "want github, github-oauth-app or google"}
	}
	if v := get("TETHER_DEV_BACKCHANNEL_URI"); v != "" {
		if u, err := url.Parse(v); v != "off" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
			return c, &ConfigError{"TETHER_DEV_BACKCHANNEL_URI", v, "want an absolute http(s) URL, or off"}
		}
		if v != "off" {
			c.BackchannelLogoutURI = v
		}
	}
	c.ClientID = get("TETHER_DEV_CLIENT_ID")
	c.ClientSecret = get("TETHER_DEV_CLIENT_SECRET")
	return c, nil
}
