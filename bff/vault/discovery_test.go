package vault

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// discoverySuite is the part of the conformance suite about the stored
// discovery document.
func discoverySuite(t *testing.T, run func(string, func(*testing.T, *harness))) {
	ctx := context.Background()
	const issuer = "https://idp.example"

	run("DiscoveryRoundtrip", func(t *testing.T, h *harness) {
		if _, err := h.v.GetDiscovery(ctx, issuer); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetDiscovery before any Put: %v; want ErrNotFound", err)
		}
		want := &Discovery{Document: []byte(`{"issuer":"https://idp.example","token_endpoint":"https://idp.example/token"}`), Fetched: fixedNow}
		if err := h.v.PutDiscovery(ctx, issuer, want); err != nil {
			t.Fatal(err)
		}
		got, err := h.v.GetDiscovery(ctx, issuer)
		if err != nil || string(got.Document) != string(want.Document) || !got.Fetched.Equal(want.Fetched) {
			t.Fatalf("GetDiscovery = %+v, %v; want %+v", got, err, want)
		}
		if _, err := h.v.GetDiscovery(ctx, "https://other.example"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("another issuer's document: %v; want ErrNotFound", err)
		}
		key := h.v.discoveryKey(issuer)
		raw, err := h.rdb.Get(ctx, key).Bytes()
		if err != nil || strings.Contains(string(raw), "token_endpoint") {
			t.Fatalf("stored value %q, %v; want it sealed", raw, err)
		}
		if pttl, err := h.rdb.PTTL(ctx, key).Result(); err != nil || pttl <= 0 || pttl > DiscoveryTTL {
			t.Fatalf("PTTL = %v, %v; want in (0, %v]", pttl, err, DiscoveryTTL)
		}
		// A document planted in Redis, or moved from another key, is not
		// read: it could send refresh tokens to another token endpoint.
		if err := h.rdb.Set(ctx, key, `{"d":"e30=","f":"2026-01-01T00:00:00Z"}`, time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := h.v.GetDiscovery(ctx, issuer); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a planted document: %v; want ErrNotFound", err)
		}
		if err := h.v.PutDiscovery(ctx, issuer, &Discovery{}); err == nil {
			t.Fatal("PutDiscovery of an empty document succeeded")
		}
	})
}
