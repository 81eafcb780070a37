package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Elements of the demo page's DOM contract that the tests click or check
// for visibility (see web/index.html); the rest is read in JavaScript.
const (
	selConnect   = "#connect"
	selCall      = "#call-api"
	selAutoCall  = "#auto-call"
	selBanner    = "#reconnect-banner"
	selReconnect = "#reconnect"

	// consentAlice is the dev provider's "Sign in as Alice" button
	// (bff/devprovider/authorize.go).
	consentAlice = "#login-alice"

	// screenshotCopy is where the mid-scenario screenshot is copied.
	screenshotCopy = "/tmp/tether-e2e-screenshot.png"
)

// page is the demo page in one tab.
type page struct {
	t   testing.TB
	tab context.Context
	s   *stack
}

// openPage loads the demo page in tab and waits until it is ready.
func openPage(t testing.TB, tab context.Context, s *stack) *page {
	t.Helper()
	p := &page{t: t, tab: tab, s: s}
	step, done := context.WithTimeout(tab, stepTimeout)
	defer done()
	if err := chromedp.Do(step, chromedp.Navigate(s.d.URL+"/")); err != nil {
		t.Fatalf("opening the page: %v", err)
	}
	p.waitReady()
	return p
}

// evalJS evaluates an expression (awaiting a Promise) and decodes its value.
func evalJS[T any](p *page, expr string) T {
	p.t.Helper()
	v, err := tryEval[T](p.tab, expr)
	if err != nil {
		p.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

func tryEval[T any](tab context.Context, expr string) (T, error) {
	step, done := context.WithTimeout(tab, stepTimeout)
	defer done()
	return chromedp.Run(step, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// waitFor polls a JavaScript condition until it is true. Evaluation errors
// (a navigation in progress) count as false. On timeout it fails the test
// with what, the last error and a description of the page.
func (p *page) waitFor(cond string, timeout time.Duration, what string) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for {
		ok, err := tryEval[bool](p.tab, "!!("+cond+")")
		if err == nil && ok {
			return
		}
		lastErr = err
		if time.Now().After(deadline) {
			p.t.Fatalf("waiting %v for %s: not yet (last error: %v)\npage: %s", timeout, what, lastErr, p.describe())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitReady waits for a freshly loaded demo page: window.demoReady is set,
// by a document that markOld did not mark.
func (p *page) waitReady() {
	p.t.Helper()
	p.waitFor(`location.origin === `+strconv.Quote(p.s.d.URL)+` && window.demoReady === true && !window.__e2eOld`,
		stepTimeout, "the demo page to be ready (window.demoReady)")
}

// markOld marks the current document, so that waitReady waits for the next.
func (p *page) markOld() {
	p.t.Helper()
	evalJS[bool](p, `window.__e2eOld = true`)
}

// click clicks the element as a user would (mouse events at its center).
func (p *page) click(sel string) {
	p.t.Helper()
	step, done := context.WithTimeout(p.tab, stepTimeout)
	defer done()
	if err := chromedp.Do(step, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible)); err != nil {
		p.t.Fatalf("clicking %s: %v\npage: %s", sel, err, p.describe())
	}
}

// state is what the page shows, read through the DOM contract.
type state struct {
	Status       string   `json:"status"`      // #status data-state
	StatusText   string   `json:"statusText"`  // #status text
	Banner       bool     `json:"banner"`      // #reconnect-banner visible
	BannerText   string   `json:"bannerText"`  // its text
	Degraded     bool     `json:"degraded"`    // #degraded-notice visible
	ResultStatus string   `json:"result"`      // #api-result data-status
	ResultError  string   `json:"resultError"` // #api-result data-error
	ResultText   string   `json:"resultText"`
	Events       []string `json:"events"` // kinds in window.demoEvents
	URL          string   `json:"url"`
}

const visibleJS = `const vis = (s) => { const e = document.querySelector(s);
	return !!e && !e.hidden && e.getClientRects().length > 0 && getComputedStyle(e).visibility !== "hidden"; };
	const q = (s) => document.querySelector(s) || { dataset: {}, textContent: "" };`

// stateJS reads the page's state; the result text is cut to limit characters.
func stateJS(limit int) string {
	return `(() => {` + visibleJS + `
		return {
			status: q("#status").dataset.state || "", statusText: q("#status").textContent.trim(),
			banner: vis("#reconnect-banner"), bannerText: q("#reconnect-banner").textContent.trim(),
			degraded: vis("#degraded-notice"),
			result: q("#api-result").dataset.status || "", resultError: q("#api-result").dataset.error || "",
			resultText: q("#api-result").textContent.slice(0, ` + strconv.Itoa(limit) + `),
			events: (window.demoEvents || []).map((e) => e.kind), url: location.href,
		};
	})()`
}

// read returns what the page shows now.
func (p *page) read() state {
	p.t.Helper()
	return evalJS[state](p, stateJS(1<<20))
}

// describe summarises the page for a failure message.
func (p *page) describe() string {
	s, err := tryEval[state](p.tab, stateJS(300))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	b, _ := json.Marshal(s)
	return string(b)
}

// visible reports whether the element is shown.
func (p *page) visible(sel string) bool {
	p.t.Helper()
	return evalJS[bool](p, `(() => {`+visibleJS+` return vis(`+strconv.Quote(sel)+`); })()`)
}

// login signs in from a page that shows #connect: through the dev
// provider's consent page (as Alice) unless it auto-approves. It returns
// once the page is back and connected.
func (p *page) login(consent bool) {
	p.t.Helper()
	p.loginWith(selConnect, consent)
}

// loginWith signs in by clicking button (#connect or #reconnect).
func (p *page) loginWith(button string, consent bool) {
	p.t.Helper()
	p.markOld()
	p.click(button)
	if consent {
		p.waitFor(`location.origin === `+strconv.Quote(p.s.d.DevURL)+` && !!document.querySelector(`+strconv.Quote(consentAlice)+`)`,
			stepTimeout, "the dev provider's consent page")
		if text := evalJS[string](p, `document.querySelector(`+strconv.Quote(consentAlice)+`).textContent`); !strings.Contains(text, "Sign in as Alice") {
			p.t.Fatalf("consent button %s says %q; want Sign in as Alice", consentAlice, text)
		}
		p.click(consentAlice)
	}
	p.waitReady()
	p.waitFor(`document.querySelector("#status").dataset.state === "connected"`, stepTimeout, "#status data-state=connected")
}

// apiResult is #api-result after a call.
type apiResult struct {
	Status string `json:"status"` // data-status: "200", "401", ... or "error"
	Error  string `json:"error"`  // data-error: the Error's name
	Text   string `json:"text"`
}

// apiEventsJS counts the API calls the page logged.
const apiEventsJS = `(window.demoEvents || []).filter((e) => e.kind === "api-ok" || e.kind === "api-error").length`

// callAPI clicks #call-api and returns #api-result once that call is
// logged. #auto-call must be off.
func (p *page) callAPI() apiResult {
	p.t.Helper()
	n := evalJS[int](p, `(() => { document.querySelector("#api-result").removeAttribute("data-status"); return `+apiEventsJS+`; })()`)
	p.click(selCall)
	p.waitFor(apiEventsJS+` > `+strconv.Itoa(n)+` && document.querySelector("#api-result").hasAttribute("data-status")`,
		stepTimeout, "the result of #call-api")
	return evalJS[apiResult](p, `(() => { const r = document.querySelector("#api-result");
		return { status: r.dataset.status, error: r.dataset.error || "", text: r.textContent }; })()`)
}

// marks counts the timeline's marks of a kind.
func (p *page) marks(kind string) int {
	p.t.Helper()
	return evalJS[int](p, `document.querySelectorAll(`+strconv.Quote(`#timeline .mark[data-kind="`+kind+`"]`)+`).length`)
}

// screenshot saves the page as PNG in the test's temporary directory and
// copies it to screenshotCopy.
func (p *page) screenshot(t *testing.T, name string) string {
	t.Helper()
	step, done := context.WithTimeout(p.tab, stepTimeout)
	defer done()
	png, err := chromedp.Run(step, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(screenshotCopy, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (copied to %s), %d bytes", path, screenshotCopy, len(png))
	return path
}
