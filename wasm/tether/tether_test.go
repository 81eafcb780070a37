//go:build !js

package tether_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tetherauth/tether/bff"
	"github.com/tetherauth/tether/bff/devprovider"
	"github.com/tetherauth/tether/bff/provider"
	"github.com/tetherauth/tether/wasm/client"
	"github.com/tetherauth/tether/wasm/tether"
)

// The package runs on the host against the real BFF (mounted at /auth in
// a Gin app) and the dev provider, over loopback HTTP: what a Go UI does
// in the browser, with a cookie jar standing in for the browser's.

// env is one test's servers and signed-in browser.
type env struct {
	t       *testing.T
	dev     *devprovider.Provider
	devURL  string
	app     string
	echo    *echo
	echoURL string
	jar     http.CookieJar
	bffHits atomic.Int64 // POST /auth/token requests
	events  *events
}

// serve runs h on a loopback port until the test ends.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { bff.Serve(ctx, ln, h); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return "http://" + ln.Addr().String()
}

// lazy lets a server start before its handler exists.
type lazy struct{ h atomic.Pointer[http.Handler] }

func (l *lazy) ServeHTTP(w http.ResponseWriter, r *http.Request) { (*l.h.Load()).ServeHTTP(w, r) }
func (l *lazy) set(h http.Handler)                               { l.h.Store(&h) }

func newEnv(t *testing.T) *env {
	t.Helper()
	gin.SetMode(gin.ReleaseMode)
	e := &env{t: t, echo: &echo{}, events: &events{}}
	t.Cleanup(http.DefaultTransport.(*http.Transport).CloseIdleConnections)
	devH, appH := &lazy{}, &lazy{}
	e.devURL = serve(t, devH)
	e.app = serve(t, appH)
	e.echoURL = serve(t, e.echo)
	dev, err := devprovider.New(devprovider.Config{Issuer: e.devURL, AutoApprove: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dev.Close)
	devH.set(dev)
	e.dev = dev
	h, err := bff.New(context.Background(), bff.Config{
		PublicURL: e.app, BasePath: "/auth", Endpoints: provider.Endpoints{Issuer: e.devURL},
		ClientID: devprovider.DefaultClientID, ClientSecret: devprovider.DefaultClientSecret,
		ProviderTimeout: 2 * time.Second, Logger: slog.New(slog.DiscardHandler),
		// The tests refuse tokens that a forced refresh has just issued,
		// on purpose; the BFF would otherwise hand them back for a while.
		ForceMinAge: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	r := gin.New()
	r.Use(func(c *gin.Context) {
		if c.Request.URL.Path == "/auth/token" {
			e.bffHits.Add(1)
		}
	})
	h.Register(r)
	r.GET("/", func(c *gin.Context) { c.String(200, "home") })
	appH.set(r)

	e.jar, _ = cookiejar.New(nil)
	resp, err := (&http.Client{Jar: e.jar}).Get(e.app + "/auth/login?return_to=/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/" || resp.StatusCode != 200 {
		t.Fatalf("login ended at %s with %d", resp.Request.URL, resp.StatusCode)
	}
	return e
}

// start starts the client for the signed-in browser and waits for its
// first token.
func (e *env) start() *tether.Tether {
	e.t.Helper()
	tt, err := tether.Start(tether.Options{
		BFF:        e.app + "/auth",
		APIOrigins: []string{e.devURL, e.echoURL},
		OnEvent:    e.events.add,
		HTTPClient: &http.Client{Jar: e.jar},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(tt.Close)
	e.events.waitFor(e.t, tether.EventToken)
	return tt
}

// get GETs u through client and returns the status and body, or the error.
func get(client *http.Client, u string) (int, string, error) {
	resp, err := client.Get(u)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// events records the client's events.
type events struct {
	mu   sync.Mutex
	list []tether.Event
}

func (ev *events) add(e tether.Event) {
	ev.mu.Lock()
	ev.list = append(ev.list, e)
	ev.mu.Unlock()
}

func (ev *events) kinds() []string {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	var k []string
	for _, e := range ev.list {
		k = append(k, e.Kind+":"+e.Reason)
	}
	return k
}

func (ev *events) waitFor(t *testing.T, kind string) tether.Event {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		ev.mu.Lock()
		for _, e := range ev.list {
			if e.Kind == kind {
				ev.mu.Unlock()
				return e
			}
		}
		ev.mu.Unlock()
	}
	t.Fatalf("no %s event; got %q", kind, ev.kinds())
	return tether.Event{}
}

// echo is an API that refuses the tokens it is told to and records what
// it received.
type echo struct {
	mu     sync.Mutex
	refuse func(string) bool
	seen   []string // "<Authorization>|<body>"
}

func (e *echo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	auth := r.Header.Get("Authorization")
	e.mu.Lock()
	e.seen = append(e.seen, auth+"|"+string(body))
	refuse := e.refuse
	e.mu.Unlock()
	if refuse != nil && refuse(strings.TrimPrefix(auth, "Bearer ")) {
		w.WriteHeader(401)
		return
	}
	io.WriteString(w, "got "+string(body))
}

func (e *echo) reset(refuse func(string) bool) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	seen := e.seen
	e.seen, e.refuse = nil, refuse
	return seen
}

func TestRoundTripCarriesTheToken(t *testing.T) {
	e := newEnv(t)
	tt := e.start()
	c := &http.Client{Transport: tt}
	status, body, err := get(c, e.devURL+"/api/me")
	if err != nil || status != 200 || !strings.Contains(body, `"subject":"alice"`) {
		t.Fatalf("GET /api/me = %d %q %v; want 200 with alice", status, body, err)
	}
	if st := tt.State(); !st.Connected || st.ExpiresAt == 0 || st.Reason != "" {
		t.Errorf("State = %+v; want connected", st)
	}
	s, err := tt.Session(t.Context())
	if err != nil || !s.Authenticated || s.Subject != "alice" {
		t.Errorf("Session = %+v, %v; want alice", s, err)
	}

	// Another origin: untouched.
	otherEcho := &echo{}
	other := serve(t, otherEcho)
	if status, _, err := get(c, other+"/x"); err != nil || status != 200 {
		t.Fatalf("GET on another origin = %d %v", status, err)
	}
	if seen := otherEcho.reset(nil); len(seen) != 1 || seen[0] != "|" {
		t.Errorf("another origin saw %q; want one request without Authorization", seen)
	}
	if got := tt.LoginURL("/app?x=1"); got != e.app+"/auth/login?return_to=%2Fapp%3Fx%3D1" {
		t.Errorf("LoginURL = %q", got)
	}
}

// TestExpiredTokenOneRetry: 50 concurrent calls meet a token the provider
// has ended: each is answered 200 after one 401 at most, with one forced
// token request to the BFF and one refresh at the provider.
func TestExpiredTokenOneRetry(t *testing.T) {
	const n = 50
	e := newEnv(t)
	tt := e.start()
	c := &http.Client{Transport: tt}
	e.dev.ResetStats()
	hits := e.bffHits.Load()
	e.dev.ExpireAccessTokens("")
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		wg.Go(func() { statuses[i], _, _ = get(c, e.devURL+"/api/me") })
	}
	wg.Wait()
	for i, s := range statuses {
		if s != 200 {
			t.Errorf("call %d: %d; want 200", i, s)
		}
	}
	st := e.dev.Stats()
	if st.RefreshToken != 1 || st.APIOK != n || st.API401 < 1 || st.API401 > n || e.bffHits.Load()-hits != 1 {
		t.Errorf("provider: %d refreshes, %d API 200, %d API 401; BFF: %d token requests; want 1, %d, 1..%d, 1",
			st.RefreshToken, st.APIOK, st.API401, e.bffHits.Load()-hits, n, n)
	}
	if k := strings.Join(e.events.kinds(), " "); !strings.Contains(k, "recovered:rejected") {
		t.Errorf("events %s; want recovered:rejected", k)
	}

	// A body is sent again with the new token when it can be; a stream
	// cannot, and its 401 comes back.
	tok, _ := tt.Token(t.Context())
	e.echo.reset(func(s string) bool { return s == tok })
	resp, err := c.Post(e.echoURL+"/x", "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	seen := e.echo.reset(nil)
	if resp.StatusCode != 200 || len(seen) != 2 || seen[0] != "Bearer "+tok+"|hello" || !strings.HasSuffix(seen[1], "|hello") || seen[1] == seen[0] {
		t.Errorf("POST with a replayable body: %d, the API saw %q; want 200 after the same body twice, the second with a new token", resp.StatusCode, seen)
	}
	tok, _ = tt.Token(t.Context())
	e.echo.reset(func(s string) bool { return s == tok })
	resp, err = c.Post(e.echoURL+"/x", "text/plain", io.MultiReader(strings.NewReader("stream")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if seen := e.echo.reset(nil); resp.StatusCode != 401 || len(seen) != 1 {
		t.Errorf("POST with a stream: %d after %d requests; want the 401 after 1", resp.StatusCode, len(seen))
	}
	if next, _ := tt.Token(t.Context()); next == tok {
		t.Error("the refused token is still handed out after the stream's 401")
	}
}

// TestRevokedGrantReconnects: a revoked grant gives the 401 back, one
// reconnect event, and then calls fail at once without a request.
func TestRevokedGrantReconnects(t *testing.T) {
	e := newEnv(t)
	tt := e.start()
	c := &http.Client{Transport: tt}
	e.dev.ResetStats()
	e.dev.RevokeSubject("alice")
	status, _, err := get(c, e.devURL+"/api/me")
	if err != nil || status != 401 {
		t.Fatalf("the call after the revocation: %d %v; want its 401", status, err)
	}
	ev := e.events.waitFor(t, tether.EventReconnect)
	if ev.Reason != "revoked" {
		t.Errorf("reconnect reason %q; want revoked", ev.Reason)
	}
	st, hits := e.dev.Stats(), e.bffHits.Load()
	if st.API401 != 1 || st.RefreshToken != 1 {
		t.Errorf("provider: %d API 401, %d refreshes; want 1 and 1", st.API401, st.RefreshToken)
	}
	for range 3 {
		_, _, err := get(c, e.devURL+"/api/me")
		var re *client.ReconnectError
		if !errors.Is(err, tether.ErrReconnect) || !errors.As(err, &re) || re.Reason != "revoked" {
			t.Errorf("a call after the reconnect: %v; want ErrReconnect (revoked)", err)
		}
	}
	if st2 := e.dev.Stats(); st2 != st || e.bffHits.Load() != hits {
		t.Errorf("calls after the reconnect reached the provider (%+v, was %+v) or the BFF (%d, was %d)", st2, st, e.bffHits.Load(), hits)
	}
	if n := strings.Count(strings.Join(e.events.kinds(), " "), "reconnect:"); n != 1 {
		t.Errorf("%d reconnect events; want 1", n)
	}
	if tt.State().Reason != "revoked" {
		t.Errorf("State %+v; want reason revoked", tt.State())
	}
}

func TestLogout(t *testing.T) {
	e := newEnv(t)
	tt := e.start()
	if err := tt.Logout(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.events.waitFor(t, tether.EventLogout)
	_, _, err := get(&http.Client{Transport: tt}, e.devURL+"/api/me")
	if !errors.Is(err, tether.ErrReconnect) {
		t.Errorf("a call after Logout: %v; want ErrReconnect", err)
	}
	if s, err := tt.Session(t.Context()); err != nil || s.Authenticated {
		t.Errorf("Session after Logout = %+v, %v; want not authenticated", s, err)
	}
}

func TestStartNeedsAnAbsoluteBFFOnTheHost(t *testing.T) {
	for _, b := range []string{"", "/bff", "ftp://x/bff"} {
		if _, err := tether.Start(tether.Options{BFF: b}); err == nil {
			t.Errorf("Start with BFF %q on the host: no error", b)
		}
	}
	if _, err := tether.Start(tether.Options{BFF: "http://127.0.0.1:1/bff", APIOrigins: []string{"not an origin"}}); err == nil {
		t.Error("Start with a bad API origin: no error")
	}
}
