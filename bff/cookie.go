package bff

import (
	"maps"
	"net/http"
	"sync"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gorilla/securecookie"
	gsessions "github.com/gorilla/sessions"
)

// cookieStore is gin-contrib's cookie store (gorilla's CookieStore: HMAC,
// AES, a signed timestamp, gob) with the gob step memoized: decoding the
// same few bytes with a fresh gob.Decoder on every request recompiles the
// decoder each time, which cost more CPU than the rest of /bff/token's
// hot path together. The cookie format is unchanged.
type cookieStore struct{ *gsessions.CookieStore }

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
	return &cookieStore{cs}
}

// Options sets the options of new cookies, as gin-contrib's store does.
func (c *cookieStore) Options(o sessions.Options) { c.CookieStore.Options = o.ToGorillaOptions() }

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
