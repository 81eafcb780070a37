package provider

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// TestThrottledKeysFetchOutlivesSender: the one JWKS fetch of an interval
// runs to its end even when the request that caused it has gone (its
// context cancelled), so a sender that hangs up cannot keep a rotated key
// out; and a second unknown signature within the interval fetches nothing.
func TestThrottledKeysFetchOutlivesSender(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	}))
	defer srv.Close()
	sign := func(k *rsa.PrivateKey, kid string) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: k}, (&jose.SignerOptions{}).WithHeader("kid", kid))
		if err != nil {
			t.Fatal(err)
		}
		jws, err := s.Sign([]byte(`{"sub":"alice"}`))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := jws.CompactSerialize()
		return raw
	}
	keys := &throttledKeys{url: srv.URL, client: srv.Client(), every: keyRefetchEvery}

	gone, cancel := context.WithCancel(context.Background())
	cancel() // the sender hung up before the fetch
	if _, err := keys.VerifySignature(gone, sign(key, "k1")); err != nil {
		t.Fatalf("a token signed with the provider's key, sender gone: %v; want verified", err)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	if _, err := keys.VerifySignature(context.Background(), sign(other, "k2")); err == nil {
		t.Fatal("a token signed with an unknown key verified")
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("JWKS fetched %d times; want 1 within the interval", n)
	}
}
