package bff

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tetherauth/tether/bff/devprovider"
	"github.com/tetherauth/tether/bff/provider"
	"github.com/tetherauth/tether/internal/logbuf"
	"github.com/tetherauth/tether/shared/wire"
)

// appOptions shape an application that mounts Tether on its own engine.
type appOptions struct {
	basePath string
	tune     func(*Config)
	devTune  func(*devprovider.Config)
	// routes adds the application's routes and middleware; Tether's
	// routes are added with Register after it ran.
	routes func(h *Handler, r *gin.Engine)
}

// newAppStack is a dev provider and an application's Gin engine with
// Tether registered on it (h.Register), all on loopback. s.urls[0] is the
// application; s.bffs[0] the Handler, which is never served directly.
func newAppStack(t testing.TB, o appOptions) (*stack, *gin.Engine) {
	t.Helper()
	s := &stack{t: t, clock: newClock(), logs: &logbuf.Buffer{}}
	ln, devURL := listen(t)
	dcfg := devprovider.Config{Issuer: devURL, AutoApprove: true, Now: s.clock.Now}
	if o.devTune != nil {
		o.devTune(&dcfg)
	}
	dev, err := devprovider.New(dcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dev.Close)
	serve(t, ln, dev)
	s.dev, s.devURL = dev, devURL

	appLn, appURL := listen(t)
	cfg := Config{
		PublicURL: appURL, BasePath: o.basePath, APIOrigins: []string{devURL},
		Endpoints: provider.Endpoints{Issuer: devURL},
		ClientID:  devprovider.DefaultClientID, ClientSecret: devprovider.DefaultClientSecret,
		VaultKey: randomKey(), SessionKeys: [][]byte{randomKey()},
		ProviderTimeout: 2 * time.Second, RetryAfter: time.Second,
		Logger: slog.New(slog.NewTextHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:    s.clock.Now,
	}
	if o.tune != nil {
		o.tune(&cfg)
	}
	h, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	r := gin.New()
	if o.routes != nil {
		o.routes(h, r)
	}
	h.Register(r)
	serve(t, appLn, r)
	s.bffs, s.urls = []*Handler{h}, []string{appURL}
	return s, r
}

// loginAt runs the authorization-code flow through the BFF mounted at
// base on app, and returns where it ended.
func (b *browser) loginAt(app, base, returnTo string) *http.Response {
	b.t.Helper()
	resp, err := b.c.Get(app + base + "/login?return_to=" + url.QueryEscape(returnTo))
	if err != nil {
		b.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.RequestURI() != returnTo {
		b.t.Fatalf("login ended at %s (status %d); want %s", resp.Request.URL, resp.StatusCode, returnTo)
	}
	return resp
}

// do sends a request with optional headers and returns status, headers and body.
func (b *browser) do(method, u string, body string, headers ...string) (int, http.Header, string) {
	b.t.Helper()
	var rd *strings.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	var r *http.Request
	if rd != nil {
		r, _ = http.NewRequest(method, u, rd)
	} else {
		r, _ = http.NewRequest(method, u, nil)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	resp, err := b.c.Do(r)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, resp.Header, readAll(b.t, resp)
}

// TestRegisterInAppEngine: Tether's routes under /auth on an application's
// engine, next to the application's routes and middleware, which Tether
// leaves alone; login → callback → token works end to end against the dev
// provider; health and readiness are where the application put them.
func TestRegisterInAppEngine(t *testing.T) {
	var appMW atomic.Int64
	s, _ := newAppStack(t, appOptions{basePath: "/auth", routes: func(h *Handler, r *gin.Engine) {
		r.Use(func(c *gin.Context) { appMW.Add(1); c.Header("X-App", "1"); c.Next() })
		r.GET("/hello", func(c *gin.Context) { c.String(http.StatusOK, "hello") })
		r.POST("/form", func(c *gin.Context) { c.String(http.StatusOK, "posted") })
		r.GET("/ops/healthz", gin.WrapH(h.HealthHandler()))
		r.GET("/ops/readyz", gin.WrapH(h.ReadyHandler()))
		r.NoRoute(func(c *gin.Context) { c.String(http.StatusNotFound, "app 404") })
	}})
	app := s.urls[0]
	b := s.newBrowser()

	// The application's routes: its middleware ran, Tether's did not.
	status, hdr, body := b.do("GET", app+"/hello", "")
	if status != 200 || body != "hello" || hdr.Get("X-App") != "1" {
		t.Errorf("GET /hello = %d %q X-App %q; want 200 hello 1", status, body, hdr.Get("X-App"))
	}
	if cc := hdr.Get("Cache-Control"); cc != "" {
		t.Errorf("GET /hello has Cache-Control %q: Tether's no-store leaked onto the app's route", cc)
	}
	if sc := hdr.Values("Set-Cookie"); len(sc) != 0 {
		t.Errorf("GET /hello set cookies %q", sc)
	}
	if status, _, body := b.do("POST", app+"/form", "x=1", "Content-Type", "application/x-www-form-urlencoded"); status != 200 || body != "posted" {
		t.Errorf("POST /form without X-CSRF = %d %q; want 200 posted (Tether's CSRF rule is for its routes only)", status, body)
	}

	// Tether's routes: under /auth, with its rules.
	status, hdr, body = b.do("POST", app+"/auth/token", "")
	var eb wire.ErrorBody
	json.Unmarshal([]byte(body), &eb)
	if status != 403 || eb.Error != wire.ErrCSRFHeaderMissing {
		t.Errorf("POST /auth/token without X-CSRF = %d %q; want 403 %s", status, body, wire.ErrCSRFHeaderMissing)
	}
	if hdr.Get("Cache-Control") != "no-store" || hdr.Get("X-App") != "1" {
		t.Errorf("POST /auth/token: Cache-Control %q, X-App %q; want no-store and the app's global middleware", hdr.Get("Cache-Control"), hdr.Get("X-App"))
	}
	for _, p := range []string{"/bff/login", "/bff/token", "/healthz", "/readyz", "/metrics"} {
		if status, _, body := b.do("GET", app+p, ""); status != 404 || body != "app 404" {
			t.Errorf("GET %s = %d %q; want the app's 404 (Tether mounts nothing outside /auth)", p, status, body)
		}
	}
	if status, _, body := b.do("GET", app+"/ops/healthz", ""); status != 200 || body != "ok\n" {
		t.Errorf("GET /ops/healthz = %d %q; want 200 ok", status, body)
	}
	if status, _, body := b.do("GET", app+"/ops/readyz", ""); status != 200 || body != "ready\n" {
		t.Errorf("GET /ops/readyz = %d %q; want 200 ready", status, body)
	}

	// The whole flow under /auth: the provider sends the browser back to
	// /auth/callback, which is the registered redirect URI.
	before := appMW.Load()
	b.loginAt(app, "/auth", "/hello")
	if !strings.Contains(b.received(), "GET /auth/callback -> 302") {
		t.Errorf("the login did not come back through /auth/callback:\n%s", b.received())
	}
	if got := s.bffs[0].cfg.providerConfig().RedirectURL; got != app+"/auth/callback" {
		t.Errorf("redirect URI %q; want %s/auth/callback", got, app)
	}
	if appMW.Load() <= before {
		t.Error("the app's global middleware did not see the login's requests")
	}
	tok := b.mustTokenAt(app+"/auth", nil)
	if !strings.HasPrefix(tok.AccessToken, devprovider.PrefixAccessToken) {
		t.Fatalf("POST /auth/token gave %q; want a dev access token", tok.AccessToken)
	}
	if got := s.callAPI(tok.AccessToken); got != 200 {
		t.Errorf("the API answered %d to the token from /auth/token; want 200", got)
	}
	var sess wire.SessionResponse
	if code := b.jsonCall("GET", app+"/auth/session", &sess); code != 200 || !sess.Authenticated || sess.Subject != "alice" {
		t.Errorf("GET /auth/session = %d %+v; want alice", code, sess)
	}
	if code := b.jsonCall("POST", app+"/auth/logout", nil); code != 204 {
		t.Errorf("POST /auth/logout = %d; want 204", code)
	}
	if r := b.tokenAt(app+"/auth", nil); r.status != 401 || r.err.Reason != wire.ReasonSignedOut {
		t.Errorf("POST /auth/token after logout = %d %+v; want 401 signed_out", r.status, r.err)
	}
	s.assertNoSecrets(b)
}

// TestNoGinRouteListing: in Gin's debug mode, New prints nothing and
// Register adds Tether's routes to the application's engine only: no
// second engine, no second "debug mode" warning.
func TestNoGinRouteListing(t *testing.T) {
	var out bytes.Buffer
	w := gin.DefaultWriter
	gin.DefaultWriter = &out
	gin.SetMode(gin.DebugMode)
	t.Cleanup(func() { gin.SetMode(gin.ReleaseMode); gin.DefaultWriter = w })

	var printedByNew string
	s, _ := newAppStack(t, appOptions{basePath: "/auth", routes: func(h *Handler, r *gin.Engine) {
		printedByNew = out.String() // after gin.New for the app and bff.New
		out.Reset()
		r.GET("/hello", func(c *gin.Context) { c.String(200, "hello") })
	}})
	if strings.Contains(printedByNew, "/auth") || strings.Count(printedByNew, "Running in \"debug\" mode") != 1 {
		t.Errorf("before Register, Gin printed:\n%s\nwant only the app engine's one debug-mode warning", printedByNew)
	}
	routes := out.String()
	for _, want := range []string{"GET    /hello", "GET    /auth/login", "POST   /auth/token"} {
		if !strings.Contains(routes, want) {
			t.Errorf("the app's route list lacks %q:\n%s", want, routes)
		}
	}
	out.Reset()
	b := s.newBrowser()
	b.loginAt(s.urls[0], "/auth", "/hello")
	if printed := out.String(); printed != "" {
		t.Errorf("serving through the app's engine made Gin print:\n%s", printed)
	}
}

func TestBasePath(t *testing.T) {
	good := map[string]string{"": "/bff", "/auth": "/auth", "/auth/": "/auth", "/api/v1/auth": "/api/v1/auth", "/a-b_c.d~": "/a-b_c.d~"}
	for in, want := range good {
		c := Config{BasePath: in}
		if err := c.checkBasePath(); err != nil || c.BasePath != want {
			t.Errorf("BasePath %q: %q, %v; want %q", in, c.BasePath, err, want)
		}
	}
	for _, in := range []string{"/", "auth", "//auth", "/a//b", "/a/../b", "/./a", "/a b", "/:id", "/*any", "/a?b", "/é", "https://x/auth"} {
		c := Config{BasePath: in}
		err := c.checkBasePath()
		var ce *ConfigError
		if err == nil || !errors.As(err, &ce) || ce.Var != "TETHER_BASE_PATH" {
			t.Errorf("BasePath %q: %v; want a TETHER_BASE_PATH error", in, err)
		}
	}
	env := map[string]string{
		"TETHER_PUBLIC_URL": "https://app.example", "TETHER_TOKEN_URL": "https://idp.example/token",
		"TETHER_AUTH_URL": "https://idp.example/auth", "TETHER_CLIENT_ID": "x",
		"TETHER_BASE_PATH": "/auth/", "TETHER_API_ORIGINS": "https://API.example:443/, http://127.0.0.1:9090",
	}
	c, err := FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.BasePath != "/auth" || c.providerConfig().RedirectURL != "https://app.example/auth/callback" {
		t.Errorf("BasePath %q, redirect URI %q; want /auth and https://app.example/auth/callback", c.BasePath, c.providerConfig().RedirectURL)
	}
	if strings.Join(c.APIOrigins, " ") != "https://api.example http://127.0.0.1:9090" {
		t.Errorf("APIOrigins %q; want the canonical origins", c.APIOrigins)
	}
	env["TETHER_API_ORIGINS"] = "https://api.example/v1"
	if _, err := FromEnv(func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "TETHER_API_ORIGINS") {
		t.Errorf("an API origin with a path: %v; want a TETHER_API_ORIGINS error", err)
	}
}

// TestLoginURL: the login path follows the base path and keeps return_to
// on this site.
func TestLoginURL(t *testing.T) {
	h := &Handler{cfg: Config{BasePath: "/auth"}}
	cases := map[string]string{
		"/dash?x=1":      "/auth/login?return_to=%2Fdash%3Fx%3D1",
		"":               "/auth/login?return_to=%2F",
		"//evil.example": "/auth/login?return_to=%2F",
		"https://evil":   "/auth/login?return_to=%2F",
	}
	for in, want := range cases {
		if got := h.LoginURL(in); got != want {
			t.Errorf("LoginURL(%q) = %q; want %q", in, got, want)
		}
	}
	// A page of a listed extension, as GET /login takes it; no other.
	h.cfg.ExtensionOrigins = []string{extChrom}
	for in, want := range map[string]string{
		extChrom + "/signed-in.html":                                         "/auth/login?return_to=" + url.QueryEscape(extChrom+"/signed-in.html"),
		"chrome-extension://ponmlkjihgfedcbaponmlkjihgfedcba/signed-in.html": "/auth/login?return_to=%2F",
	} {
		if got := h.LoginURL(in); got != want {
			t.Errorf("with the extension listed, LoginURL(%q) = %q; want %q", in, got, want)
		}
	}
}
