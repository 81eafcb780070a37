package devprovider_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tetherauth/tether/bff/devprovider"
)

// raw sends a request and returns the status, the Content-Type and the body.
func (e *env) raw(method, path string, body io.Reader, hdr http.Header) (int, string, string) {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.t.Context(), method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	res, err := e.noRedirect().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header.Get("Content-Type"), string(b)
}

// tokenCall POSTs form to path with the client's credentials in the form
// (as GitHub documents) and returns the parsed answer, from JSON when
// accept is application/json, else from a form.
func (e *env) tokenCall(path string, form url.Values, accept string) (int, url.Values) {
	e.t.Helper()
	form.Set("client_id", devprovider.DefaultClientID)
	form.Set("client_secret", devprovider.DefaultClientSecret)
	hdr := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	if accept != "" {
		hdr.Set("Accept", accept)
	}
	status, ct, body := e.raw("POST", path, strings.NewReader(form.Encode()), hdr)
	if accept == "application/json" {
		if !strings.HasPrefix(ct, "application/json") {
			e.t.Fatalf("Content-Type %q with Accept: application/json", ct)
		}
		var m map[string]any
		dec := json.NewDecoder(strings.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			e.t.Fatalf("body %q: %v", body, err)
		}
		v := url.Values{}
		for k, x := range m {
			switch x := x.(type) {
			case string:
				v.Set(k, x)
			case json.Number:
				v.Set(k, x.String())
			}
		}
		return status, v
	}
	if !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		e.t.Fatalf("Content-Type %q without Accept: application/json; want a form", ct)
	}
	v, err := url.ParseQuery(body)
	if err != nil {
		e.t.Fatal(err)
	}
	return status, v
}

// githubCode runs GET /login/oauth/authorize (AutoApprove) and returns the
// code and its verifier.
func (e *env) githubCode(extra ...oauth2.AuthCodeOption) (string, string) {
	e.t.Helper()
	e.conf.Endpoint.AuthURL = e.srv.URL + "/login/oauth/authorize"
	return e.authorize(extra...)
}

func TestQuirksInvalid(t *testing.T) {
	if _, err := devprovider.New(devprovider.Config{Issuer: "http://127.0.0.1:1", Quirks: "gitlab"}); err == nil || !strings.Contains(err.Error(), "gitlab") {
		t.Errorf("New with Quirks gitlab = %v; want an error naming it", err)
	}
}

func TestQuirksGitHub(t *testing.T) {
	e := newEnv(t, devprovider.Config{AutoApprove: true, Quirks: devprovider.QuirksGitHub, AccessTTL: 8 * time.Hour, RefreshTTL: 15811200 * time.Second})
	for _, path := range []string{"/.well-known/openid-configuration", "/token", "/authorize", "/userinfo", "/jwks"} {
		if status, _, _ := e.raw("GET", path, nil, nil); status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
			t.Errorf("GET %s = %d; GitHub has no such endpoint", path, status)
		}
	}
	if status, _, _ := e.raw("POST", "/revoke", strings.NewReader("token=x"), nil); status != http.StatusNotFound {
		t.Errorf("POST /revoke = %d; GitHub has no RFC 7009 endpoint", status)
	}

	// Form-encoded without Accept: application/json; no ID token even with openid.
	code, verifier := e.githubCode()
	status, v := e.tokenCall("/login/oauth/access_token", url.Values{"code": {code}, "code_verifier": {verifier}, "redirect_uri": {redirectURI}, "grant_type": {"authorization_code"}}, "")
	if status != 200 || v.Get("token_type") != "bearer" || v.Get("expires_in") != "28800" || v.Get("refresh_token_expires_in") != "15811200" ||
		!strings.HasPrefix(v.Get("refresh_token"), devprovider.PrefixRefreshToken) || v.Has("id_token") {
		t.Fatalf("code exchange = %d %v; want a form with bearer, 28800, 15811200, a refresh token and no id_token", status, v)
	}
	rt, at := v.Get("refresh_token"), v.Get("access_token")

	// JSON when asked; each refresh token works once.
	status, j := e.tokenCall("/login/oauth/access_token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "application/json")
	if status != 200 || j.Get("expires_in") != "28800" || j.Get("refresh_token") == "" || j.Get("refresh_token") == rt {
		t.Fatalf("refresh = %d %v; want JSON with a new refresh token", status, j)
	}
	status, v = e.tokenCall("/login/oauth/access_token", url.Values{"grant_type": {"authorization_code"}, "code": {"dev_code_nope"}, "code_verifier": {verifier}}, "application/json")
	if status != 200 || v.Get("error") != "bad_verification_code" {
		t.Errorf("unknown code = %d %v; want 200 error=bad_verification_code", status, v)
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {j.Get("refresh_token")}}
	hdr := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	if status, _, body := e.raw("POST", "/login/oauth/access_token", strings.NewReader(form.Encode()+"&client_id=tether-dev&client_secret=wrong"), hdr); status != 200 || !strings.Contains(body, "error=incorrect_client_credentials") {
		t.Errorf("wrong secret = %d %q; want 200 error=incorrect_client_credentials", status, body)
	}
	if res, _ := e.me(at); res.StatusCode != 200 {
		t.Errorf("/api/me with the first access token = %d; want 200", res.StatusCode)
	}

	// GET /api/v3/user with Bearer or token.
	at = j.Get("access_token")
	for _, scheme := range []string{"Bearer", "token"} {
		var u map[string]any
		res := e.do("GET", "/api/v3/user", http.Header{"Authorization": {scheme + " " + at}}, &u)
		if res.StatusCode != 200 || u["login"] != "alice" || u["id"] != float64(1001) || u["name"] != "Alice Liddell" {
			t.Errorf("GET /api/v3/user with %s = %d %v; want alice, 1001", scheme, res.StatusCode, u)
		}
	}
	if res := e.do("GET", "/api/v3/user", http.Header{"Authorization": {"Bearer dev_at_nope"}}, nil); res.StatusCode != 401 {
		t.Errorf("GET /api/v3/user with a bad token = %d; want 401", res.StatusCode)
	}

	// DELETE the grant: Basic client credentials, the access token in JSON.
	del := func(client, secret, token string) int {
		req, _ := http.NewRequest("DELETE", e.srv.URL+"/api/v3/applications/"+client+"/grant", strings.NewReader(`{"access_token":"`+token+`"}`))
		req.SetBasicAuth(client, secret)
		req.Header.Set("Content-Type", "application/json")
		res, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if got := del(devprovider.DefaultClientID, "wrong", at); got != 404 {
		t.Errorf("DELETE grant with a wrong secret = %d; want 404", got)
	}
	if got := del(devprovider.DefaultClientID, devprovider.DefaultClientSecret, at); got != 204 {
		t.Fatalf("DELETE grant = %d; want 204", got)
	}
	if res, _ := e.me(at); res.StatusCode != 401 {
		t.Errorf("/api/me after the grant was deleted = %d; want 401", res.StatusCode)
	}
	if _, v := e.tokenCall("/login/oauth/access_token", form, ""); v.Get("error") != "bad_refresh_token" {
		t.Errorf("refresh after the grant was deleted = %v; want bad_refresh_token", v)
	}
	if got := del(devprovider.DefaultClientID, devprovider.DefaultClientSecret, at); got != 422 {
		t.Errorf("DELETE grant again = %d; want 422", got)
	}
	// Each refresh token works once.
	status, v = e.tokenCall("/login/oauth/access_token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "")
	if status != 200 || v.Get("error") != "bad_refresh_token" || v.Has("access_token") {
		t.Errorf("reused refresh token = %d %v; want 200 error=bad_refresh_token", status, v)
	}
	if s := e.p.Stats(); s.Revoke != 1 || s.RefreshReuse != 1 {
		t.Errorf("stats %+v; want 1 revocation, 1 reuse", s)
	}
}

// The consent page posts back to GitHub's path in the GitHub modes.
func TestQuirksGitHubConsentPage(t *testing.T) {
	e := newEnv(t, devprovider.Config{Quirks: devprovider.QuirksGitHub})
	e.conf.Endpoint.AuthURL = e.srv.URL + "/login/oauth/authorize"
	status, _, body := e.raw("GET", strings.TrimPrefix(e.conf.AuthCodeURL("st-1", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), e.srv.URL), nil, nil)
	if status != 200 || !strings.Contains(body, `action="/login/oauth/authorize"`) {
		t.Errorf("consent page %d does not post to /login/oauth/authorize", status)
	}
}

func TestQuirksGitHubOAuthApp(t *testing.T) {
	e := newEnv(t, devprovider.Config{AutoApprove: true, Quirks: devprovider.QuirksGitHubOAuthApp})
	code, verifier := e.githubCode()
	status, v := e.tokenCall("/login/oauth/access_token", url.Values{"code": {code}, "code_verifier": {verifier}, "redirect_uri": {redirectURI}, "grant_type": {"authorization_code"}}, "application/json")
	if status != 200 || v.Get("access_token") == "" || v.Get("token_type") != "bearer" || v.Has("expires_in") || v.Has("refresh_token") || v.Has("refresh_token_expires_in") {
		t.Fatalf("code exchange = %d %v; want only access_token, token_type bearer and scope", status, v)
	}
	e.clk.Advance(2 * 365 * 24 * time.Hour)
	if res, _ := e.me(v.Get("access_token")); res.StatusCode != 200 {
		t.Errorf("/api/me two years later = %d; an OAuth App token does not expire", res.StatusCode)
	}
	e.control("/control/revoke?subject=alice", nil)
	if res, _ := e.me(v.Get("access_token")); res.StatusCode != 401 {
		t.Errorf("/api/me after /control/revoke = %d; want 401", res.StatusCode)
	}
}

func TestQuirksGoogle(t *testing.T) {
	e := newEnv(t, devprovider.Config{AutoApprove: true, Quirks: devprovider.QuirksGoogle})
	var disc map[string]any
	if res := e.do("GET", "/.well-known/openid-configuration", nil, &disc); res.StatusCode != 200 || disc["revocation_endpoint"] != e.srv.URL+"/revoke" {
		t.Fatalf("discovery = %d %v; want a revocation_endpoint", res.StatusCode, disc)
	}
	offline := oauth2.SetAuthURLParam("access_type", "offline")
	consent := oauth2.SetAuthURLParam("prompt", "consent")
	cases := []struct {
		name    string
		opts    []oauth2.AuthCodeOption
		refresh bool
	}{
		{"online", nil, false},
		{"offline, first consent", []oauth2.AuthCodeOption{offline}, true},
		{"offline again", []oauth2.AuthCodeOption{offline}, false},
		{"offline with prompt=consent", []oauth2.AuthCodeOption{offline, consent}, true},
	}
	var rt string
	for _, tc := range cases {
		tok := e.login(tc.opts...)
		if (tok.RefreshToken != "") != tc.refresh {
			t.Errorf("%s: refresh token %v; want %v", tc.name, tok.RefreshToken != "", tc.refresh)
		}
		if tok.Extra("refresh_token_expires_in") != nil {
			t.Errorf("%s: refresh_token_expires_in is present; Google does not send it", tc.name)
		}
		if tok.RefreshToken != "" {
			rt = tok.RefreshToken
		}
	}

	// No rotation: the answer has no refresh token, the old one still works.
	for i := range 3 {
		status, v := e.tokenCall("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "application/json")
		if status != 200 || v.Get("access_token") == "" || v.Has("refresh_token") {
			t.Fatalf("refresh %d = %d %v; want an access token and no refresh token", i, status, v)
		}
		if i == 2 {
			// Revoking an access token revokes its grant at Google.
			_, _, _ = e.raw("POST", "/revoke", strings.NewReader(url.Values{"token": {v.Get("access_token")}, "client_id": {devprovider.DefaultClientID},
				"client_secret": {devprovider.DefaultClientSecret}}.Encode()), http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
		}
	}
	if s := e.p.Stats(); s.RefreshReuse != 0 || s.Revoke != 1 {
		t.Errorf("stats %+v; want no reuse and 1 revocation", s)
	}
	status, v := e.tokenCall("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "application/json")
	if status != 400 || v.Get("error") != "invalid_grant" {
		t.Errorf("refresh after revoking the access token = %d %v; want 400 invalid_grant", status, v)
	}
}

// access_type and prompt survive the consent page.
func TestQuirksGoogleConsentPage(t *testing.T) {
	e := newEnv(t, devprovider.Config{Quirks: devprovider.QuirksGoogle})
	u := e.conf.AuthCodeURL("st-1", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()),
		oauth2.SetAuthURLParam("access_type", "offline"), oauth2.SetAuthURLParam("prompt", "consent"))
	status, _, body := e.raw("GET", strings.TrimPrefix(u, e.srv.URL), nil, nil)
	if status != 200 || !strings.Contains(body, `name="access_type" value="offline"`) || !strings.Contains(body, `name="prompt" value="consent"`) {
		t.Errorf("consent page %d lacks access_type or prompt", status)
	}
}
