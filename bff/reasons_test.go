package bff

import (
	"net/http"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/refresh"
	"github.com/tetherauth/tether/shared/wire"
)

// TestReasonsAreWireReasons: the engine's reasons go to the browser as
// they are, so each must be the contract's reason of the same name, and
// its errors must map to the contract's codes and statuses.
func TestReasonsAreWireReasons(t *testing.T) {
	pairs := []struct {
		engine refresh.Reason
		wire   string
	}{
		{refresh.ReasonNoSession, wire.ReasonNoSession},
		{refresh.ReasonRevoked, wire.ReasonRevoked},
		{refresh.ReasonExpired, wire.ReasonExpired},
		{refresh.ReasonSignedOut, wire.ReasonSignedOut},
	}
	for _, p := range pairs {
		code, reason, _ := wireError(&refresh.ReconnectError{Reason: p.engine})
		if code != wire.ErrReconnectRequired || reason != p.wire || string(p.engine) != p.wire {
			t.Errorf("refresh reason %q → %q %q; want reconnect_required %q", p.engine, code, reason, p.wire)
		}
	}
	errs := []struct {
		err    error
		code   string
		status int
	}{
		{&refresh.UnavailableError{RetryAfter: time.Second}, wire.ErrProviderUnavailable, http.StatusServiceUnavailable},
		{&refresh.StorageError{}, wire.ErrStorageUnavailable, http.StatusServiceUnavailable},
		{&refresh.ThrottledError{RetryAfter: time.Second}, wire.ErrTooManyRefreshes, http.StatusTooManyRequests},
	}
	for _, e := range errs {
		if code, _, _ := wireError(e.err); code != e.code || wire.Status(code) != e.status {
			t.Errorf("%T → %q (%d); want %q (%d)", e.err, code, wire.Status(code), e.code, e.status)
		}
	}
}
