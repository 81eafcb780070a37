// Package bff is Tether's backend-for-frontend: a Gin handler that runs the
// OAuth authorization-code flow with PKCE, keeps each session's tokens in an
// encrypted vault on Redis, refreshes access tokens before they expire
// (once per session across replicas), and hands the browser only the
// current access token. The README describes the HTTP contract (the types
// are in shared/wire) and the security model.
//
// The package is the HTTP face only: routes, middleware, handlers, the
// session cookie, configuration and metrics. The refresh engine is
// bff/refresh, the vault bff/vault, and Tether's client of the
// authorization server bff/provider.
//
// A program builds a Config (FromEnv reads TETHER_* variables), calls New,
// serves the Handler, and calls Close on the way out. A Gin application
// mounts the routes on its own engine instead (Register), and its
// handlers see the session and call APIs as the user (RequireSession,
// SessionFrom, TokenSource, Client: server_side.go).
package bff

import (
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tetherauth/tether/bff/provider"
	"github.com/tetherauth/tether/bff/refresh"
	"github.com/tetherauth/tether/bff/vault"
	"github.com/tetherauth/tether/shared/wire"
)

// sessionVault is what the handlers need of the vault (the refresh
// engine declares what it needs in refresh.Store).
type sessionVault interface {
	refresh.Store
	Put(ctx context.Context, sid string, rec *vault.Record, ttl time.Duration) error
	Delete(ctx context.Context, sid string) error
	MarkLoginUsed(ctx context.Context, state string, ttl time.Duration) (bool, error)
	LoginUsed(ctx context.Context, state string) (bool, error)
	Ping(ctx context.Context) error
	Circuit(name string) *vault.Circuit
	Watcher(cfg vault.WatcherConfig) *vault.Watcher
	MarkTokenSeen(ctx context.Context, issuer, jti string, ttl time.Duration) (bool, error)
	ForgetTokenSeen(ctx context.Context, issuer, jti string) error
	GetHashed(ctx context.Context, hids []string) ([]vault.HashedRecord, error)
	Close() error
}

var _ sessionVault = (*vault.Vault)(nil)

// oauthProvider is what the handlers need of the authorization server.
type oauthProvider interface {
	refresh.Provider
	AuthCodeURL(state, verifier, nonce string) string
	Exchange(ctx context.Context, code, verifier, nonce string) (*provider.Grant, error)
	Revoke(ctx context.Context, refreshToken, accessToken string) error
	OIDC() bool
	AuthorizationResponseIssuer() (issuer string, required bool)
	VerifyLogoutToken(ctx context.Context, raw string) (*provider.LogoutToken, error)
}

var _ oauthProvider = (*provider.Provider)(nil)

// Handler is the BFF: an http.Handler for /bff/*, /healthz, /readyz and,
// with WebDir, the page. Its metrics are a separate handler
// (MetricsHandler), for a listener the public cannot reach. It is safe for
// concurrent use.
type Handler struct {
	cfg         Config
	log         *slog.Logger
	vault       sessionVault
	provider    oauthProvider
	refresher   *refresh.Refresher
	engine      *gin.Engine // built by ServeHTTP's first call (see Register)
	tokenPath   string      // BasePath + /token, answered before the engine; "" when off
	engineOnce  sync.Once
	metrics     *metrics
	cookieName  string
	cookies     *cookieStore
	logins      *loginCookies
	pageCSP     []string      // the page's Content-Security-Policy header
	web         http.Handler  // static files; nil without WebDir
	api         *apiProxy     // proxy mode; nil without APIRoutes
	slot        *providerSlot // the provider while New's discovery runs; nil if given ready
	disc        *discoverer   // background discovery; nil when not needed
	events      *eventStreams // GET /bff/events (events.go)
	refusedLog  logLimiter    // log lines about made-up logout tokens
	replayedLog logLimiter    // log lines about replayed logout tokens
}

// loginTTL is how long a login (its cookie, its state) stays valid.
const loginTTL = 10 * time.Minute

// New checks cfg, connects the vault and the provider, and builds the
// router. A provider whose discovery fails for a reason that may pass
// does not stop it (see startProvider); a configuration error does. The
// caller must Close the Handler.
func New(ctx context.Context, cfg Config) (*Handler, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if cfg.VaultKey == nil {
		cfg.VaultKey = randomKey()
		log.Warn("TETHER_VAULT_KEY is not set: generated a random vault key; sessions will not survive a restart and replicas cannot share them")
	}
	if cfg.SessionKeys == nil {
		cfg.SessionKeys = [][]byte{randomKey()}
		log.Warn("TETHER_SESSION_KEYS is not set: generated a random cookie key; users are logged out on every restart and replicas cannot share sessions")
	}
	v, err := vault.Open(ctx, cfg.RedisURL, cfg.VaultKey, vault.WithNow(cfg.Now), vault.WithPreviousKeys(cfg.VaultPreviousKeys...))
	if err != nil {
		return nil, &ConfigError{"TETHER_REDIS_URL", err}
	}
	if addr := v.EmbeddedAddr(); addr != "" {
		log.Info("TETHER_REDIS_URL is not set: using an embedded in-process Redis (one replica only)", "addr", addr)
	}
	slot := &providerSlot{}
	s := newHandler(cfg, v, slot)
	s.slot = slot
	if cfg.WebDir != "" {
		if s.web, err = newWebHandler(cfg); err != nil {
			v.Close()
			return nil, &ConfigError{"TETHER_WEB_DIR", err}
		}
	}
	pc := cfg.providerConfig()
	// Keep as many connections to the provider as the engine has calls
	// out (a burst after an outage would otherwise open and close them,
	// with a TLS handshake each).
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = refresh.DefaultMaxProviderCalls
	pc.HTTPClient, pc.Now, pc.Logger = &http.Client{Timeout: 3 * cfg.ProviderTimeout, Transport: tr}, cfg.Now, log
	if err := s.startProvider(ctx, pc, v); err != nil {
		v.Close()
		return nil, err
	}
	return s, nil
}

// newHandler assembles a Handler from its parts.
func newHandler(cfg Config, v sessionVault, p oauthProvider) *Handler {
	m := newMetrics()
	s := &Handler{
		cfg:        cfg,
		log:        cfg.Logger,
		vault:      v,
		provider:   p,
		metrics:    m,
		cookieName: "tether_session",
		refresher: refresh.New(v, p, refresh.Config{
			Buffer: cfg.RefreshBuffer, SessionMaxAge: cfg.SessionMaxAge,
			ProviderTimeout: cfg.ProviderTimeout, RetryAfter: cfg.RetryAfter,
			Circuit: v.Circuit(cfg.circuitName()), ProbeInterval: cfg.ProbeInterval, RetryAfterMax: cfg.RetryAfterMax,
			ForceMinAge: cfg.ForceMinAge, ForceEvery: cfg.forceEvery(), ForceBurst: cfg.ForceBurst, IdleTimeout: cfg.idleTimeout(),
			Logger: cfg.Logger, Observer: m, Now: cfg.Now,
		}),
	}
	if !cfg.TokenEndpointOff {
		s.tokenPath = cfg.BasePath + routeToken
	}
	if cfg.secureCookies() {
		s.cookieName = "__Host-tether_session"
	}
	s.cookies = s.sessionStore()
	s.logins = newLoginCookies(cfg.SessionKeys, cfg.secureCookies(), cfg.Now)
	if cfg.BasePath != "" {
		s.logins.callbackPath, s.logins.loginPath = cfg.BasePath+routeCallback, cfg.BasePath+routeLogin
	}
	s.events = newEventStreams(cfg, v)
	s.pageCSP = []string{pageCSP(cfg.APIOrigins)}
	if cfg.CSP != "" {
		s.pageCSP = []string{cfg.CSP}
	}
	return s
}

// circuitName names the provider's circuit breaker, which every replica
// configured for the same provider shares: its token endpoint, else its
// issuer.
func (c *Config) circuitName() string {
	if c.TokenURL != "" {
		return c.TokenURL
	}
	return c.Issuer
}

// ServeHTTP answers one request. The Handler's own Gin engine is built on
// the first call: an application that mounts the routes on its router
// (Register) never builds it.
func (s *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.tokenPath != "" && r.URL.Path == s.tokenPath && r.Method == http.MethodPost {
		s.serveToken(w, r) // the hot path, before Gin's router (see serveToken)
		return
	}
	s.engineOnce.Do(func() { s.engine = s.routes() })
	s.engine.ServeHTTP(w, r)
}

// MetricsHandler serves the Prometheus metrics (text format) at any path.
// Serve it on a listener of its own, on loopback or an internal network:
// the Handler does not answer /metrics, so the app's public listener does
// not show them.
func (s *Handler) MetricsHandler() http.Handler { return s.metrics.handler() }

// Close ends the event streams and releases the vault (and stops the
// embedded Redis, if any).
func (s *Handler) Close() error {
	s.disc.close()
	s.events.close()
	return s.vault.Close()
}

// providerReady reports whether the provider's endpoints are known (see
// startProvider), and says why not or where they came from.
func (s *Handler) providerReady() (bool, string) {
	if s.slot == nil {
		return true, ""
	}
	return s.slot.ready()
}

func (s *Handler) routes() *gin.Engine {
	r := gin.New()
	r.HandleMethodNotAllowed = true
	if s.tokenPath != "" {
		// ServeHTTP answers POST on this path before the engine; the
		// route is here for what Gin says of the path's other methods
		// (405) and its variants (a trailing slash: a redirect).
		// Registered before r.Use: its middleware is its own.
		r.POST(s.tokenPath, s.ginToken)
	}
	r.Use(s.recover, securityHeaders, s.accessLog)

	r.GET("/healthz", gin.WrapH(s.HealthHandler()))
	r.GET("/readyz", gin.WrapH(s.ReadyHandler()))

	s.mount(r.Group(s.cfg.BasePath))

	r.NoMethod(func(c *gin.Context) {
		writeError(c, wire.ErrMethodNotAllowed, "", "this route does not take "+c.Request.Method)
	})
	r.NoRoute(func(c *gin.Context) {
		if s.web != nil && (c.Request.Method == http.MethodGet || c.Request.Method == http.MethodHead) && !s.isBFFPath(c.Request.URL.Path) {
			s.pageHeaders(c)
			s.web.ServeHTTP(c.Writer, c.Request)
			return
		}
		writeError(c, wire.ErrNotFound, "", "no such route")
	})
	return r
}

// Header values of noStore (see headers.go: never appended to).
var (
	hdrNoStore = []string{"no-store"}
	hdrNoCache = []string{"no-cache"}
)

// noStore marks every BFF answer uncacheable: they carry tokens or
// per-user state.
func noStore(c *gin.Context) {
	setNoStore(c.Writer.Header())
	c.Next()
}

// setNoStore sets noStore's headers on h.
func setNoStore(h http.Header) {
	h["Cache-Control"] = hdrNoStore
	h["Pragma"] = hdrNoCache
}

// csrfHeader is wire.HeaderCSRF as net/http keys it.
var csrfHeader = http.CanonicalHeaderKey(wire.HeaderCSRF)

// requireCSRF refuses a JSON request without X-CSRF: 1 before it has any
// effect. A cross-site page cannot send that header without a CORS
// preflight, which the BFF never grants.
func requireCSRF(c *gin.Context) {
	if !hasCSRF(c.Request) {
		writeCSRFError(c.Writer)
		c.Abort()
		return
	}
	c.Next()
}

// hasCSRF reports whether r carries X-CSRF: 1.
func hasCSRF(r *http.Request) bool {
	v := r.Header[csrfHeader]
	return len(v) != 0 && v[0] == wire.CSRFValue
}

// writeCSRFError refuses a request without X-CSRF: 1 and returns the
// status it wrote.
func writeCSRFError(w http.ResponseWriter) int {
	return writeErrorTo(w, wire.ErrCSRFHeaderMissing, "", "send the header "+wire.HeaderCSRF+": "+wire.CSRFValue+" with every BFF request")
}

// recover turns a panic into a 500 without dumping the request (which
// would log the cookie).
func (s *Handler) recover(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			s.recovered(c.Writer, c.Request, v, c.Writer.Written())
			c.Abort()
		}
	}()
	c.Next()
}

// recovered handles a handler's panic v: http.ErrAbortHandler goes on up
// (net/http's way to abort an answer); anything else is logged by path
// alone and answered 500, unless an answer was already written.
func (s *Handler) recovered(w http.ResponseWriter, r *http.Request, v any, written bool) {
	if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
		panic(v)
	}
	s.log.Error("panic in handler", "path", r.URL.Path, "panic", fmt.Sprint(v))
	if !written {
		writeErrorTo(w, wire.ErrInternal, "", "internal error")
	}
}

// accessLog logs one line per request: never the query (it carries the
// authorization code) and never a header.
func (s *Handler) accessLog(c *gin.Context) {
	start := time.Now()
	c.Next()
	s.logRequest(c.Request, c.Writer.Status(), start)
}

// logRequest is the access log's line for r, answered status after
// starting at start: at debug level, or warn for a 5xx.
func (s *Handler) logRequest(r *http.Request, status int, start time.Time) {
	level := slog.LevelDebug
	if status >= 500 {
		level = slog.LevelWarn
	}
	if !s.log.Enabled(r.Context(), level) {
		return // the usual case: no allocations for a line nobody keeps
	}
	s.log.Log(r.Context(), level, "request",
		"method", r.Method, "path", r.URL.Path,
		"status", status, "duration", time.Since(start))
}

// writeError sends the one error shape of the contract.
func writeError(c *gin.Context, code, reason, msg string) {
	writeErrorTo(c.Writer, code, reason, msg)
}

// writeErrorTo sends the one error shape of the contract, byte for byte
// what Gin's c.JSON writes, and returns its status.
func writeErrorTo(w http.ResponseWriter, code, reason, msg string) int {
	status := wire.Status(code)
	body, err := json.Marshal(wire.ErrorBody{Error: code, Reason: reason, Message: msg})
	if err != nil {
		panic(err) // three strings always marshal
	}
	h := w.Header()
	h["Content-Type"] = hdrJSON
	h["Cache-Control"] = hdrNoStore
	w.WriteHeader(status)
	w.Write(body)
	return status
}

// randomKey returns 32 random bytes.
func randomKey() []byte {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return b
}

// derive makes a purpose-bound 32-byte key from a master key (HKDF-SHA256).
func derive(key []byte, purpose string) []byte {
	k, err := hkdf.Key(sha256.New, key, nil, purpose, 32)
	if err != nil {
		panic(err) // only for lengths HKDF-SHA256 cannot produce
	}
	return k
}
