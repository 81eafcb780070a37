package bff

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/tetherauth/tether/bff/admin"
	"github.com/tetherauth/tether/bff/vault"
	"github.com/tetherauth/tether/shared/wire"
)

const adminToken = "admin-token-0123456789abcdef"

// adminServer serves replica 0's admin API on a loopback listener.
func (s *stack) adminServer(token string) string {
	ln, u := listen(s.t)
	serve(s.t, ln, s.bffs[0].AdminHandler(token))
	return u
}

// TestAdminSessions: without the token 401; GET lists a user's sessions
// by hashed id with their times and no token; DELETE ends all of alice's
// sessions and revokes her grants at the provider, bob untouched; the
// CLI does the same against the real listener.
func TestAdminSessions(t *testing.T) {
	s := newStack(t, stackOptions{})
	alice1, alice2, bob := s.newBrowser(), s.newBrowser(), s.newBrowser()
	alice1.loginAs(s.urls[0], "alice")
	alice2.loginAs(s.urls[0], "alice")
	bob.loginAs(s.urls[0], "bob")
	base := s.adminServer(adminToken)
	ctx := context.Background()

	for name, auth := range map[string]string{
		"no token": "", "wrong token": "Bearer " + adminToken + "x", "basic": "Basic " + adminToken,
		"token only": adminToken, "empty bearer": "Bearer ",
	} {
		for _, method := range []string{http.MethodGet, http.MethodDelete} {
			r, _ := http.NewRequest(method, base+admin.PathSessions+"?subject=alice", nil)
			if auth != "" {
				r.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s %s: %d; want 401", name, method, resp.StatusCode)
			}
		}
	}
	// A token too short to be one opens nothing, even when presented.
	short := s.adminServer("short")
	if _, err := (&admin.Client{Addr: short, Token: "short"}).List(ctx, "alice"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("a short token: %v; want 401", err)
	}
	if s.endedWith(s.sid(alice1)) != "" || s.endedWith(s.sid(bob)) != "" {
		t.Fatal("refused admin requests ended sessions")
	}

	c := &admin.Client{Addr: base, Token: adminToken}
	list, err := c.List(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{vault.HashID(s.sid(alice1)): true, vault.HashID(s.sid(alice2)): true}
	if len(list.Sessions) != 2 {
		t.Fatalf("alice's sessions: %+v; want 2", list)
	}
	now := s.clock.Now().Unix()
	for _, ss := range list.Sessions {
		if !want[ss.ID] {
			t.Errorf("listed %q, not one of alice's hashed ids", ss.ID)
		}
		if ss.Created < now-60 || ss.Created > now || ss.ExpiresAt <= now || ss.AccessExpiresAt <= now || ss.Name == "" {
			t.Errorf("session %+v: want created now, expiring later, a name", ss)
		}
	}
	// Never a token, never the raw id.
	r, _ := http.NewRequest(http.MethodGet, base+admin.PathSessions+"?subject=alice", nil)
	r.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp)
	resp.Body.Close()
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q; want no-store", resp.Header.Get("Cache-Control"))
	}
	for _, secret := range []string{"dev_at_", "dev_rt_", s.sid(alice1), s.sid(alice2), "eyJ"} {
		if strings.Contains(body, secret) {
			t.Errorf("the listing shows %q", secret)
		}
	}
	if got, err := c.List(ctx, "nobody"); err != nil || len(got.Sessions) != 0 {
		t.Errorf("nobody's sessions: %+v, %v; want none", got, err)
	}

	// DELETE: both of alice's sessions end, both grants are revoked.
	recs := map[string]*vault.Record{}
	for name, b := range map[string]*browser{"alice1": alice1, "alice2": alice2, "bob": bob} {
		rec, err := s.recordOf(s.sid(b))
		if err != nil {
			t.Fatal(err)
		}
		recs[name] = rec
	}
	st0 := s.dev.Stats()
	ended, err := c.End(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if ended.Ended != 2 || ended.Revoked != 2 || ended.RevokeFailed != 0 {
		t.Fatalf("DELETE alice = %+v; want 2 ended, 2 revoked", ended)
	}
	if d := s.dev.Stats().Revoke - st0.Revoke; d != 2 {
		t.Errorf("the provider counted %d revocations; want 2", d)
	}
	for _, name := range []string{"alice1", "alice2"} {
		if s.dev.RefreshTokenValid(recs[name].RefreshToken) {
			t.Errorf("%s's refresh token is still valid at the provider", name)
		}
	}
	for _, b := range []*browser{alice1, alice2} {
		if r := b.token(s.urls[0], nil); r.status != http.StatusUnauthorized || r.err.Reason != wire.ReasonRevoked {
			t.Errorf("alice's /bff/token after DELETE = %d %+v; want 401 revoked", r.status, r.err)
		}
	}
	if !s.dev.RefreshTokenValid(recs["bob"].RefreshToken) {
		t.Error("bob's grant was revoked")
	}
	bob.mustToken(s.urls[0], nil)
	if again, err := c.End(ctx, "alice"); err != nil || again.Ended != 0 || again.Revoked != 0 {
		t.Errorf("a second DELETE = %+v, %v; want nothing ended", again, err)
	}

	// The CLI against the listener.
	getenv := func(k string) string {
		return map[string]string{"TETHER_ADMIN_ADDR": strings.TrimPrefix(base, "http://"), "TETHER_ADMIN_TOKEN": adminToken}[k]
	}
	var out bytes.Buffer
	if err := admin.RunCLI(ctx, []string{"list", "--subject", "bob"}, getenv, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "1 sessions of bob") || !strings.Contains(out.String(), vault.HashID(s.sid(bob))) {
		t.Errorf("tether sessions list --subject bob printed:\n%s", out.String())
	}
	out.Reset()
	st0 = s.dev.Stats()
	if err := admin.RunCLI(ctx, []string{"end", "--subject=bob"}, getenv, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "ended 1 sessions of bob; revoked 1 grants") {
		t.Errorf("tether sessions end --subject=bob printed %q", out.String())
	}
	if d := s.dev.Stats().Revoke - st0.Revoke; d != 1 {
		t.Errorf("the CLI's end revoked %d grants; want 1", d)
	}
	if r := s.endedWith(s.sid(bob)); r != wire.ReasonRevoked {
		t.Errorf("bob after the CLI's end: %q; want revoked", r)
	}
	for _, args := range [][]string{{}, {"list"}, {"show", "--subject", "bob"}, {"list", "--user", "bob"}} {
		if err := admin.RunCLI(ctx, args, getenv, &out); err == nil {
			t.Errorf("RunCLI(%q) accepted a bad command line", args)
		}
	}
	if err := admin.RunCLI(ctx, []string{"list", "--subject", "bob"}, func(string) string { return "" }, &out); err == nil {
		t.Error("RunCLI without TETHER_ADMIN_TOKEN did not fail")
	}
	s.assertNoSecrets(alice1)
}
