package e2e

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/tetherauth/tether/shared/wire"
)

// metric reads one unlabelled series of the BFF's metrics (in process).
func (s *stack) metric(name string) float64 {
	s.t.Helper()
	rec := httptest.NewRecorder()
	s.d.BFF.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	sc := bufio.NewScanner(rec.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				s.t.Fatalf("/metrics: %q", sc.Text())
			}
			return n
		}
	}
	s.t.Fatalf("/metrics has no %s", name)
	return 0
}

// sessionCookie is the tab's session cookie (HttpOnly: read through the
// DevTools protocol), as a Cookie header.
func (p *page) sessionCookie() string {
	p.t.Helper()
	step, done := context.WithTimeout(p.tab, stepTimeout)
	defer done()
	res, err := chromedp.Call(step, network.GetCookies, network.GetCookiesParams{URLs: []string{p.s.d.URL + "/"}})
	if err != nil {
		p.t.Fatalf("reading cookies: %v", err)
	}
	for _, c := range res.Cookies {
		if strings.HasSuffix(c.Name, "tether_session") {
			return c.Name + "=" + c.Value
		}
	}
	p.t.Fatal("no session cookie")
	return ""
}

// TestLiveBannerInTwoTabs: the demo (live: true) open in two tabs of one
// browser; the session ends outside them: a back-channel logout from the
// dev provider (/control/backchannel), in token and in proxy mode, or a
// logout by another client of the same session. Both tabs show the reconnect banner within 2 s, with
// no click and no request: no API call, no token request.
func TestLiveBannerInTwoTabs(t *testing.T) {
	backchannel := func(t *testing.T, s *stack, _ *page) {
		if n, err := s.ctl.Backchannel(t.Context(), "alice", ""); err != nil || n != 1 {
			t.Fatalf("/control/backchannel: %d accepted, %v; want 1", n, err)
		}
	}
	endings := []struct {
		name  string
		proxy bool
		end   func(t *testing.T, s *stack, p *page)
	}{
		{"backchannel", false, backchannel},
		{"backchannel, proxy mode", true, backchannel},
		{"logout elsewhere", false, func(t *testing.T, s *stack, p *page) {
			req, _ := http.NewRequest(http.MethodPost, s.d.URL+wire.PathLogout, nil)
			req.Header.Set("Cookie", p.sessionCookie())
			req.Header.Set(wire.HeaderCSRF, wire.CSRFValue)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				t.Fatalf("logout = %d", resp.StatusCode)
			}
		}},
	}
	for _, e := range endings {
		t.Run(e.name, func(t *testing.T) { liveBanner(t, stackOptions{autoApprove: true, proxy: e.proxy}, e.end) })
	}
}

func liveBanner(t *testing.T, o stackOptions, end func(t *testing.T, s *stack, p *page)) {
	s := startStack(t, o)
	t.Cleanup(func() { assertLogsClean(t, s) }) // no token, secret or JWT in any server log
	tab1 := newTab(t)
	p1 := openPage(t, tab1, s)
	p1.login(false)
	p1.waitFor(`window.tether.state().connected`, stepTimeout, "tab 1's first token")
	p2 := openPage(t, siblingTab(t, tab1), s)
	p2.waitFor(`window.tether.state().connected`, stepTimeout, "tab 2's first token")
	s.waitStreams(t, 2, stepTimeout) // one per tab
	pages := []*page{p1, p2}
	for _, p := range pages {
		evalJS[bool](p, `(() => { window.__ended = null;
			window.tether.addEventListener("reconnect", (e) => { window.__ended = { at: Date.now(), reason: e.detail.reason }; });
			return true; })()`)
	}
	api0, tok0 := s.apiCalls(), s.tokenTotal()

	start := time.Now()
	end(t, s, p1)

	type ended struct {
		At     int64  `json:"at"`
		Reason string `json:"reason"`
	}
	for i, p := range pages {
		p.waitFor(`window.__ended && (() => {`+visibleJS+` return vis("#reconnect-banner"); })()`, 5*time.Second, "the reconnect banner")
		e := evalJS[ended](p, `window.__ended`)
		took := time.UnixMilli(e.At).Sub(start)
		t.Logf("tab %d: reconnect (%s) %v after the ending began", i+1, e.Reason, took)
		if e.Reason != wire.ReasonSignedOut {
			t.Errorf("tab %d: reconnect reason %q; want signed_out", i+1, e.Reason)
		}
		if took > 2*time.Second {
			t.Errorf("tab %d: the banner came %v after the ending began; want within 2 s", i+1, took)
		}
		if st := p.read(); st.Status == "connected" {
			t.Errorf("tab %d still says connected: %+v", i+1, st)
		}
	}
	// Nothing asked, then or after: the page's calls fail at once.
	for i, p := range pages {
		if r := p.callAPI(); r.Error != "TetherReconnectRequired" {
			t.Errorf("tab %d: an API call after the end: %+v; want TetherReconnectRequired, unsent", i+1, r)
		}
	}
	time.Sleep(500 * time.Millisecond)
	if api, tok := s.apiCalls(), s.tokenTotal(); api != api0 || tok != tok0 {
		t.Errorf("after the end: %d API calls and %d token requests; want 0 and 0", api-api0, tok-tok0)
	}
	if n := s.metric("tether_event_streams"); n != 0 {
		t.Errorf("%v event streams still open after the end; want 0", n)
	}
}

// TestLiveRetriesGently: a tab whose stream is refused (the session's
// bound is 1 here, and another tab holds it) asks once, then waits: its
// next GET /bff/events comes at least 4 s later, not in a loop. The other
// tab goes at once, so that next try gets its stream, and it hears the
// session's end.
func TestLiveRetriesGently(t *testing.T) {
	s := startStack(t, stackOptions{autoApprove: true, eventsPerSession: 1})
	tab1 := newTab(t)
	p1 := openPage(t, tab1, s)
	p1.login(false)
	p1.waitFor(`window.tether.state().connected`, stepTimeout, "tab 1's first token")
	s.waitStreams(t, 1, stepTimeout)

	tab2 := siblingTab(t, tab1)
	log := recordNetwork(t, tab2, false)
	p2 := openPage(t, tab2, s)
	p2.waitFor(`window.tether.state().connected`, stepTimeout, "tab 2's first token")
	events := s.d.URL + wire.PathEvents
	deadline := time.Now().Add(stepTimeout)
	for {
		got := log.matching("GET", events)
		if len(got) > 0 && got[0].Status != 0 {
			if got[0].Status != http.StatusTooManyRequests {
				t.Fatalf("tab 2's first GET /bff/events -> %d; want 429 (tab 1 holds the session's one stream)", got[0].Status)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("tab 2 did not ask for the event stream")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Tab 1 closes at once, so that its stream is gone well before tab
	// 2's next try; that try comes after its pause, not in a loop.
	step, done := context.WithTimeout(tab1, stepTimeout)
	defer done()
	if _, err := chromedp.Call(step, cdppage.Close, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	s.waitStreams(t, 0, stepTimeout)
	deadline = time.Now().Add(15 * time.Second)
	for {
		got := log.matching("GET", events)
		if len(got) > 0 && got[len(got)-1].Status == 200 && s.metric("tether_event_streams") == 1 {
			break
		}
		if time.Now().After(deadline) {
			for _, r := range got {
				t.Logf("%s %s -> %d", r.Method, r.URL, r.Status)
			}
			t.Fatal("tab 2 has no stream 15 s after tab 1 closed")
		}
		time.Sleep(100 * time.Millisecond)
	}
	got := log.matching("GET", events)
	if len(got) != 2 {
		t.Errorf("tab 2 asked for the event stream %d times in all; want 2 (refused, then served)", len(got))
	} else if pause := got[1].Sent.Sub(got[0].Sent); pause < 4*time.Second {
		t.Errorf("tab 2 asked again %v after the refusal; want a pause of at least 4 s", pause)
	}
	evalJS[bool](p2, `(() => { window.__ended = null;
		window.tether.addEventListener("reconnect", (e) => { window.__ended = e.detail.reason; });
		return true; })()`)
	if n, err := s.ctl.Backchannel(t.Context(), "alice", ""); err != nil || n != 1 {
		t.Fatalf("/control/backchannel: %d accepted, %v; want 1", n, err)
	}
	p2.waitFor(`window.__ended === "signed_out" && (() => {`+visibleJS+` return vis("#reconnect-banner"); })()`, 2*time.Second, "tab 2's reconnect banner")
}

// waitStreams waits until the BFF has n event streams open.
func (s *stack) waitStreams(t *testing.T, n float64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for s.metric("tether_event_streams") != n {
		if time.Now().After(deadline) {
			t.Fatalf("%v event streams open; want %v", s.metric("tether_event_streams"), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
