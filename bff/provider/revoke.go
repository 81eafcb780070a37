package provider

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
)

// Revoke ends the grant at the provider, for logout. With an RFC 7009
// endpoint it revokes the refresh token (which revokes the grant) or,
// when there is none, the access token. With GitHub it deletes the grant,
// which takes the access token. Without a way to revoke, or without the
// token that way needs, it does nothing.
func (p *Provider) Revoke(ctx context.Context, refreshToken, accessToken string) error {
	if p.revokeURL == "" {
		return nil
	}
	if p.flavor == FlavorGitHub {
		if accessToken == "" {
			return nil
		}
		return p.revokeGitHub(ctx, accessToken)
	}
	token, hint := refreshToken, "refresh_token"
	if token == "" {
		token, hint = accessToken, "access_token"
	}
	if token == "" {
		return nil
	}
	form := url.Values{"token": {token}, "token_type_hint": {hint}}
	if p.oauth.Endpoint.AuthStyle != oauth2.AuthStyleInHeader {
		// The same client authentication as at the token endpoint.
		form.Set("client_id", p.oauth.ClientID)
		if p.oauth.ClientSecret != "" {
			form.Set("client_secret", p.oauth.ClientSecret)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.revokeURL, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("provider: revoke: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if p.oauth.Endpoint.AuthStyle == oauth2.AuthStyleInHeader {
		req.SetBasicAuth(url.QueryEscape(p.oauth.ClientID), url.QueryEscape(p.oauth.ClientSecret))
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("provider: revoke: %w", &Error{kind: ErrUnavailable, cause: err})
	}
	resp.Body.Close()
	// RFC 7009 §2.2: 200 also for tokens the server did not know.
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("provider: revoke: %w", &Error{Status: resp.StatusCode, kind: ErrUnavailable})
	}
	return nil
}
