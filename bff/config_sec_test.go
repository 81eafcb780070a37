package bff

import (
	"github.com/tetherauth/tether/bff/provider"

	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestFromEnvSecurityBounds: the variables of the forced-refresh bounds
// and the vault key list, their defaults, values and mistakes.
func TestFromEnvSecurityBounds(t *testing.T) {
	c, err := FromEnv(minimalEnv.get)
	if err != nil {
		t.Fatal(err)
	}
	if c.ForceMinAge != 5*time.Second || c.ForceRate != 6 || c.ForcePer != time.Minute || c.ForceBurst != 3 || c.forceEvery() != 10*time.Second {
		t.Errorf("defaults: min age %v, %d per %v, burst %d; want 5s, 6 per 1m, burst 3", c.ForceMinAge, c.ForceRate, c.ForcePer, c.ForceBurst)
	}
	if c.VaultPreviousKeys != nil {
		t.Errorf("VaultPreviousKeys = %x without TETHER_VAULT_KEY", c.VaultPreviousKeys)
	}
	if c.SessionIdle != 14*24*time.Hour || c.idleTimeout() != 14*24*time.Hour {
		t.Errorf("SessionIdle = %v; want 14 days by default", c.SessionIdle)
	}
	for v, want := range map[string]time.Duration{"0": 0, "0s": 0, "36h": 36 * time.Hour, "600": 10 * time.Minute} {
		c, err := FromEnv(minimalEnv.with("TETHER_SESSION_IDLE", v).get)
		if err != nil || c.idleTimeout() != want {
			t.Errorf("TETHER_SESSION_IDLE=%s: idle timeout %v, %v; want %v", v, c.idleTimeout(), err, want)
		}
	}

	rates := map[string]struct {
		n   int
		per time.Duration
	}{"6/m": {6, time.Minute}, "100/h": {100, time.Hour}, "1/30s": {1, 30 * time.Second}, "2/s": {2, time.Second}}
	for v, want := range rates {
		c, err := FromEnv(minimalEnv.with("TETHER_FORCE_RATE", v, "TETHER_FORCE_BURST", "5", "TETHER_FORCE_MIN_AGE", "2s").get)
		if err != nil {
			t.Fatalf("TETHER_FORCE_RATE=%s: %v", v, err)
		}
		if c.ForceRate != want.n || c.ForcePer != want.per || c.ForceBurst != 5 || c.ForceMinAge != 2*time.Second {
			t.Errorf("TETHER_FORCE_RATE=%s: %d per %v, burst %d, min age %v", v, c.ForceRate, c.ForcePer, c.ForceBurst, c.ForceMinAge)
		}
	}

	k1, k2 := base64.StdEncoding.EncodeToString(testKey(1)), base64.StdEncoding.EncodeToString(testKey(2))
	short := base64.StdEncoding.EncodeToString(testKey(3)[:16])
	bad := []struct{ name, variable, value string }{
		{"rate without a unit", "TETHER_FORCE_RATE", "6"},
		{"rate not a number", "TETHER_FORCE_RATE", "x/m"},
		{"rate zero", "TETHER_FORCE_RATE", "0/m"},
		{"rate unknown unit", "TETHER_FORCE_RATE", "6/fortnight"},
		{"rate negative period", "TETHER_FORCE_RATE", "6/-1s"},
		{"rate too fast", "TETHER_FORCE_RATE", "2000/1s"},
		{"burst zero", "TETHER_FORCE_BURST", "0"},
		{"burst not a number", "TETHER_FORCE_BURST", "three"},
		{"min age not a duration", "TETHER_FORCE_MIN_AGE", "soon"},
		{"idle not a duration", "TETHER_SESSION_IDLE", "a fortnight"},
		{"idle negative", "TETHER_SESSION_IDLE", "-1h"},
		{"vault key list with a short key", "TETHER_VAULT_KEY", k1 + "," + short},
		{"vault key list with garbage", "TETHER_VAULT_KEY", k1 + ", not base64!!"},
		{"vault key list with an empty entry", "TETHER_VAULT_KEY", k1 + ",," + k2},
	}
	for _, b := range bad {
		_, err := FromEnv(minimalEnv.with(b.variable, b.value).get)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Var != b.variable {
			t.Errorf("%s: err = %v; want a ConfigError for %s", b.name, err, b.variable)
			continue
		}
		if strings.Contains(err.Error(), k1) || strings.Contains(err.Error(), k2) {
			t.Errorf("%s: the error shows a key: %v", b.name, err)
		}
	}

	// A Config filled in code is checked too.
	c = Config{PublicURL: "http://127.0.0.1:1", Endpoints: provider.Endpoints{Issuer: "http://127.0.0.1:2"}, ClientID: "x", VaultPreviousKeys: [][]byte{testKey(1)}}
	if err := c.validate(); err == nil {
		t.Error("previous vault keys without a current key were accepted")
	}
	c = Config{PublicURL: "http://127.0.0.1:1", Endpoints: provider.Endpoints{Issuer: "http://127.0.0.1:2"}, ClientID: "x", ForceRate: 1, ForcePer: time.Microsecond}
	if err := c.validate(); err == nil {
		t.Error("a forced-refresh rate of one a microsecond was accepted")
	}
}
