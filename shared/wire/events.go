package wire

// The live event stream: GET PathEvents is a Server-Sent Events stream
// (text/event-stream) for the session in the cookie. It needs the cookie
// and a same-origin request (Origin, Sec-Fetch-Site), not X-CSRF, which an
// EventSource cannot send.
//
// The stream starts with a "retry:" field (milliseconds before the
// browser reconnects after the stream breaks), then carries comment lines
// as heartbeats and, when the session ends for any reason on any replica,
// one event EventSessionEnded whose data is a SessionEnded in JSON; then
// the BFF closes it. A session that had already ended when the stream was
// asked for gets that one event at once. Without a session: 401
// ErrReconnectRequired (no_session); too many streams: 429
// ErrTooManyStreams with Retry-After; another origin: 403
// ErrOriginNotAllowed.
const (
	// PathEvents is the session's event stream (GET, text/event-stream).
	PathEvents = BasePath + "/events"
	// EventSessionEnded is the event that says the session ended.
	EventSessionEnded = "session_ended"
)

// Error codes of the event stream.
const (
	// ErrTooManyStreams: the session, or the BFF replica, has as many event
	// streams open as it allows. Retry after the Retry-After header. HTTP 429.
	ErrTooManyStreams = "too_many_streams"
	// ErrOriginNotAllowed: a request that must come from the app's own
	// origin came from another. HTTP 403.
	ErrOriginNotAllowed = "origin_not_allowed"
)

// SessionEnded is the data of EventSessionEnded.
type SessionEnded struct {
	// Reason is why the session ended: ReasonSignedOut, ReasonRevoked,
	// ReasonExpired, or ReasonNoSession when its record is simply gone.
	Reason string `json:"reason"`
}
