package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// GitHub's REST API headers.
const (
	githubAccept     = "application/vnd.github+json"
	githubAPIVersion = "2022-11-28"
)

// githubUser fills Subject (the numeric id, which unlike the login never
// changes) and Name (the display name, else the login) from GET /user.
func (p *Provider) githubUser(ctx context.Context, g *Grant) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.userinfoURL, nil)
	if err != nil {
		return fmt.Errorf("provider: github user: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+g.AccessToken)
	req.Header.Set("Accept", githubAccept)
	req.Header.Set("X-GitHub-Api-Version", githubAPIVersion)
	var u struct {
		ID    json.Number `json:"id"`
		Login string      `json:"login"`
		Name  string      `json:"name"`
	}
	if err := doJSON(p.client, req, &u); err != nil {
		return fmt.Errorf("provider: github user: %w", err)
	}
	if _, err := u.ID.Int64(); err != nil {
		return fmt.Errorf("provider: github user: %w: no numeric id", ErrBadResponse)
	}
	g.Subject, g.Name = u.ID.String(), u.Name
	if g.Name == "" {
		g.Name = u.Login
	}
	return nil
}

// revokeGitHub deletes the app's grant for the user, and with it every
// token of that authorization: DELETE /applications/{client_id}/grant
// with the client's credentials and the user's access token (GitHub has
// no RFC 7009 endpoint and takes no refresh token there). 204 is success.
func (p *Provider) revokeGitHub(ctx context.Context, accessToken string) error {
	body, _ := json.Marshal(map[string]string{"access_token": accessToken})
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, p.revokeURL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("provider: revoke: %w", err)
	}
	req.SetBasicAuth(p.oauth.ClientID, p.oauth.ClientSecret)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", githubAccept)
	req.Header.Set("X-GitHub-Api-Version", githubAPIVersion)
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("provider: revoke: %w", &Error{kind: ErrUnavailable, cause: err})
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		// 404 or 422: the token was already invalid (an expired access
		// token cannot name the grant any more).
		return fmt.Errorf("provider: revoke: %w", &Error{Status: resp.StatusCode, kind: ErrUnavailable})
	}
	return nil
}
