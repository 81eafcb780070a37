package vault

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"
	"time"
)

var (
	oldKey = []byte("the key being rotated out, 32 b!")
	newKey = []byte("the key rotated in, also 32 byte")
)

// legacySeal seals plain the way vaults did before key ids: nonce ||
// ciphertext || tag, the Redis key as additional data.
func legacySeal(t *testing.T, key []byte, redisKey string, plain []byte) []byte {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	return aead.Seal(nonce, nonce, plain, []byte(redisKey))
}

// rotationSuite is the part of the conformance suite about key ids and
// rotating the vault key.
func rotationSuite(t *testing.T, run func(string, func(*testing.T, *harness))) {
	ctx := context.Background()

	run("SealedValuesNameTheirKey", func(t *testing.T, h *harness) {
		if err := h.v.Put(ctx, "sid", sampleRecord(), time.Hour); err != nil {
			t.Fatal(err)
		}
		raw, err := h.rdb.Get(ctx, h.v.sessionKey("sid")).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		id, err := KeyID(testKey)
		if err != nil {
			t.Fatal(err)
		}
		if raw[0] != sealFormat || hex.EncodeToString(raw[1:headerSize]) != id {
			t.Fatalf("sealed value starts %x; want %02x then the key id %s", raw[:headerSize], sealFormat, id)
		}
		// The header is authenticated: another id, or no header, does not open.
		for name, mangle := range map[string]func([]byte) []byte{
			"format byte": func(b []byte) []byte { b[0] ^= 0x40; return b },
			"key id":      func(b []byte) []byte { b[2] ^= 1; return b },
			"header cut":  func(b []byte) []byte { return b[headerSize:] },
		} {
			b := mangle(append([]byte(nil), raw...))
			if err := h.rdb.Set(ctx, h.v.sessionKey("sid"), b, time.Hour).Err(); err != nil {
				t.Fatal(err)
			}
			if _, err := h.v.Get(ctx, "sid"); !errors.Is(err, ErrNotFound) {
				t.Errorf("%s changed: err = %v; want ErrNotFound", name, err)
			}
		}
	})

	run("RotationKeepsEveryRecord", func(t *testing.T, h *harness) {
		before, err := New(h.rdb, oldKey)
		if err != nil {
			t.Fatal(err)
		}
		// Records sealed under the old key: one as vaults write them now,
		// one as they wrote them before key ids, and a login in progress.
		want := sampleRecord()
		if err := before.Put(ctx, "current-format", want, time.Hour); err != nil {
			t.Fatal(err)
		}
		plain, _ := want.MarshalBinary()
		if err := h.rdb.Set(ctx, before.sessionKey("old-format"), legacySeal(t, oldKey, before.sessionKey("old-format"), plain), time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
		if got, err := before.Get(ctx, "old-format"); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("a record from before key ids: %+v, %v", got, err)
		}

		rotated, err := New(h.rdb, newKey, WithPreviousKeys(oldKey))
		if err != nil {
			t.Fatal(err)
		}
		for _, sid := range []string{"current-format", "old-format"} {
			if got, err := rotated.Get(ctx, sid); err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("after the rotation, %s: %+v, %v; want the record", sid, got, err)
			}
		}
		// What the rotated vault writes is sealed under the new key only.
		if err := rotated.Put(ctx, "current-format", want, time.Hour); err != nil {
			t.Fatal(err)
		}
		if _, err := before.Get(ctx, "current-format"); !errors.Is(err, ErrNotFound) {
			t.Errorf("the old key opens a record written after the rotation: %v", err)
		}
		onlyNew, err := New(h.rdb, newKey)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := onlyNew.Get(ctx, "current-format"); err != nil {
			t.Errorf("the new key alone: %v", err)
		}
		if _, err := onlyNew.Get(ctx, "old-format"); !errors.Is(err, ErrNotFound) {
			t.Errorf("a record sealed under a dropped key: err = %v; want ErrNotFound", err)
		}
	})

	run("BadPreviousKey", func(t *testing.T, h *harness) {
		if _, err := New(h.rdb, newKey, WithPreviousKeys(oldKey, oldKey[:16])); err == nil {
			t.Fatal("a 16-byte previous key was accepted")
		}
	})
}
