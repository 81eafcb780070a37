package vault

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tetherauth/tether/bff/vault/redistest"
)

// servers are the Redis flavours each benchmark runs against.
var servers = []struct {
	name  string
	start func(testing.TB) string
}{
	{"miniredis", func(tb testing.TB) string {
		mr := miniredis.NewMiniRedis()
		if err := mr.StartAddr("127.0.0.1:0"); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(mr.Close)
		return mr.Addr()
	}},
	{"redis", func(tb testing.TB) string { return redistest.Start(tb).Addr }},
}

func benchVault(tb testing.TB, addr string) *Vault {
	v, err := New(redis.NewClient(&redis.Options{Addr: addr}), testKey)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { v.Close() })
	return v
}

// opaqueToken is the size of a typical opaque token: 32 random bytes,
// base64url-encoded (43 characters).
func opaqueToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// typicalRecord is a session with opaque tokens, as most providers issue.
func typicalRecord() *Record {
	now := time.Now().UTC().Truncate(time.Second)
	return &Record{
		AccessToken:   opaqueToken(),
		TokenType:     "Bearer",
		RefreshToken:  opaqueToken(),
		Scope:         "openid profile email offline_access",
		Subject:       "248289761001",
		Name:          "Jane Doe",
		IssuedAt:      now,
		Expiry:        now.Add(5 * time.Minute),
		RefreshExpiry: now.Add(24 * time.Hour),
		Created:       now,
	}
}

func BenchmarkGet(b *testing.B) {
	ctx := context.Background()
	for _, s := range servers {
		b.Run(s.name, func(b *testing.B) {
			v := benchVault(b, s.start(b))
			if err := v.Put(ctx, "sid", typicalRecord(), time.Hour); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Get(ctx, "sid"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkPut(b *testing.B) {
	ctx := context.Background()
	for _, s := range servers {
		b.Run(s.name, func(b *testing.B) {
			v := benchVault(b, s.start(b))
			rec := typicalRecord()
			b.ReportAllocs()
			for b.Loop() {
				if err := v.Put(ctx, "sid", rec, time.Hour); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLock measures one TryLock plus Release (SET NX PX, then a Lua
// compare-and-delete), the overhead of one refresh's mutual exclusion.
func BenchmarkLock(b *testing.B) {
	ctx := context.Background()
	for _, s := range servers {
		b.Run(s.name, func(b *testing.B) {
			v := benchVault(b, s.start(b))
			b.ReportAllocs()
			for b.Loop() {
				l, err := v.TryLock(ctx, "sid", time.Minute)
				if err != nil {
					b.Fatal(err)
				}
				if err := l.Release(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMemoryUsage reports what one session costs a real Redis
// (MEMORY USAGE of its key) as bytes/session.
func BenchmarkMemoryUsage(b *testing.B) {
	v := benchVault(b, redistest.Start(b).Addr)
	var n int64
	for b.Loop() {
		n = memoryUsage(b, v, typicalRecord())
	}
	b.ReportMetric(float64(n), "bytes/session")
}

// TestMemoryUsage keeps a typical session record within about a kilobyte
// of Redis memory, and logs what larger (JWT) access tokens cost.
func TestMemoryUsage(t *testing.T) {
	v := benchVault(t, redistest.Start(t).Addr)
	opaque := memoryUsage(t, v, typicalRecord())
	t.Logf("MEMORY USAGE, opaque tokens: %d bytes/session", opaque)
	if opaque > 1024 {
		t.Errorf("a session with opaque tokens takes %d bytes of Redis memory; want <= 1024", opaque)
	}
	for _, n := range []int{300, 800, 1200} {
		rec := typicalRecord()
		rec.AccessToken = strings.Repeat("j", n) // a JWT of n characters
		t.Logf("MEMORY USAGE, %d-character access token: %d bytes/session", n, memoryUsage(t, v, rec))
	}
}

func memoryUsage(tb testing.TB, v *Vault, rec *Record) int64 {
	ctx := context.Background()
	if err := v.Put(ctx, "sid", rec, time.Hour); err != nil {
		tb.Fatal(err)
	}
	n, err := v.rdb.MemoryUsage(ctx, v.sessionKey("sid"), 0).Result()
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// BenchmarkRecordUnmarshal is the decoding of a record on every
// /bff/token request, of a record the size of the dev provider's.
func BenchmarkRecordUnmarshal(b *testing.B) {
	now := time.Unix(1_800_000_000, 123)
	plain, err := Record{
		AccessToken: "dev_at_" + strings.Repeat("a", 43), TokenType: "Bearer", RefreshToken: "dev_rt_" + strings.Repeat("r", 43),
		Scope: "openid profile email offline_access", Subject: "alice", Name: "Alice",
		IssuedAt: now, Expiry: now.Add(time.Hour), RefreshExpiry: now.Add(24 * time.Hour), Created: now, LastUsed: now,
	}.MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		var r Record
		if err := r.UnmarshalBinary(plain); err != nil || r.Subject != "alice" {
			b.Fatal(err)
		}
	}
}
