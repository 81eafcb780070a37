package devprovider_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/devprovider"
)

func getenv(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

func TestFromEnv(t *testing.T) {
	got, err := devprovider.FromEnv(getenv(map[string]string{
		"TETHER_DEV_ISSUER":        "https://dev.example",
		"TETHER_DEV_ACCESS_TTL":    " 30s ",
		"TETHER_DEV_REFRESH_TTL":   "2h",
		"TETHER_DEV_AUTO_APPROVE":  "true",
		"TETHER_DEV_ALLOW_ORIGINS": "http://127.0.0.1:8080, https://app.example",
		"TETHER_DEV_CLIENT_ID":     "app",
		"TETHER_DEV_CLIENT_SECRET": "s3cret",
		"TETHER_DEV_QUIRKS":        "google",
	}))
	want := devprovider.Config{
		Issuer: "https://dev.example", AccessTTL: 30 * time.Second, RefreshTTL: 2 * time.Hour,
		AutoApprove: true, AllowOrigins: []string{"http://127.0.0.1:8080", "https://app.example"},
		ClientID: "app", ClientSecret: "s3cret", Quirks: devprovider.QuirksGoogle,
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("FromEnv = %+v, %v; want %+v", got, err, want)
	}

	// Nothing set: the zero Config, New's defaults.
	if got, err := devprovider.FromEnv(getenv(nil)); err != nil || !reflect.DeepEqual(got, devprovider.Config{}) {
		t.Errorf("FromEnv of nothing = %+v, %v; want the zero Config", got, err)
	}
}

// TETHER_DEV_AUTO_APPROVE is read as strconv.ParseBool reads a boolean,
// wherever the dev provider runs (its command or the demo).
func TestFromEnvBooleans(t *testing.T) {
	for v, want := range map[string]bool{"1": true, "true": true, "TRUE": true, "t": true, "0": false, "false": false, "F": false} {
		c, err := devprovider.FromEnv(getenv(map[string]string{"TETHER_DEV_AUTO_APPROVE": v}))
		if err != nil || c.AutoApprove != want {
			t.Errorf("TETHER_DEV_AUTO_APPROVE=%q: AutoApprove %v, %v; want %v", v, c.AutoApprove, err, want)
		}
	}
	for _, v := range []string{"yes", "on", "2"} {
		_, err := devprovider.FromEnv(getenv(map[string]string{"TETHER_DEV_AUTO_APPROVE": v}))
		var ce *devprovider.ConfigError
		if !errors.As(err, &ce) || ce.Var != "TETHER_DEV_AUTO_APPROVE" || ce.Value != v {
			t.Errorf("TETHER_DEV_AUTO_APPROVE=%q: err %v; want a ConfigError naming it", v, err)
		}
	}
}

func TestAddrFromEnv(t *testing.T) {
	if got, err := devprovider.AddrFromEnv(getenv(nil)); err != nil || got != devprovider.DefaultAddr {
		t.Errorf("AddrFromEnv of nothing = %q, %v; want %s", got, err, devprovider.DefaultAddr)
	}
	if got, err := devprovider.AddrFromEnv(getenv(map[string]string{"TETHER_DEV_PROVIDER_ADDR": ":0"})); err != nil || got != ":0" {
		t.Errorf("AddrFromEnv(:0) = %q, %v", got, err)
	}
	for _, v := range []string{"nowhere", "127.0.0.1:99999", "127.0.0.1:http"} {
		_, err := devprovider.AddrFromEnv(getenv(map[string]string{"TETHER_DEV_PROVIDER_ADDR": v}))
		var ce *devprovider.ConfigError
		if !errors.As(err, &ce) || ce.Var != "TETHER_DEV_PROVIDER_ADDR" {
			t.Errorf("TETHER_DEV_PROVIDER_ADDR=%q: err %v; want a ConfigError naming it", v, err)
		}
	}
}

func TestFromEnvBackchannelURI(t *testing.T) {
	c, err := devprovider.FromEnv(getenv(map[string]string{"TETHER_DEV_BACKCHANNEL_URI": "http://127.0.0.1:8080/bff/backchannel"}))
	if err != nil || c.BackchannelLogoutURI != "http://127.0.0.1:8080/bff/backchannel" {
		t.Errorf("FromEnv = %q, %v", c.BackchannelLogoutURI, err)
	}
	if c, err := devprovider.FromEnv(getenv(map[string]string{"TETHER_DEV_BACKCHANNEL_URI": "off"})); err != nil || c.BackchannelLogoutURI != "" {
		t.Errorf("off: %q, %v; want none", c.BackchannelLogoutURI, err)
	}
	for _, v := range []string{"/bff/backchannel", "ftp://x/y", "http://"} {
		_, err := devprovider.FromEnv(getenv(map[string]string{"TETHER_DEV_BACKCHANNEL_URI": v}))
		var ce *devprovider.ConfigError
		if !errors.As(err, &ce) || ce.Var != "TETHER_DEV_BACKCHANNEL_URI" {
			t.Errorf("TETHER_DEV_BACKCHANNEL_URI=%q: err %v; want a ConfigError naming it", v, err)
		}
	}
}
