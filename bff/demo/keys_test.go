package demo

import (
	"bytes"
	"testing"

	"github.com/tetherauth/tether/bff"
)

// TestOwnKeysKept: keys given (TETHER_VAULT_KEY, TETHER_SESSION_KEYS,
// decoded by bff.FromEnv) are kept; only missing ones are made, and only
// then does the demo say so.
func TestOwnKeysKept(t *testing.T) {
	vault, cookie := []byte("0123456789abcdef0123456789abcdef"), []byte("fedcba9876543210fedcba9876543210")
	for _, tc := range []struct {
		name        string
		vault       []byte
		cookie      [][]byte
		want        bool
		keepsVault  bool
		keepsCookie bool
	}{
		{"none", nil, nil, true, false, false},
		{"vault only", vault, nil, true, true, false},
		{"both", vault, [][]byte{cookie}, false, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := bff.Config{VaultKey: tc.vault, SessionKeys: tc.cookie}
			if got := throwAwayKeys(&c); got != tc.want {
				t.Errorf("throwAwayKeys = %v; want %v", got, tc.want)
			}
			if len(c.VaultKey) != 32 || len(c.SessionKeys) != 1 || len(c.SessionKeys[0]) != 32 {
				t.Fatalf("keys of %d and %v bytes; want 32 each", len(c.VaultKey), c.SessionKeys)
			}
			if tc.keepsVault != bytes.Equal(c.VaultKey, vault) || tc.keepsCookie != bytes.Equal(c.SessionKeys[0], cookie) {
				t.Errorf("a key given was replaced, or a generated one equals it")
			}
		})
	}
}
