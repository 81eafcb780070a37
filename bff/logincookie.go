package bff

import (
	"cmp"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/tetherauth/tether/shared/wire"
)

// A login in progress lives in the browser, not in Redis: /bff/login
// writes nothing on the server, so unauthenticated requests cannot fill
// it. Each login has its own cookie, named after a hash of its state (two
// tabs logging in at once do not overwrite each other), encrypted and
// authenticated with keys derived from the session keys for this purpose
// (securecookie: AES-CTR, then HMAC-SHA256 over the name, a timestamp and
// the value), limited to the callback's path and ten minutes. A second,
// small cookie on /bff/login lists the logins started in the last ten
// minutes, so that a browser holds at most maxLogins login cookies: a
// sixth login drops the oldest.

// maxLogins bounds the login cookies one browser holds.
const maxLogins = 5

// maxReturnTo bounds return_to, which rides in the login cookie.
const maxReturnTo = 512

// pendingLogin is what a login keeps in its cookie between /bff/login and
// /bff/callback (in its binary form, MarshalBinary).
type pendingLogin struct {
	State    string
	Verifier string
	Nonce    string
	ReturnTo string
	Created  int64 // Unix seconds by Config.Now
}

// loginSerializer is the login cookies' securecookie serializer: a
// compact binary form for a pendingLogin, in which nothing is escaped
// (JSON would turn each < or & of return_to into six bytes, and a cookie
// over 4 KB is dropped), and JSON for the index.
type loginSerializer struct{}

// Serialize encodes src.
func (loginSerializer) Serialize(src any) ([]byte, error) {
	if l, ok := src.(*pendingLogin); ok {
		return l.MarshalBinary()
	}
	return json.Marshal(src)
}

// Deserialize decodes src into dst.
func (loginSerializer) Deserialize(src []byte, dst any) error {
	if l, ok := dst.(*pendingLogin); ok {
		return l.UnmarshalBinary(src)
	}
	return json.Unmarshal(src, dst)
}

// pendingLoginV1 is the first byte of a pendingLogin's binary form.
const pendingLoginV1 = 1

// MarshalBinary encodes l: a version byte, State, Verifier, Nonce and
// ReturnTo each as a uvarint length and bytes, then Created as a varint.
func (l *pendingLogin) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 1+4*binary.MaxVarintLen16+len(l.State)+len(l.Verifier)+len(l.Nonce)+len(l.ReturnTo)+binary.MaxVarintLen64)
	b = append(b, pendingLoginV1)
	for _, f := range []string{l.State, l.Verifier, l.Nonce, l.ReturnTo} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return binary.AppendVarint(b, l.Created), nil
}

// UnmarshalBinary decodes what MarshalBinary wrote.
func (l *pendingLogin) UnmarshalBinary(b []byte) error {
	bad := errors.New("bff: malformed login cookie")
	if len(b) == 0 || b[0] != pendingLoginV1 {
		return bad
	}
	b = b[1:]
	var fields [4]string
	for i := range fields {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return bad
		}
		fields[i], b = string(b[k:k+int(n)]), b[k+int(n):]
	}
	created, k := binary.Varint(b)
	if k <= 0 || k != len(b) {
		return bad
	}
	*l = pendingLogin{State: fields[0], Verifier: fields[1], Nonce: fields[2], ReturnTo: fields[3], Created: created}
	return nil
}

// loginIndexEntry names one login cookie in the index cookie.
type loginIndexEntry struct {
	ID      string `json:"i"` // the cookie name's suffix
	Created int64  `json:"c"` // Unix seconds by Config.Now
}

// loginCookies issues, reads and clears login cookies.
type loginCookies struct {
	codecs []securecookie.Codec
	prefix string // name of a login cookie, before its id
	index  string // name of the index cookie
	secure bool
	now    func() time.Time
	// The paths of the callback and of the login (the cookies' Path):
	// under Config.BasePath.
	callbackPath, loginPath string
}

// newLoginCookies derives the login cookies' keys from the session keys
// (the first signs, all verify).
func newLoginCookies(sessionKeys [][]byte, secure bool, now func() time.Time) *loginCookies {
	var pairs [][]byte
	for _, k := range sessionKeys {
		pairs = append(pairs, derive(k, "tether login cookie hmac"), derive(k, "tether login cookie aes"))
	}
	codecs := securecookie.CodecsFromPairs(pairs...)
	for _, c := range codecs {
		sc := c.(*securecookie.SecureCookie)
		sc.MaxAge(int(loginTTL / time.Second))
		sc.SetSerializer(loginSerializer{})
	}
	lc := &loginCookies{codecs: codecs, prefix: "tether_login_", index: "tether_logins", secure: secure, now: now,
		callbackPath: wire.PathCallback, loginPath: wire.PathLogin}
	if secure {
		// Path is not /, so __Host- is out; __Secure- at least keeps
		// plain-http pages from setting it.
		lc.prefix, lc.index = "__Secure-"+lc.prefix, "__Secure-"+lc.index
	}
	return lc
}

// loginID names a login's cookie: 96 bits of SHA-256 of its state.
func loginID(state string) string {
	sum := sha256.Sum256([]byte(state))
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// cookie is a login cookie or the index with this name, value and path.
func (lc *loginCookies) cookie(name, value, path string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name: name, Value: value, Path: path, MaxAge: maxAge,
		Secure: lc.secure, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	}
}

// issue sets the cookie of login l and records it in the index, dropping
// the cookies of logins older than loginTTL or beyond maxLogins.
func (lc *loginCookies) issue(w http.ResponseWriter, r *http.Request, l *pendingLogin) error {
	now := lc.now().Unix()
	ttl := int64(loginTTL / time.Second)
	var index []loginIndexEntry
	if c, err := r.Cookie(lc.index); err == nil {
		if securecookie.DecodeMulti(lc.index, c.Value, &index, lc.codecs...) != nil {
			index = nil // tampered, expired or under a retired key: start over
		}
	}
	index = slices.DeleteFunc(index, func(e loginIndexEntry) bool {
		return now-e.Created >= ttl || now < e.Created || len(e.ID) != 16
	})
	slices.SortStableFunc(index, func(a, b loginIndexEntry) int { return cmp.Compare(a.Created, b.Created) })
	for len(index) >= maxLogins {
		http.SetCookie(w, lc.cookie(lc.prefix+index[0].ID, "", lc.callbackPath, -1))
		index = index[1:]
	}
	value, err := securecookie.EncodeMulti(lc.prefix+loginID(l.State), l, lc.codecs...)
	if err != nil {
		return err
	}
	index = append(index, loginIndexEntry{ID: loginID(l.State), Created: l.Created})
	list, err := securecookie.EncodeMulti(lc.index, index, lc.codecs...)
	if err != nil {
		return err
	}
	http.SetCookie(w, lc.cookie(lc.prefix+loginID(l.State), value, lc.callbackPath, int(ttl)))
	http.SetCookie(w, lc.cookie(lc.index, list, lc.loginPath, int(ttl)))
	return nil
}

// take returns the login whose state is state, from this browser's cookie,
// and clears that cookie; nil when there is none, it does not
// authenticate, it is for another state, or it is older than loginTTL.
func (lc *loginCookies) take(w http.ResponseWriter, r *http.Request, state string) *pendingLogin {
	if state == "" || len(state) > 128 {
		return nil
	}
	name := lc.prefix + loginID(state)
	c, err := r.Cookie(name)
	if err != nil {
		return nil
	}
	http.SetCookie(w, lc.cookie(name, "", lc.callbackPath, -1))
	var l pendingLogin
	if securecookie.DecodeMulti(name, c.Value, &l, lc.codecs...) != nil {
		return nil
	}
	if subtle.ConstantTimeCompare([]byte(l.State), []byte(state)) != 1 {
		return nil
	}
	if age := lc.now().Unix() - l.Created; age < 0 || age > int64(loginTTL/time.Second) {
		return nil
	}
	return &l
}
