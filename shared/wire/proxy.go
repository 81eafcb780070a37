package wire

// Proxy mode: the BFF calls configured APIs for the page, so the browser
// never holds an access token.
//
// GET|POST|… PathAPI + "/<route>/<path>?<query>" is forwarded to the route's
// upstream URL + "/<path>?<query>" with the session's access token in
// Authorization. It needs X-CSRF: 1 and the session cookie, like every BFF
// JSON request. The upstream's answer comes back as it is (status, headers
// other than Set-Cookie and CORS, body, streams, protocol upgrades), with
// Cache-Control: no-store. When the BFF answers by itself (no session, a
// revoked grant, a provider outage with an expired token, a refused path, an
// unreachable upstream) the body is an ErrorBody and HeaderError carries its
// code, so a client can tell the BFF's 401 from the API's.
const (
	// PathAPI is the prefix of proxied API calls.
	PathAPI = BasePath + "/api"
)

// Proxy-mode headers. The BFF removes any header of these names from an
// upstream's answer: only the BFF sets them.
const (
	// HeaderError names the error code (ErrReconnectRequired, …) of an
	// answer the BFF made itself on a proxied route.
	HeaderError = "Tether-Error"
	// HeaderDegraded is set, to the seconds before the BFF tries the
	// provider again, on an upstream answer obtained with an access token
	// that is still valid but could not be refreshed (the provider is
	// failing): the equivalent of TokenResponse.Degraded.
	HeaderDegraded = "Tether-Degraded"
	// HeaderExpiresAt is set on every upstream answer to the expiry (Unix
	// seconds, 0 = unknown) of the access token the BFF sent: a client
	// tells from it that the token changed (TokenResponse.ExpiresAt),
	// without seeing the token.
	HeaderExpiresAt = "Tether-Expires-At"
	// HeaderRetried is set ("1") on an upstream answer to a request the
	// BFF sent again with a new token after the API answered 401.
	HeaderRetried = "Tether-Retried"
)

// Proxy-mode error codes.
const (
	// ErrUpstreamUnavailable: the API could not be reached, or broke off
	// its answer. HTTP 502.
	ErrUpstreamUnavailable = "upstream_unavailable"
	// ErrUpstreamTimeout: the API did not answer in time. HTTP 504.
	ErrUpstreamTimeout = "upstream_timeout"
	// ErrRequestTooLarge: a proxied request's body is over the BFF's
	// limit. HTTP 413.
	ErrRequestTooLarge = "request_too_large"
)
