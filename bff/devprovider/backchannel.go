package devprovider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// BackchannelLogoutEvent is the events member of a logout token (OpenID
// Connect Back-Channel Logout 1.0).
const BackchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// logoutTokenTTL is how long a logout token the provider signs is valid.
const logoutTokenTTL = 2 * time.Minute

// ErrNoBackchannelURI: the client registered no back-channel logout URI
// (Config.BackchannelLogoutURI).
var ErrNoBackchannelURI = errors.New("devprovider: no back-channel logout URI is registered (TETHER_DEV_BACKCHANNEL_URI)")

// LogoutClaims are a logout token's claims.
type LogoutClaims struct {
	jwt.Claims
	SID    string         `json:"sid,omitempty"`
	Events map[string]any `json:"events,omitempty"`
	// Nonce is for tests of a verifier: a logout token must not have one.
	Nonce string `json:"nonce,omitempty"`
}

// NewLogoutClaims returns the claims of a logout token the provider
// would send now for subject and/or provider session sid: iss, aud (the
// client), iat, exp, a fresh jti, the back-channel event.
func (p *Provider) NewLogoutClaims(subject, sid string) LogoutClaims {
	now := p.now()
	return LogoutClaims{
		Claims: jwt.Claims{
			Issuer: p.issuer, Subject: subject, Audience: jwt.Audience{p.cfg.ClientID},
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(logoutTokenTTL)),
			ID: randomToken("jti_")[:28],
		},
		SID:    sid,
		Events: map[string]any{BackchannelLogoutEvent: map[string]any{}},
	}
}

// SignLogoutToken signs claims with the provider's key (the one its ID
// tokens are signed with), as a JWT of type logout+jwt. Tests use it to
// make tokens the provider would never send (wrong audience, a nonce).
func (p *Provider) SignLogoutToken(claims any) (string, error) {
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: p.key, KeyID: p.keyID}},
		(&jose.SignerOptions{}).WithType("logout+jwt"),
	)
	if err != nil {
		return "", fmt.Errorf("devprovider: signer: %w", err)
	}
	return jwt.Signed(signer).Claims(claims).Serialize()
}

// BackchannelLogout sends the client's back-channel logout URI one logout
// token for subject: naming sid when given (one provider session), else
// only the subject (all of its sessions). It returns how many tokens
// were delivered (answered 200): 1 or 0.
func (p *Provider) BackchannelLogout(ctx context.Context, subject, sid string) (int, error) {
	if p.cfg.BackchannelLogoutURI == "" {
		return 0, ErrNoBackchannelURI
	}
	tok, err := p.SignLogoutToken(p.NewLogoutClaims(subject, sid))
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.cfg.BackchannelLogoutURI,
		strings.NewReader(url.Values{"logout_token": {tok}}.Encode()))
	if err != nil {
		return 0, fmt.Errorf("devprovider: back-channel logout: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.stats.backchannelFailed.Add(1)
		return 0, fmt.Errorf("devprovider: back-channel logout: %w", err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		p.stats.backchannelFailed.Add(1)
		return 0, fmt.Errorf("devprovider: back-channel logout: the client answered %d", resp.StatusCode)
	}
	p.stats.backchannelSent.Add(1)
	return 1, nil
}

// LogoutSessions ends subject's sessions at the provider (its own
// logout, as its end_session_endpoint does): one back-channel logout
// token per live provider session (naming its sid and the subject), or
// only the one named sid. Grants are not revoked: a refresh token issued
// for offline access outlives the provider's session, as at most
// providers. It returns how many tokens were delivered.
func (p *Provider) LogoutSessions(ctx context.Context, subject, sid string) (int, error) {
	sids := []string{sid}
	if sid == "" {
		sids = p.ledger.sessionsOf(p.now(), subject)
	}
	n := 0
	for _, s := range sids {
		got, err := p.BackchannelLogout(ctx, subject, s)
		if err != nil {
			return n, err
		}
		n += got
	}
	return n, nil
}

// handleControlBackchannel sends one logout token naming subject (and
// sid, when given), nothing else: POST /control/backchannel?subject=.
func (p *Provider) handleControlBackchannel(w http.ResponseWriter, r *http.Request) {
	subject := r.FormValue("subject")
	if _, ok := lookupUser(subject); !ok {
		writeError(w, http.StatusBadRequest, "invalid_request", "subject must name a known user (alice, bob)")
		return
	}
	n, err := p.BackchannelLogout(r.Context(), subject, r.FormValue("sid"))
	if err != nil {
		writeError(w, http.StatusBadGateway, "backchannel_failed", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"sent": n})
}

// handleLogout is the provider's own logout (end_session_endpoint):
// GET or POST /logout?subject=alice[&sid=] ends the user's sessions here
// and tells the client through the back channel.
func (p *Provider) handleLogout(w http.ResponseWriter, r *http.Request) {
	subject := r.FormValue("subject")
	if _, ok := lookupUser(subject); !ok {
		writeError(w, http.StatusBadRequest, "invalid_request", "subject must name a known user (alice, bob)")
		return
	}
	n, err := p.LogoutSessions(r.Context(), subject, r.FormValue("sid"))
	if err != nil && !errors.Is(err, ErrNoBackchannelURI) {
		writeError(w, http.StatusBadGateway, "backchannel_failed", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"sent": n})
}
