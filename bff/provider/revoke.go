package provider

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
)

// Revoke asks the provider to revoke a refresh token and, with it, the
// grant (RFC 7009). Without a revocation endpoint it does nothing.
func (p *Provider) Revoke(ctx context.Context, refreshToken string) error {
	if p.revokeURL == "" || refreshToken == "" {
		return nil
	}
	form := url.Values{"token": {refreshToken}, "token_type_hint": {"refresh_token"}}
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
