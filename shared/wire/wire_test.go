package wire_test

import (
	"reflect"
	"testing"

	. "github.com/tetherauth/tether/shared/wire"
	"github.com/tetherauth/tether/shared/wire/wiretest"
)

func TestStatus(t *testing.T) {
	cases := []struct {
		code string
		want int
	}{
		{ErrReconnectRequired, 401},
		{ErrCSRFHeaderMissing, 403},
		{ErrInvalidState, 400},
		{ErrInvalidReturnTo, 400},
		{ErrInvalidRequest, 400},
		{ErrProviderUnavailable, 503},
		{ErrStorageUnavailable, 503},
		{ErrTooManyRefreshes, 429},
		{ErrTooManyStreams, 429},
		{ErrOriginNotAllowed, 403},
		{ErrRequestTooLarge, 413},
		{ErrUpstreamUnavailable, 502},
		{ErrUpstreamTimeout, 504},
		{"no_such_code", 500},
	}
	for _, c := range cases {
		t.Run(c.code, func(t *testing.T) {
			if got := Status(c.code); got != c.want {
				t.Errorf("Status(%q) = %d; want %d", c.code, got, c.want)
			}
		})
	}
}

// TestJSONNames pins the wire names: renaming a Go field must not rename a
// JSON member by accident.
func TestJSONNames(t *testing.T) {
	cases := []struct {
		v    any
		want []string
	}{
		{TokenResponse{}, []string{"access_token", "token_type", "expires_at", "expires_in", "refresh_buffer", "scope", "degraded", "retry_after"}},
		{SessionResponse{}, []string{"authenticated", "subject", "name", "access_expires_at", "refresh_expires_at", "reason"}},
		{ErrorBody{}, []string{"error", "reason", "message"}},
		{TokenRequest{}, []string{"force", "rejected"}},
		{SessionEnded{}, []string{"reason"}},
	}
	for _, c := range cases {
		got := wiretest.JSONNames(c.v)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("wiretest.JSONNames(%T) = %q; want %q", c.v, got, c.want)
		}
	}
}
