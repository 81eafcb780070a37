package e2e

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/heapprofiler"
	"github.com/chromedp/chromedp"

	"github.com/tetherauth/tether/bff/devprovider"
)

// Proxy mode in the browser: the demo with TETHER_DEMO_MODE=proxy, so the
// BFF calls the sample API for the page (/bff/api/dev/me) and POST
// /bff/token is off. The page is the same page; only its config.json
// says proxy.

// proxyPath is where the page's calls to the sample API go.
const proxyPath = "/bff/api/dev/me"

// TestProxyModeDemo: the demo works in proxy mode: calls go through the
// BFF and no request of the page carries a token or asks for one; an
// expired token costs one refresh and one retry, inside the BFF, and the
// timeline shows it; an outage with an expired token shows the degraded
// notice, never the reconnect banner, and the next call after it recovers;
// a revocation shows the reconnect banner, and further clicks send
// nothing until the user reconnects.
func TestProxyModeDemo(t *testing.T) {
	// One session meets four forced refreshes within a minute (expire, the
	// outage's failed one and its recovery, the revocation): more than the
	// default burst of 3 allows.
	s := startStack(t, stackOptions{proxy: true, providerTimeout: time.Second, retryAfter: time.Second,
		forceMinAge: 500 * time.Millisecond, forceBurst: 10})
	tab := newTab(t)
	net := recordNetwork(t, tab, true)
	p := openPage(t, tab, s)
	p.login(true)
	if r := p.callAPI(); r.Status != "200" || !strings.Contains(r.Text, "alice") {
		t.Fatalf("first call: %+v", r)
	}
	if n := net.count("GET", s.d.URL+proxyPath); n != 1 {
		t.Errorf("DevTools saw %d GET %s; want 1", n, proxyPath)
	}

	t.Run("expire: one refresh, one retry, in the BFF", func(t *testing.T) {
		st0 := s.stats()
		if _, err := s.ctl.Expire(t.Context(), ""); err != nil {
			t.Fatal(err)
		}
		if r := p.callAPI(); r.Status != "200" {
			t.Fatalf("call after /control/expire: %+v; want 200", r)
		}
		st1 := s.stats()
		if st1.RefreshToken-st0.RefreshToken != 1 || st1.API401-st0.API401 != 1 || st1.APIOK-st0.APIOK != 1 {
			t.Errorf("refreshes +%d, API 401 +%d, API ok +%d; want 1, 1, 1", st1.RefreshToken-st0.RefreshToken, st1.API401-st0.API401, st1.APIOK-st0.APIOK)
		}
		p.waitFor(`document.querySelectorAll("#timeline .mark[data-kind=retry]").length >= 1`, 5*time.Second, "a retry mark on the timeline")
		if st := p.read(); st.Banner || st.Degraded || st.Status != "connected" {
			t.Errorf("after a recovered 401 the page shows %+v; want connected, no banner, no notice", st)
		}
	})

	t.Run("outage: degraded, not reconnect; recovers", func(t *testing.T) {
		if _, err := s.d.Dev.SetOutage(devprovider.Outage503, 0, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ctl.Expire(t.Context(), ""); err != nil {
			t.Fatal(err)
		}
		time.Sleep(600 * time.Millisecond) // past the minimum age of the token the last forced refresh issued
		r := p.callAPI()
		if r.Status == "200" {
			t.Fatalf("call with an expired token during the outage: %+v; want it refused", r)
		}
		p.waitFor(`!document.querySelector("#degraded-notice").hidden`, 5*time.Second, "the degraded notice")
		if st := p.read(); st.Banner || st.Status == "reconnect" {
			t.Errorf("an outage shows %+v; want no reconnect banner", st)
		}
		if _, err := s.d.Dev.SetOutage(devprovider.OutageNone, 0, 0); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			if r := p.callAPI(); r.Status == "200" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no call succeeded within 15 s of the outage's end")
			}
			time.Sleep(500 * time.Millisecond)
		}
		p.waitFor(`document.querySelector("#degraded-notice").hidden`, 5*time.Second, "the degraded notice gone")
		if n := p.eventCount("recovered"); n < 1 {
			t.Errorf("%d recovered events; want at least 1", n)
		}
	})

	t.Run("revoke: reconnect, then nothing is sent", func(t *testing.T) {
		time.Sleep(600 * time.Millisecond) // past the minimum age of the token the recovery's forced refresh issued
		if _, err := s.ctl.Revoke(t.Context(), "alice"); err != nil {
			t.Fatal(err)
		}
		if r := p.callAPI(); r.Status != "401" {
			t.Errorf("call after the revocation: %+v; want 401", r)
		}
		p.waitFor(`!document.querySelector("#reconnect-banner").hidden`, 5*time.Second, "the reconnect banner")
		if st := p.read(); st.Degraded || st.Status != "reconnect" {
			t.Errorf("after a revocation the page shows %+v; want the reconnect state, no degraded notice", st)
		}
		api0, bff0 := s.apiCalls(), net.count("GET", s.d.URL+proxyPath)
		for i := range 5 {
			if r := p.callAPI(); r.Status != "error" || r.Error != "TetherReconnectRequired" {
				t.Errorf("click %d after the revocation: %+v; want error TetherReconnectRequired", i+1, r)
			}
		}
		if d, n := s.apiCalls()-api0, net.count("GET", s.d.URL+proxyPath)-bff0; d != 0 || n != 0 {
			t.Errorf("%d API calls and %d proxied requests while a reconnect was required; want none", d, n)
		}
		if n := p.eventCount("reconnect"); n != 1 {
			t.Errorf("%d reconnect events; want 1", n)
		}
		p.loginWith(selReconnect, true)
		if r := p.callAPI(); r.Status != "200" {
			t.Fatalf("call after reconnecting: %+v", r)
		}
	})

	// The page never asked for a token, never called the API itself, and
	// nothing it received holds an access token (or a refresh token, an
	// ID token, the client secret).
	net.wait()
	if n := net.count("POST", s.d.URL+"/bff/token"); n != 0 {
		t.Errorf("the page sent %d POST /bff/token; want 0", n)
	}
	if n := net.count("GET", s.d.DevURL+"/api/"); n != 0 {
		t.Errorf("the page called the API %d times itself; want 0", n)
	}
	if n := net.count("GET", s.d.URL+proxyPath); n < 5 {
		t.Errorf("DevTools saw %d proxied calls; want the test's", n)
	}
	for _, l := range net.scan(append(secrets, devprovider.PrefixAccessToken), binarySecrets) {
		t.Errorf("%q found in %s", l.Needle, l.Where)
	}
	if logs := s.logs.String(); strings.Contains(logs, devprovider.PrefixAccessToken) || strings.Contains(logs, devprovider.PrefixRefreshToken) {
		t.Error("the servers' log holds a token")
	}
}

// TestProxyModeHostileScript: a script on a signed-in page in proxy mode
// finds no token: POST /bff/token is 404, nothing the page can read (its
// globals, the Tether object, storage, cookies) holds one, and neither does
// the page's JavaScript heap. The same heap scan finds the token of a
// token-mediated page (the scan works).
func TestProxyModeHostileScript(t *testing.T) {
	t.Run("proxy mode: no token", func(t *testing.T) {
		s := startStack(t, stackOptions{proxy: true, autoApprove: true})
		tab := newTab(t)
		p := openPage(t, tab, s)
		p.login(false)
		if r := p.callAPI(); r.Status != "200" {
			t.Fatalf("call: %+v", r)
		}
		found := evalJS[map[string]any](p, `(async () => {
			const out = {};
			const r = await fetch("/bff/token", { method: "POST", credentials: "same-origin", headers: { "X-CSRF": "1" } });
			out.tokenStatus = r.status;
			out.tokenBody = await r.text();
			const s = await fetch("/bff/session", { credentials: "same-origin", headers: { "X-CSRF": "1" } });
			out.session = await s.text();
			const needle = ["dev", "at", ""].join("_"); // not spelled out: this script's text is in the heap too
			const seen = new Set(), hits = [];
			const walk = (v, path, depth) => {
				if (depth > 4 || v === null || seen.has(v)) return;
				if (typeof v === "string") { if (v.includes(needle)) hits.push(path); return; }
				if (typeof v !== "object" && typeof v !== "function") return;
				seen.add(v);
				let keys = [];
				try { keys = Reflect.ownKeys(v); } catch { return; }
				for (const k of keys) {
					let x;
					try { x = v[k]; } catch { continue; }
					walk(x, path + "." + String(k), depth + 1);
				}
			};
			walk(window, "window", 0);
			walk(window.tether, "tether", 0);
			out.hits = hits.slice(0, 5);
			out.storage = JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie;
			out.state = JSON.stringify(window.tether.state());
			return out;
		})()`)
		if found["tokenStatus"] != float64(404) || strings.Contains(found["tokenBody"].(string), devprovider.PrefixAccessToken) {
			t.Errorf("POST /bff/token from the page: %v %v; want 404 and no token", found["tokenStatus"], found["tokenBody"])
		}
		for _, k := range []string{"session", "storage", "state"} {
			if strings.Contains(found[k].(string), devprovider.PrefixAccessToken) {
				t.Errorf("%s holds an access token: %v", k, found[k])
			}
		}
		if hits, _ := found["hits"].([]any); len(hits) != 0 {
			t.Errorf("a walk of window and the Tether object found a token at %v", hits)
		}
		if n := heapHits(t, tab, devprovider.PrefixAccessToken); n != 0 {
			t.Errorf("the page's JavaScript heap holds %d strings with an access token", n)
		}
	})
	t.Run("token mode: the scan finds the token", func(t *testing.T) {
		s := startStack(t, stackOptions{autoApprove: true})
		tab := newTab(t)
		p := openPage(t, tab, s)
		p.login(false)
		if r := p.callAPI(); r.Status != "200" {
			t.Fatalf("call: %+v", r)
		}
		if n := heapHits(t, tab, devprovider.PrefixAccessToken); n == 0 {
			t.Error("the heap scan found no access token in a token-mediated page: it would not see one in proxy mode either")
		}
	})
}

// heapHits takes a heap snapshot of tab's page (DevTools HeapProfiler,
// after V8's full collection) and counts the occurrences of needle in it:
// every live JavaScript string of the page is in the snapshot.
func heapHits(t *testing.T, tab context.Context, needle string) int {
	t.Helper()
	var (
		mu   sync.Mutex
		snap strings.Builder
	)
	ctx, cancel := context.WithCancel(tab)
	defer cancel()
	if err := chromedp.Listen(ctx, func(ev any) {
		if c, ok := ev.(*heapprofiler.EventAddHeapSnapshotChunk); ok {
			mu.Lock()
			snap.WriteString(c.Chunk)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("listening for the heap snapshot: %v", err)
	}
	step, done := context.WithTimeout(tab, 2*stepTimeout)
	defer done()
	if _, err := chromedp.Call(step, heapprofiler.TakeHeapSnapshot, heapprofiler.TakeHeapSnapshotParams{}); err != nil {
		t.Fatalf("heap snapshot: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if snap.Len() < 1<<16 {
		t.Fatalf("the heap snapshot is %d bytes: too small to be one", snap.Len())
	}
	t.Logf("heap snapshot: %d bytes", snap.Len())
	return strings.Count(snap.String(), needle)
}

// TestProxyModePerRoute: one deployment, both modes. With /bff/token on
// and a route to the sample API, a page starts Tether with that route in
// apis and another origin in apiOrigins: calls under the route go through
// the BFF (the browser sends no token, the API gets one from the BFF);
// calls to the other origin carry the token from /bff/token.
func TestProxyModePerRoute(t *testing.T) {
	s := startStack(t, stackOptions{routes: true, autoApprove: true})
	echo := &authEcho{}
	echoSrv := httptest.NewServer(echo)
	t.Cleanup(echoSrv.Close)

	// The test page, on another port of the same host (the session cookie
	// is the host's): everything else is the demo's BFF.
	mux := http.NewServeMux()
	mux.HandleFunc("GET /mixed.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, `<!doctype html><title>mixed</title><script src="/dist/wasm_exec.js"></script><script src="/tether.js"></script>`)
	})
	// A worker in proxy mode alone (no apiOrigins, so no token-mode client
	// behind it): it has no page to navigate.
	mux.HandleFunc("GET /proxy-worker.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		io.WriteString(w, `importScripts("/tether.js");
Tether.start({ bff: "/bff", mode: "proxy", apis: { dev: `+strconv.Quote(s.d.DevURL+"/api")+` } }).then((t) => {
  try { t.login(); postMessage("navigated"); } catch (e) { postMessage(e.message); }
}, (e) => postMessage("start: " + e.message));`)
	})
	mux.Handle("/", s.d.BFF)
	mixed := httptest.NewServer(mux)
	t.Cleanup(mixed.Close)
	echo.page = mixed.URL

	tab := newTab(t)
	net := recordNetwork(t, tab, false)
	p := openPage(t, tab, s)
	p.login(false) // the demo page, in proxy mode: the cookie is set
	step, done := context.WithTimeout(tab, stepTimeout)
	defer done()
	if err := chromedp.Do(step, chromedp.Navigate(mixed.URL+"/mixed.html")); err != nil {
		t.Fatal(err)
	}
	got := evalJS[map[string]any](p, `(async () => {
		const t = await Tether.start({ bff: "/bff", mode: "proxy",
			apis: { dev: `+strconv.Quote(s.d.DevURL+"/api")+` }, apiOrigins: [`+strconv.Quote(echoSrv.URL)+`] });
		const me = await t.fetch(`+strconv.Quote(s.d.DevURL+"/api/public")+`);
		const other = await t.fetch(`+strconv.Quote(echoSrv.URL+"/echo")+`);
		return { me: me.status, meAuth: (await me.json()).authorization_header, other: other.status, otherAuth: (await other.json()).authorization_header };
	})()`)
	if got["me"] != float64(200) || got["meAuth"] != true {
		t.Errorf("the routed API: %v (authorization_header %v); want 200, with the BFF's token", got["me"], got["meAuth"])
	}
	if got["other"] != float64(200) || got["otherAuth"] != true {
		t.Errorf("the token-mediated origin: %v (authorization_header %v); want 200 with the token", got["other"], got["otherAuth"])
	}
	if n := net.count("GET", mixed.URL+"/bff/api/dev/public"); n != 1 {
		t.Errorf("DevTools saw %d GET /bff/api/dev/public; want 1", n)
	}
	if n := net.count("GET", s.d.DevURL+"/api/"); n != 0 {
		t.Errorf("the page called the routed API itself %d times; want 0", n)
	}
	for _, r := range net.matching("GET", mixed.URL+"/bff/api/") {
		if auth, ok := header(r.Headers, "Authorization"); ok {
			t.Errorf("a proxied call carried Authorization %q", redact(auth))
		}
	}
	if n := net.count("POST", mixed.URL+"/bff/token"); n < 1 {
		t.Errorf("DevTools saw %d POST /bff/token; want the token-mediated origin's", n)
	}
	msg := evalJS[string](p, `new Promise((resolve) => {
		const w = new Worker("/proxy-worker.js");
		w.onmessage = (e) => resolve(e.data);
		w.onerror = (e) => resolve("worker error: " + e.message);
	})`)
	if !strings.Contains(msg, "in a worker, open") {
		t.Errorf("login() in a proxy-mode worker: %q; want an error that says to open a tab", msg)
	}
}
