// Package wire is the HTTP contract between the Tether BFF and its browser
// client: JSON shapes, error codes, reasons and header names.
//
// Both sides import it, so it depends on the standard library only and on no
// package that would bloat a WebAssembly binary: not even encoding/json. The
// struct tags below are the field names on the wire; the WASM client reads
// them through the browser's JSON.parse and a test keeps the two in step.
package wire

// Version is the version of this contract. It changes only when a field or a
// route changes meaning; new optional fields do not bump it.
const Version = "v1"

// Routes, relative to the BFF's base path.
const (
	// BasePath is where every BFF route lives.
	BasePath = "/bff"
	// PathLogin starts the authorization-code flow (GET, a navigation).
	PathLogin = BasePath + "/login"
	// PathCallback is the redirect URI registered at the provider.
	PathCallback = BasePath + "/callback"
	// PathSession tells whether the browser has a session (GET, JSON).
	PathSession = BasePath + "/session"
	// PathToken hands out the current access token (POST, JSON).
	PathToken = BasePath + "/token"
	// PathLogout ends the session and revokes the grant (POST).
	PathLogout = BasePath + "/logout"
	// PathBackchannel receives the provider's OpenID Connect back-channel
	// logout tokens (POST, server to server; not for the browser).
	PathBackchannel = BasePath + "/backchannel"
)

// Header names and values.
const (
	// HeaderCSRF must be present, with value CSRFValue, on every BFF JSON
	// request. A cross-site form cannot set it, and a cross-site fetch that
	// sets it needs a CORS preflight the BFF never grants.
	HeaderCSRF = "X-CSRF"
	// CSRFValue is the only accepted value of HeaderCSRF.
	CSRFValue = "1"
	// HeaderRetryAfter carries the seconds to wait after ErrProviderUnavailable,
	// ErrStorageUnavailable or ErrTooManyRefreshes.
	HeaderRetryAfter = "Retry-After"
	// HeaderAuthorization carries the access token to API origins.
	HeaderAuthorization = "Authorization"
	// HeaderWWWAuthenticate is how an API says why it refused a token (RFC 6750).
	HeaderWWWAuthenticate = "WWW-Authenticate"
)

// Error codes: the "error" member of an ErrorBody.
const (
	// ErrReconnectRequired: the session has no usable grant; the user must
	// log in again. Reason says why. HTTP 401.
	ErrReconnectRequired = "reconnect_required"
	// ErrProviderUnavailable: the provider could not be reached or answered
	// badly, and no still-valid token was at hand. Nothing was deleted;
	// retry after the Retry-After header. HTTP 503.
	ErrProviderUnavailable = "provider_unavailable"
	// ErrCSRFHeaderMissing: a BFF JSON request came without X-CSRF: 1. HTTP 403.
	ErrCSRFHeaderMissing = "csrf_header_missing"
	// ErrInvalidState: the callback's state was missing, unknown, expired or
	// already used. HTTP 400.
	ErrInvalidState = "invalid_state"
	// ErrInvalidReturnTo: return_to was not a same-origin path. HTTP 400.
	ErrInvalidReturnTo = "invalid_return_to"
	// ErrInvalidRequest: the request body or query could not be understood. HTTP 400.
	ErrInvalidRequest = "invalid_request"
	// ErrLoginFailed: the provider refused the login or the code exchange
	// failed. HTTP 400 or 502, shown as a page with a "try again" link.
	ErrLoginFailed = "login_failed"
	// ErrStorageUnavailable: the vault (Redis) could not be reached. Nothing
	// was deleted; retry. HTTP 503.
	ErrStorageUnavailable = "storage_unavailable"
	// ErrTooManyRefreshes: the session asked for more forced refreshes
	// (TokenRequest.Force) than the BFF allows. Nothing was deleted; a
	// client treats it like ErrProviderUnavailable and retries after the
	// Retry-After header. HTTP 429.
	ErrTooManyRefreshes = "too_many_refreshes"
	// ErrMethodNotAllowed: wrong HTTP method for the route. HTTP 405.
	ErrMethodNotAllowed = "method_not_allowed"
	// ErrNotFound: no such route. HTTP 404.
	ErrNotFound = "not_found"
	// ErrInternal: a bug. HTTP 500.
	ErrInternal = "internal"
)

// Reasons: the "reason" member that accompanies ErrReconnectRequired.
const (
	// ReasonNoSession: the browser has no session, or the BFF does not know it.
	ReasonNoSession = "no_session"
	// ReasonRevoked: the provider refused the refresh token (invalid_grant):
	// the user or an admin revoked access, or the token was reused.
	ReasonRevoked = "revoked"
	// ReasonExpired: the refresh token (or a token that could not be
	// refreshed) reached the end of its life.
	ReasonExpired = "expired"
	// ReasonSignedOut: the session was ended by a logout (from this tab,
	// another tab or another device holding the same session).
	ReasonSignedOut = "signed_out"
)

// ErrorBody is the JSON body of every BFF error response.
type ErrorBody struct {
	Error   string `json:"error"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message"`
}

// TokenRequest is the optional JSON body of POST /bff/token.
//
// With Force set, the BFF refreshes only if the vault still holds Rejected,
// the access token an API refused: when many callers retry the same 401, one
// refresh happens and the others get the token it produced.
type TokenRequest struct {
	Force    bool   `json:"force,omitempty"`
	Rejected string `json:"rejected,omitempty"`
}

// TokenResponse is the 200 body of POST /bff/token.
//
// ExpiresAt is Unix seconds, 0 when the provider gave no expiry (the token
// is then used until an API answers 401). ExpiresIn is the seconds left at
// the time of the answer, 0 when unknown. RefreshBuffer is the number of
// seconds before ExpiresAt at which the BFF would refresh: clients schedule
// their next request then.
//
// Degraded is true when the BFF tried to refresh, the provider failed for a
// transient reason, and the BFF answered with the current token because it
// has not expired yet. RetryAfter (seconds) then says when to ask again:
// a client must not ask sooner, even though ExpiresAt−RefreshBuffer has passed.
type TokenResponse struct {
	AccessToken   string `json:"access_token"`
	TokenType     string `json:"token_type"`
	ExpiresAt     int64  `json:"expires_at"`
	ExpiresIn     int64  `json:"expires_in"`
	RefreshBuffer int64  `json:"refresh_buffer"`
	Scope         string `json:"scope,omitempty"`
	Degraded      bool   `json:"degraded,omitempty"`
	RetryAfter    int64  `json:"retry_after,omitempty"`
}

// SessionResponse is the 200 body of GET /bff/session. Times are Unix
// seconds; zero fields are omitted. Without a session, Reason says why
// (ReasonNoSession, or how the browser's last session ended), as a
// reconnect_required would.
type SessionResponse struct {
	Authenticated    bool   `json:"authenticated"`
	Subject          string `json:"subject,omitempty"`
	Name             string `json:"name,omitempty"`
	AccessExpiresAt  int64  `json:"access_expires_at,omitempty"`
	RefreshExpiresAt int64  `json:"refresh_expires_at,omitempty"`
	Reason           string `json:"reason,omitempty"`
}

// TokenTypeBearer is the only token type the BFF hands out.
const TokenTypeBearer = "Bearer"
