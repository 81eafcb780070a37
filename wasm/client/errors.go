package client

// constError is an error that is a constant string. The package does not
// use errors.New: the errors package adds 2 KB to the gzipped binary.
type constError string

func (e constError) Error() string { return string(e) }

// Sentinels for errors.Is.
var (
	// ErrReconnect means the user must log in again; the client makes no
	// request until Reset.
	ErrReconnect = error(constError("client: reconnect required"))
	// ErrUnavailable means no token could be had for now; the client is
	// backing off and will retry by itself.
	ErrUnavailable = error(constError("client: token unavailable"))
	// ErrClosed is returned after Close.
	ErrClosed = error(constError("client: closed"))
	// ErrTimeout is what a token request is abandoned with after
	// Config.RequestTimeout.
	ErrTimeout = error(constError("client: token request timed out"))
)

// ReasonLoggedOut is the Reason of a ReconnectError after Logout. It is the
// client's own, not the BFF's, and raises no reconnect event.
const ReasonLoggedOut = "logged_out"

// ReasonNetwork is the Reason of an UnavailableError when the BFF could not
// be reached or answered something unreadable.
const ReasonNetwork = "network"

// ReconnectError says the grant is gone, with the BFF's reason
// (wire.ReasonNoSession, ReasonRevoked, ReasonExpired) or ReasonLoggedOut.
// The client returns it unwrapped.
type ReconnectError struct {
	Reason string
}

// Error names the reason.
func (e *ReconnectError) Error() string {
	return "client: reconnect required: " + e.Reason
}

// Is matches ErrReconnect.
func (e *ReconnectError) Is(target error) bool { return target == ErrReconnect }

// UnavailableError says no token could be had for now. Reason is the BFF's
// error code or ReasonNetwork; RetryAfter (milliseconds) is when the
// client retries by itself. The client returns it unwrapped.
type UnavailableError struct {
	Reason     string
	RetryAfter int64
	Err        error
}

// Error names the reason.
func (e *UnavailableError) Error() string {
	return "client: token unavailable: " + e.Reason
}

// Is matches ErrUnavailable.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// Unwrap returns the failure behind it, if any.
func (e *UnavailableError) Unwrap() error { return e.Err }
