package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tetherauth/tether/bff"
	"github.com/tetherauth/tether/bff/assets"
	"github.com/tetherauth/tether/bff/demo"
	"github.com/tetherauth/tether/bff/devprovider"
	proc "github.com/tetherauth/tether/e2e/stack"
	"github.com/tetherauth/tether/internal/logbuf"
)

// spaStack is the dev provider and the BFF for the Vite example: the
// bff/demo wiring, with the BFF's public URL and web directory as the test
// says, and the dev provider's API open to the SPA's origin.
type spaStack struct {
	d    *demo.Demo
	ctl  *devprovider.Controls
	logs *logbuf.Buffer
}

// startSPAStack starts it, the dev provider at devAddr. spaOrigin is where the browser loads the SPA
// (TETHER_PUBLIC_URL): "" for the BFF's own origin. webDir is what the BFF
// serves ("" for nothing), with TETHER_WEB_FALLBACK=index.html.
func startSPAStack(t *testing.T, bffAddr, devAddr, spaOrigin, webDir string) *spaStack {
	t.Helper()
	logs := &logbuf.Buffer{}
	env := map[string]string{}
	if webDir != "" {
		env["TETHER_WEB_FALLBACK"] = "index.html"
	}
	d, err := demo.Start(context.Background(), demo.Options{
		Addr:    bffAddr,
		DevAddr: devAddr,
		WebDir:  webDir,
		Getenv:  func(k string) string { return env[k] },
		Dev: func(c *devprovider.Config) {
			if spaOrigin != "" {
				c.AllowOrigins = []string{spaOrigin}
			}
		},
		BFF: func(c *bff.Config) {
			if spaOrigin != "" {
				c.PublicURL = spaOrigin
			}
			if webDir == "" {
				c.WebDir, c.WebFallback = "", ""
			}
		},
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatalf("starting the dev provider and the BFF: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("stopping: %v", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return &spaStack{d: d, ctl: &devprovider.Controls{URL: d.DevURL}, logs: logs}
}

// TestSPABuiltServedByBFF: the example built by Vite, served by the BFF
// with TETHER_WEB_FALLBACK=index.html. A deep route loads with 200, sign-in
// comes back to it, the API answers 200 with the token, a revocation ends
// in one reconnect event. The bundle holds the wasm once, fingerprinted,
// served as application/wasm.
func TestSPABuiltServedByBFF(t *testing.T) {
	// The API's origin is compiled into the bundle: the dev provider's
	// address is chosen before the build.
	devAddr, err := proc.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	web := viteBuild(t, "VITE_API_URL=http://"+devAddr+"/api/me")
	checkBundle(t, web)
	if _, err := assets.Compress(web); err != nil {
		t.Fatal(err)
	}
	s := startSPAStack(t, "127.0.0.1:0", devAddr, "", web)
	origin := s.d.URL

	// The deep route, as a browser asks for it: 200 and the SPA's page.
	res, err := getHTML(context.Background(), origin+"/settings/profile")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !bytes.Contains(body, []byte(`<main id="view">`)) {
		t.Fatalf("GET /settings/profile: %d %.200q; want 200 and the SPA's index.html", res.StatusCode, body)
	}
	// A missing script is a 404, not the page.
	if res, err := getHTML(context.Background(), origin+"/assets/missing-00000000.js"); err != nil || res.StatusCode != 404 {
		t.Fatalf("GET a missing script: %v %v; want 404", res.StatusCode, err)
	}

	wasm := runSPAFlow(t, s, origin)
	if !regexp.MustCompile(`^/assets/tether-[A-Za-z0-9_-]{8}\.wasm$`).MatchString(wasm) {
		t.Errorf("the page loaded the wasm from %s; want Vite's fingerprinted /assets/tether-<hash>.wasm", wasm)
	}
	req, _ := http.NewRequest("GET", origin+wasm, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	res, err = http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if ct, cc := res.Header.Get("Content-Type"), res.Header.Get("Cache-Control"); res.StatusCode != 200 || ct != "application/wasm" || !strings.Contains(cc, "immutable") || res.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("GET %s: %d, %q, %q, encoding %q; want application/wasm, immutable, gzip", wasm, res.StatusCode, ct, cc, res.Header.Get("Content-Encoding"))
	}
	reportTransfer(t, web)
}

// TestSPADevServer: split-host development. The example on Vite's dev
// server, the BFF on its own port behind Vite's proxy (/bff), with
// TETHER_PUBLIC_URL the dev server's origin: the same flow as the built
// app, through the proxy.
func TestSPADevServer(t *testing.T) {
	viteAddr, err := proc.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	spa := "http://" + viteAddr
	s := startSPAStack(t, "127.0.0.1:0", "127.0.0.1:0", spa, "")
	origin := startVite(t, viteAddr, "TETHER_BFF_URL="+s.d.URL, "VITE_API_URL="+s.d.DevURL+"/api/me")
	if origin != spa {
		t.Fatalf("vite at %s; want %s", origin, spa)
	}
	// The BFF's own origin serves no page: everything goes through Vite.
	if res, err := getHTML(context.Background(), s.d.URL+"/settings/profile"); err != nil || res.StatusCode != 404 {
		t.Fatalf("the BFF answered GET /settings/profile itself: %v %v", res.StatusCode, err)
	}
	res, err := getHTML(context.Background(), spa+"/settings/profile")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("vite: GET /settings/profile: %v %v; want 200", res.StatusCode, err)
	}
	res.Body.Close()
	wasm := runSPAFlow(t, s, spa)
	if !strings.HasSuffix(wasm, "/tether.wasm") {
		t.Errorf("the page loaded the wasm from %s; want the package's tether.wasm", wasm)
	}
	if !strings.Contains(s.logs.String(), `path=/bff/callback status=302`) {
		t.Errorf("the callback did not reach the BFF through the proxy:\n%s", s.logs.Tail(3000))
	}
}

// runSPAFlow drives the example at origin in a fresh browser context: the
// deep route, sign-in back to it, an API call with the token, revocation
// and the reconnect event. It returns the path the page loaded the wasm
// from (and checks it was loaded once, as application/wasm).
func runSPAFlow(t *testing.T, s *spaStack, origin string) string {
	t.Helper()
	tab := newTab(t)
	p := &page{t: t, tab: tab}
	route := origin + "/settings/profile"
	step, done := context.WithTimeout(tab, stepTimeout)
	defer done()
	if err := chromedp.Do(step, chromedp.Navigate(route)); err != nil {
		t.Fatalf("opening %s: %v", route, err)
	}
	ready := func(what string) {
		p.waitFor(`location.href === `+strconv.Quote(route)+` && document.body.dataset.ready === "true"`, stepTimeout, what)
	}
	ready("the SPA at /settings/profile")
	if st := evalJS[int](p, `performance.getEntriesByType("navigation")[0].responseStatus`); st != 200 {
		t.Errorf("the deep route's document answered %d; want 200", st)
	}
	if h1 := evalJS[string](p, `document.querySelector("#view h1").textContent`); h1 != "Settings › Profile" {
		t.Fatalf("the view shows %q; want the profile route", h1)
	}
	if st := evalJS[string](p, `document.querySelector("#status").dataset.state`); st != "signed-out" {
		t.Fatalf("status %q before sign-in; want signed-out", st)
	}

	// Sign in: the provider's consent page, then back on this route.
	evalJS[bool](p, `window.__old = true`)
	p.click("#sign-in")
	p.waitFor(`location.origin === `+strconv.Quote(s.d.DevURL)+` && !!document.querySelector(`+strconv.Quote(consentAlice)+`)`,
		stepTimeout, "the dev provider's consent page")
	p.click(consentAlice)
	p.waitFor(`!window.__old && location.href === `+strconv.Quote(route)+` && document.body.dataset.ready === "true"`, stepTimeout, "back on /settings/profile")
	p.waitFor(`document.querySelector("#status").dataset.state === "connected"`, stepTimeout, "the SPA signed in")
	if h1 := evalJS[string](p, `document.querySelector("#view h1").textContent`); h1 != "Settings › Profile" {
		t.Fatalf("after sign-in the view shows %q; want the profile route", h1)
	}

	// The API with the token.
	before := s.d.Dev.Stats()
	p.click("#call-api")
	p.waitFor(`document.querySelector("#api-result").dataset.status === "200"`, stepTimeout, "the API call to answer 200")
	if text := evalJS[string](p, `document.querySelector("#api-result").textContent`); !strings.Contains(text, "alice") {
		t.Errorf("the API answered %q; want alice's profile", text)
	}
	if after := s.d.Dev.Stats(); after.APIOK != before.APIOK+1 || after.API401 != before.API401 {
		t.Errorf("the API counted %d OK, %d 401 more; want 1 OK (the token was accepted), no 401", after.APIOK-before.APIOK, after.API401-before.API401)
	}

	// A client-side navigation and back keep the session.
	p.click(`a[href="/"]`)
	p.waitFor(`location.pathname === "/" && document.querySelector("#view h1").textContent === "Home"`, stepTimeout, "the home route")
	p.click(`a[href="/settings/profile"]`)
	p.waitFor(`location.pathname === "/settings/profile" && !!document.querySelector("#call-api")`, stepTimeout, "the profile route again")

	// Revocation at the provider: the next call ends in one reconnect event.
	if _, err := s.ctl.Revoke(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	p.click("#call-api")
	p.waitFor(`document.querySelectorAll('#events li[data-kind="reconnect"]').length === 1`, stepTimeout, "the reconnect event")
	p.waitFor(`!document.querySelector("#reconnect").hidden && document.querySelector("#status").dataset.state === "reconnect"`, stepTimeout, "the reconnect banner")
	if reason := evalJS[string](p, `document.querySelector('#events li[data-kind="reconnect"]').textContent`); !strings.Contains(reason, `"reason":"revoked"`) {
		t.Errorf("reconnect event %q; want reason revoked", reason)
	}
	time.Sleep(500 * time.Millisecond) // no loop: still one event after a while
	if n := evalJS[int](p, `document.querySelectorAll('#events li[data-kind="reconnect"]').length`); n != 1 {
		t.Errorf("%d reconnect events; want 1", n)
	}

	// The wasm: loaded once per document, from the page's origin.
	wasms := evalJS[[]string](p, `performance.getEntriesByType("resource").map((e) => e.name).filter((n) => n.endsWith(".wasm"))`)
	if len(wasms) != 1 || !strings.HasPrefix(wasms[0], origin+"/") {
		t.Fatalf("the page fetched the wasm as %q; want once, from %s", wasms, origin)
	}
	return strings.TrimPrefix(wasms[0], origin)
}

// checkBundle: Vite emitted the package's tether.wasm exactly once, under
// a fingerprinted name, byte for byte, and no script inlines it.
func checkBundle(t *testing.T, out string) {
	t.Helper()
	pkgWasm, err := os.ReadFile(filepath.Join(repoRoot, "web", "examples", "vite", "node_modules", "@tetherauth", "tether", assets.PackageWasm))
	if err != nil {
		t.Fatal(err)
	}
	var wasms []string
	err = filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.HasPrefix(data, []byte("\x00asm")) {
			wasms = append(wasms, p)
			if !bytes.Equal(data, pkgWasm) {
				t.Errorf("%s is not the package's tether.wasm", p)
			}
		}
		if strings.HasSuffix(p, ".js") && (bytes.Contains(data, []byte("AGFzbQ")) || len(data) > 200<<10) {
			t.Errorf("%s (%d bytes) seems to inline the wasm", p, len(data))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(wasms) != 1 || !regexp.MustCompile(`/assets/tether-[A-Za-z0-9_-]{8}\.wasm$`).MatchString(wasms[0]) {
		t.Fatalf("wasm files in the bundle: %q; want one, assets/tether-<hash>.wasm", wasms)
	}
}

// reportTransfer logs what the example's first load transfers with gzip:
// every file of the build (the page, its script and style, the wasm).
func reportTransfer(t *testing.T, dir string) {
	t.Helper()
	var raw, gz int64
	var parts []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".gz") || strings.HasSuffix(p, ".br") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var b bytes.Buffer
		w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		w.Write(data)
		w.Close()
		n := int64(min(b.Len(), len(data)))
		raw += int64(len(data))
		gz += n
		rel, _ := filepath.Rel(dir, p)
		parts = append(parts, rel+" "+strconv.FormatInt(n, 10))
		return nil
	})
	t.Logf("the example's first load: %d bytes, %d with gzip -9 (%s)", raw, gz, strings.Join(parts, ", "))
}

// TestPackageScriptTags: the npm package's files as two script tags (a
// CDN's way, no bundler): tether.js with data-wasm pointing at the
// package's tether.wasm starts the client, which says reconnect
// (no_session) to a visitor without a session.
func TestPackageScriptTags(t *testing.T) {
	exampleDir(t) // make example-deps lays out the package in web/dist/npm
	web := t.TempDir()
	pkg := filepath.Join(repoRoot, "web", "dist", "npm")
	for _, name := range []string{"tether.js", "wasm_exec.js", assets.PackageWasm} {
		data, err := os.ReadFile(filepath.Join(pkg, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(web, "pkg-"+name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// No inline script: the BFF's page policy (CSP) refuses them.
	files := map[string]string{
		"index.html": `<!doctype html><title>script tags</title>
<script src="/pkg-wasm_exec.js"></script>
<script src="/pkg-tether.js" data-wasm="/pkg-tether.wasm"></script>
<script type="module" src="/app.js"></script>`,
		"app.js": `const tether = await Tether.start({ bff: "/bff" });
tether.addEventListener("reconnect", (e) => { document.body.dataset.reason = e.detail.reason; });`,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(web, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := startSPAStack(t, "127.0.0.1:0", "127.0.0.1:0", "", web)
	tab := newTab(t)
	p := &page{t: t, tab: tab}
	step, done := context.WithTimeout(tab, stepTimeout)
	defer done()
	if err := chromedp.Do(step, chromedp.Navigate(s.d.URL+"/")); err != nil {
		t.Fatal(err)
	}
	p.waitFor(`document.body.dataset.reason === "no_session"`, stepTimeout, "the client to start and say reconnect (no_session)")
}
