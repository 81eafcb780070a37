package bff

import (
	"encoding/base64"
	"errors"
	"maps"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gorilla/securecookie"
	gsessions "github.com/gorilla/sessions"
)

// cookieStore is gin-contrib's cookie store (gorilla's CookieStore: HMAC,
// AES, a signed timestamp, gob), made cheap to read. The cookie format is
// unchanged: cookies written before read, and what it writes reads
// everywhere.
//
//   - A cookie value that securecookie verified (MAC, key, signed
//     timestamp, decryption) is remembered with what it holds and when it
//     was signed (verified, a bounded map). The same value again is the
//     same bytes that were verified: it is answered from the map, and its
//     age is judged again, as securecookie does, on every request. A value
//     that differs in one byte is not in the map and goes through
//     securecookie. Only values that verified are kept, so a flood of
//     forged cookies adds nothing to the map.
//   - The gob step is memoized (gobMemo): decoding the same few bytes
//     with a fresh gob.Decoder recompiles the decoder each time.
type cookieStore struct {
	*gsessions.CookieStore
	maxAge   int64 // seconds; 0: securecookie judges no age
	verified verifiedCookies
}

var _ sessions.Store = (*cookieStore)(nil)

// newCookieStore is cookie.NewStore with the memoizing serializer.
func newCookieStore(keyPairs ...[]byte) *cookieStore {
	cs := gsessions.NewCookieStore(keyPairs...)
	memo := &gobMemo{seen: make(map[string]map[any]any)}
	for _, c := range cs.Codecs {
		if sc, ok := c.(*securecookie.SecureCookie); ok {
			sc.SetSerializer(memo)
		}
	}
	c := &cookieStore{CookieStore: cs, verified: verifiedCookies{m: make(map[string]verifiedCookie)}}
	c.maxAge = int64(cs.Options.MaxAge) // gorilla's default, which its codecs judge too
	return c
}

// Options sets the options of new cookies, as gin-contrib's store does.
func (c *cookieStore) Options(o sessions.Options) { c.CookieStore.Options = o.ToGorillaOptions() }

// MaxAge sets the cookies' Max-Age and the age after which a cookie's
// signed timestamp no longer verifies, as gorilla's store does.
func (c *cookieStore) MaxAge(age int) {
	c.CookieStore.MaxAge(age)
	c.maxAge = int64(age)
}

// Get returns the session name of r, as gorilla's store does (once per
// request: gorilla keeps it in the request's registry), read through New.
func (c *cookieStore) Get(r *http.Request, name string) (*gsessions.Session, error) {
	return gsessions.GetRegistry(r).Get(c, name)
}

// New returns the session name as r's cookie has it, or a new one, as
// gorilla's store does, with the cookie read through read.
func (c *cookieStore) New(r *http.Request, name string) (*gsessions.Session, error) {
	s := gsessions.NewSession(c, name)
	opts := *c.CookieStore.Options
	s.Options, s.IsNew = &opts, true
	value, ok := cookieValue(r, name)
	if !ok {
		return s, nil
	}
	v, err := c.read(name, value)
	if err != nil {
		return s, err
	}
	if v.sid != "" {
		s.Values[keySID] = v.sid
	}
	if v.ended != "" {
		s.Values[keyEnded] = v.ended
	}
	s.IsNew = false
	return s, nil
}

// session reads the session cookie name of r: the session id, or why the
// session ended (a cookie that names no session but the reason), or
// neither without a cookie that verifies.
func (c *cookieStore) session(r *http.Request, name string) (sid, ended string) {
	value, ok := cookieValue(r, name)
	if !ok {
		return "", ""
	}
	v, err := c.read(name, value)
	if err != nil {
		return "", ""
	}
	return v.sid, v.ended
}

// verifiedCookie is what a verified cookie value holds, and when it was
// signed (Unix seconds).
type verifiedCookie struct {
	sid, ended string
	signed     int64
}

// verifiedCookies maps cookie values that verified to what they hold.
type verifiedCookies struct {
	mu sync.RWMutex
	m  map[string]verifiedCookie
}

// verifiedCookiesSize bounds the map; when it is full, an arbitrary entry
// makes room (that cookie is verified by securecookie again when it comes
// back). At about 300 bytes an entry, the map stays under 3 MiB.
const verifiedCookiesSize = 8192

// errCookieExpired is a cookie whose signed timestamp is older than the
// store's MaxAge (securecookie says the same of it).
var errCookieExpired = errors.New("securecookie: expired timestamp")

// read verifies the value of cookie name and returns what it holds: from
// the map when this value verified before (its age judged now), else
// through securecookie (MAC, timestamp, decryption, gob), then remembered.
func (c *cookieStore) read(name, value string) (verifiedCookie, error) {
	now := time.Now().Unix() // securecookie's clock
	c.verified.mu.RLock()
	v, hit := c.verified.m[value]
	c.verified.mu.RUnlock()
	if hit {
		if c.maxAge != 0 && v.signed < now-c.maxAge {
			return verifiedCookie{}, errCookieExpired
		}
		return v, nil
	}
	values := make(map[any]any)
	if err := securecookie.DecodeMulti(name, value, &values, c.Codecs...); err != nil {
		return verifiedCookie{}, err
	}
	v, keep := holds(values)
	if !keep {
		return v, nil
	}
	if v.signed, keep = signedAt(value); !keep {
		return v, nil
	}
	c.verified.mu.Lock()
	if len(c.verified.m) >= verifiedCookiesSize {
		for k := range c.verified.m {
			delete(c.verified.m, k)
			break
		}
	}
	// A copy: value is a slice of the request's Cookie header, which the
	// map must not keep alive.
	c.verified.m[strings.Clone(value)] = v
	c.verified.mu.Unlock()
	return v, nil
}

// holds returns the session id and the ended reason of a decoded cookie,
// and whether that is all it holds (only such cookies are remembered).
func holds(values map[any]any) (v verifiedCookie, only bool) {
	only = true
	for k, val := range values {
		s, ok := val.(string)
		switch {
		case !ok:
			only = false
		case k == keySID:
			v.sid = s
		case k == keyEnded:
			v.ended = s
		default:
			only = false
		}
	}
	return v, only
}

// signedAt is the timestamp securecookie signed into value (base64 of
// "timestamp|value|mac"), read after the value verified.
func signedAt(value string) (int64, bool) {
	// The timestamp is in the first 15 bytes (11 digits and the "|"),
	// which base64 holds in the first 20 characters.
	var buf [15]byte
	if len(value) < 20 {
		return 0, false
	}
	n, err := base64.URLEncoding.Decode(buf[:], []byte(value[:20]))
	if err != nil {
		return 0, false
	}
	ts, _, ok := strings.Cut(string(buf[:n]), "|")
	if !ok {
		return 0, false
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	return t, err == nil
}

// maxCookies is net/http's default bound on the cookies of a request
// (GODEBUG httpcookiemaxnum): a request with more has none.
const maxCookies = 3000

// cookieValue returns the value of r's first cookie called name, as
// r.Cookie(name) would, without allocating.
func cookieValue(r *http.Request, name string) (string, bool) {
	lines := r.Header["Cookie"]
	count := 0
	for _, line := range lines {
		count += strings.Count(line, ";") + 1
	}
	if count > maxCookies {
		// net/http decides (its bound may be raised by GODEBUG).
		ck, err := r.Cookie(name)
		if err != nil {
			return "", false
		}
		return ck.Value, true
	}
	for _, line := range lines {
		line = textproto.TrimString(line)
		var part string
		for len(line) > 0 {
			part, line, _ = strings.Cut(line, ";")
			part = textproto.TrimString(part)
			k, v, _ := strings.Cut(part, "=")
			if textproto.TrimString(k) != name {
				continue
			}
			if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			if validCookieValue(v) {
				return v, true
			}
		}
	}
	return "", false
}

// validCookieValue is net/http's test of a cookie value's bytes.
func validCookieValue(v string) bool {
	for i := range len(v) {
		if !cookieValueBytes[v[i]] {
			return false
		}
	}
	return true
}

// cookieValueBytes are the bytes net/http allows in a cookie value.
var cookieValueBytes = func() (ok [256]bool) {
	for b := 0x20; b < 0x7f; b++ {
		ok[b] = b != '"' && b != ';' && b != '\\'
	}
	return ok
}()

// gobMemoSize bounds the memo; it is emptied when full.
const gobMemoSize = 4096

// gobMemo is securecookie's gob serializer that remembers what it decoded.
// securecookie calls Deserialize only after the MAC and the timestamp have
// been checked and the value decrypted, so the memo sees authenticated
// plaintext only. It keeps session maps whose keys and values are all
// strings (ours: the session id), so the copy handed out shares nothing
// mutable.
type gobMemo struct {
	securecookie.GobEncoder
	mu   sync.Mutex
	seen map[string]map[any]any // plaintext -> decoded values
}

// Deserialize decodes src into dst, a *map[any]any for session values.
func (g *gobMemo) Deserialize(src []byte, dst any) error {
	p, ok := dst.(*map[any]any)
	if !ok {
		return g.GobEncoder.Deserialize(src, dst)
	}
	g.mu.Lock()
	v, hit := g.seen[string(src)]
	g.mu.Unlock()
	if !hit {
		v = make(map[any]any)
		if err := g.GobEncoder.Deserialize(src, &v); err != nil {
			return err
		}
		if allStrings(v) {
			g.mu.Lock()
			if len(g.seen) >= gobMemoSize {
				clear(g.seen)
			}
			g.seen[string(src)] = v
			g.mu.Unlock()
		}
	}
	if *p == nil {
		*p = make(map[any]any, len(v))
	}
	maps.Copy(*p, v)
	return nil
}

func allStrings(m map[any]any) bool {
	for k, v := range m {
		_, ks := k.(string)
		_, vs := v.(string)
		if !ks || !vs {
			return false
		}
	}
	return true
}

// sessionStore is the session cookie's store: keys derived from
// Config.SessionKeys (the first signs, all verify), Path=/ so that the
// application's routes see the session too (RequireSession), HttpOnly,
// SameSite=Lax, Secure outside plain-http loopback.
func (s *Handler) sessionStore() *cookieStore {
	keys := make([][]byte, 0, 2*len(s.cfg.SessionKeys))
	for _, k := range s.cfg.SessionKeys {
		keys = append(keys, derive(k, "tether cookie hmac"), derive(k, "tether cookie aes"))
	}
	cs := newCookieStore(keys...)
	cs.Options(sessions.Options{
		Path:     "/",
		MaxAge:   int(s.cfg.SessionMaxAge / time.Second),
		Secure:   s.cfg.secureCookies(),
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	})
	cs.MaxAge(int(s.cfg.SessionMaxAge / time.Second)) // also bounds the cookie's signed timestamp
	return cs
}
