package bff

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/tetherauth/tether/shared/wire"
)

// jsonStrings are strings that exercise every escape encoding/json makes.
var jsonStrings = []string{
	"", "a", "ya29.a0AfH6SMB-token_value.with~chars/+=", "Bearer",
	"openid profile email", `"quoted"`, `back\slash`, "\b\f\n\r\t", "\x00\x01\x1f\x7f",
	"<script>&amp;</script>", "\u2028\u2029", "é ü 日本 🙂", "\xff\xfe", "a\xc3", "\xed\xa0\x80",
	"\xf4\x90\x80\x80", "mixed <\u2028>\x00\xff\"", strings.Repeat("x", 3000),
}

// TestAppendTokenResponse: the hand-written encoder writes exactly what
// encoding/json writes, for edge strings, numbers and flags, and for many
// random answers.
func TestAppendTokenResponse(t *testing.T) {
	check := func(r wire.TokenResponse) {
		t.Helper()
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendTokenResponse(nil, &r); !bytes.Equal(got, want) {
			t.Fatalf("appendTokenResponse(%+v)\n got %s\nwant %s", r, got, want)
		}
	}
	ints := []int64{0, 1, -1, 59, 300, 1767225600, math.MaxInt64, math.MinInt64}
	for _, s := range jsonStrings {
		for _, n := range ints {
			check(wire.TokenResponse{AccessToken: s, TokenType: wire.TokenTypeBearer, ExpiresAt: n, ExpiresIn: -n, RefreshBuffer: n / 2, Scope: s})
			check(wire.TokenResponse{AccessToken: "t", TokenType: s, ExpiresAt: n, Degraded: true, RetryAfter: n})
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune{'a', 'Z', '0', '"', '\\', '<', '>', '&', '\n', '\x00', '\x1f', 'é', '\u2028', '\u2029', '🙂', utf8.RuneError}
	randString := func() string {
		var sb strings.Builder
		for range rng.IntN(20) {
			if rng.IntN(8) == 0 {
				sb.WriteByte(byte(rng.IntN(256))) // raw bytes, often invalid UTF-8
				continue
			}
			sb.WriteRune(alphabet[rng.IntN(len(alphabet))])
		}
		return sb.String()
	}
	for range 20000 {
		check(wire.TokenResponse{
			AccessToken: randString(), TokenType: randString(), Scope: randString(),
			ExpiresAt: rng.Int64() - rng.Int64(), ExpiresIn: rng.Int64N(4000), RefreshBuffer: rng.Int64N(400),
			Degraded: rng.IntN(2) == 0, RetryAfter: rng.Int64N(3) * rng.Int64N(100),
		})
	}
}

// FuzzTokenJSON: for any strings and numbers, the hand-written
// encoder writes what encoding/json writes.
func FuzzTokenJSON(f *testing.F) {
	for _, s := range jsonStrings {
		f.Add(s, wire.TokenTypeBearer, "profile", int64(1767225600), int64(59), false, int64(0))
	}
	f.Add("tok", "Bearer", "", int64(0), int64(0), true, int64(3))
	f.Fuzz(func(t *testing.T, access, typ, scope string, at, in int64, degraded bool, retry int64) {
		r := wire.TokenResponse{AccessToken: access, TokenType: typ, Scope: scope, ExpiresAt: at, ExpiresIn: in, RefreshBuffer: at ^ in, Degraded: degraded, RetryAfter: retry}
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendTokenResponse(nil, &r); !bytes.Equal(got, want) {
			t.Fatalf("appendTokenResponse(%+v)\n got %s\nwant %s", r, got, want)
		}
	})
}

// TestWriteTokenResponse: the answer on the wire (status, Content-Type,
// body) is the one c.JSON writes.
func TestWriteTokenResponse(t *testing.T) {
	r := wire.TokenResponse{AccessToken: "at<&>", TokenType: wire.TokenTypeBearer, ExpiresAt: 1767225600, ExpiresIn: 60, RefreshBuffer: 30, Scope: "profile", Degraded: true, RetryAfter: 2}
	answer := func(write func(c *gin.Context)) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		c, _ := gin.CreateTestContext(w)
		write(c)
		return w
	}
	want := answer(func(c *gin.Context) { c.JSON(http.StatusOK, r) })
	for i := range 3 { // again, with a buffer from the pool
		got := answer(func(c *gin.Context) { writeTokenResponse(c.Writer, &r) })
		if got.Code != want.Code || got.Body.String() != want.Body.String() ||
			got.Header().Get("Content-Type") != want.Header().Get("Content-Type") {
			t.Fatalf("answer %d: %d %q %q; want %d %q %q", i, got.Code, got.Header().Get("Content-Type"), got.Body,
				want.Code, want.Header().Get("Content-Type"), want.Body)
		}
	}
}
