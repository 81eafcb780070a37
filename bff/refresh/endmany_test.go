package refresh

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/devprovider"
	"github.com/tetherauth/tether/bff/provider"
	"github.com/tetherauth/tether/bff/vault"
)

// TestEndSubjectAndProviderSession: EndProviderSession ends the sessions
// of one provider session and revokes nothing; EndSubject ends the rest
// of the user's, revoking each grant (a failed revocation is counted and
// the session ends anyway); other users are untouched; sessions that
// already ended are not counted again.
func TestEndSubjectAndProviderSession(t *testing.T) {
	e := newEngine(t)
	ctx := t.Context()
	put := func(sid, sub, psid, rt string) {
		t.Helper()
		rec := *e.rec
		rec.Subject, rec.ProviderSID, rec.RefreshToken = sub, psid, rt
		if err := e.v.Put(ctx, sid, &rec, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	// e.sid is alice's real grant; add her second provider session and bob.
	put(e.sid, "alice", "op-1", e.rec.RefreshToken)
	put("alice-2", "alice", "op-2", "dev_rt_made_up")
	put("bob-1", "bob", "op-3", "dev_rt_bobs")
	ended := func(sid string) string {
		_, err := e.v.Get(ctx, sid)
		var ee *vault.EndedError
		if errors.As(err, &ee) {
			return ee.Reason
		}
		return ""
	}

	st0 := e.dev.Stats()
	got, err := e.r.EndProviderSession(ctx, "op-2", ReasonSignedOut)
	if err != nil || got != (Ended{Ended: 1}) {
		t.Fatalf("EndProviderSession(op-2) = %+v, %v; want 1 ended", got, err)
	}
	if ended("alice-2") != string(ReasonSignedOut) || ended(e.sid) != "" || ended("bob-1") != "" {
		t.Fatalf("after op-2's end: alice-2 %q, alice %q, bob %q", ended("alice-2"), ended(e.sid), ended("bob-1"))
	}
	if e.dev.Stats().Revoke != st0.Revoke {
		t.Error("EndProviderSession revoked a grant")
	}

	got, err = e.r.EndSubject(ctx, "alice", ReasonRevoked, true)
	if err != nil || got != (Ended{Ended: 1, Revoked: 1}) {
		t.Fatalf("EndSubject(alice) = %+v, %v; want 1 ended (alice-2 had), 1 revoked", got, err)
	}
	if ended(e.sid) != string(ReasonRevoked) || ended("alice-2") != string(ReasonSignedOut) || ended("bob-1") != "" {
		t.Fatalf("after alice's end: alice %q, alice-2 %q (its first reason stands), bob %q", ended(e.sid), ended("alice-2"), ended("bob-1"))
	}
	if d := e.dev.Stats().Revoke - st0.Revoke; d != 1 || e.dev.RefreshTokenValid(e.rec.RefreshToken) {
		t.Errorf("revocations %d, alice's refresh token valid %v; want 1, false", d, e.dev.RefreshTokenValid(e.rec.RefreshToken))
	}

	// A provider whose revocation endpoint fails.
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) }))
	defer bad.Close()
	p, err := provider.New(ctx, provider.Config{
		Endpoints: provider.Endpoints{Issuer: e.dev.Issuer(), RevokeURL: bad.URL}, ClientID: devprovider.DefaultClientID,
		ClientSecret: devprovider.DefaultClientSecret, Scopes: []string{"openid"}, RedirectURL: "http://127.0.0.1/bff/callback",
	})
	if err != nil {
		t.Fatal(err)
	}
	r := New(e.v, p, Config{ProviderTimeout: time.Second})
	got, err = r.EndSubject(ctx, "bob", ReasonRevoked, true)
	if err != nil || got != (Ended{Ended: 1, RevokeFailed: 1}) {
		t.Fatalf("EndSubject(bob) with a failing revocation = %+v, %v; want 1 ended, 1 failed", got, err)
	}
	if ended("bob-1") != string(ReasonRevoked) {
		t.Fatal("bob's session did not end when its revocation failed")
	}
	if ids, _ := e.v.SubjectSessions(ctx, "alice"); len(ids) != 0 {
		t.Errorf("alice's index still lists %v", ids)
	}
}
