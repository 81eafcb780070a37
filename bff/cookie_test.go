package bff

import (
	"testing"

	"github.com/gorilla/securecookie"
)

// TestCookieMemo: the memoized gob step decodes like gob, hands out copies,
// and never lets a cookie through that securecookie itself would refuse.
func TestCookieMemo(t *testing.T) {
	key, other := randomKey(), randomKey()
	cs := newCookieStore(derive(key, "hmac"), derive(key, "aes"))
	codecs := cs.Codecs
	plain := securecookie.CodecsFromPairs(derive(key, "hmac"), derive(key, "aes")) // gob, no memo
	forged := securecookie.CodecsFromPairs(derive(other, "hmac"), derive(other, "aes"))

	enc, err := securecookie.EncodeMulti("tether_session", map[any]any{keySID: "sid-1"}, plain...)
	if err != nil {
		t.Fatal(err)
	}
	decode := func(cookie string) (map[any]any, error) {
		v := map[any]any{}
		return v, securecookie.DecodeMulti("tether_session", cookie, &v, codecs...)
	}
	for i := range 3 {
		v, err := decode(enc)
		if err != nil || len(v) != 1 || v[keySID] != "sid-1" {
			t.Fatalf("decode %d = %v, %v; want sid-1", i, v, err)
		}
		v[keySID] = "changed by a handler" // must not reach the memo
	}
	bad, _ := securecookie.EncodeMulti("tether_session", map[any]any{keySID: "sid-1"}, forged...)
	if v, err := decode(bad); err == nil {
		t.Errorf("a cookie under another key decoded to %v", v)
	}
	tampered := enc[:len(enc)-2] + "AA"
	if v, err := decode(tampered); err == nil {
		t.Errorf("a tampered cookie decoded to %v", v)
	}

	// Values that are not all strings are decoded each time, not kept.
	withInt, _ := securecookie.EncodeMulti("tether_session", map[any]any{"n": 7}, plain...)
	for range 2 {
		if v, err := decode(withInt); err != nil || v["n"] != 7 {
			t.Fatalf("decode = %v, %v; want n=7", v, err)
		}
	}
}
