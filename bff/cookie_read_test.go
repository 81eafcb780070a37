package bff

import (
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/gorilla/securecookie"
)

const testCookie = "tether_session"

// cookieRequest is a request carrying the Cookie header lines.
func cookieRequest(lines ...string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/bff/token", nil)
	for _, l := range lines {
		r.Header.Add("Cookie", l)
	}
	return r
}

// checkCookieValue fails when cookieValue and net/http disagree on the
// first cookie called name.
func checkCookieValue(t *testing.T, name string, lines ...string) {
	t.Helper()
	r := cookieRequest(lines...)
	got, ok := cookieValue(r, name)
	ck, err := r.Cookie(name)
	if ok != (err == nil) || (ok && got != ck.Value) {
		t.Fatalf("cookieValue(%q, %q) = %q, %v; net/http: %v, %v", lines, name, got, ok, ck, err)
	}
}

// TestCookieValue: the allocation-free cookie lookup finds what
// r.Cookie finds, for awkward headers and many random ones.
func TestCookieValue(t *testing.T) {
	for _, lines := range [][]string{
		nil, {""}, {"tether_session=abc"}, {"a=1; tether_session=abc; b=2"}, {" tether_session = abc "},
		{`tether_session="abc"`}, {`tether_session="abc`}, {`tether_session=a"bc`}, {"tether_session=a\\bc; tether_session=ok"},
		{"tether_session=a;b"}, {"tether_session"}, {"tether_session="}, {"tether_session_x=1; xtether_session=2"},
		{"a=1", "tether_session=second-line"}, {"tether_session=\x7f", "tether_session=next"}, {";;; ;tether_session=x;;"},
		{"tether_session=é"}, {"\ttether_session=tab\t"}, {"TETHER_SESSION=case"}, {"tether_session=1=2"},
		{strings.Repeat("a=1;", 3001) + "tether_session=many"}, {strings.Repeat("a=1;", 2990) + "tether_session=fewer"},
	} {
		checkCookieValue(t, testCookie, lines...)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	pieces := []string{"tether_session", "=", ";", " ", "\t", `"`, "\\", "a", "Zz9", "x=y", "é", "\x00", "\x7f", "-_."}
	for range 20000 {
		var lines []string
		for range 1 + rng.IntN(2) {
			var sb strings.Builder
			for range rng.IntN(12) {
				sb.WriteString(pieces[rng.IntN(len(pieces))])
			}
			lines = append(lines, sb.String())
		}
		checkCookieValue(t, testCookie, lines...)
	}
}

// FuzzCookieValue: for any Cookie header, the allocation-free lookup
// agrees with net/http.
func FuzzCookieValue(f *testing.F) {
	f.Add("a=1; tether_session=abc; b=2", "")
	f.Add(`tether_session="abc"`, "tether_session=x")
	f.Fuzz(func(t *testing.T, line1, line2 string) {
		checkCookieValue(t, testCookie, line1, line2)
	})
}

// testStore is a session cookie store under key (and, verifying only,
// older keys), with cookies valid for maxAge seconds.
func testStore(maxAge int, keys ...[]byte) *cookieStore {
	var pairs [][]byte
	for _, k := range keys {
		pairs = append(pairs, derive(k, "tether cookie hmac"), derive(k, "tether cookie aes"))
	}
	cs := newCookieStore(pairs...)
	cs.MaxAge(maxAge)
	return cs
}

// encodeCookie is securecookie's own encoding of values under key.
func encodeCookie(t *testing.T, key []byte, values map[any]any) string {
	t.Helper()
	v, err := securecookie.EncodeMulti(testCookie, values,
		securecookie.CodecsFromPairs(derive(key, "tether cookie hmac"), derive(key, "tether cookie aes"))...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestVerifiedCookies: the session cookie is read the same whether it is
// remembered or not: a forged, tampered or expired cookie names no
// session, only cookies that verified are remembered, and the map stays
// within its bound.
func TestVerifiedCookies(t *testing.T) {
	key, old, other := randomKey(), randomKey(), randomKey()
	cs := testStore(3600, key, old)
	read := func(value string) (string, string) {
		return cs.session(cookieRequest(testCookie+"="+value), testCookie)
	}

	real := encodeCookie(t, key, map[any]any{keySID: "sid-1"})
	for i := range 3 {
		if sid, ended := read(real); sid != "sid-1" || ended != "" {
			t.Fatalf("read %d = %q, %q; want sid-1", i, sid, ended)
		}
	}
	if sid, ended := read(encodeCookie(t, key, map[any]any{keyEnded: "revoked"})); sid != "" || ended != "revoked" {
		t.Fatalf("ended cookie = %q, %q; want the reason revoked", sid, ended)
	}
	if sid, _ := read(encodeCookie(t, old, map[any]any{keySID: "sid-old"})); sid != "sid-old" {
		t.Fatalf("a cookie under the previous key = %q; want sid-old", sid)
	}
	n := len(cs.verified.m)
	if n != 3 {
		t.Fatalf("%d cookies remembered; want 3", n)
	}
	forged := encodeCookie(t, other, map[any]any{keySID: "sid-1"})
	tampered := real[:len(real)-4] + "AAA="
	if real[len(real)-4:] == "AAA=" {
		tampered = real[:len(real)-4] + "BBB="
	}
	for _, bad := range []string{forged, tampered, real[:len(real)/2], "", "MTcwMDAwMDAwMHxkZWFkYmVlZnw="} {
		for range 2 {
			if sid, ended := read(bad); sid != "" || ended != "" {
				t.Fatalf("cookie %q = %q, %q; want nothing", bad, sid, ended)
			}
		}
	}
	withInt := encodeCookie(t, key, map[any]any{keySID: "sid-2", "n": 7})
	if sid, _ := read(withInt); sid != "sid-2" {
		t.Fatalf("cookie with another value = %q; want sid-2", sid)
	}
	if len(cs.verified.m) != n {
		t.Fatalf("%d cookies remembered after bad and unusual ones; want %d", len(cs.verified.m), n)
	}

	// Through gorilla's session, as the session middleware reads it.
	s, err := cs.Get(cookieRequest(testCookie+"="+real), testCookie)
	if err != nil || s.IsNew || s.Values[keySID] != "sid-1" || len(s.Values) != 1 {
		t.Fatalf("gorilla session = %v, new %v, %v; want sid-1", s.Values, s.IsNew, err)
	}
	s, err = cs.Get(cookieRequest(testCookie+"="+forged), testCookie)
	if err == nil || !s.IsNew || len(s.Values) != 0 {
		t.Fatalf("gorilla session of a forged cookie = %v, new %v, %v; want a new one and the error", s.Values, s.IsNew, err)
	}

	// The bound.
	for i := range verifiedCookiesSize + 20 {
		read(encodeCookie(t, key, map[any]any{keySID: "sid-" + strconv.Itoa(i)}))
	}
	if got := len(cs.verified.m); got > verifiedCookiesSize {
		t.Fatalf("%d cookies remembered; want at most %d", got, verifiedCookiesSize)
	}
	if sid, _ := read(real); sid != "sid-1" {
		t.Fatalf("after evictions: %q; want sid-1", sid)
	}
}

// TestVerifiedCookieAge: a remembered cookie is refused once its signed
// timestamp is older than MaxAge, in the same second as securecookie
// itself refuses it.
func TestVerifiedCookieAge(t *testing.T) {
	key := randomKey()
	cs := testStore(1, key)
	plain := securecookie.CodecsFromPairs(derive(key, "tether cookie hmac"), derive(key, "tether cookie aes"))
	for _, c := range plain {
		c.(*securecookie.SecureCookie).MaxAge(1)
	}
	real := encodeCookie(t, key, map[any]any{keySID: "sid-1"})
	r := cookieRequest(testCookie + "=" + real)
	if sid, _ := cs.session(r, testCookie); sid != "sid-1" {
		t.Fatalf("fresh cookie = %q; want sid-1", sid)
	}
	deadline := time.Now().Add(5 * time.Second)
	for compared := 0; ; {
		t0 := time.Now().Unix()
		var v map[any]any
		plainErr := securecookie.DecodeMulti(testCookie, real, &v, plain...)
		sid, _ := cs.session(r, testCookie)
		if time.Now().Unix() == t0 { // both judged in the same second
			compared++
			if (plainErr == nil) != (sid == "sid-1") {
				t.Fatalf("securecookie says %v, the store %q", plainErr, sid)
			}
			if plainErr != nil {
				if compared < 2 {
					t.Fatalf("compared only %d times before expiry", compared)
				}
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the cookie never expired")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestVerifiedCookieKeepsOnlyTheValue: a remembered cookie keeps its
// value, not the Cookie header it came in (up to 64 KiB of other cookies).
func TestVerifiedCookieKeepsOnlyTheValue(t *testing.T) {
	key := randomKey()
	cs := testStore(3600, key)
	real := encodeCookie(t, key, map[any]any{keySID: "sid-1"})
	header := strings.Repeat("x", 32<<10) + "=1; " + testCookie + "=" + real
	if sid, _ := cs.session(cookieRequest(header), testCookie); sid != "sid-1" {
		t.Fatalf("session = %q; want sid-1", sid)
	}
	for k := range cs.verified.m {
		if k != real {
			t.Fatalf("remembered %q; want the value", k)
		}
		if unsafe.StringData(k) == unsafe.StringData(header[len(header)-len(real):]) {
			t.Fatal("the remembered value shares the request header's memory")
		}
	}
}
