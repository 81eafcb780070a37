package devprovider

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Defaults for the zero values of Config.
const (
	DefaultClientID     = "tether-dev"
	DefaultClientSecret = "tether-dev-secret"
	DefaultAccessTTL    = 60 * time.Second
	DefaultRefreshTTL   = 10 * time.Minute
)

// CodeTTL is how long an authorization code can be exchanged.
const CodeTTL = 60 * time.Second

// Config configures a Provider. Zero values take the defaults above.
type Config struct {
	// Issuer is the public base URL, e.g. "http://127.0.0.1:9090", without a
	// trailing slash. It is also the OIDC issuer. Required.
	Issuer string
	// ClientID is the one known client. Default DefaultClientID.
	ClientID string
	// ClientSecret authenticates the client by HTTP Basic or
	// client_secret_post. Default DefaultClientSecret.
	ClientSecret string
	// AccessTTL is the access token lifetime. Default DefaultAccessTTL.
	AccessTTL time.Duration
	// RefreshTTL is the grant's refresh lifetime, counted from the login and
	// not extended by rotation. Default DefaultRefreshTTL.
	RefreshTTL time.Duration
	// AutoApprove skips the consent page: /authorize approves at once as
	// alice, or as login_hint when it names a known user.
	AutoApprove bool
	// RevokeAccessOnRefresh makes a refresh revoke the grant's earlier
	// access tokens, as Ory Hydra and GitHub do. Off by default.
	RevokeAccessOnRefresh bool
	// Quirks makes the provider behave like GitHub or Google on the wire
	// (see Quirks). Default QuirksNone.
	Quirks Quirks
	// AllowOrigins are the CORS origins for /api/ and /control/. Empty
	// allows any loopback http origin.
	AllowOrigins []string
	// BackchannelLogoutURI is the client's registered back-channel logout
	// URI (OpenID Connect Back-Channel Logout 1.0): the provider's own
	// logout, /control/backchannel and /control/revoke?backchannel=1 send
	// it a signed logout token. Empty: none is sent.
	BackchannelLogoutURI string
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives one line per request (method, path, status, grant
	// type; never a token, code, verifier or secret). Default: discard.
	Logger *slog.Logger
}

// Provider is the dev authorization server, OIDC provider and sample API.
// It is an http.Handler and is safe for concurrent use.
type Provider struct {
	cfg     Config
	issuer  string
	log     *slog.Logger
	now     func() time.Time
	key     *rsa.PrivateKey
	keyID   string
	signer  jose.Signer
	handler http.Handler

	ledger ledger
	stats  counters

	outMu sync.Mutex
	out   outage

	closeOnce sync.Once
	closed    chan struct{}
}

var _ http.Handler = (*Provider)(nil)

// New checks cfg, fills in its defaults and generates an RSA-2048 signing
// key in memory.
func New(cfg Config) (*Provider, error) {
	issuer := strings.TrimRight(cfg.Issuer, "/")
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("devprovider: Issuer %q is not an absolute http(s) URL", cfg.Issuer)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("devprovider: Issuer %q has a query or fragment", cfg.Issuer)
	}
	if !cfg.Quirks.Valid() {
		return nil, fmt.Errorf("devprovider: Quirks %q is not github, github-oauth-app or google", cfg.Quirks)
	}
	if cfg.BackchannelLogoutURI != "" {
		if u, err := url.Parse(cfg.BackchannelLogoutURI); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("devprovider: BackchannelLogoutURI %q is not an absolute http(s) URL", cfg.BackchannelLogoutURI)
		}
	}
	if cfg.AccessTTL < 0 || cfg.RefreshTTL < 0 {
		return nil, errors.New("devprovider: AccessTTL and RefreshTTL must not be negative")
	}
	if cfg.ClientID == "" {
		cfg.ClientID = DefaultClientID
	}
	if cfg.ClientSecret == "" {
		cfg.ClientSecret = DefaultClientSecret
	}
	if cfg.AccessTTL == 0 {
		cfg.AccessTTL = DefaultAccessTTL
	}
	if cfg.RefreshTTL == 0 {
		cfg.RefreshTTL = DefaultRefreshTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	for _, o := range cfg.AllowOrigins {
		if o == "" || strings.HasSuffix(o, "/") {
			return nil, fmt.Errorf("devprovider: AllowOrigins entry %q is not an origin (scheme://host[:port])", o)
		}
	}

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("devprovider: generate key: %w", err)
	}
	keyID := randomToken("k")[:12]
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: keyID}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		return nil, fmt.Errorf("devprovider: signer: %w", err)
	}
	p := &Provider{
		cfg:    cfg,
		issuer: issuer,
		log:    cfg.Logger,
		now:    cfg.Now,
		key:    key,
		keyID:  keyID,
		signer: signer,
		ledger: newLedger(),
		out:    outage{mode: OutageNone, changed: make(chan struct{})},
		closed: make(chan struct{}),
	}
	p.handler = p.logRequests(p.cors(p.routes()))
	return p, nil
}

// ServeHTTP serves every endpoint listed in the package doc.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.handler.ServeHTTP(w, r)
}

// Close unblocks every handler sleeping in the timeout or slow outage
// modes. The Provider still answers afterwards; call it before
// http.Server.Shutdown.
func (p *Provider) Close() {
	p.closeOnce.Do(func() { close(p.closed) })
}

// Issuer returns the issuer URL, without a trailing slash.
func (p *Provider) Issuer() string { return p.issuer }

func (p *Provider) routes() http.Handler {
	mux := http.NewServeMux()
	if p.cfg.Quirks.github() {
		// GitHub Enterprise Server's layout; no discovery, no ID tokens,
		// no RFC 7009.
		mux.HandleFunc("GET /login/oauth/authorize", p.handleAuthorize)
		mux.HandleFunc("POST /login/oauth/authorize", p.handleAuthorize)
		mux.HandleFunc("POST /login/oauth/access_token", p.handleToken)
		mux.HandleFunc("GET /api/v3/user", p.handleGitHubUser)
		mux.HandleFunc("DELETE /api/v3/applications/{client_id}/grant", p.handleGitHubDeleteGrant)
	} else {
		mux.HandleFunc("GET /.well-known/openid-configuration", p.handleDiscovery)
		mux.HandleFunc("GET /jwks", p.handleJWKS)
		mux.HandleFunc("GET /authorize", p.handleAuthorize)
		mux.HandleFunc("POST /authorize", p.handleAuthorize)
		mux.HandleFunc("POST /token", p.handleToken)
		mux.HandleFunc("POST /revoke", p.handleRevoke)
		mux.HandleFunc("GET /userinfo", p.handleUserInfo)
		mux.HandleFunc("POST /userinfo", p.handleUserInfo)
		mux.HandleFunc("GET /logout", p.handleLogout)
		mux.HandleFunc("POST /logout", p.handleLogout)
		mux.HandleFunc("POST /control/backchannel", p.handleControlBackchannel)
	}
	mux.HandleFunc("GET /api/me", p.handleAPIMe)
	mux.HandleFunc("GET /api/public", p.handleAPIPublic)
	mux.HandleFunc("POST /api/public", p.handleAPIPublic)
	mux.HandleFunc("POST /control/revoke", p.handleControlRevoke)
	mux.HandleFunc("POST /control/expire", p.handleControlExpire)
	mux.HandleFunc("POST /control/outage", p.handleControlOutage)
	mux.HandleFunc("GET /control/stats", p.handleControlStats)
	mux.HandleFunc("POST /control/reset-stats", p.handleControlResetStats)
	return mux
}

// recorder remembers the status and grant type for the log line.
type recorder struct {
	http.ResponseWriter
	status    int
	grantType string
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Hijack and Flush.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

type recorderKey struct{}

// noteGrantType records the grant type for the request's log line.
func noteGrantType(r *http.Request, gt string) {
	if rec, ok := r.Context().Value(recorderKey{}).(*recorder); ok {
		rec.grantType = gt
	}
}

func (p *Provider) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w}
		r = r.WithContext(context.WithValue(r.Context(), recorderKey{}, rec))
		defer func() {
			attrs := []any{
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", rec.status),
				slog.Duration("took", time.Since(start)),
			}
			if rec.grantType != "" {
				attrs = append(attrs, slog.String("grant_type", rec.grantType))
			}
			p.log.Info("devprovider: request", attrs...)
		}()
		next.ServeHTTP(rec, r)
	})
}

// cors answers CORS for /api/ and /control/, including OPTIONS preflights.
func (p *Provider) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/api/") && !strings.HasPrefix(r.URL.Path, "/control/") {
			next.ServeHTTP(w, r)
			return
		}
		origin := r.Header.Get("Origin")
		allowed := origin != "" && p.originAllowed(origin)
		if allowed {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
			h.Set("Access-Control-Expose-Headers", "WWW-Authenticate")
			h.Set("Access-Control-Max-Age", "600")
		}
		if r.Method == http.MethodOptions {
			if !allowed {
				http.Error(w, "devprovider: origin not allowed", http.StatusForbidden)
				return
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (p *Provider) originAllowed(origin string) bool {
	if len(p.cfg.AllowOrigins) > 0 {
		for _, o := range p.cfg.AllowOrigins {
			if o == origin {
				return true
			}
		}
		return false
	}
	u, err := url.Parse(origin)
	if err != nil || u.Scheme != "http" || u.Path != "" || u.RawQuery != "" {
		return false
	}
	return isLoopbackHost(u.Hostname())
}

func isLoopbackHost(h string) bool {
	return h == "127.0.0.1" || h == "localhost" || h == "::1"
}

// writeJSON answers v as JSON with Cache-Control: no-store.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "devprovider: encode: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// errorBody is the RFC 6749 section 5.2 error shape.
type errorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description,omitempty"`
}

func writeError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, errorBody{Error: code, ErrorDescription: desc})
}
