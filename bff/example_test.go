package bff_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"
	"golang.org/x/oauth2"

	"github.com/tetherauth/tether/bff"
	"github.com/tetherauth/tether/bff/devprovider"
	"github.com/tetherauth/tether/bff/provider"
)

// Mount Tether in an application's own Gin engine, under /auth, next to
// the application's routes; health and readiness go where the
// application wants them.
func ExampleHandler_Register() {
	issuer, stop := startDevProvider()
	defer stop()

	h, err := bff.New(context.Background(), bff.Config{
		PublicURL:    "http://127.0.0.1:8080",
		BasePath:     "/auth", // the callback URL is http://127.0.0.1:8080/auth/callback
		Endpoints:    provider.Endpoints{Issuer: issuer},
		ClientID:     devprovider.DefaultClientID,
		ClientSecret: devprovider.DefaultClientSecret,
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()

	r := gin.New()
	r.GET("/", func(c *gin.Context) { c.String(http.StatusOK, "the app's own page") })
	r.GET("/healthz", gin.WrapH(h.HealthHandler()))
	r.GET("/readyz", gin.WrapH(h.ReadyHandler()))
	h.Register(r) // /auth/login, /auth/callback, /auth/session, /auth/token, /auth/logout

	for _, target := range []string{"GET /", "GET /auth/login?return_to=/", "POST /auth/token", "GET /readyz"} {
		var method, path string
		fmt.Sscan(target, &method, &path)
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest(method, path, nil))
		switch loc, _ := url.Parse(w.Header().Get("Location")); {
		case w.Code == http.StatusFound:
			fmt.Println(target, w.Code, "to the provider, redirect_uri", loc.Query().Get("redirect_uri"))
		default:
			fmt.Println(target, w.Code, w.Body.String())
		}
	}
	// Output:
	// GET / 200 the app's own page
	// GET /auth/login?return_to=/ 302 to the provider, redirect_uri http://127.0.0.1:8080/auth/callback
	// POST /auth/token 403 {"error":"csrf_header_missing","message":"send the header X-CSRF: 1 with every BFF request"}
	// GET /readyz 200 ready
}

// Pages that need a signed-in user redirect to the login, which brings
// the user back; API routes answer 401. SessionFrom tells the handler who
// is signed in.
func ExampleHandler_RequireSession() {
	issuer, stop := startDevProvider()
	defer stop()
	h := newHandler("http://127.0.0.1:8080", issuer)
	defer h.Close()

	r := gin.New()
	h.Register(r)
	r.GET("/dashboard", h.RequireSession(bff.Page), func(c *gin.Context) {
		s, _ := bff.SessionFrom(c)
		c.String(http.StatusOK, "hello "+s.Name)
	})
	r.GET("/api/profile", h.RequireSession(bff.API), func(c *gin.Context) {
		s, _ := bff.SessionFrom(c)
		c.JSON(http.StatusOK, gin.H{"subject": s.Subject})
	})

	for _, path := range []string{"/dashboard?tab=2", "/api/profile"} {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		if loc := w.Header().Get("Location"); loc != "" {
			fmt.Println(path, w.Code, "to", loc)
		} else {
			fmt.Println(path, w.Code, w.Body.String())
		}
	}
	// Output:
	// /dashboard?tab=2 302 to /auth/login?return_to=%2Fdashboard%3Ftab%3D2
	// /api/profile 401 {"error":"reconnect_required","reason":"no_session","message":"no session: sign in"}
}

// A Go handler calls an API as the signed-in user with x/oauth2: the
// token source hands out the session's access token, refreshed through
// Tether's refresh engine (once per session across replicas).
func ExampleTokenSource() {
	issuer, stop := startDevProvider()
	defer stop()
	app := httptest.NewUnstartedServer(nil)
	h := newHandler("http://"+app.Listener.Addr().String(), issuer)
	defer h.Close()

	r := gin.New()
	h.Register(r)
	r.GET("/profile", h.RequireSession(bff.Page), func(c *gin.Context) {
		client := oauth2.NewClient(c.Request.Context(), bff.TokenSource(c))
		resp, err := client.Get(issuer + "/api/me")
		if err != nil {
			c.String(http.StatusBadGateway, err.Error())
			return
		}
		defer resp.Body.Close()
		var me struct{ Name, Email string }
		json.NewDecoder(resp.Body).Decode(&me)
		c.String(http.StatusOK, "%s <%s>", me.Name, me.Email)
	})
	app.Config.Handler = r
	app.Start()
	defer app.Close()

	fmt.Println(visit(app.URL + "/profile")) // signs in on the way
	// Output: Alice Liddell <alice@example.test>
}

// Client does the same with one line, and also recovers from an API's
// 401: one forced refresh, shared by every call that met the same
// refused token, and one retry. A revoked grant is ErrReconnect.
func ExampleClient() {
	issuer, stop := startDevProvider()
	defer stop()
	app := httptest.NewUnstartedServer(nil)
	h := newHandler("http://"+app.Listener.Addr().String(), issuer, issuer) // the API origin
	defer h.Close()

	r := gin.New()
	h.Register(r)
	r.GET("/profile", h.RequireSession(bff.Page), func(c *gin.Context) {
		req, _ := http.NewRequestWithContext(c.Request.Context(), http.MethodGet, issuer+"/api/me", nil)
		resp, err := bff.Client(c).Do(req)
		switch {
		case errors.Is(err, bff.ErrReconnect):
			c.Redirect(http.StatusFound, h.LoginURL(c.Request.URL.RequestURI()))
			return
		case err != nil:
			c.String(http.StatusBadGateway, err.Error())
			return
		}
		defer resp.Body.Close()
		var me struct{ Subject string }
		json.NewDecoder(resp.Body).Decode(&me)
		c.String(http.StatusOK, "%d %s", resp.StatusCode, me.Subject)
	})
	app.Config.Handler = r
	app.Start()
	defer app.Close()

	fmt.Println(visit(app.URL + "/profile"))
	// Output: 200 alice
}

// startDevProvider runs the dev provider, approving every sign-in as
// alice, and returns its issuer URL.
func startDevProvider() (issuer string, stop func()) {
	srv := httptest.NewUnstartedServer(nil)
	issuer = "http://" + srv.Listener.Addr().String()
	dev, err := devprovider.New(devprovider.Config{Issuer: issuer, AutoApprove: true})
	if err != nil {
		log.Fatal(err)
	}
	srv.Config.Handler = dev
	srv.Start()
	return issuer, func() { dev.Close(); srv.Close() }
}

// newHandler is a Handler at publicURL + /auth for the dev provider.
func newHandler(publicURL, issuer string, apiOrigins ...string) *bff.Handler {
	h, err := bff.New(context.Background(), bff.Config{
		PublicURL: publicURL, BasePath: "/auth", APIOrigins: apiOrigins,
		Endpoints: provider.Endpoints{Issuer: issuer},
		ClientID:  devprovider.DefaultClientID, ClientSecret: devprovider.DefaultClientSecret,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	return h
}

// visit is a browser opening u: it follows the redirects through the
// sign-in and returns the page's text.
func visit(u string) string {
	jar, _ := cookiejar.New(nil)
	resp, err := (&http.Client{Jar: jar}).Get(u)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	io.Copy(&b, resp.Body)
	return b.String()
}
