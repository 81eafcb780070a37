package e2e

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tetherauth/tether/bff"
	"github.com/tetherauth/tether/bff/devprovider"
	"github.com/tetherauth/tether/internal/logbuf"
	"github.com/tetherauth/tether/web/examples/gofullstack/app"
)

// buildGoUI builds the Go full-stack example's UI (a Go WebAssembly
// program with net/http) and copies wasm_exec.js next to it, as `make
// gofullstack-ui` does, into a directory of the test's.
func buildGoUI(t *testing.T) string {
	t.Helper()
	dist := t.TempDir()
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(dist, "ui.wasm"), "./web/examples/gofullstack/ui")
	build.Dir = repoRoot
	build.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the Go UI: %v\n%s", err, out)
	}
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatal(err)
	}
	js, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(goroot)), "lib", "wasm", "wasm_exec.js"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dist, "wasm_exec.js"), js, 0o644); err != nil {
		t.Fatal(err)
	}
	return dist
}

// gpage is a tab on the example.
type gpage struct {
	t   *testing.T
	tab context.Context
}

func (p *gpage) eval(expr string) string {
	p.t.Helper()
	v, err := tryEval[string](p.tab, expr)
	if err != nil {
		p.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

func (p *gpage) waitFor(cond, what string) {
	p.t.Helper()
	var lastErr error
	for deadline := time.Now().Add(stepTimeout); ; time.Sleep(50 * time.Millisecond) {
		ok, err := tryEval[bool](p.tab, "!!("+cond+")")
		if err == nil && ok {
			return
		}
		lastErr = err
		if time.Now().After(deadline) {
			text, _ := tryEval[string](p.tab, `location.href + "\n" + document.body.innerText`)
			p.t.Fatalf("waiting for %s: not yet (last error: %v)\npage: %s", what, lastErr, text)
		}
	}
}

func (p *gpage) click(sel string) {
	p.t.Helper()
	step, done := context.WithTimeout(p.tab, stepTimeout)
	defer done()
	if err := chromedp.Do(step, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible)); err != nil {
		p.t.Fatalf("clicking %s: %v", sel, err)
	}
}

// call clicks the Go UI's #call and returns #call-status's data-status
// once the call is over.
func (p *gpage) call() string {
	p.t.Helper()
	p.eval(`(() => { delete document.querySelector("#call-status").dataset.status; return ""; })()`)
	p.click("#call")
	p.waitFor(`document.querySelector("#call-status").dataset.status`, "the Go UI's call to end")
	return p.eval(`document.querySelector("#call-status").dataset.status`)
}

// TestGoFullStack: the example in Chromium. Sign in; the page the server
// rendered shows the API's answer, which the server fetched with the
// user's token (the browser never called the API); the Go UI's call goes
// out with the token and is answered 200; once the provider has ended the
// token, the next call meets one 401, the UI gets one new token (one
// refresh) and retries once; once the grant is revoked, the call's 401
// ends in the reconnect prompt, later calls send nothing, and Reconnect
// signs in again.
func TestGoFullStack(t *testing.T) {
	dist := buildGoUI(t)
	logs := &logbuf.Buffer{}
	a, err := app.Start(context.Background(), app.Options{
		Addr: "127.0.0.1:0", DevAddr: "127.0.0.1:0", Dist: dist,
		AccessTTL:   5 * time.Minute, // no proactive refresh while the test runs
		AutoApprove: true,
		Logger:      slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("stopping the example: %v", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	api := a.DevURL + "/api/me"
	tab := newTab(t)
	net := recordNetwork(t, tab, false)
	p := &gpage{t: t, tab: tab}

	// Sign in from the server-rendered page.
	step, done := context.WithTimeout(tab, stepTimeout)
	err = chromedp.Do(step, chromedp.Navigate(a.URL+"/"))
	done()
	if err != nil {
		t.Fatal(err)
	}
	p.waitFor(`document.querySelector("#sign-in")`, "the sign-in link")
	p.click("#sign-in")
	p.waitFor(`location.pathname === "/" && document.querySelector("#server-api")`, "the page rendered with the API's data")
	if got := p.eval(`document.querySelector("#server-api").dataset.status + " " + document.querySelector("#api-email").textContent + " " + document.querySelector("#who").textContent`); got != "200 alice@example.test Signed in as Alice Liddell (alice)." {
		t.Errorf("the server-rendered page shows %q; want the API's 200 with alice's email", got)
	}
	if n, st := net.count("GET", api), a.Dev.Stats(); n != 0 || st.APIOK != 1 {
		t.Errorf("the browser called the API %d times and the API answered %d 200s; want 0 and 1 (the server called it)", n, st.APIOK)
	}

	// The Go UI: its call carries the token.
	p.click("#open-ui")
	p.waitFor(`location.pathname === "/ui" && document.body.dataset.ready === "1" && document.querySelector("#state").textContent === "connected"`, "the Go UI with a token")
	if s := p.call(); s != "200" || !strings.Contains(p.eval(`document.querySelector("#call-result").textContent`), `"subject":"alice"`) {
		t.Fatalf("the Go UI's call: %s %q; want 200 with alice", s, p.eval(`document.querySelector("#call-result").textContent`))
	}
	calls := net.matching("GET", api)
	if len(calls) != 1 || calls[0].Status != 200 {
		t.Fatalf("DevTools saw %d GET /api/me; want one 200:\n%s", len(calls), net.summary())
	}
	if auth, _ := header(calls[0].Headers, "Authorization"); !strings.HasPrefix(auth, "Bearer "+devprovider.PrefixAccessToken) {
		t.Errorf("the Go UI's call went with Authorization %q; want Bearer %s…", redact(auth), devprovider.PrefixAccessToken)
	}

	// The provider ends the token: one 401, one new token, one retry.
	a.Dev.ResetStats()
	apiBefore, tokBefore := net.count("GET", api), net.count("POST", a.URL+"/auth/token")
	a.Dev.ExpireAccessTokens("")
	if s := p.call(); s != "200" {
		t.Errorf("the call after the expiry: %s; want 200 after a retry", s)
	}
	refreshed := time.Now()
	var statuses []string
	for _, r := range net.matching("GET", api)[apiBefore:] {
		statuses = append(statuses, strconv.Itoa(int(r.Status)))
	}
	if strings.Join(statuses, " ") != "401 200" || net.count("POST", a.URL+"/auth/token")-tokBefore != 1 {
		t.Errorf("after the expiry the UI's calls were answered %v with %d POST /auth/token; want 401 200 and 1:\n%s",
			statuses, net.count("POST", a.URL+"/auth/token")-tokBefore, net.summary())
	}
	if st := a.Dev.Stats(); st.RefreshToken != 1 || st.RefreshReuse != 0 {
		t.Errorf("the provider made %d refreshes (%d reuse); want 1 (0)", st.RefreshToken, st.RefreshReuse)
	}
	if ev := p.eval(`[...document.querySelectorAll("#events li")].map((li) => li.textContent).join(", ")`); !strings.Contains(ev, "recovered (rejected)") {
		t.Errorf("the Go UI's events: %s; want recovered (rejected)", ev)
	}

	// The grant is revoked: the call's 401, the reconnect prompt, then
	// nothing more is sent. (Until ForceMinAge has passed, the BFF would
	// hand the token its forced refresh issued back instead of trying.)
	time.Sleep(time.Until(refreshed.Add(bff.DefaultForceMinAge)))
	a.Dev.RevokeSubject("alice")
	apiBefore, tokBefore = net.count("GET", api), net.count("POST", a.URL+"/auth/token")
	if s := p.call(); s != "401" {
		t.Errorf("the call after the revocation: %s; want its 401", s)
	}
	p.waitFor(`!document.querySelector("#reconnect-banner").hidden`, "the reconnect prompt")
	if reason := p.eval(`document.querySelector("#reconnect-reason").textContent`); reason != "revoked" {
		t.Errorf("the reconnect prompt says %q; want revoked", reason)
	}
	if s := p.call(); s != "reconnect required" {
		t.Errorf("a call after the reconnect prompt: %s; want reconnect required", s)
	}
	if dAPI, dTok := net.count("GET", api)-apiBefore, net.count("POST", a.URL+"/auth/token")-tokBefore; dAPI != 1 || dTok != 1 {
		t.Errorf("after the revocation the UI sent %d GET /api/me and %d POST /auth/token; want 1 and 1 (then nothing):\n%s", dAPI, dTok, net.summary())
	}
	if href := p.eval(`document.querySelector("#reconnect").href`); href != a.URL+"/auth/login?return_to=%2Fui" {
		t.Errorf("Reconnect links to %q; want %s/auth/login?return_to=%%2Fui", href, a.URL)
	}

	// Reconnect: signed in again, back in the Go UI, calls work.
	p.eval(`(() => { window.__old = true; return ""; })()`)
	p.click("#reconnect")
	p.waitFor(`!window.__old && location.pathname === "/ui" && document.body.dataset.ready === "1" && document.querySelector("#state").textContent === "connected"`, "the Go UI after Reconnect")
	if s := p.call(); s != "200" {
		t.Errorf("a call after Reconnect: %s; want 200", s)
	}
}
