package devprovider_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/tetherauth/tether/bff/devprovider"
)

// receiver is a client's back-channel logout endpoint that verifies each
// logout token with the provider's keys and keeps its claims.
type receiver struct {
	mu     sync.Mutex
	claims []map[string]any
	status int
}

// TestBackchannelLogoutTokens: ID tokens carry a sid per login; the
// provider's logout sends one logout token per provider session of the
// user (sid and sub), /control/backchannel one naming the user (sub, no
// sid), /control/revoke?backchannel=1 revokes and sends one; each token
// is a logout+jwt signed by the ID-token key with the back-channel event,
// a jti, iat and exp, and no nonce; the stats count deliveries.
func TestBackchannelLogoutTokens(t *testing.T) {
	rcv := &receiver{status: http.StatusOK}
	var verifier *oidc.IDTokenVerifier
	client := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			t.Errorf("back-channel request %s %q", r.Method, r.Header.Get("Content-Type"))
		}
		tok, err := verifier.Verify(r.Context(), r.PostFormValue("logout_token"))
		if err != nil {
			t.Errorf("logout token: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var c map[string]any
		tok.Claims(&c)
		rcv.mu.Lock()
		rcv.claims = append(rcv.claims, c)
		status := rcv.status
		rcv.mu.Unlock()
		w.WriteHeader(status)
	}))
	defer client.Close()
	e := newEnv(t, devprovider.Config{AutoApprove: true, BackchannelLogoutURI: client.URL + "/bff/backchannel"})
	ctx := oidc.ClientContext(e.ctx, e.srv.Client())
	prov, err := oidc.NewProvider(ctx, e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	e.conf.Endpoint = prov.Endpoint()
	verifier = prov.Verifier(&oidc.Config{ClientID: devprovider.DefaultClientID, Now: e.clk.Now})
	var meta struct {
		Supported bool `json:"backchannel_logout_supported"`
		Session   bool `json:"backchannel_logout_session_supported"`
	}
	prov.Claims(&meta)
	if !meta.Supported || !meta.Session {
		t.Errorf("discovery: %+v; want back-channel logout with sessions", meta)
	}

	sids := map[string]bool{}
	for range 2 {
		tok := e.login(oidc.Nonce("n"))
		idt, err := verifier.Verify(ctx, tok.Extra("id_token").(string))
		if err != nil {
			t.Fatal(err)
		}
		var c struct{ SID string }
		idt.Claims(&c)
		if c.SID == "" {
			t.Fatal("an ID token without sid")
		}
		sids[c.SID] = true
	}
	if len(sids) != 2 {
		t.Fatalf("two logins, provider sessions %v; want two", sids)
	}

	check := func(c map[string]any, wantSID bool) {
		t.Helper()
		ev, _ := c["events"].(map[string]any)
		if _, ok := ev[devprovider.BackchannelLogoutEvent].(map[string]any); !ok {
			t.Errorf("events %v lack the back-channel event", c["events"])
		}
		if c["sub"] != "alice" || c["jti"] == nil || c["iat"] == nil || c["exp"] == nil || c["nonce"] != nil {
			t.Errorf("claims %v: want sub alice, jti, iat, exp, no nonce", c)
		}
		if sid, _ := c["sid"].(string); wantSID != (sid != "") || (wantSID && !sids[sid]) {
			t.Errorf("sid %v; want a login's sid: %v", c["sid"], wantSID)
		}
	}
	// The provider's own logout: one per provider session.
	var out map[string]int
	e.control("/logout?subject=alice", &out)
	if out["sent"] != 2 || len(rcv.claims) != 2 {
		t.Fatalf("/logout sent %v, received %d; want 2", out, len(rcv.claims))
	}
	for _, c := range rcv.claims {
		check(c, true)
	}
	if rcv.claims[0]["jti"] == rcv.claims[1]["jti"] {
		t.Error("two logout tokens share a jti")
	}
	// Only the token, naming the user.
	rcv.claims = nil
	e.control("/control/backchannel?subject=alice", &out)
	if out["sent"] != 1 || len(rcv.claims) != 1 {
		t.Fatalf("/control/backchannel sent %v; want 1", out)
	}
	check(rcv.claims[0], false)
	// Revoke: without backchannel=1 nothing is sent.
	rcv.claims = nil
	e.control("/control/revoke?subject=bob", &out)
	if len(rcv.claims) != 0 {
		t.Fatalf("a plain revoke sent %d logout tokens", len(rcv.claims))
	}
	n, err := (&devprovider.Controls{URL: e.srv.URL}).RevokeAndLogout(context.Background(), "alice")
	if err != nil || n != 2 || len(rcv.claims) != 1 {
		t.Fatalf("RevokeAndLogout = %d, %v, %d tokens; want 2 grants revoked, 1 token", n, err, len(rcv.claims))
	}
	if st := e.p.Stats(); st.BackchannelSent != 4 || st.BackchannelFailed != 0 {
		t.Errorf("stats %+v; want 4 sent", st)
	}
	// A client that refuses: an error, counted.
	rcv.status = http.StatusBadRequest
	if _, err := (&devprovider.Controls{URL: e.srv.URL}).Backchannel(context.Background(), "alice", ""); err == nil {
		t.Error("a refused logout token is not an error")
	}
	if st := e.p.Stats(); st.BackchannelFailed != 1 {
		t.Errorf("BackchannelFailed = %d; want 1", st.BackchannelFailed)
	}
}

// TestBackchannelWithoutURI: with no URI registered the controls say so.
func TestBackchannelWithoutURI(t *testing.T) {
	e := newEnv(t, devprovider.Config{AutoApprove: true})
	if _, err := (&devprovider.Controls{URL: e.srv.URL}).Backchannel(context.Background(), "alice", ""); err == nil {
		t.Fatal("Backchannel without a URI succeeded")
	}
	if _, err := devprovider.New(devprovider.Config{Issuer: "http://127.0.0.1:1", BackchannelLogoutURI: "/relative"}); err == nil {
		t.Fatal("a relative BackchannelLogoutURI was accepted")
	}
}
