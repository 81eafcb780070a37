package vault

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tetherauth/tether/bff/vault/redistest"
)

// harness is one vault on a server of its own, with the controls the
// conformance suite needs.
type harness struct {
	v       *Vault
	rdb     redis.UniversalClient // the vault's client, for poking at raw keys
	ttl     time.Duration         // short enough to wait out with advance
	advance func(time.Duration)   // lets d pass on the server's clock
	stop    func()                // makes the server unreachable
	restart func()                // brings it back on the same address
	now     time.Time             // what the vault's clock says
}

var testKey = []byte("0123456789abcdef0123456789abcdef")

var fixedNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newMiniredis(t *testing.T) *harness {
	mr := miniredis.NewMiniRedis()
	if err := mr.StartAddr("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mr.Close)
	h := newHarness(t, mr.Addr())
	h.advance = mr.FastForward
	h.stop = mr.Close
	h.restart = func() {
		if err := mr.Restart(); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

func newRealRedis(t *testing.T) *harness {
	srv := redistest.Start(t)
	h := newHarness(t, srv.Addr)
	h.advance = time.Sleep
	h.stop = srv.Stop
	h.restart = srv.Restart
	return h
}

func newHarness(t *testing.T, addr string) *harness {
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	v, err := New(rdb, testKey, WithNow(func() time.Time { return fixedNow }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return &harness{v: v, rdb: rdb, ttl: 1500 * time.Millisecond, now: fixedNow}
}

func TestMiniredis(t *testing.T) { runVaultSuite(t, newMiniredis) }
func TestRealRedis(t *testing.T) { runVaultSuite(t, newRealRedis) }

func sampleRecord() *Record {
	return &Record{
		AccessToken:   "at-" + strings.Repeat("a", 40),
		TokenType:     "Bearer",
		RefreshToken:  "rt-" + strings.Repeat("r", 40),
		Scope:         "openid profile api",
		Subject:       "user-42",
		Name:          "Ada Lovelace",
		IssuedAt:      time.Date(2026, 2, 1, 10, 0, 0, 0, time.UTC),
		Expiry:        time.Date(2026, 2, 1, 10, 5, 0, 0, time.UTC),
		RefreshExpiry: time.Date(2026, 2, 2, 10, 0, 0, 0, time.UTC),
		Created:       time.Date(2026, 2, 1, 9, 0, 0, 0, time.UTC),
	}
}

// runVaultSuite is the conformance suite every Redis the vault runs on must
// pass. newHarness gives each subtest a vault on a server of its own, so
// subtests run in parallel and may stop their server.
func runVaultSuite(t *testing.T, newHarness func(t *testing.T) *harness) {
	ctx := context.Background()
	run := func(name string, f func(t *testing.T, h *harness)) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f(t, newHarness(t))
		})
	}

	run("PutGetRoundtrip", func(t *testing.T, h *harness) {
		want := sampleRecord()
		if err := h.v.Put(ctx, "sid-1", want, time.Hour); err != nil {
			t.Fatal(err)
		}
		got, err := h.v.Get(ctx, "sid-1")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Get = %+v; want %+v", got, want)
		}
		// Put replaces.
		want.AccessToken = "at-2"
		want.RefreshToken = ""
		want.Expiry = time.Time{}
		if err := h.v.Put(ctx, "sid-1", want, time.Hour); err != nil {
			t.Fatal(err)
		}
		if got, err = h.v.Get(ctx, "sid-1"); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("Get after replace = %+v, %v; want %+v", got, err, want)
		}
	})

	run("PutFillsZeroTimesFromClock", func(t *testing.T, h *harness) {
		rec := &Record{AccessToken: "at"}
		if err := h.v.Put(ctx, "sid", rec, time.Hour); err != nil {
			t.Fatal(err)
		}
		if !rec.Created.IsZero() || !rec.IssuedAt.IsZero() {
			t.Fatalf("Put modified its argument: %+v", rec)
		}
		got, err := h.v.Get(ctx, "sid")
		if err != nil {
			t.Fatal(err)
		}
		if !got.Created.Equal(h.now) || !got.IssuedAt.Equal(h.now) || !got.Expiry.IsZero() {
			t.Fatalf("Created, IssuedAt, Expiry = %v, %v, %v; want %v, %v, zero", got.Created, got.IssuedAt, got.Expiry, h.now, h.now)
		}
	})

	run("GetMissing", func(t *testing.T, h *harness) {
		if _, err := h.v.Get(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("err = %v; want ErrNotFound", err)
		}
	})

	run("Delete", func(t *testing.T, h *harness) {
		if err := h.v.Put(ctx, "sid", sampleRecord(), time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := h.v.Put(ctx, "other", sampleRecord(), time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := h.v.Delete(ctx, "sid"); err != nil {
			t.Fatal(err)
		}
		if _, err := h.v.Get(ctx, "sid"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get after Delete: err = %v; want ErrNotFound", err)
		}
		if _, err := h.v.Get(ctx, "other"); err != nil {
			t.Fatalf("Delete removed another session: %v", err)
		}
		if err := h.v.Delete(ctx, "sid"); err != nil {
			t.Fatalf("Delete of a missing record = %v; want nil", err)
		}
	})

	run("BadArguments", func(t *testing.T, h *harness) {
		cases := []struct {
			name string
			err  error
		}{
			{"Put ttl 0", h.v.Put(ctx, "sid", sampleRecord(), 0)},
			{"Put ttl<0", h.v.Put(ctx, "sid", sampleRecord(), -time.Second)},
			{"Put nil", h.v.Put(ctx, "sid", nil, time.Hour)},
			{"Put empty sid", h.v.Put(ctx, "", sampleRecord(), time.Hour)},
		}
		for _, c := range cases {
			if c.err == nil || errors.Is(c.err, ErrNotFound) || !strings.HasPrefix(c.err.Error(), "vault: ") {
				t.Errorf("%s: err = %v; want a vault: error", c.name, c.err)
			}
		}
		if _, err := h.v.TryLock(ctx, "sid", 0); err == nil {
			t.Error("TryLock lease 0: err = nil")
		}
		if _, err := h.v.MarkLoginUsed(ctx, "st", 0); err == nil || !strings.HasPrefix(err.Error(), "vault: ") {
			t.Errorf("MarkLoginUsed ttl 0: err = %v; want a vault: error", err)
		}
		if _, err := h.v.MarkLoginUsed(ctx, "", time.Hour); err == nil {
			t.Error("MarkLoginUsed empty state: err = nil")
		}
		if n, err := h.rdb.DBSize(ctx).Result(); err != nil || n != 0 {
			t.Fatalf("DBSIZE = %d, %v; rejected calls must store nothing", n, err)
		}
	})

	run("TTLExpiry", func(t *testing.T, h *harness) {
		if err := h.v.Put(ctx, "sid", sampleRecord(), h.ttl); err != nil {
			t.Fatal(err)
		}
		pttl, err := h.rdb.PTTL(ctx, h.v.sessionKey("sid")).Result()
		if err != nil || pttl <= 0 || pttl > h.ttl {
			t.Fatalf("PTTL = %v, %v; want in (0, %v]", pttl, err, h.ttl)
		}
		if _, err := h.v.Get(ctx, "sid"); err != nil {
			t.Fatalf("Get before expiry: %v", err)
		}
		h.advance(h.ttl + 200*time.Millisecond)
		if _, err := h.v.Get(ctx, "sid"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get after expiry: err = %v; want ErrNotFound", err)
		}
	})

	run("StoresNoSecretInTheClear", func(t *testing.T, h *harness) {
		rec := sampleRecord()
		for _, sid := range []string{"sid-a", "sid-b"} {
			if err := h.v.Put(ctx, sid, rec, time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := h.v.MarkLoginUsed(ctx, "state-a", time.Hour); err != nil {
			t.Fatal(err)
		}
		keys, err := h.rdb.Keys(ctx, "*").Result()
		if err != nil || len(keys) != 4 {
			t.Fatalf("KEYS = %q, %v; want 4 keys (2 records, a used login, the subject's index)", keys, err)
		}
		var vals []string
		for _, k := range keys {
			if !strings.HasPrefix(k, "tether:s:") && !strings.HasPrefix(k, "tether:l:") && !strings.HasPrefix(k, "tether:ix:sub:") {
				t.Errorf("key %q outside the documented layout", k)
			}
			for _, id := range []string{"sid-a", "sid-b", "state-a", rec.Subject} {
				if strings.Contains(k, id) {
					t.Errorf("key %q shows the id %q", k, id)
				}
			}
			if strings.HasPrefix(k, "tether:ix:") {
				members, err := h.rdb.ZRange(ctx, k, 0, -1).Result()
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range members {
					if m != HashID("sid-a") && m != HashID("sid-b") {
						t.Errorf("index %q holds %q, not a hashed session id", k, m)
					}
				}
				continue
			}
			val, err := h.rdb.Get(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, secret := range []string{rec.AccessToken, rec.RefreshToken, rec.Subject} {
				if strings.Contains(val, secret) {
					t.Errorf("value of %q shows %q", k, secret)
				}
			}
			vals = append(vals, val)
		}
		a, _ := h.rdb.Get(ctx, h.v.sessionKey("sid-a")).Result()
		b, _ := h.rdb.Get(ctx, h.v.sessionKey("sid-b")).Result()
		if a == b || a[headerSize:headerSize+12] == b[headerSize:headerSize+12] {
			t.Error("two writes of one record share a ciphertext or nonce")
		}
	})

	run("TamperedCiphertextIsNotFound", func(t *testing.T, h *harness) {
		key := h.v.sessionKey("sid")
		cases := []struct {
			name   string
			mangle func([]byte) []byte
		}{
			{"flipped ciphertext bit", func(b []byte) []byte { b[len(b)/2] ^= 1; return b }},
			{"flipped nonce bit", func(b []byte) []byte { b[0] ^= 0x80; return b }},
			{"flipped tag bit", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }},
			{"truncated", func(b []byte) []byte { return b[:len(b)-1] }},
			{"too short", func(b []byte) []byte { return b[:5] }},
			{"empty", func([]byte) []byte { return nil }},
			{"plain JSON", func([]byte) []byte { return []byte(`{"at":"forged"}`) }},
		}
		for _, c := range cases {
			if err := h.v.Put(ctx, "sid", sampleRecord(), time.Hour); err != nil {
				t.Fatal(err)
			}
			raw, err := h.rdb.Get(ctx, key).Bytes()
			if err != nil {
				t.Fatal(err)
			}
			if err := h.rdb.Set(ctx, key, c.mangle(raw), time.Hour).Err(); err != nil {
				t.Fatal(err)
			}
			_, err = h.v.Get(ctx, "sid")
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("%s: err = %v; want ErrNotFound", c.name, err)
			}
		}
		// The caller may overwrite what did not authenticate.
		if err := h.v.Put(ctx, "sid", sampleRecord(), time.Hour); err != nil {
			t.Fatal(err)
		}
		if _, err := h.v.Get(ctx, "sid"); err != nil {
			t.Fatalf("Get after overwrite: %v", err)
		}
	})

	run("CiphertextMovedToAnotherKeyIsNotFound", func(t *testing.T, h *harness) {
		if err := h.v.Put(ctx, "victim", sampleRecord(), time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := h.v.Put(ctx, "attacker", &Record{AccessToken: "mine"}, time.Hour); err != nil {
			t.Fatal(err)
		}
		raw, err := h.rdb.Get(ctx, h.v.sessionKey("victim")).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if err := h.rdb.Set(ctx, h.v.sessionKey("attacker"), raw, time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := h.v.Get(ctx, "attacker"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get of a moved record: err = %v; want ErrNotFound", err)
		}
		// Another prefix is another key, too.
		other, err := New(h.rdb, testKey, WithPrefix("other:"))
		if err != nil {
			t.Fatal(err)
		}
		if err := h.rdb.Set(ctx, other.sessionKey("victim"), raw, time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := other.Get(ctx, "victim"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get under another prefix: err = %v; want ErrNotFound", err)
		}
	})

	run("WrongKeyIsNotFound", func(t *testing.T, h *harness) {
		if err := h.v.Put(ctx, "sid", sampleRecord(), time.Hour); err != nil {
			t.Fatal(err)
		}
		other, err := New(h.rdb, []byte("another key, also 32 bytes long!"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := other.Get(ctx, "sid"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get: err = %v; want ErrNotFound", err)
		}
	})

	run("MarkLoginUsedOnce", func(t *testing.T, h *harness) {
		if used, err := h.v.LoginUsed(ctx, "state"); err != nil || used {
			t.Fatalf("LoginUsed before = %v, %v; want false", used, err)
		}
		if first, err := h.v.MarkLoginUsed(ctx, "state", time.Minute); err != nil || !first {
			t.Fatalf("first MarkLoginUsed = %v, %v; want true", first, err)
		}
		if used, err := h.v.LoginUsed(ctx, "state"); err != nil || !used {
			t.Fatalf("LoginUsed after = %v, %v; want true", used, err)
		}
		if first, err := h.v.MarkLoginUsed(ctx, "state", time.Minute); err != nil || first {
			t.Fatalf("second MarkLoginUsed = %v, %v; want false", first, err)
		}
		// A used state and a session with the same id do not collide.
		if err := h.v.Put(ctx, "same", sampleRecord(), time.Minute); err != nil {
			t.Fatal(err)
		}
		if used, err := h.v.LoginUsed(ctx, "same"); err != nil || used {
			t.Fatalf("LoginUsed read a session: %v, %v", used, err)
		}
		if _, err := h.v.Get(ctx, "state"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get read a used login: err = %v", err)
		}
	})

	run("MarkLoginUsedExpires", func(t *testing.T, h *harness) {
		if _, err := h.v.MarkLoginUsed(ctx, "state", h.ttl); err != nil {
			t.Fatal(err)
		}
		h.advance(h.ttl + 200*time.Millisecond)
		if used, err := h.v.LoginUsed(ctx, "state"); err != nil || used {
			t.Fatalf("LoginUsed after the ttl = %v, %v; want false", used, err)
		}
	})

	run("MarkLoginUsedConcurrent", func(t *testing.T, h *harness) {
		errUsed := errors.New("already used")
		wins, misses, others := race(20, func() error {
			first, err := h.v.MarkLoginUsed(ctx, "state", time.Minute)
			if err == nil && !first {
				return errUsed
			}
			return err
		}, errUsed)
		if wins != 1 || misses != 19 || len(others) > 0 {
			t.Fatalf("wins, losses, other errors = %d, %d, %v; want 1, 19, none", wins, misses, others)
		}
	})

	lockSuite(t, run)
	outageSuite(t, run)
	circuitSuite(t, run)
	discoverySuite(t, run)
	rotationSuite(t, run)
	endedSuite(t, run)
	throttleSuite(t, run)
	touchSuite(t, run)
	indexSuite(t, run)
}

// race runs f in n goroutines released at once and counts the nil results,
// the results that are errors.Is(err, lose), and collects the rest.
func race(n int, f func() error, lose error) (wins, losses int, others []error) {
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	for range n {
		wg.Go(func() {
			<-start
			err := f()
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, lose):
				losses++
			default:
				others = append(others, err)
			}
		})
	}
	close(start)
	wg.Wait()
	return wins, losses, others
}

// TestRecordBinaryForm: the binary form round-trips, refuses anything
// malformed, and records written as JSON before it existed still read.
func TestRecordBinaryForm(t *testing.T) {
	now := time.Date(2026, 2, 1, 10, 0, 0, 123456789, time.UTC)
	rec := Record{AccessToken: "at", TokenType: "Bearer", RefreshToken: "rt", Scope: "s", Subject: "sub", Name: "Ada",
		IssuedAt: now, Expiry: now.Add(time.Minute), Created: now.Add(-time.Hour)}
	b, err := rec.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got Record
	if err := got.UnmarshalBinary(b); err != nil || got != rec {
		t.Fatalf("round trip: %+v, %v; want %+v", got, err, rec)
	}
	for i := range len(b) {
		if err := new(Record).UnmarshalBinary(b[:i]); err == nil {
			t.Errorf("a record cut at %d of %d bytes decoded", i, len(b))
		}
	}
	if err := new(Record).UnmarshalBinary(append(b, 0)); err == nil {
		t.Error("trailing bytes decoded")
	}
	if jb, _ := json.Marshal(rec); len(b) >= len(jb) {
		t.Errorf("binary form %d bytes, JSON %d", len(b), len(jb))
	}

	v, err := Open(t.Context(), "", make([]byte, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	type legacy Record // the same fields, no binary methods: stored as JSON
	if err := v.store(t.Context(), v.sessionKey("old"), "old", legacy(rec), time.Minute); err != nil {
		t.Fatal(err)
	}
	if old, err := v.Get(t.Context(), "old"); err != nil || *old != rec {
		t.Errorf("a JSON record from before: %+v, %v; want %+v", old, err, rec)
	}
}
