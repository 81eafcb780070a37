package bff

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestAPIConfigFromEnv(t *testing.T) {
	c, err := FromEnv(minimalEnv.with(
		"TETHER_API_ROUTES", " github=https://api.github.com, orders=https://orders.internal:8443/v2/ ,local=http://127.0.0.1:9000,",
		"TETHER_API_TIMEOUT", "5s",
		"TETHER_API_STREAM_TIMEOUT", "10m",
		"TETHER_API_MAX_BODY", "2MiB",
		"TETHER_API_RETRY_BODY", "16KiB",
		"TETHER_API_FORWARDED", "on",
		"TETHER_API_SESSION_CACHE", "250ms",
		"TETHER_TOKEN_ENDPOINT", "off",
	).get)
	if err != nil {
		t.Fatalf("FromEnv: %v", err)
	}
	want := []APIRoute{{"github", "https://api.github.com"}, {"orders", "https://orders.internal:8443/v2/"}, {"local", "http://127.0.0.1:9000"}}
	if !reflect.DeepEqual(c.APIRoutes, want) {
		t.Errorf("APIRoutes = %+v; want %+v", c.APIRoutes, want)
	}
	if c.APITimeout != 5*time.Second || c.APIStreamTimeout != 10*time.Minute || c.APIMaxBody != 2<<20 || c.APIRetryBody != 16<<10 || !c.APIForwarded || !c.TokenEndpointOff {
		t.Errorf("got %v %v %d %d %v %v", c.APITimeout, c.APIStreamTimeout, c.APIMaxBody, c.APIRetryBody, c.APIForwarded, c.TokenEndpointOff)
	}
	if c.APISessionCache != 250*time.Millisecond {
		t.Errorf("APISessionCache = %v; want 250ms", c.APISessionCache)
	}
	for _, off := range []string{"off", "0", "0s"} {
		c, err := FromEnv(minimalEnv.with("TETHER_API_SESSION_CACHE", off).get)
		if err != nil || c.APISessionCache >= 0 {
			t.Errorf("TETHER_API_SESSION_CACHE=%s: %v, %v; want it off (negative)", off, c.APISessionCache, err)
		}
	}

	c, err = FromEnv(minimalEnv.get)
	if err != nil {
		t.Fatal(err)
	}
	if c.APIRoutes != nil || c.APITimeout != DefaultAPITimeout || c.APIStreamTimeout != DefaultAPIStreamTimeout ||
		c.APIMaxBody != DefaultAPIMaxBody || c.APIRetryBody != DefaultAPIRetryBody || c.APIForwarded || c.TokenEndpointOff ||
		c.APISessionCache != DefaultAPISessionCache {
		t.Errorf("defaults: %+v", c)
	}
}

func TestAPIConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		env  testEnv
		want string
	}{
		{"not name=url", minimalEnv.with("TETHER_API_ROUTES", "https://api.github.com"), "TETHER_API_ROUTES"},
		{"upper-case name", minimalEnv.with("TETHER_API_ROUTES", "GitHub=https://api.github.com"), "TETHER_API_ROUTES"},
		{"dot name", minimalEnv.with("TETHER_API_ROUTES", "..=https://api.github.com"), "TETHER_API_ROUTES"},
		{"slash in name", minimalEnv.with("TETHER_API_ROUTES", "a/b=https://api.github.com"), "TETHER_API_ROUTES"},
		{"empty name", minimalEnv.with("TETHER_API_ROUTES", "=https://api.github.com"), "TETHER_API_ROUTES"},
		{"twice", minimalEnv.with("TETHER_API_ROUTES", "a=https://a.example,a=https://b.example"), "TETHER_API_ROUTES"},
		{"plain http", minimalEnv.with("TETHER_API_ROUTES", "a=http://api.example"), "TETHER_API_ROUTES"},
		{"plain http, 127. name", minimalEnv.with("TETHER_API_ROUTES", "a=http://127.attacker.example"), "TETHER_API_ROUTES"},
		{"relative", minimalEnv.with("TETHER_API_ROUTES", "a=/api"), "TETHER_API_ROUTES"},
		{"credentials", minimalEnv.with("TETHER_API_ROUTES", "a=https://u:p@api.example"), "TETHER_API_ROUTES"},
		{"query", minimalEnv.with("TETHER_API_ROUTES", "a=https://api.example/?k=v"), "TETHER_API_ROUTES"},
		{"fragment", minimalEnv.with("TETHER_API_ROUTES", "a=https://api.example/#x"), "TETHER_API_ROUTES"},
		{"ftp", minimalEnv.with("TETHER_API_ROUTES", "a=ftp://api.example"), "TETHER_API_ROUTES"},
		{"timeout", minimalEnv.with("TETHER_API_TIMEOUT", "soon"), "TETHER_API_TIMEOUT"},
		{"stream timeout", minimalEnv.with("TETHER_API_STREAM_TIMEOUT", "-1s"), "TETHER_API_STREAM_TIMEOUT"},
		{"size", minimalEnv.with("TETHER_API_MAX_BODY", "10MB"), "TETHER_API_MAX_BODY"},
		{"negative size", minimalEnv.with("TETHER_API_MAX_BODY", "-1"), "TETHER_API_MAX_BODY"},
		{"retry over max", minimalEnv.with("TETHER_API_MAX_BODY", "1KiB", "TETHER_API_RETRY_BODY", "2KiB"), "TETHER_API_RETRY_BODY"},
		{"switch", minimalEnv.with("TETHER_TOKEN_ENDPOINT", "disabled"), "TETHER_TOKEN_ENDPOINT"},
		{"forwarded", minimalEnv.with("TETHER_API_FORWARDED", "maybe"), "TETHER_API_FORWARDED"},
		{"session cache", minimalEnv.with("TETHER_API_SESSION_CACHE", "a while"), "TETHER_API_SESSION_CACHE"},
		{"plain-http issuer", minimalEnv.with("TETHER_ISSUER", "http://idp.example"), "TETHER_ISSUER"},
		{"plain-http token URL", minimalEnv.with("TETHER_TOKEN_URL", "http://idp.example/token"), "TETHER_TOKEN_URL"},
		{"plain-http GitHub", githubEnv.with("TETHER_GITHUB_URL", "http://ghe.example"), "TETHER_GITHUB_URL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromEnv(tc.env.get)
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Var != tc.want {
				t.Fatalf("FromEnv = %v; want a ConfigError for %s", err, tc.want)
			}
		})
	}
	// Loopback plain http stays allowed for the provider (the dev provider).
	if _, err := FromEnv(minimalEnv.with("TETHER_ISSUER", "http://localhost:9090").get); err != nil {
		t.Errorf("loopback issuer: %v", err)
	}
}
