package bff

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tetherauth/tether/bff/devprovider"
	"github.com/tetherauth/tether/bff/refresh"
	"github.com/tetherauth/tether/shared/wire"
)

// callResult is what an app route reports about one server-side call.
type callResult struct {
	Status    int    `json:"status,omitempty"`
	Body      string `json:"body,omitempty"`
	Err       string `json:"err,omitempty"`
	Reconnect bool   `json:"reconnect,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// callWith makes one request with client and reports it.
func callWith(client *http.Client, req *http.Request) callResult {
	resp, err := client.Do(req)
	if err != nil {
		r := callResult{Err: err.Error(), Reconnect: errors.Is(err, ErrReconnect)}
		var re *ReconnectError
		if errors.As(err, &re) {
			r.Reason = string(re.Reason)
		}
		return r
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return callResult{Status: resp.StatusCode, Body: string(b)}
}

// serverSideApp mounts Tether at /auth and adds the routes the tests below
// call. api is an extra API origin (may be "").
func serverSideApp(t *testing.T, api string) *stack {
	t.Helper()
	s, _ := newAppStack(t, appOptions{
		basePath: "/auth",
		tune: func(c *Config) {
			if api != "" {
				c.APIOrigins = append(c.APIOrigins, api)
			}
		},
		routes: func(h *Handler, r *gin.Engine) {
			r.GET("/whoami", h.RequireSession(API), func(c *gin.Context) {
				s, ok := SessionFrom(c)
				c.JSON(200, gin.H{"ok": ok, "subject": s.Subject, "name": s.Name,
					"access_expires_at": s.AccessExpiresAt.Unix(), "expires_at": s.ExpiresAt.Unix()})
			})
			dash := func(c *gin.Context) { s, _ := SessionFrom(c); c.String(200, "dash of "+s.Name) }
			r.GET("/dash", h.RequireSession(Page), dash)
			r.POST("/dash", h.RequireSession(Page), dash)
			r.GET("/maybe", h.OptionalSession(), func(c *gin.Context) {
				if s, ok := SessionFrom(c); ok {
					c.String(200, "hello "+s.Subject)
					return
				}
				c.String(200, "hello visitor")
			})
			// /fanout?n=N&url=U: N concurrent GETs of U through Client(c).
			r.GET("/fanout", h.RequireSession(API), func(c *gin.Context) {
				n, _ := strconv.Atoi(c.Query("n"))
				res := make([]callResult, n)
				var wg sync.WaitGroup
				for i := range n {
					wg.Go(func() {
						req, _ := http.NewRequestWithContext(c.Request.Context(), http.MethodGet, c.Query("url"), nil)
						res[i] = callWith(Client(c), req)
					})
				}
				wg.Wait()
				c.JSON(200, res)
			})
			// /call?times=N&url=U[&method=POST&body=B&stream=1]: N calls
			// in a row through one Client(c).
			r.GET("/call", h.OptionalSession(), func(c *gin.Context) {
				times, _ := strconv.Atoi(c.DefaultQuery("times", "1"))
				client := Client(c)
				var res []callResult
				for range times {
					var body io.Reader
					if b := c.Query("body"); b != "" {
						body = strings.NewReader(b)
						if c.Query("stream") == "1" {
							body = io.MultiReader(body) // no GetBody: not replayable
						}
					}
					req, _ := http.NewRequestWithContext(c.Request.Context(), c.DefaultQuery("method", "GET"), c.Query("url"), body)
					res = append(res, callWith(client, req))
				}
				c.JSON(200, res)
			})
			r.GET("/ts", h.OptionalSession(), func(c *gin.Context) {
				tok, err := TokenSource(c).Token()
				if err != nil {
					c.JSON(200, gin.H{"err": err.Error(), "reconnect": errors.Is(err, ErrReconnect)})
					return
				}
				c.JSON(200, gin.H{"token": tok.AccessToken, "type": tok.Type(), "expiry": tok.Expiry.Unix(), "valid": tok.Valid()})
			})
		},
	})
	// Client's transport is http.DefaultTransport: close its connections
	// before the servers stop, which otherwise wait 5 s for connections
	// that were dialled but never used.
	t.Cleanup(http.DefaultTransport.(*http.Transport).CloseIdleConnections)
	return s
}

// getJSON GETs u with b and decodes the JSON answer into out.
func (b *browser) getJSON(u string, out any) int {
	b.t.Helper()
	status, _, body := b.do("GET", u, "")
	if err := json.Unmarshal([]byte(body), out); err != nil {
		b.t.Fatalf("GET %s = %d %q: %v", u, status, body, err)
	}
	return status
}

func TestRequireSession(t *testing.T) {
	s := serverSideApp(t, "")
	app := s.urls[0]
	b := s.newBrowser()
	noRedirect := *b.c
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	// No session: API mode answers 401 JSON, Page mode redirects to the
	// login under the base path, Optional lets the visitor through.
	status, hdr, body := b.do("GET", app+"/whoami", "")
	var eb wire.ErrorBody
	json.Unmarshal([]byte(body), &eb)
	if status != 401 || eb.Error != wire.ErrReconnectRequired || eb.Reason != wire.ReasonNoSession || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
		t.Errorf("GET /whoami without a session = %d %s %q; want 401 JSON reconnect_required no_session", status, hdr.Get("Content-Type"), body)
	}
	pages := []struct{ method, path, wantLoc string }{
		{"GET", "/dash?tab=2", "/auth/login?return_to=%2Fdash%3Ftab%3D2"},
		{"POST", "/dash?tab=2", "/auth/login?return_to=%2Fdash"},
	}
	for i, p := range pages {
		req, _ := http.NewRequest(p.method, app+p.path, nil)
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		wantStatus := []int{302, 303}[i]
		if resp.StatusCode != wantStatus || resp.Header.Get("Location") != p.wantLoc {
			t.Errorf("%s %s without a session = %d to %q; want %d to %q", p.method, p.path, resp.StatusCode, resp.Header.Get("Location"), wantStatus, p.wantLoc)
		}
	}
	if _, _, body := b.do("GET", app+"/maybe", ""); body != "hello visitor" {
		t.Errorf("GET /maybe without a session = %q; want hello visitor", body)
	}

	// A page that needs a session sends the visitor through the login and
	// back to it.
	status, _, body = b.do("GET", app+"/dash?tab=2", "")
	if status != 200 || body != "dash of Alice Liddell" {
		t.Errorf("GET /dash through the login = %d %q; want 200 dash of Alice Liddell", status, body)
	}
	var who struct {
		OK              bool `json:"ok"`
		Subject, Name   string
		AccessExpiresAt int64 `json:"access_expires_at"`
		ExpiresAt       int64 `json:"expires_at"`
	}
	if status := b.getJSON(app+"/whoami", &who); status != 200 || !who.OK || who.Subject != "alice" || who.Name != "Alice Liddell" {
		t.Errorf("GET /whoami signed in = %d %+v; want alice", status, who)
	}
	rec, err := s.bffs[0].vault.Get(context.Background(), s.sid(b))
	if err != nil {
		t.Fatal(err)
	}
	if who.AccessExpiresAt != rec.Expiry.Unix() || who.ExpiresAt != rec.RefreshExpiry.Unix() || who.ExpiresAt == 0 {
		t.Errorf("SessionFrom expiries %d, %d; the record has %d, %d", who.AccessExpiresAt, who.ExpiresAt, rec.Expiry.Unix(), rec.RefreshExpiry.Unix())
	}
	if _, _, body := b.do("GET", app+"/maybe", ""); body != "hello alice" {
		t.Errorf("GET /maybe signed in = %q; want hello alice", body)
	}

	// The session ends elsewhere (another tab logs out): the stale cookie
	// is refused and deleted.
	sid := s.sid(b)
	if err := s.bffs[0].vault.Delete(context.Background(), sid); err != nil {
		t.Fatal(err)
	}
	status, hdr, _ = b.do("GET", app+"/whoami", "")
	if status != 401 || !strings.Contains(strings.Join(hdr.Values("Set-Cookie"), "\n"), s.bffs[0].cookieName+"=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax") {
		t.Errorf("GET /whoami with an ended session = %d, Set-Cookie %q; want 401 and the cookie deleted", status, hdr.Values("Set-Cookie"))
	}
	if s.sid(b) != "" {
		t.Error("the browser still holds the ended session's cookie")
	}

	// The session ends here (revoked, say): the 401 says why, and so does
	// the rewritten cookie on later requests.
	b.loginAt(app, "/auth", "/")
	if err := s.bffs[0].refresher.End(context.Background(), s.sid(b), refresh.ReasonRevoked); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		status, _, body := b.do("GET", app+"/whoami", "")
		json.Unmarshal([]byte(body), &eb)
		if status != 401 || eb.Reason != wire.ReasonRevoked {
			t.Errorf("GET /whoami #%d after the session was revoked = %d %q; want 401 reason revoked", i+1, status, body)
		}
		if s.sid(b) != "" {
			t.Error("the cookie still names the ended session")
		}
	}
	if r := b.tokenAt(app+"/auth", nil); r.status != 401 || r.err.Reason != wire.ReasonRevoked {
		t.Errorf("POST /auth/token with the rewritten cookie = %d %+v; want 401 revoked", r.status, r.err)
	}

	// A forged cookie is no session.
	u := mustParse(t, app)
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: s.bffs[0].cookieName, Value: "forged", Path: "/"}})
	if status, _, _ := b.do("GET", app+"/whoami", ""); status != 401 {
		t.Errorf("GET /whoami with a forged cookie = %d; want 401", status)
	}

	// The vault unreachable: 503 storage_unavailable, Retry-After, the
	// session kept.
	b.loginAt(app, "/auth", "/")
	s.bffs[0].Close()
	status, hdr, body = b.do("GET", app+"/whoami", "")
	json.Unmarshal([]byte(body), &eb)
	if status != 503 || eb.Error != wire.ErrStorageUnavailable || hdr.Get("Retry-After") == "" || len(hdr.Values("Set-Cookie")) != 0 {
		t.Errorf("GET /whoami with the vault closed = %d %q, Retry-After %q, Set-Cookie %q; want 503 storage_unavailable, Retry-After, no cookie change",
			status, body, hdr.Get("Retry-After"), hdr.Values("Set-Cookie"))
	}
	if status, _, _ := b.do("GET", app+"/maybe", ""); status != 503 {
		t.Errorf("GET /maybe with the vault closed = %d; want 503", status)
	}
}

// TestClientOneRefreshForManyCalls: 100 concurrent server-side calls for
// one session, across an expiry, cause one refresh at the provider —
// whether the API refuses the token (401, then force/rejected) or the
// token enters its refresh buffer first.
func TestClientOneRefreshForManyCalls(t *testing.T) {
	const n = 100
	s := serverSideApp(t, "")
	app, api := s.urls[0], s.devURL+"/api/me"
	b := s.newBrowser()
	b.loginAt(app, "/auth", "/")
	ctl := s.controls()
	fanout := func() map[int]int {
		t.Helper()
		var res []callResult
		if status := b.getJSON(app+"/fanout?n="+strconv.Itoa(n)+"&url="+api, &res); status != 200 || len(res) != n {
			t.Fatalf("GET /fanout = %d with %d results", status, len(res))
		}
		statuses := map[int]int{}
		for _, r := range res {
			if r.Err != "" {
				t.Errorf("a call failed: %s", r.Err)
			}
			if r.Status == 200 && !strings.Contains(r.Body, `"subject":"alice"`) {
				t.Errorf("a call got %q; want alice's profile", r.Body)
			}
			statuses[r.Status]++
		}
		return statuses
	}

	t.Run("the API refuses the token", func(t *testing.T) {
		ctl.ResetStats(t.Context())
		s.expire() // the provider ends the token; the vault still believes in it
		statuses := fanout()
		st := s.dev.Stats()
		if statuses[200] != n || st.RefreshToken != 1 || st.RefreshReuse != 0 || st.APIOK != n || st.API401 < 1 || st.API401 > n {
			t.Errorf("statuses %v; provider: %d refreshes, %d reuse, %d API 200, %d API 401; want %d×200, 1 refresh, 0 reuse, %d API 200, 1..%d API 401",
				statuses, st.RefreshToken, st.RefreshReuse, st.APIOK, st.API401, n, n, n)
		}
	})
	t.Run("the token enters its refresh buffer", func(t *testing.T) {
		ctl.ResetStats(t.Context())
		s.clock.Advance(devprovider.DefaultAccessTTL/2 + time.Second)
		statuses := fanout()
		st := s.dev.Stats()
		if statuses[200] != n || st.RefreshToken != 1 || st.API401 != 0 {
			t.Errorf("statuses %v; provider: %d refreshes, %d API 401; want %d×200, 1 refresh, 0 API 401", statuses, st.RefreshToken, st.API401, n)
		}
	})
}

// TestClientRevokedGrant: a revoked grant surfaces as ErrReconnect after
// one API 401 and one refresh attempt; later calls fail at once, with no
// request to the provider or the API.
func TestClientRevokedGrant(t *testing.T) {
	s := serverSideApp(t, "")
	app := s.urls[0]
	b := s.newBrowser()
	b.loginAt(app, "/auth", "/")
	s.controls().ResetStats(t.Context())
	s.revoke("alice")

	var res []callResult
	b.getJSON(app+"/call?times=3&url="+s.devURL+"/api/me", &res)
	if len(res) != 3 {
		t.Fatalf("GET /call: %+v", res)
	}
	if !res[0].Reconnect || res[0].Reason != "revoked" {
		t.Errorf("first call after the revocation: %+v; want ErrReconnect, reason revoked", res[0])
	}
	for _, r := range res[1:] {
		if !r.Reconnect || r.Status != 0 {
			t.Errorf("a later call: %+v; want ErrReconnect without a response", r)
		}
	}
	st := s.dev.Stats()
	if st.API401 != 1 || st.APIOK != 0 || st.RefreshToken != 1 {
		t.Errorf("provider saw %d API 401, %d API 200, %d refreshes; want 1, 0, 1 (one call, one refresh attempt, then nothing)", st.API401, st.APIOK, st.RefreshToken)
	}
	if s.hasRecord(s.sid(b)) {
		t.Error("the revoked session's record is still in the vault")
	}
	// The next request has no session any more: the middleware says so,
	// and the provider hears nothing.
	if status, _, _ := b.do("GET", app+"/whoami", ""); status != 401 {
		t.Errorf("GET /whoami after the revocation = %d; want 401", status)
	}
	res = nil
	b.getJSON(app+"/call?url="+s.devURL+"/api/me", &res)
	if len(res) != 1 || !res[0].Reconnect || res[0].Reason != "revoked" {
		t.Errorf("Client on a request whose session was revoked: %+v; want ErrReconnect revoked", res)
	}
	b2 := s.newBrowser()
	res = nil
	b2.getJSON(app+"/call?url="+s.devURL+"/api/me", &res)
	if len(res) != 1 || !res[0].Reconnect || res[0].Reason != "no_session" {
		t.Errorf("Client on a request without a session: %+v; want ErrReconnect no_session", res)
	}
	if st2 := s.dev.Stats(); st2 != st {
		t.Errorf("the provider saw more after the reconnect error: %+v; before %+v", st2, st)
	}
}

// echoAPI is an API that refuses the tokens it is told to and records
// what it received.
type echoAPI struct {
	mu      sync.Mutex
	refuse  func(token string) bool
	seen    []echoSeen
	forward string // /redirect sends here
}

type echoSeen struct{ auth, body string }

func (e *echoAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	auth := r.Header.Get("Authorization")
	e.mu.Lock()
	e.seen = append(e.seen, echoSeen{auth, string(body)})
	refuse := e.refuse
	e.mu.Unlock()
	if r.URL.Path == "/redirect" {
		http.Redirect(w, r, e.forward, http.StatusFound)
		return
	}
	if refuse != nil && refuse(strings.TrimPrefix(auth, "Bearer ")) {
		w.WriteHeader(401)
		return
	}
	w.Write([]byte("got " + string(body)))
}

func (e *echoAPI) reset(refuse func(string) bool) []echoSeen {
	e.mu.Lock()
	defer e.mu.Unlock()
	seen := e.seen
	e.seen, e.refuse = nil, refuse
	return seen
}

// TestClientRetry: after a 401 the request is sent once more, with a new
// token and the same body, if the body can be sent again; otherwise the
// 401 is returned (and the next call has a new token). Never more than one
// retry. Only API origins get the token.
func TestClientRetry(t *testing.T) {
	echo := &echoAPI{}
	ln, echoURL := listen(t)
	serve(t, ln, echo)
	other := &echoAPI{}
	otherSrv := httptest.NewServer(other)
	t.Cleanup(otherSrv.Close)
	echo.forward = otherSrv.URL + "/landed"

	s := serverSideApp(t, echoURL)
	app := s.urls[0]
	b := s.newBrowser()
	b.loginAt(app, "/auth", "/")
	first := s.bffs[0]
	rec, err := first.vault.Get(context.Background(), s.sid(b))
	if err != nil {
		t.Fatal(err)
	}
	t1 := rec.AccessToken
	call := func(q string) []callResult {
		t.Helper()
		var res []callResult
		b.getJSON(app+"/call?"+q, &res)
		return res
	}
	refuses := func(tok string) func(string) bool { return func(t string) bool { return t == tok } }

	// A replayable body: 401, a forced refresh, the same body again.
	echo.reset(refuses(t1))
	s.controls().ResetStats(t.Context())
	res := call("method=POST&body=hello&url=" + echoURL + "/x")
	seen := echo.reset(nil)
	if len(res) != 1 || res[0].Status != 200 || res[0].Body != "got hello" {
		t.Errorf("POST with a replayable body: %+v; want 200 got hello", res)
	}
	if len(seen) != 2 || seen[0] != (echoSeen{"Bearer " + t1, "hello"}) || seen[1].body != "hello" ||
		seen[1].auth == seen[0].auth || !strings.HasPrefix(seen[1].auth, "Bearer "+devprovider.PrefixAccessToken) {
		t.Errorf("the API saw %q; want the body twice, first with the refused token, then a new one", seen)
	}
	if st := s.dev.Stats(); st.RefreshToken != 1 {
		t.Errorf("%d refreshes; want 1", st.RefreshToken)
	}

	// A token a forced refresh issued is not force-replaced before
	// ForceMinAge: refused again at once, the engine hands it back and
	// the 401 is returned, with no refresh and no retry.
	t2 := strings.TrimPrefix(seen[1].auth, "Bearer ")
	echo.reset(refuses(t2))
	res = call("url=" + echoURL + "/x")
	if seen := echo.reset(nil); len(res) != 1 || res[0].Status != 401 || len(seen) != 1 || s.dev.Stats().RefreshToken != 1 {
		t.Errorf("refused again within ForceMinAge: %+v after %d requests, %d refreshes; want the 401 after 1, still 1 refresh", res, len(seen), s.dev.Stats().RefreshToken)
	}

	// A body that cannot be sent again: the 401 comes back, after a
	// forced refresh that the next call uses.
	s.clock.Advance(DefaultForceMinAge)
	echo.reset(refuses(t2))
	res = call("method=POST&body=stream&stream=1&url=" + echoURL + "/x")
	seen = echo.reset(nil)
	if len(res) != 1 || res[0].Status != 401 || len(seen) != 1 || seen[0].body != "stream" {
		t.Errorf("POST with a streamed body: %+v, API saw %q; want the 401 back after one request", res, seen)
	}
	if st := s.dev.Stats(); st.RefreshToken != 2 {
		t.Errorf("%d refreshes after the streamed call's 401; want 2", st.RefreshToken)
	}
	res = call("url=" + echoURL + "/x")
	if seen = echo.reset(nil); len(res) != 1 || res[0].Status != 200 || len(seen) != 1 || seen[0].auth == "Bearer "+t2 {
		t.Errorf("the next call: %+v, API saw %q; want 200 with the new token", res, seen)
	}

	// An API that refuses every token: one retry, then its 401.
	s.clock.Advance(DefaultForceMinAge)
	echo.reset(func(string) bool { return true })
	res = call("url=" + echoURL + "/x")
	if seen = echo.reset(nil); len(res) != 1 || res[0].Status != 401 || len(seen) != 2 {
		t.Errorf("an API that refuses everything: %+v after %d requests; want 401 after 2", res, len(seen))
	}

	// Other origins never get the token: a request to one fails unsent; a
	// redirect to one is followed without it.
	res = call("url=" + otherSrv.URL + "/direct")
	if len(res) != 1 || res[0].Err == "" || res[0].Reconnect || !strings.Contains(res[0].Err, "APIOrigins") {
		t.Errorf("a call to an origin outside APIOrigins: %+v; want an error naming APIOrigins", res)
	}
	res = call("url=" + echoURL + "/redirect")
	oseen := other.reset(nil)
	if len(res) != 1 || res[0].Status != 200 || len(oseen) != 1 || oseen[0].auth != "" {
		t.Errorf("a redirect off the API: %+v, the other origin saw %q; want 200 there, without Authorization", res, oseen)
	}
	if seen := echo.reset(nil); len(seen) != 1 || !strings.HasPrefix(seen[0].auth, "Bearer ") {
		t.Errorf("the API saw %q; want one request with the token", seen)
	}
}

// TestTokenSource: the oauth2.TokenSource of a request hands out the
// session's token, refreshed once it is inside its buffer, and
// ErrReconnect without a session.
func TestTokenSource(t *testing.T) {
	s := serverSideApp(t, "")
	app := s.urls[0]
	b := s.newBrowser()
	var got struct {
		Token, Type, Err string
		Expiry           int64
		Valid, Reconnect bool
	}
	b.getJSON(app+"/ts", &got)
	if !got.Reconnect || got.Token != "" {
		t.Errorf("TokenSource without a session: %+v; want ErrReconnect", got)
	}
	b.loginAt(app, "/auth", "/")
	b.getJSON(app+"/ts", &got)
	first := got.Token
	rec, _ := s.bffs[0].vault.Get(context.Background(), s.sid(b))
	if first != rec.AccessToken || got.Type != "Bearer" || got.Expiry != rec.Expiry.Unix() || !got.Valid {
		t.Errorf("TokenSource: %+v; want the record's token %.12s… expiring %d", got, rec.AccessToken, rec.Expiry.Unix())
	}
	if s.callAPI(first) != 200 {
		t.Error("the API refused TokenSource's token")
	}
	s.controls().ResetStats(t.Context())
	s.clock.Advance(devprovider.DefaultAccessTTL/2 + time.Second)
	b.getJSON(app+"/ts", &got)
	if got.Token == first || !strings.HasPrefix(got.Token, devprovider.PrefixAccessToken) || s.dev.Stats().RefreshToken != 1 {
		t.Errorf("TokenSource inside the buffer: %.12s…, %d refreshes; want a new token after 1 refresh", got.Token, s.dev.Stats().RefreshToken)
	}
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
