package wire

// Status returns the HTTP status that goes with an error code, and 500 for
// a code it does not know. The BFF answers with it; the client may rely on it.
func Status(code string) int {
	switch code {
	case ErrReconnectRequired:
		return 401
	case ErrCSRFHeaderMissing, ErrOriginNotAllowed:
		return 403
	case ErrRequestTooLarge:
		return 413
	case ErrUpstreamUnavailable:
		return 502
	case ErrUpstreamTimeout:
		return 504
	case ErrInvalidState, ErrInvalidReturnTo, ErrInvalidRequest, ErrLoginFailed:
		return 400
	case ErrNotFound:
		return 404
	case ErrMethodNotAllowed:
		return 405
	case ErrTooManyRefreshes, ErrTooManyStreams:
		return 429
	case ErrProviderUnavailable, ErrStorageUnavailable:
		return 503
	default:
		return 500
	}
}
