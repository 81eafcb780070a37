package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
)

// BackchannelLogoutEvent is the member of a logout token's events claim
// that makes it one (OpenID Connect Back-Channel Logout 1.0, section 2.4).
const BackchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// Bounds of a logout token's times (see VerifyLogoutToken).
const (
	// LogoutTokenSkew is how far the provider's clock may be ahead of ours
	// (iat) or behind it (exp).
	LogoutTokenSkew = 2 * time.Minute
	// LogoutTokenMaxAge is how old (iat) a logout token may be: it is
	// sent when the session ends, and its jti is remembered that long.
	LogoutTokenMaxAge = 10 * time.Minute
)

// ErrNoBackchannel reports that the provider cannot send logout tokens
// that could be verified: it has no OpenID Connect discovery with a
// jwks_uri.
var ErrNoBackchannel = errors.New("provider: no back-channel logout: the provider has no JWKS (OpenID Connect discovery)")

// ErrInvalidLogoutToken wraps every reason a logout token is refused.
var ErrInvalidLogoutToken = errors.New("provider: invalid logout token")

// LogoutToken is what a verified back-channel logout token says.
type LogoutToken struct {
	Issuer string
	// Subject and SessionID (the sid claim) name what ended; at least one
	// is set.
	Subject   string
	SessionID string
	// ID is the jti; RememberFor is how long it must be remembered to
	// refuse a replay (until the token can no longer be accepted).
	ID          string
	RememberFor time.Duration
}

// VerifyLogoutToken checks a back-channel logout token as OpenID Connect
// Back-Channel Logout 1.0 (section 2.6) says: a JWS signed by one of the
// provider's keys (its JWKS, as for ID tokens), iss the provider's, aud
// including the client id, iat present and not more than LogoutTokenSkew
// in the future nor more than LogoutTokenMaxAge in the past, exp (if
// present) not passed, the back-channel event in events, a sid or a sub,
// no nonce, and a jti. It does not know whether the jti was seen: the
// caller remembers it for RememberFor. It makes no network call but, at
// most once per keyRefetchEvery, a fetch of the JWKS for a key id it does
// not know (so that made-up tokens cannot make it hammer the provider).
func (p *Provider) VerifyLogoutToken(ctx context.Context, raw string) (*LogoutToken, error) {
	if p.logout == nil {
		return nil, ErrNoBackchannel
	}
	idt, err := p.logout.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidLogoutToken, err)
	}
	var c struct {
		TenantID string                     `json:"tid"`
		SID      string                     `json:"sid"`
		JTI      string                     `json:"jti"`
		IAT      *json.Number               `json:"iat"`
		EXP      *json.Number               `json:"exp"`
		Events   map[string]json.RawMessage `json:"events"`
		Nonce    *json.RawMessage           `json:"nonce"`
	}
	if err := idt.Claims(&c); err != nil {
		return nil, fmt.Errorf("%w: claims: %w", ErrInvalidLogoutToken, err)
	}
	if err := p.checkIssuer(idt.Issuer, c.TenantID); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidLogoutToken, err)
	}
	ev, ok := c.Events[BackchannelLogoutEvent]
	var obj map[string]json.RawMessage
	if !ok || json.Unmarshal(ev, &obj) != nil || obj == nil {
		return nil, fmt.Errorf("%w: events has no %s object", ErrInvalidLogoutToken, BackchannelLogoutEvent)
	}
	if c.Nonce != nil {
		return nil, fmt.Errorf("%w: a nonce is present", ErrInvalidLogoutToken)
	}
	if c.SID == "" && idt.Subject == "" {
		return nil, fmt.Errorf("%w: neither sid nor sub", ErrInvalidLogoutToken)
	}
	if c.JTI == "" || len(c.JTI) > 256 {
		return nil, fmt.Errorf("%w: no jti (or one over 256 bytes)", ErrInvalidLogoutToken)
	}
	if c.IAT == nil || idt.IssuedAt.IsZero() {
		return nil, fmt.Errorf("%w: no iat", ErrInvalidLogoutToken)
	}
	now := p.now()
	if idt.IssuedAt.After(now.Add(LogoutTokenSkew)) {
		return nil, fmt.Errorf("%w: iat is in the future", ErrInvalidLogoutToken)
	}
	until := idt.IssuedAt.Add(LogoutTokenMaxAge)
	if c.EXP != nil && idt.Expiry.Before(until) {
		until = idt.Expiry
	}
	until = until.Add(LogoutTokenSkew)
	if !now.Before(until) {
		return nil, fmt.Errorf("%w: expired (exp, or iat more than %v ago)", ErrInvalidLogoutToken, LogoutTokenMaxAge)
	}
	return &LogoutToken{
		Issuer: idt.Issuer, Subject: idt.Subject, SessionID: c.SID,
		ID: c.JTI, RememberFor: until.Sub(now),
	}, nil
}

// newLogoutVerifier verifies logout tokens with the keys at jwksURI.
func (p *Provider) newLogoutVerifier(issuer, jwksURI, clientID string, algs []string, client *http.Client) *oidc.IDTokenVerifier {
	var supported []string
	for _, a := range algs {
		if slices.Contains(signingAlgs, a) {
			supported = append(supported, a)
		}
	}
	keys := &throttledKeys{url: jwksURI, client: client, every: keyRefetchEvery}
	return oidc.NewVerifier(issuer, keys, &oidc.Config{
		ClientID: clientID, SupportedSigningAlgs: supported,
		// VerifyLogoutToken checks them: exp is optional in a logout
		// token, and Entra's and Google's issuers need checkIssuer.
		SkipExpiryCheck: true,
		SkipIssuerCheck: p.issuerTemplate != "" || p.schemelessIssuer != "",
		Now:             func() time.Time { return p.now() },
	})
}

// signingAlgs are the JWS algorithms a logout token may use.
var signingAlgs = []string{"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA"}

// keyRefetchEvery bounds how often the logout verifier fetches the JWKS.
const keyRefetchEvery = 30 * time.Second

// throttledKeys is an oidc.KeySet for tokens anyone can send: it fetches
// the JWKS at first use and then, for a signature no cached key verifies,
// again only if the last fetch began at least every ago. (go-oidc's
// RemoteKeySet fetches on every such signature, which is right for ID
// tokens from the token endpoint and an amplifier on an open route.)
// Signatures are checked outside its lock, and a fetch runs outside it
// too: a token whose key is cached never waits for a slow JWKS, and the
// tokens that need the fetch in flight wait for that one.
type throttledKeys struct {
	url    string
	client *http.Client
	every  time.Duration

	flight  singleflight.Group // one fetch at a time
	mu      sync.Mutex
	keys    []jose.JSONWebKey
	gen     uint64    // counts the times keys was replaced
	fetched time.Time // when the last fetch began
}

// joseSigningAlgs are signingAlgs as go-jose names them.
var joseSigningAlgs = func() []jose.SignatureAlgorithm {
	algs := make([]jose.SignatureAlgorithm, len(signingAlgs))
	for i, a := range signingAlgs {
		algs[i] = jose.SignatureAlgorithm(a)
	}
	return algs
}()

// errNoKey is a signature that no key of the provider's JWKS verifies.
var errNoKey = errors.New("no key verifies the signature")

// VerifySignature implements oidc.KeySet.
func (k *throttledKeys) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSigned(raw, joseSigningAlgs)
	if err != nil {
		return nil, fmt.Errorf("malformed jws: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("not exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	k.mu.Lock()
	keys, gen := k.keys, k.gen // replaced, never modified: safe to read unlocked
	k.mu.Unlock()
	if payload, ok := verifyWith(jws, keys, kid); ok {
		return payload, nil
	}
	if keys, err = k.refetch(ctx, gen); err != nil {
		return nil, err
	}
	if payload, ok := verifyWith(jws, keys, kid); ok {
		return payload, nil
	}
	return nil, errNoKey
}

// refetch returns newer keys than generation seen: those a fetch stored
// since, else those of the fetch in flight (waiting for it), else of a
// new fetch if the last began at least every ago, else errNoKey.
func (k *throttledKeys) refetch(ctx context.Context, seen uint64) ([]jose.JSONWebKey, error) {
	v, err, _ := k.flight.Do("jwks", func() (any, error) {
		k.mu.Lock()
		if k.gen != seen { // a fetch ended between the caller's look and now
			defer k.mu.Unlock()
			return k.keys, nil
		}
		if !k.fetched.IsZero() && time.Since(k.fetched) < k.every {
			k.mu.Unlock()
			return nil, errNoKey
		}
		k.fetched = time.Now()
		k.mu.Unlock()
		// Not the request's context: a sender that hangs up must not
		// cancel the one fetch of this interval (the provider's client has
		// its own timeout), or a loop of forged tokens could keep new keys
		// out.
		keys, err := k.fetch(context.WithoutCancel(ctx))
		if err != nil {
			return nil, fmt.Errorf("fetching the JWKS: %w", err)
		}
		k.mu.Lock()
		k.keys, k.gen = keys, k.gen+1
		k.mu.Unlock()
		return keys, nil
	})
	if err != nil { // waited for: bounded by the provider's client timeout
		return nil, err
	}
	return v.([]jose.JSONWebKey), nil
}

func verifyWith(jws *jose.JSONWebSignature, keys []jose.JSONWebKey, kid string) ([]byte, bool) {
	for i := range keys {
		if kid != "" && keys[i].KeyID != kid {
			continue
		}
		if keys[i].Use != "" && keys[i].Use != "sig" {
			continue
		}
		if payload, err := jws.Verify(&keys[i]); err == nil {
			return payload, true
		}
	}
	return nil, false
}

// fetch reads the JWKS (at most 1 MiB), skipping keys it cannot use.
func (k *throttledKeys) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, err
	}
	var keys []jose.JSONWebKey
	for _, raw := range set.Keys {
		var key jose.JSONWebKey
		if key.UnmarshalJSON(raw) == nil && key.Valid() && key.IsPublic() {
			keys = append(keys, key)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("no usable key")
	}
	return keys, nil
}
