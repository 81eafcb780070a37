package devprovider

import (
	"crypto/rand"
	"encoding/base64"
	"slices"
	"strings"
	"sync"
	"time"
)

// Token prefixes, so that leak scanners in tests can find tokens anywhere.
const (
	PrefixAccessToken  = "dev_at_"
	PrefixRefreshToken = "dev_rt_"
	PrefixCode         = "dev_code_"
)

// User is one of the provider's fixed users.
type User struct {
	Subject string `json:"sub"`
	Name    string `json:"name"`
	Email   string `json:"email"`
}

// Users are the users the consent page offers: "alice" and "bob".
var Users = []User{
	{Subject: "alice", Name: "Alice Liddell", Email: "alice@example.test"},
	{Subject: "bob", Name: "Bob Builder", Email: "bob@example.test"},
}

func lookupUser(subject string) (User, bool) {
	for _, u := range Users {
		if u.Subject == subject {
			return u, true
		}
	}
	return User{}, false
}

// randomToken returns prefix + 32 random bytes in base64url.
func randomToken(prefix string) string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand docs)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// grant is what one approved login produces. Its fields but revoked never
// change after creation.
type grant struct {
	subject       string
	clientID      string
	scope         string
	nonce         string
	authTime      time.Time
	refreshExpiry time.Time
	revoked       bool
	// sid names the login's session at the provider: the ID tokens' sid
	// claim, and what a back-channel logout token names.
	sid string
}

type authCode struct {
	clientID    string
	redirectURI string
	challenge   string
	scope       string
	nonce       string
	subject     string
	refresh     bool // the exchange issues a refresh token
	expires     time.Time
	used        bool
	grant       *grant // what the exchange produced, revoked on replay
}

type accessToken struct {
	grant   *grant
	scope   string
	expires time.Time
	revoked bool
}

type refreshToken struct {
	grant *grant
	used  bool
}

// issued is what a successful token request hands out.
type issued struct {
	access        string
	accessExpires time.Time
	refresh       string
	subject       string
	scope         string
	nonce         string
	authTime      time.Time
	refreshExpiry time.Time
	sid           string
}

// ledger holds all token state behind one mutex, so that every token
// request is one atomic step.
type ledger struct {
	mu        sync.Mutex
	codes     map[string]*authCode
	grants    map[*grant]struct{}
	access    map[string]*accessToken
	refresh   map[string]*refreshToken
	lastPrune time.Time
	// consented holds subject+client pairs that have given offline
	// consent (Google quirks).
	consented map[string]bool
}

func newLedger() ledger {
	return ledger{
		codes:     make(map[string]*authCode),
		grants:    make(map[*grant]struct{}),
		access:    make(map[string]*accessToken),
		refresh:   make(map[string]*refreshToken),
		consented: make(map[string]bool),
	}
}

// pruneLocked drops expired codes and grants past their refresh expiry,
// with their tokens. It runs at most once a second of the injected clock.
func (s *ledger) pruneLocked(now time.Time) {
	if now.Sub(s.lastPrune) < time.Second && !now.Before(s.lastPrune) {
		return
	}
	s.lastPrune = now
	for k, c := range s.codes {
		if !now.Before(c.expires) {
			delete(s.codes, k)
		}
	}
	for k, t := range s.access {
		if !now.Before(t.expires) && !now.Before(t.grant.refreshExpiry) {
			delete(s.access, k)
		}
	}
	for k, t := range s.refresh {
		if !now.Before(t.grant.refreshExpiry) {
			delete(s.refresh, k)
		}
	}
	for g := range s.grants {
		if !now.Before(g.refreshExpiry) {
			delete(s.grants, g)
		}
	}
}

func (s *ledger) newCode(now time.Time, c authCode) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked(now)
	code := randomToken(PrefixCode)
	c.expires = now.Add(CodeTTL)
	s.codes[code] = &c
	return code
}

// issueLocked mints an access token and, with withRefresh, a refresh
// token for g.
func (s *ledger) issueLocked(now time.Time, g *grant, scope string, accessTTL time.Duration, withRefresh bool) issued {
	at, rt := randomToken(PrefixAccessToken), ""
	exp := now.Add(accessTTL)
	s.access[at] = &accessToken{grant: g, scope: scope, expires: exp}
	if withRefresh {
		rt = randomToken(PrefixRefreshToken)
		s.refresh[rt] = &refreshToken{grant: g}
	}
	return issued{
		access: at, accessExpires: exp, refresh: rt,
		subject: g.subject, scope: scope, nonce: g.nonce,
		authTime: g.authTime, refreshExpiry: g.refreshExpiry, sid: g.sid,
	}
}

// exchangeCode redeems an authorization code. verify checks the PKCE
// verifier against the code's challenge.
func (s *ledger) exchangeCode(now time.Time, code, clientID, redirectURI string, verify func(challenge string) bool, accessTTL, refreshTTL time.Duration) (issued, *oauthError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked(now)
	c := s.codes[code]
	if c == nil || !now.Before(c.expires) {
		return issued{}, errInvalidGrant("unknown or expired authorization code")
	}
	if c.used {
		if c.grant != nil {
			s.revokeGrantLocked(c.grant)
		}
		return issued{}, errInvalidGrant("authorization code already used; its grant is revoked")
	}
	c.used = true
	if c.clientID != clientID {
		return issued{}, errInvalidGrant("authorization code was issued to another client")
	}
	if c.redirectURI != redirectURI {
		return issued{}, errInvalidGrant("redirect_uri does not match the authorization request")
	}
	if !verify(c.challenge) {
		return issued{}, errInvalidGrant("PKCE verification failed")
	}
	g := &grant{
		subject: c.subject, clientID: c.clientID, scope: c.scope, nonce: c.nonce,
		authTime: now, refreshExpiry: now.Add(refreshTTL), sid: randomToken("op_")[:24],
	}
	s.grants[g] = struct{}{}
	c.grant = g
	return s.issueLocked(now, g, g.scope, accessTTL, c.refresh), nil
}

// refreshGrant redeems a refresh token: with rotate, it is used up and a
// new one issued; without (Google), it stays valid and none is issued.
// reuse reports that rt had already been rotated, in which case its grant
// is now revoked.
func (s *ledger) refreshGrant(now time.Time, rt, clientID, scope string, accessTTL time.Duration, revokeAccess, rotate bool) (out issued, reuse bool, oe *oauthError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked(now)
	t := s.refresh[rt]
	if t == nil {
		return issued{}, false, errInvalidGrant("unknown refresh token")
	}
	g := t.grant
	if g.clientID != clientID {
		return issued{}, false, errInvalidGrant("refresh token was issued to another client")
	}
	if t.used {
		s.revokeGrantLocked(g)
		return issued{}, true, errInvalidGrant("refresh token was already used; the grant is revoked")
	}
	if g.revoked {
		return issued{}, false, errInvalidGrant("the grant was revoked")
	}
	if !now.Before(g.refreshExpiry) {
		return issued{}, false, errInvalidGrant("refresh token expired")
	}
	if scope == "" {
		scope = g.scope
	} else if !scopeSubset(scope, g.scope) {
		return issued{}, false, &oauthError{status: 400, code: "invalid_scope", desc: "requested scope exceeds the grant"}
	}
	t.used = rotate
	if revokeAccess {
		for _, a := range s.access {
			if a.grant == g {
				a.revoked = true
			}
		}
	}
	return s.issueLocked(now, g, scope, accessTTL, rotate), false, nil
}

// offlineConsent records that subject gave client offline access and
// reports whether that yields a refresh token: at the first consent, or
// when the consent screen was forced (Google's prompt=consent).
func (s *ledger) offlineConsent(subject, clientID string, forced bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := subject + "\x00" + clientID
	first := !s.consented[k]
	s.consented[k] = true
	return first || forced
}

// revokeGrantOf revokes the grant of access token tok, as GitHub's DELETE
// /applications/{client_id}/grant does, and reports whether tok was a
// live token of clientID.
func (s *ledger) revokeGrantOf(now time.Time, tok, clientID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked(now)
	t := s.access[tok]
	if t == nil || t.revoked || t.grant.revoked || t.grant.clientID != clientID || !now.Before(t.expires) {
		return false
	}
	s.revokeGrantLocked(t.grant)
	return true
}

func scopeSubset(asked, granted string) bool {
	have := strings.Fields(granted)
	for _, s := range strings.Fields(asked) {
		if !slices.Contains(have, s) {
			return false
		}
	}
	return true
}

// revokeGrantLocked revokes g: its access and refresh tokens all check
// g.revoked.
func (s *ledger) revokeGrantLocked(g *grant) {
	g.revoked = true
}

// revokeToken implements RFC 7009 for clientID: a refresh token revokes its
// grant, an access token only itself or, with accessRevokesGrant
// (Google), its grant too. Unknown tokens are ignored.
func (s *ledger) revokeToken(now time.Time, tok, clientID string, accessRevokesGrant bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked(now)
	if t := s.refresh[tok]; t != nil && t.grant.clientID == clientID {
		s.revokeGrantLocked(t.grant)
	}
	if t := s.access[tok]; t != nil && t.grant.clientID == clientID {
		t.revoked = true
		if accessRevokesGrant {
			s.revokeGrantLocked(t.grant)
		}
	}
}

// revokeSubject revokes every live grant of subject and returns how many.
func (s *ledger) revokeSubject(now time.Time, subject string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked(now)
	n := 0
	for g := range s.grants {
		if g.subject == subject && !g.revoked {
			s.revokeGrantLocked(g)
			n++
		}
	}
	return n
}

// sessionsOf returns the provider sessions (sids) of subject's live
// grants.
func (s *ledger) sessionsOf(now time.Time, subject string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var sids []string
	for g := range s.grants {
		if g.subject == subject && !g.revoked && now.Before(g.refreshExpiry) {
			sids = append(sids, g.sid)
		}
	}
	return sids
}

// expireAccess makes every unexpired access token (of subject, if given)
// expire at now, and returns how many it touched.
func (s *ledger) expireAccess(now time.Time, subject string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pruneLocked(now)
	n := 0
	for _, t := range s.access {
		if (subject == "" || t.grant.subject == subject) && now.Before(t.expires) {
			t.expires = now
			n++
		}
	}
	return n
}

// accessInfo describes a valid access token.
type accessInfo struct {
	subject string
	scope   string
	expires time.Time
}

// checkAccess validates an access token; on failure it says why.
func (s *ledger) checkAccess(now time.Time, tok string) (accessInfo, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.access[tok]
	switch {
	case t == nil:
		return accessInfo{}, "unknown access token"
	case t.revoked:
		return accessInfo{}, "the access token was revoked"
	case t.grant.revoked:
		return accessInfo{}, "the grant was revoked"
	case !now.Before(t.expires):
		return accessInfo{}, "the access token expired"
	}
	return accessInfo{subject: t.grant.subject, scope: t.scope, expires: t.expires}, ""
}

func (s *ledger) refreshValid(now time.Time, rt string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.refresh[rt]
	return t != nil && !t.used && !t.grant.revoked && now.Before(t.grant.refreshExpiry)
}

// RefreshTokenValid reports whether rt would be accepted by a refresh now:
// known, not yet rotated, its grant neither revoked nor expired.
func (p *Provider) RefreshTokenValid(rt string) bool {
	return p.ledger.refreshValid(p.now(), rt)
}

// AccessTokenValid reports whether /api/me would accept tok now.
func (p *Provider) AccessTokenValid(tok string) bool {
	_, why := p.ledger.checkAccess(p.now(), tok)
	return why == ""
}

// RevokeSubject revokes all of subject's grants, as POST /control/revoke
// does, and returns how many it revoked.
func (p *Provider) RevokeSubject(subject string) int {
	return p.ledger.revokeSubject(p.now(), subject)
}

// ExpireAccessTokens makes every current access token (of subject, when
// not empty) expire now, as POST /control/expire does. Refresh tokens stay
// valid. It returns how many tokens it expired.
func (p *Provider) ExpireAccessTokens(subject string) int {
	return p.ledger.expireAccess(p.now(), subject)
}
