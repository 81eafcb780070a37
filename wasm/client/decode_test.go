package client

import (
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/tetherauth/tether/shared/wire"
	"github.com/tetherauth/tether/shared/wire/wiretest"
)

// object is a parsed JSON object for tests: what JSON.parse would give.
type object map[string]any

func (o object) String(name string) (string, bool) {
	s, ok := o[name].(string)
	return s, ok
}

func (o object) Number(name string) (float64, bool) {
	f, ok := o[name].(float64)
	return f, ok
}

func (o object) Bool(name string) (bool, bool) {
	b, ok := o[name].(bool)
	return b, ok
}

// TestFieldNames keeps the names the client reads equal to shared/wire's
// JSON tags.
func TestFieldNames(t *testing.T) {
	cases := []struct {
		v    any
		want []string
	}{
		{wire.TokenResponse{}, []string{FieldAccessToken, FieldTokenType, FieldExpiresAt, FieldExpiresIn, FieldRefreshBuffer, FieldScope, FieldDegraded, FieldRetryAfter}},
		{wire.ErrorBody{}, []string{FieldError, FieldReason, FieldMessage}},
		{wire.TokenRequest{}, []string{FieldForce, FieldRejected}},
	}
	for _, c := range cases {
		if got := wiretest.JSONNames(c.v); !reflect.DeepEqual(got, c.want) {
			t.Errorf("wiretest.JSONNames(%T) = %q; client reads %q", c.v, got, c.want)
		}
	}
}

func TestDecodeToken(t *testing.T) {
	good := func() object {
		return object{
			"access_token": "eyJ.abc-_~+/==", "token_type": "Bearer",
			"expires_at": 1.7e9, "expires_in": 300.0, "refresh_buffer": 60.0, "scope": "api",
		}
	}
	with := func(k string, v any) object {
		o := good()
		if v == nil {
			delete(o, k)
		} else {
			o[k] = v
		}
		return o
	}
	cases := []struct {
		name string
		in   object
		want wire.TokenResponse // zero AccessToken: an error is wanted
	}{
		{"good", good(), wire.TokenResponse{AccessToken: "eyJ.abc-_~+/==", TokenType: "Bearer", ExpiresAt: 1.7e9, ExpiresIn: 300, RefreshBuffer: 60, Scope: "api"}},
		{"lower-case bearer", with("token_type", "bearer"), wire.TokenResponse{AccessToken: "eyJ.abc-_~+/==", TokenType: "Bearer", ExpiresAt: 1.7e9, ExpiresIn: 300, RefreshBuffer: 60, Scope: "api"}},
		{"no expiry", with("expires_at", nil), wire.TokenResponse{AccessToken: "eyJ.abc-_~+/==", TokenType: "Bearer", ExpiresIn: 300, RefreshBuffer: 60, Scope: "api"}},
		{"negative", with("expires_in", -5.0), wire.TokenResponse{AccessToken: "eyJ.abc-_~+/==", TokenType: "Bearer", ExpiresAt: 1.7e9, RefreshBuffer: 60, Scope: "api"}},
		{"NaN", with("refresh_buffer", math.NaN()), wire.TokenResponse{AccessToken: "eyJ.abc-_~+/==", TokenType: "Bearer", ExpiresAt: 1.7e9, ExpiresIn: 300, Scope: "api"}},
		{"string number", with("expires_in", "300"), wire.TokenResponse{AccessToken: "eyJ.abc-_~+/==", TokenType: "Bearer", ExpiresAt: 1.7e9, RefreshBuffer: 60, Scope: "api"}},
		{"degraded", with("degraded", true), wire.TokenResponse{AccessToken: "eyJ.abc-_~+/==", TokenType: "Bearer", ExpiresAt: 1.7e9, ExpiresIn: 300, RefreshBuffer: 60, Scope: "api", Degraded: true}},
		{"retry after", with("retry_after", 12.0), wire.TokenResponse{AccessToken: "eyJ.abc-_~+/==", TokenType: "Bearer", ExpiresAt: 1.7e9, ExpiresIn: 300, RefreshBuffer: 60, Scope: "api", RetryAfter: 12}},
		{"degraded not a bool", with("degraded", "true"), wire.TokenResponse{AccessToken: "eyJ.abc-_~+/==", TokenType: "Bearer", ExpiresAt: 1.7e9, ExpiresIn: 300, RefreshBuffer: 60, Scope: "api"}},
		{"missing token", with("access_token", nil), wire.TokenResponse{}},
		{"number token", with("access_token", 12.0), wire.TokenResponse{}},
		{"header injection", with("access_token", "abc\r\nX-Evil: 1"), wire.TokenResponse{}},
		{"space", with("access_token", "a b"), wire.TokenResponse{}},
		{"padding inside", with("access_token", "a=b"), wire.TokenResponse{}},
		{"only padding", with("access_token", "=="), wire.TokenResponse{}},
		{"mac type", with("token_type", "mac"), wire.TokenResponse{}},
		{"no type", with("token_type", nil), wire.TokenResponse{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := DecodeToken(c.in)
			if c.want.AccessToken == "" {
				if !errors.Is(err, ErrBadToken) {
					t.Fatalf("DecodeToken = %+v, %v; want ErrBadToken", got, err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("DecodeToken = %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}

func TestDecodeError(t *testing.T) {
	got := DecodeError(object{"error": "reconnect_required", "reason": "revoked", "message": 3.0})
	want := wire.ErrorBody{Error: wire.ErrReconnectRequired, Reason: wire.ReasonRevoked}
	if got != want {
		t.Fatalf("DecodeError = %+v; want %+v", got, want)
	}
}

// TestRetryAfterCap: the client honours at most 30 s, the BFF's default
// TETHER_RETRY_AFTER_MAX, from the header and from a degraded response.
func TestRetryAfterCap(t *testing.T) {
	if MaxRetryAfter != 30*Second {
		t.Errorf("MaxRetryAfter = %d ms; want 30 s, the BFF's cap", MaxRetryAfter)
	}
	base := object{"access_token": "abc", "token_type": "Bearer", "degraded": true}
	for in, want := range map[float64]int64{3600: 30, 31: 30, 30: 30, 2: 2} {
		o := object{"retry_after": in}
		for k, v := range base {
			o[k] = v
		}
		tr, err := DecodeToken(o)
		if err != nil || tr.RetryAfter != want {
			t.Errorf("retry_after %v: %d, %v; want %d", in, tr.RetryAfter, err, want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	cases := []struct {
		in   string
		want int64
	}{
		{"", 0},
		{"7", 7 * Second},
		{" 7 ", 7 * Second},
		{"0", 0},
		{"-3", 0},
		{"soon", 0},
		{"1.5", 0},
		{"Wed, 21 Oct 2015 07:28:00 GMT", 0},
		{"30", 30 * Second},
		{"31", MaxRetryAfter},
		{"3600", MaxRetryAfter},
		{"99999999999", MaxRetryAfter},
		{"999999999999999999999", 0},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			if got := ParseRetryAfter(c.in); got != c.want {
				t.Errorf("ParseRetryAfter(%q) = %d; want %d", c.in, got, c.want)
			}
		})
	}
}

func TestResponseErrorReconnect(t *testing.T) {
	cases := []struct {
		name       string
		err        ResponseError
		wantReason string // "" means not a reconnect
	}{
		{"revoked", ResponseError{Status: 401, Body: wire.ErrorBody{Error: wire.ErrReconnectRequired, Reason: wire.ReasonRevoked}}, wire.ReasonRevoked},
		{"bare 401", ResponseError{Status: 401}, wire.ReasonNoSession},
		{"no reason", ResponseError{Status: 401, Body: wire.ErrorBody{Error: wire.ErrReconnectRequired}}, wire.ReasonNoSession},
		{"503", ResponseError{Status: 503, Body: wire.ErrorBody{Error: wire.ErrProviderUnavailable}}, ""},
		{"bare 500", ResponseError{Status: 500}, ""},
		{"403 csrf", ResponseError{Status: 403, Body: wire.ErrorBody{Error: wire.ErrCSRFHeaderMissing}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			reason, ok := c.err.reconnect()
			if ok != (c.wantReason != "") || reason != c.wantReason {
				t.Errorf("reconnect() = %q, %v; want %q", reason, ok, c.wantReason)
			}
		})
	}
}
