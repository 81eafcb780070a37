package client

import (
	"testing"
	"testing/synctest"

	"github.com/tetherauth/tether/shared/wire"
)

// TestEnded: the BFF's announcement that the session ended drops the
// token (the page's copy first), raises one reconnect with the reason,
// and makes every later call fail at once, with no request.
func TestEnded(t *testing.T) {
	for _, c := range []struct{ given, want string }{
		{wire.ReasonSignedOut, wire.ReasonSignedOut},
		{wire.ReasonRevoked, wire.ReasonRevoked},
		{wire.ReasonExpired, wire.ReasonExpired},
	} {
		t.Run(c.given, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				src := &fakeSource{reply: issuing(600, 60)}
				cl, rec := newClient(t, src)
				mustToken(t, cl, "tok-1")
				synctest.Wait() // the flight emits "token" after it wakes Token's caller
				cl.Ended(c.given)
				wantCached(t, cl, "")
				if st := cl.State(); st.Connected || st.Reason != c.want {
					t.Errorf("state %+v; want disconnected, reason %s", st, c.want)
				}
				for range 3 {
					if _, err := cl.Token(); err == nil || err.(*ReconnectError).Reason != c.want {
						t.Errorf("Token() error %v; want a reconnect (%s)", err, c.want)
					}
					if _, err := cl.Recover("tok-1"); err == nil {
						t.Error("Recover() after the end succeeded")
					}
				}
				cl.Ended(wire.ReasonRevoked) // once is enough
				if src.count() != 1 || rec.kinds() != "token reconnect("+c.want+")" {
					t.Errorf("%d requests, events %q; want 1 and one reconnect(%s)", src.count(), rec.kinds(), c.want)
				}
				if seq := rec.sequence(); seq != "set(tok-1) token set() reconnect" {
					t.Errorf("sequence %q; want the page's copy dropped before the event", seq)
				}
			})
		})
	}
}
