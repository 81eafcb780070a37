package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// cspMarker prefixes the console line that the injected listener writes
// for each securitypolicyviolation event.
const cspMarker = "tether-e2e-csp-violation"

// cspWatch collects, for one tab, everything that says a Content Security
// Policy got in the way: securitypolicyviolation events (through a listener
// DevTools adds to every document, which CSP does not govern), console and
// Log entries about the policy, and uncaught exceptions.
type cspWatch struct {
	mu         sync.Mutex
	violations []string // securitypolicyviolation events and CSP log lines
	exceptions []string
	otherLogs  []string // errors and warnings that are not about CSP
}

func watchCSP(t *testing.T, tab context.Context) *cspWatch {
	t.Helper()
	w := &cspWatch{}
	ctx, cancel := context.WithCancel(tab)
	t.Cleanup(cancel)
	err := chromedp.Listen(ctx, func(ev any) {
		w.mu.Lock()
		defer w.mu.Unlock()
		switch ev := ev.(type) {
		case *log.EventEntryAdded:
			e := ev.Entry
			line := fmt.Sprintf("[log %s/%s] %s (%s)", e.Source, e.Level, e.Text, e.URL)
			switch {
			case e.Source == log.EntrySourceSecurity || e.Source == log.EntrySourceViolation || strings.Contains(e.Text, "Content Security Policy") || strings.Contains(e.Text, "Content-Security-Policy"):
				w.violations = append(w.violations, line)
			case e.Level == log.EntryLevelError || e.Level == log.EntryLevelWarning:
				w.otherLogs = append(w.otherLogs, line)
			}
		case *runtime.EventConsoleAPICalled:
			var parts []string
			for _, a := range ev.Args {
				if a.Value != nil {
					parts = append(parts, string(a.Value))
				} else {
					parts = append(parts, a.Description)
				}
			}
			text := strings.Join(parts, " ")
			switch {
			case strings.Contains(text, cspMarker) || strings.Contains(text, "Content Security Policy"):
				w.violations = append(w.violations, "[console] "+text)
			case ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning:
				w.otherLogs = append(w.otherLogs, fmt.Sprintf("[console.%s] %s", ev.Type, text))
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			text := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				text += ": " + d.Exception.Description
			}
			w.exceptions = append(w.exceptions, fmt.Sprintf("%s (%s:%d)", text, d.URL, d.LineNumber))
		}
	})
	if err != nil {
		t.Fatalf("listening to the tab: %v", err)
	}
	// Every document of the tab, the provider's consent page included,
	// reports its violations on the console.
	step, done := context.WithTimeout(tab, stepTimeout)
	defer done()
	script := `document.addEventListener("securitypolicyviolation", (e) =>
		console.warn("` + cspMarker + `", e.violatedDirective, e.blockedURI, e.sourceFile + ":" + e.lineNumber, location.href));`
	if _, err := chromedp.Call(step, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: script}); err != nil {
		t.Fatalf("installing the securitypolicyviolation listener: %v", err)
	}
	return w
}

func (w *cspWatch) snapshot() (violations, exceptions, other []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.violations...), append([]string(nil), w.exceptions...), append([]string(nil), w.otherLogs...)
}

// TestPageUnderCSP: the demo page, served with its Content-Security-Policy
// (issue 9 §5), loads the WASM client, signs in through the provider's
// consent page, calls the API on the provider's origin and uses a control
// there, with no policy violation, console error about it or uncaught
// exception. A deliberate inline script at the end proves the watch sees
// violations.
func TestPageUnderCSP(t *testing.T) {
	s := startStack(t, stackOptions{})

	// The page is served with the policy, allowing the dev provider's
	// origin for fetches and nothing inline.
	res, err := http.Get(s.d.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	csp := res.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "script-src 'self' 'wasm-unsafe-eval'", "connect-src 'self' " + s.d.DevURL, "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Fatalf("the page's CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("the page's CSP allows inline code: %q", csp)
	}

	tab := newTab(t)
	w := watchCSP(t, tab)
	p := openPage(t, tab, s)
	p.login(true)
	if r := p.callAPI(); r.Status != "200" {
		t.Fatalf("#call-api under the CSP: %+v; want 200", r)
	}
	// A control on the dev provider's origin, as the page's buttons do.
	p.click("#ctl-expire")
	// The control calls the API itself: let that call end before ours,
	// so that the two do not overlap.
	p.waitFor(apiAfterControlJS, stepTimeout, "the API call after Expire")
	if r := p.callAPI(); r.Status != "200" {
		t.Fatalf("#call-api after expire: %+v; want 200 (after one retry)", r)
	}
	time.Sleep(500 * time.Millisecond) // let late console events arrive

	violations, exceptions, other := w.snapshot()
	if len(other) > 0 {
		t.Logf("other console errors and warnings (not about CSP):\n%s", strings.Join(other, "\n"))
	}
	if len(violations) > 0 {
		t.Errorf("CSP violations on the demo:\n%s", strings.Join(violations, "\n"))
	}
	if len(exceptions) > 0 {
		t.Errorf("uncaught exceptions on the demo:\n%s", strings.Join(exceptions, "\n"))
	}

	// The watch works: an inline script is refused and reported.
	evalJS[bool](p, `(() => { const el = document.createElement("script"); el.textContent = "window.__inlineRan = true"; document.head.appendChild(el); return true; })()`)
	p.waitFor(`true`, stepTimeout, "the page")
	deadline := time.Now().Add(5 * time.Second)
	for {
		after, _, _ := w.snapshot()
		if len(after) > len(violations) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an inline script produced no violation report: the watch sees nothing")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if ran := evalJS[bool](p, `window.__inlineRan === true`); ran {
		t.Error("an inline script ran despite the CSP")
	}
}
