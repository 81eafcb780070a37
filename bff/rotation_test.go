package bff

import (
	"context"
	"encoding/base64"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/vault/redistest"
)

// replicaWith starts another BFF on s's vault and provider, with the first
// replica's Config changed by tune, and returns its URL.
func (s *stack) replicaWith(tune func(*Config)) string {
	s.t.Helper()
	cfg := s.bffs[0].cfg
	tune(&cfg)
	h, err := New(context.Background(), cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { h.Close() })
	ln, u := listen(s.t)
	serve(s.t, ln, h)
	return u
}

// TestVaultKeyRotation: the vault key is rotated under live sessions
// (TETHER_VAULT_KEY=new,old on every replica): no session is signed out,
// and once each has been refreshed the old key can be dropped.
func TestVaultKeyRotation(t *testing.T) {
	s := newStack(t, stackOptions{redisURL: "redis://" + redistest.Start(t).Addr})
	oldKey, newKey := s.bffs[0].cfg.VaultKey, randomKey()

	// The operator's variable, as FromEnv reads it.
	env := minimalEnv.with("TETHER_VAULT_KEY", base64.StdEncoding.EncodeToString(newKey)+", "+base64.RawURLEncoding.EncodeToString(oldKey))
	c, err := FromEnv(env.get)
	if err != nil {
		t.Fatal(err)
	}
	if string(c.VaultKey) != string(newKey) || len(c.VaultPreviousKeys) != 1 || string(c.VaultPreviousKeys[0]) != string(oldKey) {
		t.Fatalf("TETHER_VAULT_KEY=new,old: VaultKey %x, VaultPreviousKeys %x", c.VaultKey, c.VaultPreviousKeys)
	}

	const users = 5
	browsers := make([]*browser, users)
	tokens := make([]string, users)
	for i := range browsers {
		browsers[i] = s.newBrowser()
		browsers[i].login(s.urls[0], "/")
		tokens[i] = browsers[i].mustToken(s.urls[0], nil).AccessToken
	}

	rotated := s.replicaWith(func(c *Config) { c.VaultKey, c.VaultPreviousKeys = newKey, [][]byte{oldKey} })
	signedOut := 0
	for i, b := range browsers {
		r := b.token(rotated, nil)
		if r.status != 200 || r.tok.AccessToken != tokens[i] {
			signedOut++
			t.Errorf("user %d after the rotation: %d %+v; want 200 and the same token", i, r.status, r.err)
		}
	}
	t.Logf("after the rotation: %d of %d sessions signed out", signedOut, users)

	// Each session is refreshed once: its record is now sealed under the
	// new key alone.
	s.clock.Advance(31 * time.Second)
	for i, b := range browsers {
		if tok := b.mustToken(rotated, nil); tok.AccessToken == tokens[i] {
			t.Fatalf("user %d: not refreshed", i)
		}
	}
	newOnly := s.replicaWith(func(c *Config) { c.VaultKey, c.VaultPreviousKeys = newKey, nil })
	for i, b := range browsers {
		if r := b.token(newOnly, nil); r.status != 200 {
			t.Errorf("user %d with the old key dropped: %d %+v; want 200", i, r.status, r.err)
		}
	}
}
