package e2e

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// rotationDelay is how long the BFF's answers to POST /bff/token take to
// reach the page (DevTools holds them): the time between the provider
// killing the old access token and the page holding the new one, which a
// real deployment spends on the provider's and the network's round trips.
const rotationDelay = 200 * time.Millisecond

// timedCall is one request of a tab, with the browser's monotonic times.
type timedCall struct {
	tab        int
	api        bool    // GET /api/me; else POST /bff/token
	start, end float64 // seconds; end is 0 until the response came
	status     int64
	auth       string // the token's last characters
}

// callRecorder records the API calls and token requests of several tabs
// and delays the BFF's token answers by rotationDelay.
type callRecorder struct {
	mu      sync.Mutex
	calls   []*timedCall
	byID    map[string]*timedCall
	pending sync.WaitGroup
}

func newCallRecorder(t *testing.T) *callRecorder {
	r := &callRecorder{byID: map[string]*timedCall{}}
	t.Cleanup(r.pending.Wait)
	return r
}

// watch starts recording tab n (before its page loads) and holding its
// token answers.
func (r *callRecorder) watch(t *testing.T, tab context.Context, n int, s *stack) {
	t.Helper()
	ctx, cancel := context.WithCancel(tab)
	t.Cleanup(cancel)
	api, token := s.d.DevURL+"/api/me", s.d.URL+"/bff/token"
	err := chromedp.Listen(ctx, func(ev any) {
		r.mu.Lock()
		defer r.mu.Unlock()
		key := func(id network.RequestID) string { return strconv.Itoa(n) + ":" + string(id) }
		switch ev := ev.(type) {
		case *fetch.EventRequestPaused:
			r.pending.Add(1)
			go func() {
				defer r.pending.Done()
				time.Sleep(rotationDelay)
				chromedp.Call(ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
			}()
		case *network.EventRequestWillBeSent:
			isAPI := ev.Request.Method == "GET" && strings.HasPrefix(ev.Request.URL, api)
			isToken := ev.Request.Method == "POST" && ev.Request.URL == token
			if ev.Type == network.ResourceTypePreflight || !(isAPI || isToken) {
				return
			}
			c := &timedCall{tab: n, api: isAPI, start: ev.Timestamp.Float64()}
			if a, ok := header(ev.Request.Headers, "Authorization"); ok && len(a) > 6 {
				c.auth = a[len(a)-6:]
			}
			r.calls = append(r.calls, c)
			r.byID[key(ev.RequestID)] = c
		case *network.EventResponseReceived:
			if c := r.byID[key(ev.RequestID)]; c != nil {
				c.status, c.end = ev.Response.Status, ev.Timestamp.Float64()
			}
		case *network.EventLoadingFailed:
			if c := r.byID[key(ev.RequestID)]; c != nil && c.end == 0 {
				c.status, c.end = -1, ev.Timestamp.Float64()
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	step, done := context.WithTimeout(tab, stepTimeout)
	defer done()
	if _, err := chromedp.Call(step, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{
		{URLPattern: "*/bff/token", RequestStage: fetch.RequestStageResponse},
	}}); err != nil {
		t.Fatal(err)
	}
}

// mark is where a phase starts in the record.
func (r *callRecorder) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

// refreshCycle is one refresh as the browser saw it: at is when the first
// POST /bff/token of the cycle left (the refresh request); the other tabs'
// requests for the new token follow it.
type refreshCycle struct {
	at          float64
	got         map[int]float64 // tab -> when its first token answer of the cycle came
	requests    int             // POST /bff/token in the cycle
	inFlight    int             // API calls sent before at and not answered by then
	after401    int             // API 401s of calls sent after at, before their tab had the new token
	late401     int             // the same, but sent after the tab's hold ran out (holdBound): as designed
	inFlight401 int             // API 401s of calls in flight at at
	notes       []string
}

// holdBound is how long the client holds new calls for a refresh at most
// (wasm/client's maxHold): past it, a call goes with the old token, as it
// should, and meets a 401 when the provider already killed that token.
const holdBound = 2.0

// cycles groups the token requests since from into refreshes (a new one
// starts at a request more than window seconds after the cycle's first)
// and attributes every API 401 to one; it returns the 401s it cannot
// attribute and the total number of 401s.
func (r *callRecorder) cycles(from int, window float64) (cs []refreshCycle, stray []string, total int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var api []timedCall
	for _, c := range r.calls[from:] {
		if c.api {
			api = append(api, *c)
			continue
		}
		if len(cs) == 0 || c.start-cs[len(cs)-1].at > window {
			cs = append(cs, refreshCycle{at: c.start, got: map[int]float64{}})
		}
		cy := &cs[len(cs)-1]
		cy.requests++
		if _, ok := cy.got[c.tab]; !ok && c.end != 0 {
			cy.got[c.tab] = c.end
		}
	}
	for i := range cs {
		for _, a := range api {
			if a.start < cs[i].at && (a.end == 0 || a.end > cs[i].at) {
				cs[i].inFlight++
			}
		}
	}
	note := func(c *refreshCycle, a timedCall, what string) {
		c.notes = append(c.notes, fmt.Sprintf("401 (%s): tab %d sent %+.3fs, answered %+.3fs, with …%s", what, a.tab, a.start-c.at, a.end-c.at, a.auth))
	}
	for _, a := range api {
		if a.status != 401 {
			continue
		}
		total++
		// Sent after the latest refresh request, before its tab had the new token?
		k := -1
		for i := range cs {
			if cs[i].at <= a.start {
				k = i
			}
		}
		if k >= 0 {
			c := &cs[k]
			if got, ok := c.got[a.tab]; !ok || a.start < got {
				if a.start-c.at >= holdBound {
					c.late401++
					note(c, a, "past the hold")
				} else {
					c.after401++
					note(c, a, "sent after the refresh request")
				}
				continue
			}
		}
		// Else a call in flight when a refresh request left.
		k = slices.IndexFunc(cs, func(c refreshCycle) bool { return a.start < c.at && (a.end == 0 || a.end > c.at) })
		if k >= 0 {
			cs[k].inFlight401++
			note(&cs[k], a, "in flight")
			continue
		}
		stray = append(stray, fmt.Sprintf("tab %d sent at %.3f, answered at %.3f, with …%s", a.tab, a.start, a.end, a.auth))
	}
	return cs, stray, total
}

// rotationLoopJS calls the API every 50 ms, with at most 8 calls out at
// once (enough for those held during a refresh): on a machine too busy to
// answer in time the ticks are skipped, rather than piling up calls until
// each takes seconds.
const rotationLoopJS = `(() => {
	window.__rot = { statuses: [], out: 0, skipped: 0 };
	__rot.timer = setInterval(() => {
		if (__rot.out >= 8) { __rot.skipped++; return; }
		__rot.out++;
		window.tether.fetch(API)
			.then((r) => __rot.statuses.push(r.status), (e) => __rot.statuses.push(e.name))
			.finally(() => __rot.out--);
	}, 50);
	return true;
})()`

// TestRotationWithoutAPI401s: the provider kills an access token the
// moment it is refreshed (GitHub's behaviour), and the new token reaches
// the page 200 ms later. One tab calls the API every 50 ms across five
// refreshes, then three tabs do: a call that starts after a tab sent its
// refresh request (or learnt that a sibling did) waits for the new token,
// so the API answers no 401 to it; only calls already in flight may meet
// one (and are retried once). One refresh per token lifetime all along.
func TestRotationWithoutAPI401s(t *testing.T) {
	const (
		ttl       = 10 * time.Second
		refreshes = 5
	)
	s := startStack(t, stackOptions{accessTTL: ttl, autoApprove: true, revokeOnRefresh: true})
	rec := newCallRecorder(t)
	tab := newTab(t)
	rec.watch(t, tab, 1, s)
	p1 := openPage(t, tab, s)
	p1.login(false)
	p1.waitFor(`window.tether.state().connected`, stepTimeout, "a first token")

	loop := func(p *page) {
		evalJS[bool](p, `(() => { const API = `+strconv.Quote(s.d.DevURL+"/api/me")+`; return `+rotationLoopJS+`; })()`)
	}
	type loopResult struct {
		Statuses []any `json:"statuses"`
		Skipped  int   `json:"skipped"`
	}
	stop := func(p *page) loopResult {
		return evalJS[loopResult](p, `(() => { clearInterval(window.__rot.timer); return { statuses: __rot.statuses, skipped: __rot.skipped }; })()`)
	}
	// refreshed waits for the provider's refresh count to reach n, then for
	// the other tabs' reads of the new token: a phase starts and ends in the
	// quiet that follows a refresh (the next one is 6 s or more away), so
	// that the browser's record and the provider's count cover the same
	// refreshes.
	refreshed := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(time.Duration(refreshes+2) * ttl)
		for s.stats().RefreshToken < n {
			if time.Now().After(deadline) {
				t.Fatalf("the provider's refresh count is %d after %v; want %d", s.stats().RefreshToken, time.Duration(refreshes+2)*ttl, n)
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(1500 * time.Millisecond)
	}
	phase := func(name string, pages []*page) {
		t.Helper()
		refreshed(s.stats().RefreshToken + 1)
		from, st0 := rec.mark(), s.stats()
		for _, p := range pages {
			loop(p)
		}
		refreshed(st0.RefreshToken + refreshes)
		calls, bad, skipped := 0, 0, 0
		for _, p := range pages {
			r := stop(p)
			skipped += r.Skipped
			for _, v := range r.Statuses {
				calls++
				if v != float64(200) {
					bad++
				}
			}
		}
		time.Sleep(500 * time.Millisecond) // the last calls land
		st1 := s.stats()
		cs, stray, total := rec.cycles(from, ttl.Seconds()/4)
		if st2 := s.stats(); st2.RefreshToken != st1.RefreshToken {
			t.Fatalf("%s: a refresh started while the phase was being counted", name)
		}
		var per []string
		for i, c := range cs {
			per = append(per, fmt.Sprintf("refresh %d: %d token requests, %d API 401s for calls sent after it (and %d past the %.0f s hold), %d for the %d calls in flight",
				i+1, c.requests, c.after401, c.late401, holdBound, c.inFlight401, c.inFlight))
			for _, n := range c.notes {
				per = append(per, "  "+n)
			}
			if c.after401 > 0 {
				t.Errorf("%s, refresh %d: the API answered 401 to %d calls sent after the refresh request, within the hold; want 0", name, i+1, c.after401)
			}
			if c.inFlight401 > c.inFlight {
				t.Errorf("%s, refresh %d: %d 401s for %d calls in flight", name, i+1, c.inFlight401, c.inFlight)
			}
		}
		t.Logf("%s: %d calls (%d not 200, %d ticks skipped: 8 calls out), %d refreshes, %d API 401s (%d stray)\n  %s",
			name, calls, bad, skipped, st1.RefreshToken-st0.RefreshToken, st1.API401-st0.API401, len(stray), strings.Join(per, "\n  "))
		if got := st1.RefreshToken - st0.RefreshToken; got < refreshes || got != int64(len(cs)) {
			t.Errorf("%s: %d refreshes at the provider for %d refresh cycles in the browser; want one per cycle, at least %d", name, got, len(cs), refreshes)
		}
		if st1.RefreshReuse != st0.RefreshReuse {
			t.Errorf("%s: a refresh token was reused", name)
		}
		if d := st1.API401 - st0.API401; d != int64(total) {
			t.Errorf("%s: the API counted %d 401s, DevTools saw %d", name, d, total)
		}
		if len(stray) > 0 {
			t.Errorf("%s: %d API 401s belong to no refresh:\n%s", name, len(stray), strings.Join(stray, "\n"))
		}
		if calls < 100 || bad > 0 {
			t.Errorf("%s: %d calls, %d not 200; want ≥ 100, all 200", name, calls, bad)
		}
	}

	phase("one tab", []*page{p1})

	pages := []*page{p1}
	for n := 2; n <= 3; n++ {
		sib := siblingTab(t, tab)
		rec.watch(t, sib, n, s)
		p := openPage(t, sib, s)
		p.waitFor(`window.tether.state().connected`, stepTimeout, "tab "+strconv.Itoa(n)+"'s first token")
		pages = append(pages, p)
	}
	phase("three tabs", pages)
}
