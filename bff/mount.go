package bff

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"

	"github.com/tetherauth/tether/shared/wire"
)

// The BFF's routes relative to its base path. The wire contract names
// them under its default base path, wire.BasePath.
var (
	routeLogin    = strings.TrimPrefix(wire.PathLogin, wire.BasePath)
	routeCallback = strings.TrimPrefix(wire.PathCallback, wire.BasePath)
	routeSession  = strings.TrimPrefix(wire.PathSession, wire.BasePath)
	routeToken    = strings.TrimPrefix(wire.PathToken, wire.BasePath)
	routeLogout   = strings.TrimPrefix(wire.PathLogout, wire.BasePath)
	routeBackchan = strings.TrimPrefix(wire.PathBackchannel, wire.BasePath)
	routeEvents   = strings.TrimPrefix(wire.PathEvents, wire.BasePath)
)

// Register adds the BFF's routes to an application's router, under
// Config.BasePath: login, callback, session, token, logout and
// backchannel (the provider's back-channel logout, server to server). Tether's
// middleware (its panic handler, its security headers, its access log,
// Cache-Control: no-store, the session cookie and, on the JSON routes,
// the X-CSRF rule) applies to those routes only; the application's own
// routes and middleware are left as they are. Health, readiness and
// metrics are separate handlers (HealthHandler, ReadyHandler,
// MetricsHandler) that the application mounts where it wants (metrics on
// a listener of their own).
//
// The callback URL to register at the provider is PublicURL + BasePath +
// "/callback"; the browser client is started with the same base path
// (Tether.start({bff: BasePath}) in JavaScript).
//
// An application that uses Register need not serve the Handler itself:
// its own router is the only Gin engine, so Tether prints no route list
// of its own (Gin in debug mode lists Tether's routes among the
// application's). Register may be called on several routers.
func (s *Handler) Register(r gin.IRouter) {
	g := r.Group(s.cfg.BasePath)
	if !s.cfg.TokenEndpointOff {
		g.POST(routeToken, s.ginToken) // its middleware is its own (serveToken)
	}
	s.mount(g.Group("", s.recover, securityHeaders, s.accessLog))
}

// mount adds the BFF's routes but the token route, with their middleware,
// to g.
func (s *Handler) mount(g *gin.RouterGroup) {
	// Server to server: no cookie, no X-CSRF (see backchannel.go).
	g.POST(routeBackchan, noStore, s.handleBackchannel)
	g.Use(noStore, sessions.Sessions(s.cookieName, s.cookies))
	g.GET(routeLogin, s.handleLogin)
	g.GET(routeCallback, s.handleCallback)
	g.GET(routeEvents, s.handleEvents) // the cookie and a same-origin check; EventSource sends no X-CSRF
	j := g.Group("", requireCSRF)
	j.GET(routeSession, s.handleSession)
	j.POST(routeLogout, s.handleLogout)
	s.mountAPI(j)
}

// HealthHandler answers liveness probes: 200 "ok" while the process runs.
// The Handler serves it at /healthz; an application that uses Register
// mounts it where it wants, e.g. r.GET("/healthz", gin.WrapH(h.HealthHandler())).
func (s *Handler) HealthHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
}

// ReadyHandler answers readiness probes: 200 "ready" when the vault
// answers a ping within two seconds, else 503. The Handler serves it at
// /readyz.
func (s *Handler) ReadyHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := s.ready(r.Context()); err != nil {
			s.log.Warn("readyz: vault unreachable", "err", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("vault unreachable\n"))
			return
		}
		// Not ready until the provider's endpoints are known; a provider
		// that is down once they are does not make a replica unready (see
		// the README's Provider outages).
		ok, status := s.providerReady()
		switch {
		case !ok:
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("not ready: " + status + "\n"))
		case status != "" && r.URL.Query().Has("verbose"):
			// ?verbose, as Kubernetes' own /readyz has it: where the
			// provider's endpoints came from (discovery, or the document
			// stored in the vault while the provider is down).
			w.Write([]byte("ready: " + status + "\n"))
		default:
			w.Write([]byte("ready\n"))
		}
	})
}

// ready pings the vault.
func (s *Handler) ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return s.vault.Ping(ctx)
}

// LoginURL is the path that signs the user in and brings them back to
// returnTo: a path on this site, or a page of an extension listed in
// Config.ExtensionOrigins ("/" when returnTo is neither), as GET /login
// takes it.
func (s *Handler) LoginURL(returnTo string) string {
	returnTo, ok := s.returnTo(returnTo)
	if !ok {
		returnTo = "/"
	}
	return s.cfg.BasePath + routeLogin + "?return_to=" + url.QueryEscape(returnTo)
}

// RequireCSRF is the X-CSRF rule of Tether's JSON routes as middleware,
// for an application that wants it on its own routes too: a request
// without the header X-CSRF: 1 is refused with 403 csrf_header_missing
// before it has any effect.
func RequireCSRF() gin.HandlerFunc { return requireCSRF }

// isBFFPath reports whether p is under the base path.
func (s *Handler) isBFFPath(p string) bool {
	b := s.cfg.BasePath
	return p == b || strings.HasPrefix(p, b+"/")
}

// checkBasePath validates and cleans c.BasePath: empty means wire.BasePath;
// otherwise a path of one or more segments of letters, digits and -._~,
// without a trailing slash (one is removed).
func (c *Config) checkBasePath() error {
	if c.BasePath == "" {
		c.BasePath = wire.BasePath
		return nil
	}
	p := strings.TrimSuffix(c.BasePath, "/")
	bad := func(why string) error {
		return &ConfigError{"TETHER_BASE_PATH", fmt.Errorf("%q %s; want a path like /auth", c.BasePath, why)}
	}
	if !strings.HasPrefix(p, "/") || p == "" {
		return bad("does not start with /")
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return bad("has an empty, . or .. segment")
		}
		for _, r := range seg {
			if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("-._~", r)) {
				return bad("has a character other than letters, digits and -._~")
			}
		}
	}
	c.BasePath = p
	return nil
}
