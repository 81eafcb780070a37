package refresh

import (
	"errors"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/devprovider"
	"github.com/tetherauth/tether/bff/vault"
)

// TestEndWinsOverRefreshInFlight: End while the provider holds a refresh;
// the provider then answers. The session stays ended, the caller hears
// why, and the tokens nobody will hold are revoked at the provider.
func TestEndWinsOverRefreshInFlight(t *testing.T) {
	e := newEngine(t)
	ctx := t.Context()
	if _, err := e.dev.SetOutage(devprovider.OutageSlow, time.Minute, time.Minute); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := e.r.Token(ctx, e.sid, Want{Force: true, Rejected: e.rec.AccessToken})
		done <- err
	}()
	for deadline := time.Now().Add(5 * time.Second); e.dev.Stats().OutageHits == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the refresh never reached the provider")
		}
	}
	if err := e.r.End(ctx, e.sid, ReasonSignedOut); err != nil {
		t.Fatal(err)
	}
	e.dev.SetOutage(devprovider.OutageNone, 0, 0) // the provider answers now

	var re *ReconnectError
	if err := <-done; !errors.As(err, &re) || re.Reason != ReasonSignedOut {
		t.Fatalf("the refresh in flight: %v; want a ReconnectError signed_out", err)
	}
	var ee *vault.EndedError
	if _, err := e.v.Get(ctx, e.sid); !errors.As(err, &ee) || ee.Reason != string(ReasonSignedOut) {
		t.Fatalf("the session after the refresh landed: %v; want ended, signed_out", err)
	}
	if _, err := e.r.Token(ctx, e.sid, Want{}); !errors.As(err, &re) || re.Reason != ReasonSignedOut {
		t.Fatalf("the next call: %v; want a ReconnectError signed_out", err)
	}
	st := e.dev.Stats()
	if st.RefreshToken != 1 || st.Revoke != 1 {
		t.Errorf("provider refreshes, revocations = %d, %d; want 1, 1 (the late tokens revoked)", st.RefreshToken, st.Revoke)
	}
}
