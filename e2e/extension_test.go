package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/serviceworker"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/tetherauth/tether/bff/assets"
	"github.com/tetherauth/tether/bff/devprovider"
)

// The example browser extension (web/extension) in Chromium: installed
// unpacked with its fixed key, it signs in through a tab of its own, its
// service worker alone holds the token, and waking that worker up costs
// one POST /bff/token and no provider refresh.

// extensionID is the id Chromium gives an extension whose manifest has
// key: the first 128 bits of SHA-256 of the public key (DER), each hex
// digit written as a letter from a to p.
func extensionID(t testing.TB, manifest []byte) string {
	t.Helper()
	var m struct{ Key string }
	if err := json.Unmarshal(manifest, &m); err != nil || m.Key == "" {
		t.Fatalf("web/extension/manifest.json has no key (%v)", err)
	}
	der, err := base64.StdEncoding.DecodeString(m.Key)
	if err != nil {
		t.Fatalf("manifest key: %v", err)
	}
	sum := sha256.Sum256(der)
	id := []byte(hex.EncodeToString(sum[:16]))
	for i, c := range id {
		if c <= '9' {
			id[i] = 'a' + c - '0'
		} else {
			id[i] = 'a' + 10 + c - 'a'
		}
	}
	return string(id)
}

// buildExtension lays the example out as `make extension` does, in a
// temporary directory, with config.js pointing at this stack, and returns
// the directory.
func buildExtension(t testing.TB, s *stack) string {
	t.Helper()
	src := filepath.Join(repoRoot, "web", "extension")
	dir := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	copyFile := func(from, to string) {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range entries {
		// dist/ and tether.js are make extension's output: taken fresh below.
		if e.IsDir() || e.Name() == "tether.js" || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		copyFile(filepath.Join(src, e.Name()), filepath.Join(dir, e.Name()))
	}
	dist := filepath.Join(repoRoot, "web", "dist")
	var m assets.Manifest
	raw, err := os.ReadFile(filepath.Join(dist, assets.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "dist"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{assets.ManifestFile, m.WasmExec, m.Wasm} {
		copyFile(filepath.Join(dist, f), filepath.Join(dir, "dist", f))
	}
	copyFile(filepath.Join(repoRoot, "web", "tether.js"), filepath.Join(dir, "tether.js"))
	config := "globalThis.TETHER_EXAMPLE = Object.freeze({ bff: " + strconv.Quote(s.d.URL+"/bff") +
		", api: " + strconv.Quote(s.d.DevURL+"/api/me") + " });\n"
	if err := os.WriteFile(filepath.Join(dir, "config.js"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir // its manifest is the source's: the id is extensionID of that
}

// extensionBrowser starts a Chromium of its own with the extension
// loaded (new headless mode; extensions not disabled) and stops it with
// the test.
func extensionBrowser(t testing.TB, dir string) context.Context {
	t.Helper()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromiumOptions(),
		chromedp.Flag("headless", "new"),
		chromedp.Flag("load-extension", dir),
		chromedp.Flag("disable-extensions-except", dir),
		chromedp.UserDataDir(t.TempDir()),
	)...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser: no timeout on this context
		t.Fatalf("starting %s with the extension: %v", chromiumPath, err)
	}
	return ctx
}

// findTarget waits for a target of type typ whose URL starts with prefix
// and returns its id.
func findTarget(t testing.TB, browser context.Context, typ, prefix string, within time.Duration) target.ID {
	t.Helper()
	deadline := time.Now().Add(within)
	var seen []string
	for {
		infos, err := chromedp.Targets(browser)
		if err != nil {
			t.Fatalf("listing targets: %v", err)
		}
		seen = seen[:0]
		for _, info := range infos {
			if info.Type == typ && strings.HasPrefix(info.URL, prefix) {
				return info.TargetID
			}
			seen = append(seen, info.Type+" "+info.URL)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s target at %s… within %v; targets: %q", typ, prefix, within, seen)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hasTarget tells whether a target of type typ at prefix exists.
func hasTarget(t testing.TB, browser context.Context, typ, prefix string) bool {
	t.Helper()
	infos, err := chromedp.Targets(browser)
	if err != nil {
		t.Fatalf("listing targets: %v", err)
	}
	for _, info := range infos {
		if info.Type == typ && strings.HasPrefix(info.URL, prefix) {
			return true
		}
	}
	return false
}

// attach opens a DevTools session on an existing target (a tab, a
// service worker); it ends with the test or when the returned cancel is
// called, which detaches and leaves the target running (closing a
// service worker's target would stop the worker).
func attach(t testing.TB, browser context.Context, id target.ID) (context.Context, context.CancelFunc) {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithTargetID(id), chromedp.WithDetachOnCancel())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("attaching to %s: %v", id, err)
	}
	return ctx, cancel
}

// navigate loads u in the page's tab.
func (p *page) navigate(u string) {
	p.t.Helper()
	step, done := context.WithTimeout(p.tab, stepTimeout)
	defer done()
	if err := chromedp.Do(step, chromedp.Navigate(u)); err != nil {
		p.t.Fatalf("opening %s: %v", u, err)
	}
}

// openTarget opens a tab at u and attaches to it. (A tab that navigates
// from about:blank to an extension's page moves to the extension's
// process, and DevTools commands on the old session then hang.)
func openTarget(t testing.TB, browser context.Context, u string) context.Context {
	t.Helper()
	created, err := chromedp.CallBrowser(browser, target.CreateTarget, target.CreateTargetParams{URL: u})
	if err != nil {
		t.Fatalf("opening a tab at %s: %v", u, err)
	}
	tab, _ := attach(t, browser, created.TargetID)
	return tab
}

// apiAnswer is what the worker answers a popup's call-api.
type apiAnswer struct {
	Status  int    `json:"status"`
	Name    string `json:"name"`
	Subject string `json:"subject"`
	Error   string `json:"error"`
	Reason  string `json:"reason"`
}

// recorder is a web page's server: it serves the page a content script
// runs in, and records every other request (but the browser's favicon),
// with its Authorization.
type recorder struct {
	mu   sync.Mutex
	hits []string
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	switch req.URL.Path {
	case "/page.html":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, "<!doctype html><title>a web page</title><p>a web page</p>")
		return
	case "/favicon.ico":
		http.NotFound(w, req)
		return
	}
	r.mu.Lock()
	r.hits = append(r.hits, req.Method+" "+req.URL.String()+" authorization="+req.Header.Get("Authorization"))
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (r *recorder) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.hits...)
}

// TestExtension: sign in from the example extension's popup through the
// consent page; the worker calls the API with the token; a stopped worker
// wakes with one /bff/token and no refresh; nothing is stored; an expired
// token costs one 401, one refresh and one retry; a content script gets
// no token and no URL of its choosing; a revocation sends the popup one
// reconnect, after which calls fail at once.
func TestExtension(t *testing.T) {
	// The id is known before the stack starts: the key fixes it.
	manifest, err := os.ReadFile(filepath.Join(repoRoot, "web", "extension", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	id := extensionID(t, manifest)
	origin := "chrome-extension://" + id
	s := startStack(t, stackOptions{extensions: []string{origin}})
	t.Cleanup(func() { assertLogsClean(t, s) }) // no token, secret or JWT in any server log
	dir := buildExtension(t, s)                 // Chromium loads it as id: every target below is found by its origin

	// A return_to in another extension is refused before anything starts.
	for _, rt := range []string{"chrome-extension://ponmlkjihgfedcbaponmlkjihgfedcba/signed-in.html", origin + "/signed-in.html?x=//evil.example"} {
		res, err := http.Get(s.d.URL + "/bff/login?return_to=" + url.QueryEscape(rt))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `"invalid_return_to"`) {
			t.Errorf("return_to %s: %d %s; want 400 invalid_return_to", rt, res.StatusCode, body)
		}
	}

	browser := extensionBrowser(t, dir)
	worker := origin + "/background.js"
	findTarget(t, browser, "service_worker", worker, 15*time.Second) // the extension is loaded

	popup := openTarget(t, browser, origin+"/popup.html")
	p := &page{t: t, tab: popup, s: s}
	p.waitFor(`document.querySelector("#status").dataset.state === "signed-out"`, stepTimeout, "the popup to say signed out")

	// Sign in: the worker opens a tab at the BFF's login; the consent page;
	// back at signed-in.html, which the worker closes.
	p.click("#sign-in")
	signIn, stopSignIn := attach(t, browser, findTarget(t, browser, "page", s.d.DevURL, stepTimeout))
	sp := &page{t: t, tab: signIn, s: s}
	sp.waitFor(`!!document.querySelector(`+strconv.Quote(consentAlice)+`)`, stepTimeout, "the dev provider's consent page")
	sp.click(consentAlice)
	p.waitFor(`document.querySelector("#status").dataset.state === "signed-in"`, stepTimeout, "the popup to say signed in")
	stopSignIn()
	if text := evalJS[string](p, `document.querySelector("#status").textContent`); !strings.Contains(text, "Alice") {
		t.Errorf("the popup says %q; want it to name Alice", text)
	}
	deadline := time.Now().Add(5 * time.Second)
	for hasTarget(t, browser, "page", origin+"/signed-in.html") || hasTarget(t, browser, "page", s.d.URL) || hasTarget(t, browser, "page", s.d.DevURL) {
		if time.Now().After(deadline) {
			t.Fatal("the sign-in tab is still open 5 s after signing in")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The API call, seen from the worker through DevTools: with the token.
	wctx, detach := attach(t, browser, findTarget(t, browser, "service_worker", worker, stepTimeout))
	wnet := recordNetwork(t, wctx, false)
	// The client runs in the worker, which has no document to navigate.
	if msg, err := tryEval[string](wctx, `typeof document + " " + typeof self.ServiceWorkerGlobalScope`); err != nil || msg != "undefined function" {
		t.Errorf("in the worker: %q, %v; want no document, a ServiceWorkerGlobalScope", msg, err)
	}
	if msg, err := tryEval[string](wctx, `Tether.start({ credentials: "omit" }).then(() => "started", (e) => e.message)`); err != nil || !strings.Contains(msg, `credentials is "same-origin" or "include"`) {
		t.Errorf(`Tether.start({credentials: "omit"}): %q, %v; want it refused`, msg, err)
	}
	if msg, err := tryEval[string](wctx, `started.then((t) => { try { t.login(); return "navigated"; } catch (e) { return e.message; } })`); err != nil || !strings.Contains(msg, "in a worker, open") {
		t.Errorf("tether.login() in the worker: %q, %v; want an error that says to open a tab", msg, err)
	}
	callAPI := func() apiAnswer {
		t.Helper()
		return evalJS[apiAnswer](p, `popupCallAPI()`)
	}
	if r := callAPI(); r.Status != 200 || r.Subject != "alice" {
		t.Fatalf("call-api: %+v; want 200 for alice", r)
	}
	calls := wnet.matching("GET", s.d.DevURL+"/api/me")
	if len(calls) != 1 {
		t.Fatalf("DevTools saw %d GET /api/me from the worker; want 1:\n%s", len(calls), wnet.summary())
	}
	if auth, _ := header(calls[0].Headers, "Authorization"); !strings.HasPrefix(auth, "Bearer "+devprovider.PrefixAccessToken) {
		t.Errorf("GET /api/me went with Authorization %q; want Bearer %s…", redact(auth), devprovider.PrefixAccessToken)
	}
	if n := wnet.count("POST", s.d.URL+"/bff/token"); n != 0 {
		t.Errorf("the call after signing in asked /bff/token %d times; want 0 (the token came with the sign-in)", n)
	}
	detach()
	if !hasTarget(t, browser, "service_worker", worker) {
		t.Fatal("the worker stopped when DevTools detached from it")
	}

	// Stop the worker; the next call wakes it: one /bff/token, no refresh.
	tok0, st0 := s.tokenTotal(), s.stats()
	step, done := context.WithTimeout(popup, stepTimeout)
	if _, err = chromedp.Call(step, serviceworker.Enable, cdp.Empty{}); err == nil {
		_, err = chromedp.Call(step, serviceworker.StopAllWorkers, cdp.Empty{})
	}
	done()
	if err != nil {
		t.Fatalf("ServiceWorker.stopAllWorkers: %v", err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for hasTarget(t, browser, "service_worker", worker) {
		if time.Now().After(deadline) {
			t.Fatal("the service worker still runs 10 s after ServiceWorker.stopAllWorkers")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := callAPI(); r.Status != 200 || r.Subject != "alice" {
		t.Fatalf("call-api after the worker stopped: %+v; want 200 for alice", r)
	}
	st1 := s.stats()
	if d := s.tokenTotal() - tok0; d != 1 {
		t.Errorf("waking the worker cost %d POST /bff/token; want exactly 1", d)
	}
	if d := st1.RefreshToken - st0.RefreshToken; d != 0 {
		t.Errorf("waking the worker cost %d provider refreshes; want 0", d)
	}
	if d := st1.APIOK - st0.APIOK; d != 1 {
		t.Errorf("api_ok grew by %d; want 1", d)
	}

	// Nothing stored by the extension: chrome.storage (no permission, so
	// no API), localStorage, IndexedDB, Cache Storage.
	stored := evalJS[string](p, `(async () => {
		const out = [];
		if (chrome.storage) {
			for (const area of ["local", "session", "sync"]) {
				const items = chrome.storage[area] ? await chrome.storage[area].get(null) : {};
				if (Object.keys(items).length) out.push("chrome.storage." + area + ": " + JSON.stringify(items));
			}
		}
		if (localStorage.length) out.push("localStorage: " + localStorage.length + " items");
		if (sessionStorage.length) out.push("sessionStorage: " + sessionStorage.length + " items");
		const dbs = await indexedDB.databases();
		if (dbs.length) out.push("IndexedDB: " + dbs.map((d) => d.name).join(","));
		const cs = await caches.keys();
		if (cs.length) out.push("Cache Storage: " + cs.join(","));
		return out.join("; ");
	})()`)
	if stored != "" {
		t.Errorf("the extension stored something: %s", stored)
	}

	// An expired token: one 401, one refresh, one retry.
	if _, err := s.ctl.Expire(t.Context(), ""); err != nil {
		t.Fatal(err)
	}
	tok0, st0 = s.tokenTotal(), s.stats()
	if r := callAPI(); r.Status != 200 {
		t.Fatalf("call-api after the token expired: %+v; want 200 after one retry", r)
	}
	st1 = s.stats()
	if d401, dref, dok, dtok := st1.API401-st0.API401, st1.RefreshToken-st0.RefreshToken, st1.APIOK-st0.APIOK, s.tokenTotal()-tok0; d401 != 1 || dref != 1 || dok != 1 || dtok != 1 {
		t.Errorf("after an expiry: %d API 401, %d refreshes, %d API 200, %d POST /bff/token; want 1 each", d401, dref, dok, dtok)
	}

	// A content script in a web page: the page gets the name through the
	// example's postMessage protocol; the content script itself (as if
	// compromised) asking for the token or an arbitrary URL gets nothing.
	rec := &recorder{}
	web := httptest.NewServer(rec)
	t.Cleanup(web.Close)
	contentTab, closeContent := chromedp.NewContext(browser)
	t.Cleanup(closeContent)
	if err := chromedp.Do(contentTab); err != nil {
		t.Fatal(err)
	}
	isolated := make(chan runtime.ExecutionContextID, 4)
	err = chromedp.Listen(contentTab, func(ev any) {
		if e, ok := ev.(*runtime.EventExecutionContextCreated); ok && e.Context.Origin == origin {
			var aux struct {
				Type string `json:"type"`
			}
			json.Unmarshal(e.Context.AuxData, &aux)
			if aux.Type == "isolated" {
				select {
				case isolated <- e.Context.ID:
				default:
				}
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	cp := &page{t: t, tab: contentTab, s: s}
	cp.navigate(web.URL + "/page.html")
	var world runtime.ExecutionContextID
	select {
	case world = <-isolated:
	case <-time.After(stepTimeout):
		t.Fatal("the content script's world did not appear in the web page")
	}
	whoami := evalJS[map[string]any](cp, `new Promise((resolve) => {
		addEventListener("message", (e) => { if (e.data && e.data.tetherExample === "whoami-result") resolve(e.data); });
		postMessage({ tetherExample: "whoami" }, location.origin);
	})`)
	if whoami["status"] != float64(200) || whoami["name"] != "Alice Liddell" || whoami["error"] != "" || len(whoami) != 4 {
		t.Errorf("the page's whoami: %v; want status 200 and Alice's name, nothing else", whoami)
	}
	inContentScript := func(expr string) string {
		t.Helper()
		var out string
		step, done := context.WithTimeout(contentTab, stepTimeout)
		defer done()
		yes := true
		res, err := chromedp.Call(step, runtime.Evaluate, runtime.EvaluateParams{
			Expression: `(async () => JSON.stringify(await ` + expr + `))()`,
			ContextID:  world, AwaitPromise: &yes, ReturnByValue: &yes,
		})
		if err == nil {
			if exc := res.ExceptionDetails; exc != nil {
				out = "exception: " + exc.Text
				if exc.Exception != nil {
					out += " " + exc.Exception.Description
				}
			} else {
				err = json.Unmarshal(res.Result.Value, &out)
			}
		}
		if err != nil {
			t.Fatalf("evaluating %s in the content script: %v", expr, err)
		}
		return out
	}
	evil := web.URL + "/steal"
	tok0, api0 := s.tokenTotal(), s.apiCalls()
	for _, msg := range []string{
		`{type: "token"}`,
		`{type: "get-token"}`,
		`{type: "fetch", url: ` + strconv.Quote(evil) + `}`,
		`{type: "status"}`,
		`{type: "sign-out"}`,
		`{type: "signed-in"}`,
		`{type: "call-api", url: ` + strconv.Quote(evil) + `, init: {headers: {"X-Evil": "1"}}}`,
		`"call-api"`,
		`null`,
	} {
		got := inContentScript(`chrome.runtime.sendMessage(` + msg + `)`)
		if strings.Contains(got, devprovider.PrefixAccessToken) || strings.Contains(strings.ToLower(got), "token\":") {
			t.Errorf("the content script asking %s got %s: a token", msg, got)
		}
		if !strings.HasPrefix(msg, `{type: "call-api"`) && !strings.Contains(got, `"error":"refused"`) {
			t.Errorf("the content script asking %s got %s; want refused", msg, got)
		}
		if strings.HasPrefix(msg, `{type: "call-api"`) && got != `{"status":200,"name":"Alice Liddell"}` {
			t.Errorf("the content script's call-api got %s; want only the status and name of the fixed call", got)
		}
	}
	if hits := rec.requests(); len(hits) != 0 {
		t.Errorf("the worker sent requests to a URL a content script named: %q", hits)
	}
	if d := s.apiCalls() - api0; d != 1 {
		t.Errorf("the content script's requests made %d API calls; want 1 (the fixed call, whatever URL came with it)", d)
	}
	if d := s.tokenTotal() - tok0; d != 0 {
		t.Errorf("the content script's requests caused %d POST /bff/token; want 0", d)
	}

	// Revocation: the next call gets the API's 401; the popup hears one
	// reconnect; later calls fail at once, with no request at all.
	if _, err := s.ctl.Revoke(t.Context(), "alice"); err != nil {
		t.Fatal(err)
	}
	evalJS[bool](p, `(popupNews.length = 0, true)`)
	if r := callAPI(); r.Status != 401 {
		t.Errorf("call-api after the revocation: %+v; want the API's 401", r)
	}
	p.waitFor(`document.querySelector("#status").dataset.state === "reconnect" && !document.querySelector("#reconnect").hidden`, stepTimeout, "the popup's reconnect prompt")
	api0, tok0 = s.apiCalls(), s.tokenTotal()
	for i := range 3 {
		if r := callAPI(); r.Error != "TetherReconnectRequired" || r.Reason != "revoked" {
			t.Errorf("call %d after the revocation: %+v; want TetherReconnectRequired (revoked) at once", i+1, r)
		}
	}
	time.Sleep(time.Second)
	if d := s.apiCalls() - api0; d != 0 {
		t.Errorf("the API got %d requests while a reconnect was required; want 0", d)
	}
	if d := s.tokenTotal() - tok0; d != 0 {
		t.Errorf("the BFF got %d POST /bff/token while a reconnect was required; want 0", d)
	}
	news := evalJS[[]string](p, `popupNews`)
	n := 0
	for _, m := range news {
		if strings.HasPrefix(m, "reconnect") {
			n++
			if m != "reconnect:revoked" {
				t.Errorf("the popup heard %q; want reconnect:revoked", m)
			}
		}
	}
	if n != 1 {
		t.Errorf("the popup heard %d reconnect messages (%q); want exactly 1", n, news)
	}
}
