package provider

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// TestThrottledKeysFetchOutlivesSender: the one JWKS fetch of an interval
// runs to its end even when the request that caused it has gone (its
// context cancelled), so a sender that hangs up cannot keep a rotated key
// out; and a second unknown signature within the interval fetches nothing.
func TestThrottledKeysFetchOutlivesSender(t *testing.T) {
	key := rsaKey(t)
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{sigKey(key, "k1")}})
	}))
	defer srv.Close()
	keys := &throttledKeys{url: srv.URL, client: srv.Client(), every: keyRefetchEvery}

	gone, cancel := context.WithCancel(context.Background())
	cancel() // the sender hung up before the fetch
	if _, err := keys.VerifySignature(gone, signJWS(t, key, "k1", "alice")); err != nil {
		t.Fatalf("a token signed with the provider's key, sender gone: %v; want verified", err)
	}
	other := rsaKey(t)
	if _, err := keys.VerifySignature(context.Background(), signJWS(t, other, "k2", "alice")); err == nil {
		t.Fatal("a token signed with an unknown key verified")
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("JWKS fetched %d times; want 1 within the interval", n)
	}
}

// TestThrottledKeysFetchOutsideLock: while a JWKS fetch hangs (a slow
// provider), a token whose key is cached still verifies at once, and a
// second token that needs the new key waits for the fetch in flight
// instead of starting its own; both verify once the fetch returns.
func TestThrottledKeysFetchOutsideLock(t *testing.T) {
	old := rsaKey(t)
	rotated := rsaKey(t)
	var fetches atomic.Int32
	entered, release := make(chan struct{}, 4), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{sigKey(old, "k1")}}
		if fetches.Add(1) > 1 { // after the first: the rotated key too, slowly
			entered <- struct{}{}
			<-release
			set.Keys = append(set.Keys, sigKey(rotated, "k2"))
		}
		json.NewEncoder(w).Encode(set)
	}))
	defer srv.Close()
	free := sync.OnceFunc(func() { close(release) })
	defer free() // before srv.Close: a handler still waiting returns
	// every: 0, so that only the fetch in flight keeps a second one out.
	keys := &throttledKeys{url: srv.URL, client: srv.Client()}
	if _, err := keys.VerifySignature(t.Context(), signJWS(t, old, "k1", "a")); err != nil {
		t.Fatalf("the first token: %v", err)
	}

	verify := func(raw string) chan error {
		c := make(chan error, 1)
		go func() {
			_, err := keys.VerifySignature(context.Background(), raw)
			c <- err
		}()
		return c
	}
	first := verify(signJWS(t, rotated, "k2", "b")) // unknown key: fetches
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the unknown key did not fetch the JWKS")
	}
	select {
	case err := <-verify(signJWS(t, old, "k1", "c")):
		if err != nil {
			t.Fatalf("a token with a cached key, during the fetch: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a token with a cached key waited for the JWKS fetch in flight")
	}
	second := verify(signJWS(t, rotated, "k2", "d"))
	// Let it reach the fetch in flight. Were it slower, it would find the
	// new keys cached: the test could then pass without this path, never
	// fail because of it.
	time.Sleep(100 * time.Millisecond)
	free()
	for _, c := range []chan error{first, second} {
		select {
		case err := <-c:
			if err != nil {
				t.Fatalf("a token with the rotated key: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a token with the rotated key still waits after the fetch returned")
		}
	}
	if n := fetches.Load(); n != 2 {
		t.Fatalf("JWKS fetched %d times; want 2 (the second token waits for the first's fetch)", n)
	}
}

// TestThrottledKeysLateLook: a token that looked at the cached keys just
// before a fetch stored new ones is checked against the new ones, not
// refused as throttled (the fetch just made is the one it needed).
func TestThrottledKeysLateLook(t *testing.T) {
	key := rsaKey(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{sigKey(key, "k1")}})
	}))
	defer srv.Close()
	keys := &throttledKeys{url: srv.URL, client: srv.Client(), every: time.Hour}
	keys.mu.Lock()
	seen := keys.gen // the late caller's look: no keys yet
	keys.mu.Unlock()
	if _, err := keys.refetch(t.Context(), seen); err != nil { // another caller's fetch
		t.Fatal(err)
	}
	got, err := keys.refetch(t.Context(), seen) // within the interval
	if err != nil || len(got) != 1 || got[0].KeyID != "k1" {
		t.Fatalf("a caller that looked before the fetch stored its keys: %v, %v; want the new keys", got, err)
	}
}

// signJWS signs {"sub":sub} with k (RS256), naming kid.
func signJWS(t *testing.T, k *rsa.PrivateKey, kid, sub string) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: k}, (&jose.SignerOptions{}).WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign([]byte(`{"sub":"` + sub + `"}`))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// sigKey is k's public key as a JWKS lists it for signatures.
func sigKey(k *rsa.PrivateKey, kid string) jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.Public(), KeyID: kid, Algorithm: "RS256", Use: "sig"}
}

// rsaKey is a new 2048-bit RSA key.
func rsaKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
