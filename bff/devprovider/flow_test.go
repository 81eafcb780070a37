package devprovider_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/tetherauth/tether/bff/devprovider"
)

func TestCodeFlowWithOIDC(t *testing.T) {
	e := newEnv(t, devprovider.Config{AutoApprove: true})
	ctx := oidc.ClientContext(e.ctx, e.srv.Client())
	prov, err := oidc.NewProvider(ctx, e.srv.URL)
	if err != nil {
		t.Fatalf("oidc.NewProvider: %v", err)
	}
	if prov.Endpoint().TokenURL != e.srv.URL+"/token" {
		t.Errorf("discovered token URL %q", prov.Endpoint().TokenURL)
	}
	e.conf.Endpoint = prov.Endpoint()

	tok := e.login(oidc.Nonce("n-123"))
	if !strings.HasPrefix(tok.AccessToken, devprovider.PrefixAccessToken) ||
		!strings.HasPrefix(tok.RefreshToken, devprovider.PrefixRefreshToken) {
		t.Errorf("tokens lack their prefixes: %.10q %.10q", tok.AccessToken, tok.RefreshToken)
	}
	if tok.TokenType != "Bearer" || tok.ExpiresIn != 60 {
		t.Errorf("token_type %q expires_in %d; want Bearer 60", tok.TokenType, tok.ExpiresIn)
	}
	if got := tok.Extra("refresh_token_expires_in"); got != float64(600) {
		t.Errorf("refresh_token_expires_in = %v; want 600", got)
	}
	if got := tok.Extra("scope"); got != "openid profile email" {
		t.Errorf("scope = %v", got)
	}

	raw, _ := tok.Extra("id_token").(string)
	v := prov.Verifier(&oidc.Config{ClientID: devprovider.DefaultClientID, Now: e.clk.Now})
	idt, err := v.Verify(ctx, raw)
	if err != nil {
		t.Fatalf("Verify(id_token): %v", err)
	}
	var claims struct{ Name, Email string }
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if idt.Subject != "alice" || idt.Nonce != "n-123" || claims.Name != "Alice Liddell" || claims.Email != "alice@example.test" {
		t.Errorf("id token sub %q nonce %q claims %+v", idt.Subject, idt.Nonce, claims)
	}

	res, me := e.me(tok.AccessToken)
	if res.StatusCode != 200 || me["subject"] != "alice" || me["name"] != "Alice Liddell" ||
		me["token_expires_at"] != float64(e.clk.Now().Add(time.Minute).Unix()) {
		t.Errorf("/api/me: %d %v", res.StatusCode, me)
	}
	ui, err := prov.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil || ui.Subject != "alice" || ui.Email != "alice@example.test" {
		t.Errorf("UserInfo = %+v, %v", ui, err)
	}

	bob := e.login(oauth2.SetAuthURLParam("login_hint", "bob"))
	if _, me := e.me(bob.AccessToken); me["subject"] != "bob" || me["name"] != "Bob Builder" {
		t.Errorf("login_hint=bob: /api/me %v", me)
	}
	want := devprovider.Stats{AuthorizationCode: 2, APIOK: 2, CodesIssued: 2}
	if got := e.p.Stats(); got != want {
		t.Errorf("Stats = %+v; want %+v", got, want)
	}
}

func TestCodeExchangeFailures(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(e *env, code, verifier *string)
		status int
		code   string
	}{
		{"wrong verifier", func(e *env, _, v *string) { *v = oauth2.GenerateVerifier() }, 400, "invalid_grant"},
		{"unknown code", func(e *env, c, _ *string) { *c = devprovider.PrefixCode + "nope" }, 400, "invalid_grant"},
		{"expired code", func(e *env, _, _ *string) { e.clk.Advance(devprovider.CodeTTL) }, 400, "invalid_grant"},
		{"other redirect_uri", func(e *env, _, _ *string) { e.conf.RedirectURL = "http://127.0.0.1:2/cb" }, 400, "invalid_grant"},
		{"bad secret", func(e *env, _, _ *string) { e.conf.ClientSecret = "wrong" }, 401, "invalid_client"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, devprovider.Config{AutoApprove: true})
			code, verifier := e.authorize()
			c.mutate(e, &code, &verifier)
			_, err := e.conf.Exchange(e.ctx, code, oauth2.VerifierOption(verifier))
			wantGrantError(t, err, c.status, c.code)
			if s := e.p.Stats(); s.AuthorizationCode != 1 || s.TokenErrors != 1 {
				t.Errorf("Stats = %+v; want 1 authorization_code, 1 token error", s)
			}
		})
	}
}

func TestCodeReuseRevokesGrant(t *testing.T) {
	e := newEnv(t, devprovider.Config{AutoApprove: true})
	code, verifier := e.authorize()
	tok, err := e.conf.Exchange(e.ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.conf.Exchange(e.ctx, code, oauth2.VerifierOption(verifier))
	wantGrantError(t, err, 400, "invalid_grant")
	if e.p.RefreshTokenValid(tok.RefreshToken) || e.p.AccessTokenValid(tok.AccessToken) {
		t.Error("tokens from a replayed code still valid")
	}
}

func TestClientSecretPost(t *testing.T) {
	e := newEnv(t, devprovider.Config{AutoApprove: true})
	e.conf.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	tok := e.login()
	if _, err := e.refresh(e.ctx, tok.RefreshToken); err != nil {
		t.Fatalf("refresh with client_secret_post: %v", err)
	}
}

func TestRefreshRotation(t *testing.T) {
	e := newEnv(t, devprovider.Config{AutoApprove: true, RefreshTTL: 5 * time.Minute})
	tok := e.login()
	e.clk.Advance(2 * time.Minute)

	next, err := e.refresh(e.ctx, tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if next.RefreshToken == tok.RefreshToken || next.AccessToken == tok.AccessToken {
		t.Error("refresh did not rotate the tokens")
	}
	if got := next.Extra("refresh_token_expires_in"); got != float64(180) {
		t.Errorf("refresh_token_expires_in = %v; want 180 (rotation must not extend the grant)", got)
	}
	if _, ok := next.Extra("id_token").(string); !ok {
		t.Error("refresh with scope openid gave no id_token")
	}
	if e.p.RefreshTokenValid(tok.RefreshToken) || !e.p.RefreshTokenValid(next.RefreshToken) {
		t.Error("old refresh token still valid or new one not")
	}
	if res, _ := e.me(next.AccessToken); res.StatusCode != 200 {
		t.Errorf("/api/me with the refreshed token: %d", res.StatusCode)
	}

	e.clk.Advance(3 * time.Minute)
	_, err = e.refresh(e.ctx, next.RefreshToken)
	wantGrantError(t, err, 400, "invalid_grant")
	if s := e.p.Stats(); s.RefreshToken != 2 || s.TokenErrors != 1 || s.RefreshReuse != 0 {
		t.Errorf("Stats = %+v; want 2 refreshes, 1 error, no reuse", s)
	}
}

func TestRevokeAccessOnRefresh(t *testing.T) {
	e := newEnv(t, devprovider.Config{AutoApprove: true, RevokeAccessOnRefresh: true})
	tok := e.login()
	next, err := e.refresh(e.ctx, tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if res, _ := e.me(tok.AccessToken); res.StatusCode != 401 {
		t.Errorf("old access token: %d; want 401", res.StatusCode)
	}
	if res, _ := e.me(next.AccessToken); res.StatusCode != 200 {
		t.Errorf("new access token: %d; want 200", res.StatusCode)
	}
}

func TestRefreshReuseRevokesGrant(t *testing.T) {
	e := newEnv(t, devprovider.Config{AutoApprove: true})
	tok := e.login()
	next, err := e.refresh(e.ctx, tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.refresh(e.ctx, tok.RefreshToken) // reuse
	wantGrantError(t, err, 400, "invalid_grant")
	_, err = e.refresh(e.ctx, next.RefreshToken) // the grant is gone
	wantGrantError(t, err, 400, "invalid_grant")

	res, body := e.me(next.AccessToken)
	if res.StatusCode != 401 || !strings.Contains(res.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("/api/me after reuse: %d %q %v", res.StatusCode, res.Header.Get("WWW-Authenticate"), body)
	}
	if s := e.p.Stats(); s.RefreshReuse != 1 || s.RefreshToken != 3 || s.TokenErrors != 2 || s.API401 != 1 {
		t.Errorf("Stats = %+v; want refresh_reuse 1, refresh_token 3, token_errors 2, api_401 1", s)
	}
}

func TestControlExpire(t *testing.T) {
	e := newEnv(t, devprovider.Config{AutoApprove: true})
	alice := e.login()
	bob := e.login(oauth2.SetAuthURLParam("login_hint", "bob"))

	var out map[string]int
	e.control("/control/expire?subject=alice", &out)
	if out["expired"] != 1 {
		t.Errorf("expired = %v; want 1", out)
	}
	res, body := e.me(alice.AccessToken)
	const want = `Bearer realm="tether-dev", error="invalid_token", error_description="the access token expired"`
	if res.StatusCode != 401 || res.Header.Get("WWW-Authenticate") != want || body["error"] != "invalid_token" {
		t.Errorf("/api/me: %d %q %v; want 401 %q", res.StatusCode, res.Header.Get("WWW-Authenticate"), body, want)
	}
	if res, _ := e.me(bob.AccessToken); res.StatusCode != 200 {
		t.Errorf("bob's token: %d; want 200 (only alice's expired)", res.StatusCode)
	}
	next, err := e.refresh(e.ctx, alice.RefreshToken)
	if err != nil {
		t.Fatalf("refresh after expire: %v", err)
	}
	if res, _ := e.me(next.AccessToken); res.StatusCode != 200 {
		t.Errorf("refreshed token: %d", res.StatusCode)
	}
	e.control("/control/expire", &out)
	if out["expired"] != 2 {
		t.Errorf("expire all: %v; want 2 (bob's and the refreshed one)", out)
	}
}

func TestControlRevoke(t *testing.T) {
	e := newEnv(t, devprovider.Config{AutoApprove: true})
	a1, a2 := e.login(), e.login()
	bob := e.login(oauth2.SetAuthURLParam("login_hint", "bob"))

	var out map[string]int
	e.control("/control/revoke?subject=alice", &out)
	if out["revoked"] != 2 {
		t.Errorf("revoked = %v; want 2", out)
	}
	for _, tok := range []*oauth2.Token{a1, a2} {
		if res, _ := e.me(tok.AccessToken); res.StatusCode != 401 {
			t.Errorf("/api/me after revoke: %d", res.StatusCode)
		}
		_, err := e.refresh(e.ctx, tok.RefreshToken)
		wantGrantError(t, err, 400, "invalid_grant")
	}
	if _, err := e.refresh(e.ctx, bob.RefreshToken); err != nil {
		t.Errorf("bob's refresh: %v", err)
	}
	if s := e.p.Stats(); s.RefreshReuse != 0 {
		t.Errorf("refresh_reuse = %d; a revoked grant is not reuse", s.RefreshReuse)
	}
	if res := e.do("POST", "/control/revoke?subject=mallory", nil, nil); res.StatusCode != 400 {
		t.Errorf("unknown subject: %d; want 400", res.StatusCode)
	}
}

func TestRevokeEndpoint(t *testing.T) {
	e := newEnv(t, devprovider.Config{AutoApprove: true})
	tok := e.login()
	other := e.login()
	revoke := func(form, user, pass string) int {
		req, _ := http.NewRequestWithContext(t.Context(), "POST", e.srv.URL+"/revoke", strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		res, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	id, secret := devprovider.DefaultClientID, devprovider.DefaultClientSecret
	post := "&client_id=" + id + "&client_secret=" + secret

	if got := revoke("token="+other.AccessToken+"&token_type_hint=access_token"+post, "", ""); got != 200 {
		t.Fatalf("revoke access token: %d", got)
	}
	if e.p.AccessTokenValid(other.AccessToken) || !e.p.RefreshTokenValid(other.RefreshToken) {
		t.Error("revoking an access token must revoke it alone")
	}
	if got := revoke("token="+tok.RefreshToken+"&token_type_hint=refresh_token", id, secret); got != 200 {
		t.Fatalf("revoke refresh token: %d", got)
	}
	if e.p.RefreshTokenValid(tok.RefreshToken) || e.p.AccessTokenValid(tok.AccessToken) {
		t.Error("revoking a refresh token must revoke the grant")
	}
	if got := revoke("token=dev_rt_unknown", id, secret); got != 200 {
		t.Errorf("unknown token: %d; want 200", got)
	}
	if got := revoke("token="+other.RefreshToken, id, "wrong"); got != 401 {
		t.Errorf("bad secret: %d; want 401", got)
	}
	if got := revoke("", id, secret); got != 400 {
		t.Errorf("no token: %d; want 400", got)
	}
	if s := e.p.Stats(); s.Revoke != 3 {
		t.Errorf("revoke = %d; want 3", s.Revoke)
	}
}

func TestStatsExactUnderConcurrency(t *testing.T) {
	e := newEnv(t, devprovider.Config{AutoApprove: true})
	const n = 50
	toks := make([]*oauth2.Token, n)
	for i := range toks {
		toks[i] = e.login()
	}
	e.control("/control/reset-stats", nil)

	parallel := func(f func(i int)) {
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { f(i) })
		}
		wg.Wait()
	}
	next := make([]*oauth2.Token, n)
	parallel(func(i int) {
		var err error
		if next[i], err = e.refresh(e.ctx, toks[i].RefreshToken); err != nil {
			t.Errorf("refresh %d: %v", i, err)
		}
	})
	var got devprovider.Stats
	e.do("GET", "/control/stats", nil, &got)
	if want := (devprovider.Stats{RefreshToken: n}); got != want || e.p.Stats() != want {
		t.Errorf("after %d refreshes: /control/stats %+v, Stats() %+v; want %+v", n, got, e.p.Stats(), want)
	}

	// The same refresh token, n times at once: exactly one wins, the rest
	// are reuse.
	e.p.ResetStats()
	wins := make(chan string, n)
	parallel(func(int) {
		if tok, err := e.refresh(e.ctx, next[0].RefreshToken); err == nil {
			wins <- tok.RefreshToken
		}
	})
	close(wins)
	if len(wins) != 1 {
		t.Errorf("%d concurrent uses of one refresh token succeeded; want 1", len(wins))
	}
	want := devprovider.Stats{RefreshToken: n, RefreshReuse: n - 1, TokenErrors: n - 1}
	if got := e.p.Stats(); got != want {
		t.Errorf("Stats = %+v; want %+v", got, want)
	}
	if rt := <-wins; rt != "" && e.p.RefreshTokenValid(rt) {
		t.Error("the winner's refresh token survived the reuse")
	}
}
