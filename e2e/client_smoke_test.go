package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tetherauth/tether/bff/assets"
	"github.com/tetherauth/tether/shared/wire"
)

// A smoke test of the browser client alone: the real tether.wasm and
// tether.js, served by bff/assets, in headless Chromium, against a fake
// BFF and a fake API on another origin. The whole-stack suite lives
// elsewhere in this directory.

// smokeBFF is a fake BFF token endpoint: it hands out tok-1, tok-2, ...,
// each living life, and mints a new one inside the buffer or when forced
// with the current token.
type smokeBFF struct {
	life, buffer time.Duration

	mu        sync.Mutex
	n         int
	cur       string
	exp       time.Time
	requests  []wire.TokenRequest
	answers   []string // when and what each request got, for failure messages
	reconnect string   // when set, answer reconnect_required with this reason
}

func (b *smokeBFF) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != wire.PathToken || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	if r.Header.Get(wire.HeaderCSRF) != wire.CSRFValue {
		w.WriteHeader(http.StatusForbidden)
		json.NewEncoder(w).Encode(wire.ErrorBody{Error: wire.ErrCSRFHeaderMissing})
		return
	}
	var req wire.TokenRequest
	if body, _ := io.ReadAll(r.Body); len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(wire.ErrorBody{Error: wire.ErrInvalidRequest})
			return
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.requests = append(b.requests, req)
	if b.reconnect != "" {
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(wire.ErrorBody{Error: wire.ErrReconnectRequired, Reason: b.reconnect, Message: "log in again"})
		return
	}
	now := time.Now()
	if b.cur == "" || !now.Before(b.exp.Add(-b.buffer)) || (req.Force && req.Rejected == b.cur) {
		b.n++
		b.cur, b.exp = "tok-"+strconv.Itoa(b.n), now.Add(b.life)
	}
	b.answers = append(b.answers, now.Format("15:04:05.000")+" "+b.cur+" expiring "+b.exp.Format("15:04:05.000"))
	json.NewEncoder(w).Encode(wire.TokenResponse{
		AccessToken: b.cur, TokenType: wire.TokenTypeBearer, ExpiresAt: b.exp.Unix(),
		ExpiresIn: int64(time.Until(b.exp) / time.Second), RefreshBuffer: int64(b.buffer / time.Second),
	})
}

func (b *smokeBFF) log() []wire.TokenRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]wire.TokenRequest(nil), b.requests...)
}

func (b *smokeBFF) set(f func(b *smokeBFF)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f(b)
}

// smokeAPI is an API on another origin: it answers CORS for the page,
// refuses the tokens in refused with a 401, and echoes what it got.
type smokeAPI struct {
	page string // the page's origin

	mu      sync.Mutex
	refused map[string]bool
}

func (a *smokeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", a.page)
	if r.Method == http.MethodOptions {
		w.Header().Set("Access-Control-Allow-Headers", "authorization, content-type, x-thing")
		w.Header().Set("Access-Control-Allow-Methods", "GET, POST")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	auth := r.Header.Get("Authorization")
	a.mu.Lock()
	refused := a.refused[strings.TrimPrefix(auth, "Bearer ")]
	a.mu.Unlock()
	if auth == "" || refused {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	body, _ := io.ReadAll(r.Body)
	json.NewEncoder(w).Encode(map[string]string{"auth": auth, "body": string(body), "thing": r.Header.Get("X-Thing")})
}

func (a *smokeAPI) refuse(tok string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.refused[tok] = true
}

// smokeWeb lays out a web directory with tether.js and a test page; the
// build outputs come from web/dist (TestMain keeps them up to date).
func smokeWeb(t *testing.T) http.Handler {
	t.Helper()
	web := t.TempDir()
	js, err := os.ReadFile(filepath.Join(repoRoot, "web", "tether.js"))
	if err != nil {
		t.Fatal(err)
	}
	page := `<!doctype html><meta charset="utf-8"><title>smoke</title>
<script src="dist/wasm_exec.js"></script>
<script src="tether.js" data-wasm="` + assets.Placeholder + `"></script>`
	for name, content := range map[string]string{"tether.js": string(js), "smoke.html": page} {
		if err := os.WriteFile(filepath.Join(web, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files, err := assets.New(web, assets.WithDist(filepath.Join(repoRoot, "web", "dist")))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// smokeBrowser opens a tab of the package's Chromium in a browser context
// of its own; the tab closes with the test.
func smokeBrowser(t *testing.T) context.Context {
	t.Helper()
	return newTab(t)
}

// smokeEval evaluates an async function body in the tab and decodes what
// it returns.
func smokeEval[T any](t *testing.T, tab context.Context, body string) T {
	t.Helper()
	step, done := context.WithTimeout(tab, time.Minute)
	defer done()
	v, err := chromedp.Run(step, chromedp.Evaluate[T]("(async () => {"+body+"})()", chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluating %s: %v", body, err)
	}
	return v
}

// smokeStart opens the page in tab and starts Tether; window.ev collects
// the events.
func smokeStart(t *testing.T, tab context.Context, page, api string) {
	t.Helper()
	step, done := context.WithTimeout(tab, time.Minute)
	defer done()
	if err := chromedp.Do(step, chromedp.Navigate(page+"/smoke.html")); err != nil {
		t.Fatal(err)
	}
	smokeEval[bool](t, tab, `
		window.ev = [];
		window.API = "`+api+`";
		window.t = await Tether.start({ bff: "/bff", apiOrigins: [API] });
		for (const k of ["token", "reconnect", "degraded", "recovered", "logout"]) {
			t.addEventListener(k, (e) => ev.push(k + " " + JSON.stringify(e.detail)));
		}
		return true;`)
}

type smokeResult struct {
	Status int               `json:"status"`
	Body   map[string]string `json:"body"`
}

const smokeFetchMe = `const r = await t.fetch(API + "/me");
	return { status: r.status, body: r.ok ? await r.json() : {} };`

func TestClientSmoke(t *testing.T) {
	files := smokeWeb(t)
	bff := &smokeBFF{life: time.Hour, buffer: 5 * time.Minute}
	api := &smokeAPI{refused: map[string]bool{}}
	apiSrv := httptest.NewServer(api)
	t.Cleanup(apiSrv.Close)
	var echoed sync.Map
	mux := http.NewServeMux()
	mux.Handle("/bff/", bff)
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		echoed.Store("auth", r.Header.Get("Authorization"))
		io.WriteString(w, "echo")
	})
	mux.Handle("/", files)
	pageSrv := httptest.NewServer(mux)
	t.Cleanup(pageSrv.Close)
	api.page = pageSrv.URL

	tab := smokeBrowser(t)
	smokeStart(t, tab, pageSrv.URL, apiSrv.URL)

	// The first call waits for a token; the next ones take it from the cache.
	for i := range 3 {
		if r := smokeEval[smokeResult](t, tab, smokeFetchMe); r.Status != 200 || r.Body["auth"] != "Bearer tok-1" {
			t.Fatalf("call %d: %+v; want 200 with Bearer tok-1", i, r)
		}
	}
	if n := len(bff.log()); n != 1 {
		t.Errorf("3 calls made %d token requests; want 1", n)
	}
	// The bridge stays private. A synchronous call into Go (state) starts
	// no goroutine and no Promise; its cost is logged.
	type bridgeInfo struct {
		Hidden bool    `json:"hidden"`
		Same   bool    `json:"same"`
		PerUS  float64 `json:"perUS"`
	}
	info := smokeEval[bridgeInfo](t, tab, `
		const n = 20000, t0 = performance.now();
		for (let i = 0; i < n; i++) t.state();
		return {
			hidden: !("__tether_bridge" in globalThis) && !("__tether_ready" in globalThis) && !("_bridge" in t),
			same: (await Tether.start({})) === t,
			perUS: (performance.now() - t0) * 1000 / n,
		};`)
	if !info.Hidden || !info.Same {
		t.Errorf("bridge hidden %v, Tether.start idempotent %v; want both", info.Hidden, info.Same)
	}
	t.Logf("a synchronous bridge call (state): %.1f µs", info.PerUS)
	// Another origin, even the page's own, gets no token.
	if got := smokeEval[string](t, tab, `return (await t.fetch(location.origin + "/echo")).text();`); got != "echo" {
		t.Fatalf("/echo answered %q", got)
	}
	if auth, _ := echoed.Load("auth"); auth != "" {
		t.Errorf("a non-API origin received Authorization %q", auth)
	}

	// A 401: one forced request, then the call is retried with its body and headers.
	api.refuse("tok-1")
	r := smokeEval[smokeResult](t, tab, `
		const r = await t.fetch(API + "/me", { method: "POST", body: "hello", headers: { "Content-Type": "text/plain", "X-Thing": "kept" } });
		return { status: r.status, body: r.ok ? await r.json() : {} };`)
	if r.Status != 200 || r.Body["auth"] != "Bearer tok-2" || r.Body["body"] != "hello" || r.Body["thing"] != "kept" {
		t.Fatalf("after a 401: %+v; want the call retried with tok-2, its body and headers", r)
	}
	if log := bff.log(); len(log) != 2 || !log[1].Force || log[1].Rejected != "tok-1" {
		t.Fatalf("token requests %+v; want a second, forced, rejecting tok-1", log)
	}

	// Ten calls meet a 401 at once: one forced request among them.
	api.refuse("tok-2")
	statuses := smokeEval[[]int](t, tab, `
		const rs = await Promise.all(Array.from({ length: 10 }, () => t.fetch(API + "/me")));
		return rs.map((r) => r.status);`)
	if len(statuses) != 10 || !allEqual(statuses, 200) {
		t.Fatalf("statuses %v; want ten 200", statuses)
	}
	if log := bff.log(); len(log) != 3 {
		t.Fatalf("%d token requests after ten simultaneous 401s; want 3 in all", len(log))
	}

	// The grant is revoked: one reconnect event, then API calls fail fast.
	bff.set(func(b *smokeBFF) { b.reconnect = wire.ReasonRevoked })
	api.refuse("tok-3")
	if r := smokeEval[smokeResult](t, tab, smokeFetchMe); r.Status != 401 {
		t.Fatalf("call after revocation: %+v; want the API's 401", r)
	}
	name := smokeEval[string](t, tab, `
		try { await t.fetch(API + "/me"); return "resolved"; } catch (e) { return e.name + " " + e.reason; }`)
	if name != "TetherReconnectRequired revoked" {
		t.Errorf("call after reconnect: %q; want TetherReconnectRequired revoked", name)
	}
	if n := len(bff.log()); n != 4 {
		t.Errorf("%d token requests; want 4 (no request after the reconnect)", n)
	}
	type state struct {
		Connected bool   `json:"connected"`
		Reason    string `json:"reason"`
	}
	if s := smokeEval[state](t, tab, `return t.state();`); s.Connected || s.Reason != wire.ReasonRevoked {
		t.Errorf("state %+v", s)
	}
	events := smokeEval[[]string](t, tab, `return ev;`)
	var reconnects, tokens int
	for _, e := range events {
		if strings.Contains(e, "tok-") {
			t.Errorf("event %q carries a token", e)
		}
		switch {
		case strings.HasPrefix(e, "reconnect "):
			reconnects++
			if e != `reconnect {"reason":"revoked"}` {
				t.Errorf("event %q", e)
			}
		case strings.HasPrefix(e, "token "):
			tokens++
		}
	}
	if reconnects != 1 || tokens != 3 {
		t.Errorf("events %q; want 3 token events and 1 reconnect", events)
	}

	// Nothing was stored anywhere.
	stored := smokeEval[string](t, tab, `
		const dbs = indexedDB.databases ? await indexedDB.databases() : [];
		return [localStorage.length, sessionStorage.length, document.cookie, dbs.length].join("|");`)
	if stored != "0|0||0" {
		t.Errorf("storage localStorage|sessionStorage|cookie|indexedDB = %q; want 0|0||0", stored)
	}
}

// TestClientSmokeTabs: two tabs share one refresh.
func TestClientSmokeTabs(t *testing.T) {
	files := smokeWeb(t)
	bff := &smokeBFF{life: 8 * time.Second, buffer: 4 * time.Second}
	api := &smokeAPI{refused: map[string]bool{}}
	apiSrv := httptest.NewServer(api)
	t.Cleanup(apiSrv.Close)
	mux := http.NewServeMux()
	mux.Handle("/bff/", bff)
	mux.Handle("/", files)
	pageSrv := httptest.NewServer(mux)
	t.Cleanup(pageSrv.Close)
	api.page = pageSrv.URL

	tab1 := smokeBrowser(t)
	tab2 := siblingTab(t, tab1) // same browser context: BroadcastChannel and locks are shared
	for i, tab := range []context.Context{tab1, tab2} {
		smokeStart(t, tab, pageSrv.URL, apiSrv.URL)
		if r := smokeEval[smokeResult](t, tab, smokeFetchMe); r.Body["auth"] != "Bearer tok-1" {
			t.Fatalf("tab %d: %+v; want Bearer tok-1", i+1, r)
		}
	}
	if n := len(bff.log()); n != 2 {
		t.Fatalf("%d token requests for two new tabs; want 2", n)
	}
	// tok-1 is refreshed 4s before it expires: both tabs' timers fire then.
	time.Sleep(7 * time.Second)
	for i, tab := range []context.Context{tab1, tab2} {
		if r := smokeEval[smokeResult](t, tab, smokeFetchMe); r.Body["auth"] != "Bearer tok-2" {
			t.Errorf("tab %d after the refresh: %+v; want Bearer tok-2", i+1, r)
		}
	}
	// One refresh for both tabs; the other tab hears of it (never the
	// token) and asks for the new token: a read.
	bff.set(func(b *smokeBFF) {
		if len(b.requests) != 4 || b.n != 2 {
			t.Errorf("%d token requests, %d tokens minted; want 4 (two loads, one refresh, one read by the other tab) and 2:\n%s",
				len(b.requests), b.n, strings.Join(b.answers, "\n"))
		}
	})
}

func allEqual(xs []int, v int) bool {
	for _, x := range xs {
		if x != v {
			return false
		}
	}
	return true
}
