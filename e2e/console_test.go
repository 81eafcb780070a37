package e2e

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// consoleLog records what a tab writes to its console: calls of the
// console API, uncaught exceptions, and the browser's own log entries
// (Chromium logs a failed resource load, such as a 401, there).
type consoleLog struct {
	mu      sync.Mutex
	entries []string // "kind level: text"
}

func recordConsole(t testing.TB, tab context.Context) *consoleLog {
	t.Helper()
	l := &consoleLog{}
	ctx, cancel := context.WithCancel(tab)
	t.Cleanup(cancel)
	err := chromedp.Listen(ctx, func(ev any) {
		var e string
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			var args []string
			for _, a := range ev.Args {
				if a.Description != "" {
					args = append(args, a.Description)
				} else {
					args = append(args, string(a.Value))
				}
			}
			e = "console." + string(ev.Type) + ": " + strings.Join(args, " ")
		case *runtime.EventExceptionThrown:
			e = "exception: " + ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				e += " " + ev.ExceptionDetails.Exception.Description
			}
		case *log.EventEntryAdded:
			e = "log." + string(ev.Entry.Level) + " (" + string(ev.Entry.Source) + "): " + ev.Entry.Text + " " + ev.Entry.URL
		default:
			return
		}
		l.mu.Lock()
		l.entries = append(l.entries, e)
		l.mu.Unlock()
	})
	if err != nil {
		t.Fatalf("listening to the console: %v", err)
	}
	return l
}

// problems returns the errors and warnings recorded so far, but for the
// page's missing /favicon.ico, which Chromium asks for on its own and which
// is the page's business, not Tether's.
func (l *consoleLog) problems() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.entries {
		if strings.HasPrefix(e, "log.error (network): ") && strings.HasSuffix(e, "/favicon.ico") {
			continue
		}
		for _, bad := range []string{"console.error", "console.warning", "console.assert", "exception:", "log.error", "log.warning"} {
			if strings.HasPrefix(e, bad) {
				out = append(out, e)
				break
			}
		}
	}
	return out
}

func (l *consoleLog) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.entries, "\n")
}

// TestLoggedOutFirstVisitIsQuiet: on a first visit without a session,
// Tether starts, tells the page "reconnect: no_session" and writes
// nothing to the console (no 401 from /bff/token: it does not ask for a
// token the BFF says it has no session for). Signed in, a reload is as
// quiet and gets its token.
func TestLoggedOutFirstVisitIsQuiet(t *testing.T) {
	s := startStack(t, stackOptions{autoApprove: true})
	tab := newTab(t)
	console := recordConsole(t, tab)
	net := recordNetwork(t, tab, false)
	p := openPage(t, tab, s)
	p.waitFor(`window.tether.state().reason === "no_session"`, stepTimeout, "the client to know there is no session")
	time.Sleep(500 * time.Millisecond) // anything late
	if st := p.read(); st.Status != "disconnected" || st.Banner {
		t.Errorf("logged-out page shows %+v; want disconnected, no reconnect banner", st)
	}
	if bad := console.problems(); len(bad) > 0 {
		t.Errorf("a logged-out first visit wrote %d errors or warnings to the console:\n%s", len(bad), strings.Join(bad, "\n"))
	}
	if n := net.count("POST", s.d.URL+"/bff/token"); n != 0 {
		t.Errorf("a logged-out first visit sent %d POST /bff/token; want none", n)
	}
	if n := net.count("GET", s.d.URL+"/bff/session"); n < 1 {
		t.Errorf("no GET /bff/session: how did the client learn there is no session?\n%s", net.summary())
	}

	p.login(false)
	p.waitFor(`window.tether.state().connected`, stepTimeout, "a first token after signing in")
	p.markOld()
	step, done := context.WithTimeout(tab, stepTimeout)
	defer done()
	if err := chromedp.Do(step, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	p.waitReady()
	p.waitFor(`window.tether.state().connected`, stepTimeout, "a token after the reload")
	if r := p.callAPI(); r.Status != "200" {
		t.Errorf("call after the reload: %+v", r)
	}
	time.Sleep(300 * time.Millisecond)
	if bad := console.problems(); len(bad) > 0 {
		t.Errorf("the visits wrote %d errors or warnings to the console:\n%s", len(bad), strings.Join(bad, "\n"))
	}
	t.Logf("console:\n%s\nnetwork:\n%s", console.all(), net.summary())
}
