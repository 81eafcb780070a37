package bff

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// APIRoute is one upstream API the BFF calls for the page (proxy mode):
// /bff/api/<Name>/<path>?<query> is forwarded to URL + /<path>?<query>
// with the session's access token.
type APIRoute struct {
	// Name is the route's path segment: lower-case letters, digits, - and _.
	Name string
	// URL is the upstream's base URL, e.g. https://api.github.com or
	// https://orders.internal:8443/v2: https, or http on a loopback host.
	URL string
}

// Defaults of the proxy's settings.
const (
	DefaultAPITimeout       = 30 * time.Second
	DefaultAPIStreamTimeout = time.Hour
	DefaultAPIMaxBody       = 10 << 20
	DefaultAPIRetryBody     = 64 << 10
	DefaultAPISessionCache  = time.Second
)

// apiFromEnv reads the proxy's TETHER_API_* variables and
// TETHER_TOKEN_ENDPOINT into c.
func apiFromEnv(getenv func(string) string, c *Config) error {
	var err error
	if c.APIRoutes, err = parseAPIRoutes(getenv("TETHER_API_ROUTES")); err != nil {
		return &ConfigError{"TETHER_API_ROUTES", err}
	}
	for _, d := range []struct {
		name string
		dst  *time.Duration
	}{{"TETHER_API_TIMEOUT", &c.APITimeout}, {"TETHER_API_STREAM_TIMEOUT", &c.APIStreamTimeout}} {
		if *d.dst, err = parseDuration(getenv(d.name)); err != nil {
			return &ConfigError{d.name, err}
		}
	}
	for _, s := range []struct {
		name string
		dst  *int64
	}{{"TETHER_API_MAX_BODY", &c.APIMaxBody}, {"TETHER_API_RETRY_BODY", &c.APIRetryBody}} {
		if *s.dst, err = parseSize(getenv(s.name)); err != nil {
			return &ConfigError{s.name, err}
		}
	}
	switch v := getenv("TETHER_API_SESSION_CACHE"); v {
	case "off":
		c.APISessionCache = -1
	default:
		if c.APISessionCache, err = parseDuration(v); err != nil {
			return &ConfigError{"TETHER_API_SESSION_CACHE", err}
		}
		if v == "0" || (v != "" && c.APISessionCache == 0) {
			c.APISessionCache = -1
		}
	}
	if c.APIForwarded, err = parseSwitch(getenv("TETHER_API_FORWARDED"), false); err != nil {
		return &ConfigError{"TETHER_API_FORWARDED", err}
	}
	on, err := parseSwitch(getenv("TETHER_TOKEN_ENDPOINT"), true)
	if err != nil {
		return &ConfigError{"TETHER_TOKEN_ENDPOINT", err}
	}
	c.TokenEndpointOff = !on
	return nil
}

// parseAPIRoutes reads name=url pairs separated by commas.
func parseAPIRoutes(s string) ([]APIRoute, error) {
	var routes []APIRoute
	for _, pair := range strings.Split(s, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		name, u, ok := strings.Cut(pair, "=")
		if !ok {
			return nil, fmt.Errorf("%q is not name=url, like github=https://api.github.com", pair)
		}
		routes = append(routes, APIRoute{Name: strings.TrimSpace(name), URL: strings.TrimSpace(u)})
	}
	return routes, nil
}

// parseSize reads a byte count: a number, optionally followed by KiB, MiB
// or GiB.
func parseSize(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	num, mult := s, int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			num, mult = strings.TrimSpace(n), m
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("%q is not a size like 65536, 64KiB or 10MiB", s)
	}
	return n * mult, nil
}

// parseSwitch reads on/off (or true/false, 1/0); empty is def.
func parseSwitch(s string, def bool) (bool, error) {
	switch strings.ToLower(s) {
	case "":
		return def, nil
	case "on", "true", "1", "yes":
		return true, nil
	case "off", "false", "0", "no":
		return false, nil
	}
	return def, fmt.Errorf("%q is neither on nor off", s)
}

// routeName is what a route's name may be: one path segment that needs
// no escaping and cannot be a dot segment.
var routeName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// validateAPI checks the proxy's settings and fills their defaults, and
// refuses plain-http provider endpoints outside loopback: the BFF sends
// them the client secret and refresh tokens.
func (c *Config) validateAPI() error {
	seen := map[string]bool{}
	for _, r := range c.APIRoutes {
		if !routeName.MatchString(r.Name) {
			return &ConfigError{"TETHER_API_ROUTES", fmt.Errorf("route name %q: use lower-case letters, digits, - and _", r.Name)}
		}
		if seen[r.Name] {
			return &ConfigError{"TETHER_API_ROUTES", fmt.Errorf("route %q is named twice", r.Name)}
		}
		seen[r.Name] = true
		if _, err := upstreamURL(r.URL); err != nil {
			return &ConfigError{"TETHER_API_ROUTES", fmt.Errorf("route %q: %w", r.Name, err)}
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"TETHER_API_TIMEOUT", c.APITimeout}, {"TETHER_API_STREAM_TIMEOUT", c.APIStreamTimeout}} {
		if d.v < 0 {
			return &ConfigError{d.name, errors.New("is negative")}
		}
	}
	if c.APIMaxBody < 0 || c.APIRetryBody < 0 {
		return &ConfigError{"TETHER_API_MAX_BODY", errors.New("is negative")}
	}
	if c.APITimeout == 0 {
		c.APITimeout = DefaultAPITimeout
	}
	if c.APIStreamTimeout == 0 {
		c.APIStreamTimeout = DefaultAPIStreamTimeout
	}
	if c.APISessionCache == 0 {
		c.APISessionCache = DefaultAPISessionCache
	}
	if c.APIMaxBody == 0 {
		c.APIMaxBody = DefaultAPIMaxBody
	}
	if c.APIRetryBody == 0 {
		c.APIRetryBody = min(DefaultAPIRetryBody, c.APIMaxBody)
	}
	if c.APIRetryBody > c.APIMaxBody {
		return &ConfigError{"TETHER_API_RETRY_BODY", fmt.Errorf("%d is over TETHER_API_MAX_BODY (%d)", c.APIRetryBody, c.APIMaxBody)}
	}
	for _, e := range []struct{ name, value string }{ // the preset's bases first: they made the endpoints
		{"TETHER_GITHUB_URL", c.GitHubURL}, {"TETHER_GITHUB_API_URL", c.GitHubAPIURL},
		{"TETHER_ISSUER", c.Issuer}, {"TETHER_AUTH_URL", c.AuthURL}, {"TETHER_TOKEN_URL", c.TokenURL},
		{"TETHER_REVOKE_URL", c.RevokeURL}, {"TETHER_USERINFO_URL", c.UserinfoURL},
	} {
		if u, err := url.Parse(e.value); err == nil && u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
			return &ConfigError{e.name, fmt.Errorf("%q is plain http on a non-loopback host; the BFF sends it secrets: use https", e.value)}
		}
	}
	return nil
}

// upstreamURL parses a route's base URL: absolute https (http on
// loopback only), no credentials, query or fragment. The path loses a
// trailing slash.
func upstreamURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" ||
		(u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("%q is not a base URL like https://api.example or https://api.example/v2", s)
	}
	if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("%q is plain http on a non-loopback host; the BFF sends it access tokens: use https", s)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = strings.TrimSuffix(u.RawPath, "/")
	return u, nil
}
