// Package app is the Go full-stack example: a Gin application that mounts
// Tether under /auth, renders a page on the server with data it fetched
// from an API as the signed-in user (bff.Client), and serves a user
// interface written in Go and compiled to WebAssembly (../ui) that calls
// the same API from the browser through wasm/tether's http.RoundTripper.
//
// The API and the sign-in are the dev provider's (bff/devprovider), in the
// same process, as in `make run`; a real application points bff.Config at
// its provider and its APIOrigins at its API. `make run-gofullstack`
// builds the UI and runs ../main.go; the e2e tests start it with Start.
package app

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tetherauth/tether/bff"
	"github.com/tetherauth/tether/bff/devprovider"
	"github.com/tetherauth/tether/bff/provider"
)

// BasePath is where the example mounts Tether.
const BasePath = "/auth"

// Options configure the example. Zero values are `make run-gofullstack`'s.
type Options struct {
	Addr    string // the application; default 127.0.0.1:8081 (port 0 picks one)
	DevAddr string // the dev provider (sign-in and the API); default 127.0.0.1:9091
	// Dist holds the Go UI: ui.wasm and wasm_exec.js (built by `make
	// run-gofullstack`). Default web/examples/gofullstack/dist.
	Dist string
	// AccessTTL is the dev provider's access token lifetime; default its own (60 s).
	AccessTTL time.Duration
	// AutoApprove skips the dev provider's consent page (signs in as alice).
	AutoApprove bool
	Logger      *slog.Logger
}

// App is the running example.
type App struct {
	URL    string // the application
	DevURL string // the dev provider: its /api/me is the API
	Dev    *devprovider.Provider
	BFF    *bff.Handler

	cancel context.CancelFunc
	wg     sync.WaitGroup
	errs   chan error
}

// Start listens, builds everything and serves in the background until
// Close.
func Start(ctx context.Context, o Options) (*App, error) {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:8081"
	}
	if o.DevAddr == "" {
		o.DevAddr = "127.0.0.1:9091"
	}
	if o.Dist == "" {
		o.Dist = filepath.Join("web", "examples", "gofullstack", "dist")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	devLn, err := net.Listen("tcp", o.DevAddr)
	if err != nil {
		return nil, fmt.Errorf("gofullstack: dev provider address: %w", err)
	}
	appLn, err := net.Listen("tcp", o.Addr)
	if err != nil {
		devLn.Close()
		return nil, fmt.Errorf("gofullstack: application address: %w", err)
	}
	a := &App{URL: "http://" + appLn.Addr().String(), DevURL: "http://" + devLn.Addr().String(), errs: make(chan error, 2)}
	ctx, a.cancel = context.WithCancel(ctx)
	fail := func(err error) (*App, error) {
		a.cancel()
		devLn.Close()
		appLn.Close()
		if a.Dev != nil {
			a.Dev.Close()
		}
		return nil, err
	}

	// The sign-in and the API: the dev provider. Its CORS lets the Go UI
	// on the application's origin call /api/me.
	if a.Dev, err = devprovider.New(devprovider.Config{
		Issuer: a.DevURL, AccessTTL: o.AccessTTL, AutoApprove: o.AutoApprove,
		AllowOrigins: []string{a.URL}, Logger: o.Logger.With("component", "devprovider"),
	}); err != nil {
		return fail(err)
	}
	a.serve(ctx, devLn, a.Dev)

	// Tether, mounted on the application's engine under /auth. The keys
	// are thrown away with the process: sessions end when it stops.
	if a.BFF, err = bff.New(ctx, bff.Config{
		PublicURL: a.URL, BasePath: BasePath,
		APIOrigins: []string{a.DevURL},
		Endpoints:  provider.Endpoints{Issuer: a.DevURL},
		ClientID:   devprovider.DefaultClientID, ClientSecret: devprovider.DefaultClientSecret,
		Scopes:   []string{"openid", "profile", "email"},
		VaultKey: randomKey(), SessionKeys: [][]byte{randomKey()},
		Logger: o.Logger.With("component", "bff"),
	}); err != nil {
		return fail(err)
	}
	a.serve(ctx, appLn, a.routes(o.Dist))
	return a, nil
}

// routes is the application: its pages, Tether's routes, health.
func (a *App) routes(dist string) *gin.Engine {
	h := a.BFF
	r := gin.New()
	r.Use(gin.Recovery())
	h.Register(r) // /auth/login, /auth/callback, /auth/session, /auth/token, /auth/logout
	r.GET("/healthz", gin.WrapH(h.HealthHandler()))
	r.GET("/readyz", gin.WrapH(h.ReadyHandler()))

	r.GET("/", h.OptionalSession(), a.home)
	r.GET("/ui", h.RequireSession(bff.Page), a.ui)
	r.GET("/ui/ui.wasm", func(c *gin.Context) {
		c.Header("Content-Type", "application/wasm")
		c.Header("Cache-Control", "no-cache")
		c.File(filepath.Join(dist, "ui.wasm"))
	})
	r.GET("/ui/wasm_exec.js", func(c *gin.Context) {
		c.Header("Cache-Control", "no-cache")
		c.File(filepath.Join(dist, "wasm_exec.js"))
	})
	r.GET("/favicon.ico", func(c *gin.Context) { c.Status(http.StatusNoContent) })
	return r
}

// profile is the part of the API's answer the pages show.
type profile struct {
	Subject        string `json:"subject"`
	Name           string `json:"name"`
	Email          string `json:"email"`
	TokenExpiresAt int64  `json:"token_expires_at"`
}

// homeData is what the start page shows.
type homeData struct {
	Session bff.Session
	Login   string // the sign-in link
	Status  int    // the API's status
	Profile profile
	Expires string
	Error   string
}

// home renders the start page on the server. Signed in, it shows what
// the API says about the user, fetched here with the user's token.
func (a *App) home(c *gin.Context) {
	d := homeData{Login: a.BFF.LoginURL("/")}
	s, ok := bff.SessionFrom(c)
	if !ok {
		render(c, http.StatusOK, homeTmpl, d)
		return
	}
	d.Session = s
	req, _ := http.NewRequestWithContext(c.Request.Context(), http.MethodGet, a.DevURL+"/api/me", nil)
	resp, err := bff.Client(c).Do(req)
	if errors.Is(err, bff.ErrReconnect) {
		// Revoked or expired: sign in again and come back.
		c.Redirect(http.StatusFound, d.Login)
		return
	}
	if err != nil {
		d.Error = err.Error()
		render(c, http.StatusBadGateway, homeTmpl, d)
		return
	}
	defer resp.Body.Close()
	if d.Status = resp.StatusCode; resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&d.Profile) != nil {
		d.Error = fmt.Sprintf("the API answered %d", resp.StatusCode)
		render(c, http.StatusBadGateway, homeTmpl, d)
		return
	}
	d.Expires = time.Unix(d.Profile.TokenExpiresAt, 0).UTC().Format(time.TimeOnly)
	render(c, http.StatusOK, homeTmpl, d)
}

// ui serves the page of the Go UI; the UI reads where the BFF and the
// API are from the body's data attributes.
func (a *App) ui(c *gin.Context) {
	render(c, http.StatusOK, uiTmpl, map[string]any{"BFF": BasePath, "API": a.DevURL + "/api/me", "APIOrigin": a.DevURL})
}

func render(c *gin.Context, status int, t *template.Template, data any) {
	c.Header("Content-Type", "text/html; charset=utf-8")
	c.Header("Cache-Control", "no-store")
	c.Status(status)
	if err := t.Execute(c.Writer, data); err != nil {
		c.Error(err)
	}
}

const style = `<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#1f2328}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{color:#57606a}
a.button,button{display:inline-block;padding:.5rem 1rem;border:0;border-radius:.4rem;background:#0b5cad;color:#fff;font:inherit;text-decoration:none;cursor:pointer}
.banner{background:#fff1e5;border:1px solid #d1242f;padding:.8rem 1rem;border-radius:.4rem}</style>`

var homeTmpl = template.Must(template.New("home").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Go full-stack with Tether</title>` + style + `</head><body>
<h1>Go full-stack with Tether</h1>
{{if .Session.Subject}}
<p id="who">Signed in as <b>{{.Session.Name}}</b> ({{.Session.Subject}}).</p>
{{if .Error}}<p id="server-error" class="banner">{{.Error}}</p>{{else}}
<h2>From the API, fetched by the server</h2>
<dl id="server-api" data-status="{{.Status}}">
<dt>name</dt><dd id="api-name">{{.Profile.Name}}</dd>
<dt>email</dt><dd id="api-email">{{.Profile.Email}}</dd>
<dt>token expires</dt><dd>{{.Expires}} UTC</dd>
</dl>{{end}}
<p><a class="button" id="open-ui" href="/ui">Open the Go UI</a></p>
{{else}}
<p>This page is rendered by Go on the server; signed in, it shows what an API says about you, fetched with your token.</p>
<p><a class="button" id="sign-in" href="{{.Login}}">Sign in</a></p>
{{end}}
</body></html>
`))

var uiTmpl = template.Must(template.New("ui").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Go UI with Tether</title>` + style + `
<script src="/ui/wasm_exec.js"></script>
<script>
const go = new Go();
WebAssembly.instantiateStreaming(fetch("/ui/ui.wasm"), go.importObject).then((r) => go.run(r.instance));
</script></head>
<body data-bff="{{.BFF}}" data-api="{{.API}}" data-api-origin="{{.APIOrigin}}">
<h1>Go UI</h1>
<p>Written in Go, compiled to WebAssembly; it calls the API with <code>&amp;http.Client{Transport: t}</code>.</p>
<p id="state">starting…</p>
<div id="reconnect-banner" class="banner" hidden>Your sign-in has ended (<span id="reconnect-reason"></span>).
<a class="button" id="reconnect" href="#">Reconnect</a></div>
<p><button id="call" disabled>Call the API</button> <span id="call-status"></span></p>
<pre id="call-result"></pre>
<h2>Events</h2><ol id="events"></ol>
<p><a href="/">Back to the server page</a></p>
</body></html>
`))

func (a *App) serve(ctx context.Context, ln net.Listener, h http.Handler) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := bff.Serve(ctx, ln, h); err != nil {
			a.errs <- err
		}
	}()
}

// Err reports a server that stopped by itself.
func (a *App) Err() <-chan error { return a.errs }

// Close stops both servers (requests in flight finish) and the vault.
func (a *App) Close() error {
	a.Dev.Close()
	a.cancel()
	a.wg.Wait()
	return a.BFF.Close()
}

func randomKey() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}
