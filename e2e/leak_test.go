package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/tetherauth/tether/bff/devprovider"
)

// jwtPattern matches a JWT (an OIDC ID token): two base64url JSON parts.
var jwtPattern = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.`)

// secrets are what must never reach the browser, in text form: the dev
// provider's refresh tokens, any JWT (the ID token), the client secret.
var secrets = []string{devprovider.PrefixRefreshToken, "eyJ", devprovider.DefaultClientSecret}

// binarySecrets looks for the same in a binary body (the wasm), where
// three random bytes can spell "eyJ": a whole JWT must match there.
func binarySecrets(body []byte) []string {
	var found []string
	for _, s := range []string{devprovider.PrefixRefreshToken, devprovider.DefaultClientSecret} {
		if strings.Contains(string(body), s) {
			found = append(found, s)
		}
	}
	if jwtPattern.Match(body) {
		found = append(found, "a JWT")
	}
	return found
}

// TestRefreshTokenNeverReachesBrowser records everything the browser
// receives through a login on the consent page, calls, refreshes, a 401
// with its forced refresh, and a logout, and looks for the refresh token,
// the ID token and the client secret in every URL, header (raw ones with
// Set-Cookie included) and body; then in cookies and storage, where the
// access token must not be either. The servers' logs must not hold them.
func TestRefreshTokenNeverReachesBrowser(t *testing.T) {
	s := startStack(t, stackOptions{accessTTL: 4 * time.Second})
	tab := newTab(t)
	net := recordNetwork(t, tab, true)
	p := openPage(t, tab, s)
	p.login(true)
	for range 3 {
		if r := p.callAPI(); r.Status != "200" {
			t.Fatalf("call: %+v", r)
		}
	}
	refreshed := s.stats().RefreshToken
	time.Sleep(3 * time.Second) // past the refresh point of a 4 s token
	if _, err := s.ctl.Expire(t.Context(), ""); err != nil {
		t.Fatal(err)
	}
	if r := p.callAPI(); r.Status != "200" {
		t.Fatalf("call after /control/expire: %+v", r)
	}
	if s.stats().RefreshToken-refreshed < 2 {
		t.Fatalf("refresh_token grew by %d; want a proactive and a forced refresh", s.stats().RefreshToken-refreshed)
	}
	storage := readStorage(t, p)

	p.click("#disconnect")
	p.waitFor(`document.querySelector("#status").dataset.state === "disconnected"`, stepTimeout, "#status disconnected after logout")
	if got := s.stats().Revoke; got != 1 {
		t.Errorf("logout made %d revocations at the provider; want 1", got)
	}
	net.wait()
	t.Logf("recorded:\n%s", net.summary())

	// The recording is not empty: it holds the token responses (with an
	// access token: the scan would see a refresh token there), the session
	// and the API's answers, and the session cookie being set.
	withToken := 0
	for _, b := range net.bodyOf(s.d.URL + "/bff/token") {
		if strings.Contains(string(b), devprovider.PrefixAccessToken) {
			withToken++
		}
	}
	if withToken < 3 {
		t.Fatalf("recorded %d /bff/token bodies holding an access token; want ≥ 3 (login, refresh, forced refresh)", withToken)
	}
	if len(net.bodyOf(s.d.URL+"/bff/session")) == 0 || len(net.bodyOf(s.d.DevURL+"/api/me")) < 4 || len(net.bodyOf(s.d.DevURL+"/authorize")) == 0 {
		t.Fatalf("the recording lacks /bff/session, /api/me or the consent page bodies:\n%s", net.summary())
	}
	setCookies := net.rawSetCookies()
	if len(setCookies) == 0 {
		t.Fatal("no raw Set-Cookie header recorded: the scan of raw headers saw nothing")
	}
	for _, c := range setCookies {
		if !strings.Contains(strings.ToLower(c), "httponly") {
			t.Errorf("Set-Cookie without HttpOnly: %s", c)
		}
	}

	for _, l := range net.scan(secrets, binarySecrets) {
		t.Errorf("%q found in %s", l.Needle, l.Where)
	}
	for _, where := range []string{"cookies", "localStorage", "sessionStorage"} {
		for _, n := range append(secrets, devprovider.PrefixAccessToken) {
			if strings.Contains(storage[where], n) {
				t.Errorf("%q found in %s", n, where)
			}
		}
	}
	if storage["document.cookie"] != "" || storage["localStorage.length"] != "0" || storage["sessionStorage.length"] != "0" || storage["indexedDB"] != "0" {
		t.Errorf("storage the page can read: %v; want empty", storage)
	}
	assertLogsClean(t, s)
}

// assertLogsClean fails the test when the servers' logs hold a token (the
// dev provider's refresh or access tokens), the client secret or a JWT
// (an ID token, a logout token).
func assertLogsClean(t *testing.T, s *stack) {
	t.Helper()
	logs := s.logs.String()
	for _, n := range []string{devprovider.PrefixRefreshToken, devprovider.PrefixAccessToken, devprovider.DefaultClientSecret} {
		if strings.Contains(logs, n) {
			t.Errorf("the servers' log holds %q", n)
		}
	}
	if jwtPattern.MatchString(logs) {
		t.Error("the servers' log holds a JWT")
	}
}

// readStorage returns what the browser stores for the page: what scripts
// can read, and every cookie of the two origins (HttpOnly ones included).
func readStorage(t *testing.T, p *page) map[string]string {
	t.Helper()
	out := evalJS[map[string]string](p, `(async () => {
		const dump = (st) => Array.from({ length: st.length }, (_, i) => st.key(i) + "=" + st.getItem(st.key(i))).join("\n");
		const dbs = indexedDB.databases ? await indexedDB.databases() : [];
		return {
			"document.cookie": document.cookie,
			"localStorage.length": String(localStorage.length), localStorage: dump(localStorage),
			"sessionStorage.length": String(sessionStorage.length), sessionStorage: dump(sessionStorage),
			indexedDB: String(dbs.length),
		};
	})()`)
	step, done := context.WithTimeout(p.tab, stepTimeout)
	defer done()
	res, err := chromedp.Call(step, network.GetCookies, network.GetCookiesParams{URLs: []string{p.s.d.URL + "/", p.s.d.DevURL + "/"}})
	if err != nil {
		t.Fatalf("reading cookies: %v", err)
	}
	var all []string
	for _, c := range res.Cookies {
		all = append(all, c.Name+"="+c.Value)
		if !c.HTTPOnly {
			t.Errorf("cookie %s is not HttpOnly", c.Name)
		}
		if c.SameSite != network.CookieSameSiteLax && c.SameSite != network.CookieSameSiteStrict {
			t.Errorf("cookie %s has SameSite %q; want Lax or Strict", c.Name, c.SameSite)
		}
	}
	if len(res.Cookies) == 0 {
		t.Error("no cookie while signed in: the session cookie is missing")
	}
	out["cookies"] = strings.Join(all, "\n")
	return out
}

// authEcho is an API on an origin that is not in apiOrigins: it answers
// CORS for the page (Authorization allowed, so that a token would arrive
// if the client sent one) and says whether an Authorization header came.
type authEcho struct {
	page string

	mu   sync.Mutex
	seen []string // Authorization of each non-preflight request
}

func (e *authEcho) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", e.page)
	if r.Method == http.MethodOptions {
		w.Header().Set("Access-Control-Allow-Headers", "authorization")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	auth := r.Header.Get("Authorization")
	e.mu.Lock()
	e.seen = append(e.seen, auth)
	e.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]bool{"authorization_header": auth != ""})
}

// TestTokenOnlyToAPIOrigins: tether.fetch attaches the token to the API
// origin only, not to the page's own origin, another loopback origin, or
// the API's host under another name. The page's default CSP would refuse
// to fetch those other origins at all (connect-src); this test is about
// the client's own rule, so it lets the page reach any loopback port.
func TestTokenOnlyToAPIOrigins(t *testing.T) {
	s := startStack(t, stackOptions{autoApprove: true, csp: loopbackCSP})
	echo := &authEcho{page: s.d.URL}
	echoSrv := httptest.NewServer(echo)
	t.Cleanup(echoSrv.Close)
	tab := newTab(t)
	net := recordNetwork(t, tab, false)
	p := openPage(t, tab, s)
	p.login(false)

	_, devPort, _ := strings.Cut(strings.TrimPrefix(s.d.DevURL, "http://"), ":")
	cases := []struct {
		name, url string
		wantAuth  bool
	}{
		{"the API origin (positive control)", s.d.DevURL + "/api/public", true},
		{"another loopback origin", echoSrv.URL + "/echo", false},
		{"the API's host under another name", "http://localhost:" + devPort + "/api/public", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := evalJS[map[string]any](p, `(async () => {
				const r = await window.tether.fetch(`+strconv.Quote(c.url)+`);
				return await r.json();
			})()`)
			if got["authorization_header"] != c.wantAuth {
				t.Errorf("tether.fetch(%s): the server says authorization_header=%v; want %v", c.url, got["authorization_header"], c.wantAuth)
			}
		})
	}
	echo.mu.Lock()
	seen := append([]string(nil), echo.seen...)
	echo.mu.Unlock()
	if len(seen) != 1 || seen[0] != "" {
		t.Errorf("the echo server saw Authorization %q; want one request without it", seen)
	}

	// The page's own origin: only the browser can tell what was sent.
	if got := evalJS[int](p, `(async () => (await window.tether.fetch(location.origin + "/healthz")).status)()`); got != 200 {
		t.Fatalf("tether.fetch(/healthz): %d", got)
	}
	own := net.matching("GET", s.d.URL+"/healthz")
	if len(own) != 1 {
		t.Fatalf("DevTools saw %d GET /healthz; want 1", len(own))
	}
	if auth, ok := header(own[0].Headers, "Authorization"); ok {
		t.Errorf("GET /healthz on the page's origin carried Authorization %q", redact(auth))
	}
	for _, r := range net.matching("GET", s.d.DevURL+"/api/public") {
		if auth, _ := header(r.Headers, "Authorization"); !strings.HasPrefix(auth, "Bearer "+devprovider.PrefixAccessToken) {
			t.Errorf("GET /api/public on the API origin carried Authorization %q; want the access token", redact(auth))
		}
	}
}

// loopbackCSP is the page's policy with connect-src widened to any
// loopback port: the tests of the client's own origin rule need the page
// to be able to reach a foreign origin at all (the default policy's
// connect-src would stop the request before the client's rule is tested).
const loopbackCSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; " +
	"connect-src 'self' http://127.0.0.1:* http://localhost:*; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
