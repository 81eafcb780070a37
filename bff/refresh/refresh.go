// Package refresh is Tether's refresh engine. Given a session id it hands
// out the session's access token, and replaces the token at the provider
// when it is inside its refresh buffer or an API rejected it: exactly once
// per session across every process that shares the vault, keeping the
// session through a provider outage and ending it only when the provider
// revoked the grant.
//
// The engine knows nothing of HTTP, cookies or the wire contract: the BFF's
// handlers, and Go code that calls APIs on a user's behalf, both use it.
// Its answers are a Result or one of four typed errors: *ReconnectError
// (the session is over; the user must sign in again), *UnavailableError
// (the provider is failing and the token cannot be served; retry later),
// *ThrottledError (too many forced refreshes; retry later) and
// *StorageError (the vault is unreachable; nothing was lost).
package refresh

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/tetherauth/tether/bff/provider"
	"github.com/tetherauth/tether/bff/vault"
)

// Store is what the engine needs of the vault.
type Store interface {
	Get(ctx context.Context, sid string) (*vault.Record, error)
	TryLock(ctx context.Context, sid string, lease time.Duration) (*vault.Lock, error)
	// Update writes only over a live record; End leaves a tombstone that
	// no Update overwrites (see vault.Vault.End).
	Update(ctx context.Context, sid string, rec *vault.Record, ttl time.Duration) error
	End(ctx context.Context, sid, reason string, ttl time.Duration) (string, error)
	// Allow takes a token from the session's bucket of forced refreshes
	// (see vault.Vault.Allow).
	Allow(ctx context.Context, sid string, now time.Time, every time.Duration, burst int) (time.Duration, error)
	// Touch records a session's use (see vault.Vault.Touch).
	Touch(ctx context.Context, sid string, at time.Time) error
	// SubjectSessions and ProviderSessions list the hashed ids of a
	// subject's, or a provider session's, sessions; EndHashed ends one by
	// its hashed id (see vault.Vault.EndHashed).
	SubjectSessions(ctx context.Context, subject string) ([]string, error)
	ProviderSessions(ctx context.Context, psid string) ([]string, error)
	EndHashed(ctx context.Context, hid, reason string, ttl time.Duration) (string, *vault.Record, error)
}

var _ Store = (*vault.Vault)(nil)

// Provider is what the engine needs of the authorization server: a
// refresh that reports revocation by wrapping provider.ErrRevoked and may
// carry a Retry-After (provider.RetryAfterOf).
type Provider interface {
	Refresh(ctx context.Context, refreshToken string) (*provider.Grant, error)
}

var _ Provider = (*provider.Provider)(nil)

// ErrNoProvider, wrapped in the error of a Provider's Refresh, says that
// no provider was called at all (the BFF does not know its endpoints yet):
// the session is kept, and the circuit breaker does not count it.
var ErrNoProvider = errors.New("refresh: no provider to call yet")

// Outcome names what became of a refresh attempt, for metrics.
type Outcome string

// Refresh outcomes.
const (
	OutcomeOK          Outcome = "ok"          // the provider issued a new token and it is stored
	OutcomeAdopted     Outcome = "adopted"     // another process refreshed first; its token is used
	OutcomeRevoked     Outcome = "revoked"     // the provider refused the grant; the session ended
	OutcomeExpired     Outcome = "expired"     // the refresh token had expired; the session ended
	OutcomeUnavailable Outcome = "unavailable" // the provider failed transiently; nothing changed
	OutcomeSlow        Outcome = "slow"        // callers were answered before the provider; the refresh went on
	OutcomeStoreFailed Outcome = "store_failed"
	OutcomeEnded       Outcome = "ended"     // the session ended while the provider answered; its new tokens were dropped
	OutcomeThrottled   Outcome = "throttled" // a forced refresh was refused: too soon, or too many (see Config.ForceMinAge)
	OutcomeIdle        Outcome = "idle"      // the session was unused longer than Config.IdleTimeout; it ended
)

// Observer is told what the engine does; the BFF feeds its metrics from
// it. Its methods must be cheap and safe for concurrent use.
type Observer interface {
	Refreshed(Outcome)
	ProviderLatency(time.Duration)
	LockWait(time.Duration)
}

// Config tunes a Refresher. Zero durations take the defaults below.
type Config struct {
	// Buffer is how long before expiry a token is refreshed; it is capped
	// at half the token's lifetime.
	Buffer time.Duration
	// SessionMaxAge bounds a session when the provider does not say when
	// its refresh token expires.
	SessionMaxAge time.Duration
	// ProviderTimeout is how long callers wait for the provider. The call
	// itself may run longer (see Refresher.Token).
	ProviderTimeout time.Duration
	// RetryAfter is the advice given when a refresh cannot be attempted
	// (the session's lock is held too long, the caller went away) and,
	// without a Circuit, when the provider fails without a Retry-After of
	// its own.
	RetryAfter time.Duration
	// RetryAfterMax caps every Retry-After the engine advises, whatever
	// the provider sent.
	RetryAfterMax time.Duration

	// Circuit is the provider's circuit breaker state, shared by every
	// replica (vault.Vault.Circuit); see breaker.go. Nil: no breaker, each
	// session backs off on its own for the provider's Retry-After.
	Circuit CircuitStore
	// ProbeInterval is how often, while the circuit is open, one refresh
	// in the whole deployment is let through as a probe (plus up to a
	// tenth of jitter).
	ProbeInterval time.Duration
	// BreakerFailures is how many transient failures in a row, across the
	// deployment, open the circuit. A 503 or 429 opens it at once.
	BreakerFailures int
	// MaxProviderCalls bounds the refresh calls this process has out at
	// the provider at a time; the others wait for a slot (that wait does
	// not count against ProviderTimeout). After an outage every waiting
	// session refreshes at once: the provider gets them at this pace, not
	// as a flood.
	MaxProviderCalls int

	// EndedTTL is how long an ended session keeps answering with the
	// reason it ended (see End), at most.
	EndedTTL time.Duration

	// ForceMinAge bounds forced refreshes in a loop: a forced refresh of a
	// token that a forced refresh issued less than min(ForceMinAge, a
	// quarter of the token's lifetime) ago is answered with that token,
	// without calling the provider.
	ForceMinAge time.Duration
	// ForceEvery and ForceBurst size each session's bucket of forced
	// refreshes that reach the provider, shared by every process through
	// the vault: ForceBurst at once, then one per ForceEvery. Past it,
	// Token returns a *ThrottledError.
	ForceEvery time.Duration
	ForceBurst int

	// IdleTimeout ends a session unused that long (reason expired); 0
	// means none. Use is recorded coarsely (see idle.go): the session
	// ends after between IdleTimeout and IdleTimeout plus an eighth of it
	// (at most an hour) unused.
	IdleTimeout time.Duration

	Logger   *slog.Logger
	Observer Observer         // nil: nothing is observed
	Now      func() time.Time // the clock; default time.Now
}

// Defaults for Config's zero values.
const (
	DefaultBuffer           = 5 * time.Minute
	DefaultSessionMaxAge    = 30 * 24 * time.Hour
	DefaultProviderTimeout  = 10 * time.Second
	DefaultRetryAfter       = 5 * time.Second
	DefaultRetryAfterMax    = 30 * time.Second
	DefaultProbeInterval    = 2 * time.Second
	DefaultBreakerFailures  = 3
	DefaultMaxProviderCalls = 16
	DefaultEndedTTL         = 24 * time.Hour
	DefaultForceMinAge      = 5 * time.Second
	DefaultForceEvery       = 10 * time.Second // 6 a minute
	DefaultForceBurst       = 3
)

// Timings of the refresh lock and the store retries.
const (
	lockPoll     = 25 * time.Millisecond
	storeRetries = 4 // attempts to store a rotated refresh token
)

// Refresher hands out sessions' access tokens and refreshes them. It is
// safe for concurrent use.
type Refresher struct {
	cfg      Config
	log      *slog.Logger
	store    Store
	provider Provider
	obs      Observer
	flight   singleflight.Group
	lease    time.Duration // refresh lock lease, renewed while a refresh runs
	brk      *breaker      // nil without Config.Circuit
	slots    chan struct{} // one per provider call out
	// backoff holds, per session id, the time before which this process
	// does not call the provider again after a transient refresh failure.
	backoff sync.Map
	// touching holds the session ids whose use is being recorded.
	touching sync.Map
}

// New returns a Refresher over store and p.
func New(store Store, p Provider, cfg Config) *Refresher {
	if cfg.Buffer <= 0 {
		cfg.Buffer = DefaultBuffer
	}
	if cfg.SessionMaxAge <= 0 {
		cfg.SessionMaxAge = DefaultSessionMaxAge
	}
	if cfg.ProviderTimeout <= 0 {
		cfg.ProviderTimeout = DefaultProviderTimeout
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = DefaultRetryAfter
	}
	if cfg.RetryAfterMax <= 0 {
		cfg.RetryAfterMax = DefaultRetryAfterMax
	}
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = DefaultProbeInterval
	}
	if cfg.BreakerFailures <= 0 {
		cfg.BreakerFailures = DefaultBreakerFailures
	}
	if cfg.MaxProviderCalls <= 0 {
		cfg.MaxProviderCalls = DefaultMaxProviderCalls
	}
	if cfg.EndedTTL <= 0 {
		cfg.EndedTTL = DefaultEndedTTL
	}
	if cfg.ForceMinAge <= 0 {
		cfg.ForceMinAge = DefaultForceMinAge
	}
	if cfg.ForceEvery <= 0 {
		cfg.ForceEvery = DefaultForceEvery
	}
	if cfg.ForceBurst <= 0 {
		cfg.ForceBurst = DefaultForceBurst
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	obs := cfg.Observer
	if obs == nil {
		obs = nopObserver{}
	}
	r := &Refresher{
		cfg: cfg, log: cfg.Logger, store: store, provider: p, obs: obs,
		lease: cfg.ProviderTimeout + 5*time.Second,
		slots: make(chan struct{}, cfg.MaxProviderCalls),
	}
	// Once the circuit opens or closes, it alone decides when sessions may
	// call the provider again.
	r.brk = newBreaker(cfg, obs, r.backoff.Clear)
	return r
}

// Circuit is this process's view of the provider's circuit breaker.
func (r *Refresher) Circuit() CircuitState { return r.brk.state() }

type nopObserver struct{}

func (nopObserver) Refreshed(Outcome)             {}
func (nopObserver) ProviderLatency(time.Duration) {}
func (nopObserver) LockWait(time.Duration)        {}

// Want says what the caller needs. The zero Want asks for a usable token:
// the current one unless it is inside its refresh buffer.
type Want struct {
	// Force asks for a token other than Rejected, which an API refused.
	Force bool
	// Rejected is the access token an API refused; required with Force.
	Rejected string
}

// Result is a token to hand out.
type Result struct {
	// Record is the session's record; never modify it.
	Record *vault.Record
	// Degraded reports that the provider is failing and Record's token is
	// served because it has not expired yet.
	Degraded bool
	// RetryAfter, with Degraded, is when to try a refresh again.
	RetryAfter time.Duration
}

// Reason says why a session is over.
type Reason string

// Reasons of a ReconnectError. They are the wire contract's reasons.
const (
	ReasonNoSession Reason = "no_session" // there is no such session (never was, or it ended)
	ReasonRevoked   Reason = "revoked"    // the provider revoked the grant
	ReasonExpired   Reason = "expired"    // the grant expired, or the session went unused too long
	ReasonSignedOut Reason = "signed_out" // the session was ended by a logout
)

// Errors of Token, matched with errors.Is; errors.As gives the details.
var (
	ErrReconnect   = errors.New("refresh: reconnect required")
	ErrUnavailable = errors.New("refresh: provider unavailable")
	ErrStorage     = errors.New("refresh: session storage unavailable")
	ErrThrottled   = errors.New("refresh: too many forced refreshes")
)

// ReconnectError means the session is over: the user must sign in again.
type ReconnectError struct {
	Reason Reason
	Msg    string // readable, for the user
}

func (e *ReconnectError) Error() string { return e.Msg }

// Is makes errors.Is(err, ErrReconnect) true.
func (e *ReconnectError) Is(target error) bool { return target == ErrReconnect }

// UnavailableError means the provider is failing and no usable token can
// be served: try again after RetryAfter. The session is kept.
type UnavailableError struct {
	RetryAfter time.Duration
	Msg        string // readable, for the user
}

func (e *UnavailableError) Error() string { return e.Msg }

// Is makes errors.Is(err, ErrUnavailable) true.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// ThrottledError means the session asked for more forced refreshes than
// Config.ForceEvery and ForceBurst allow: try again after RetryAfter. The
// session is kept.
type ThrottledError struct {
	RetryAfter time.Duration
	Msg        string // readable, for the user
}

func (e *ThrottledError) Error() string { return e.Msg }

// Is makes errors.Is(err, ErrThrottled) true.
func (e *ThrottledError) Is(target error) bool { return target == ErrThrottled }

// StorageError means the vault could not be reached. Nothing was lost.
type StorageError struct{ Err error }

func (e *StorageError) Error() string {
	return "the session store is unreachable; nothing was lost, try again"
}

// Is makes errors.Is(err, ErrStorage) true.
func (e *StorageError) Is(target error) bool { return target == ErrStorage }

// Unwrap returns the vault's error.
func (e *StorageError) Unwrap() error { return e.Err }
