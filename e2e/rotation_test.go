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
// requests for the new token follow within a second.
type refreshCycle struct {
	at          float64
	requests    int // POST /bff/token in the cycle
	inFlight    int // API calls sent before at and not answered by then
	after401    int // API 401s of calls sent after at
	inFlight401 int // API 401s of calls in flight at at
	notes       []string
}

// cycles groups the token requests since from into refreshes and
// attributes every API 401 to one; it returns the 401s it cannot
// attribute and the total number of 401s.
func (r *callRecorder) cycles(from int) (cs []refreshCycle, stray, total int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var api []timedCall
	for _, c := range r.calls[from:] {
		if c.api {
			api = append(api, *c)
			continue
		}
		if len(cs) == 0 || c.start-cs[len(cs)-1].at > 1.5 {
			cs = append(cs, refreshCycle{at: c.start})
		}
		cs[len(cs)-1].requests++
	}
	for i := range cs {
		for _, a := range api {
			if a.start < cs[i].at && (a.end == 0 || a.end > cs[i].at) {
				cs[i].inFlight++
			}
		}
	}
	for _, a := range api {
		if a.status != 401 {
			continue
		}
		total++
		// The latest refresh request sent before this call, if recent.
		k := -1
		for i := range cs {
			if cs[i].at <= a.start {
				k = i
			}
		}
		if k >= 0 && a.start-cs[k].at < 3 {
			cs[k].after401++
			cs[k].notes = append(cs[k].notes, fmt.Sprintf("401: tab %d sent %+.3fs answered %+.3fs with …%s", a.tab, a.start-cs[k].at, a.end-cs[k].at, a.auth))
			continue
		}
		// Else a call in flight when a refresh request left.
		k = slices.IndexFunc(cs, func(c refreshCycle) bool { return a.start < c.at && (a.end == 0 || a.end > c.at) })
		if k >= 0 {
			cs[k].inFlight401++
			cs[k].notes = append(cs[k].notes, fmt.Sprintf("401: tab %d sent %+.3fs answered %+.3fs with …%s", a.tab, a.start-cs[k].at, a.end-cs[k].at, a.auth))
			continue
		}
		stray++
	}
	return cs, stray, total
}

const rotationLoopJS = `(() => {
	window.__rot = { statuses: [] };
	__rot.timer = setInterval(() => window.tether.fetch(API).then((r) => __rot.statuses.push(r.status), (e) => __rot.statuses.push(e.name)), 50);
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
	stop := func(p *page) []any {
		return evalJS[[]any](p, `(() => { clearInterval(window.__rot.timer); return window.__rot.statuses; })()`)
	}
	phase := func(name string, pages []*page) {
		t.Helper()
		from, st0 := rec.mark(), s.stats()
		for _, p := range pages {
			loop(p)
		}
		deadline := time.Now().Add(time.Duration(refreshes+2) * ttl)
		for s.stats().RefreshToken < st0.RefreshToken+refreshes && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(time.Second) // the last refresh's followers
		calls, bad := 0, 0
		for _, p := range pages {
			for _, v := range stop(p) {
				calls++
				if v != float64(200) {
					bad++
				}
			}
		}
		time.Sleep(500 * time.Millisecond) // the last calls land
		st1 := s.stats()
		cs, stray, total := rec.cycles(from)
		var per []string
		for i, c := range cs {
			per = append(per, fmt.Sprintf("refresh %d: %d token requests, %d API 401s for calls sent after it, %d for the %d calls in flight",
				i+1, c.requests, c.after401, c.inFlight401, c.inFlight))
			for _, n := range c.notes {
				per = append(per, "  "+n)
			}
			if c.after401 > 0 {
				t.Errorf("%s, refresh %d: the API answered 401 to %d calls sent after the refresh request; want 0", name, i+1, c.after401)
			}
			if c.inFlight401 > c.inFlight {
				t.Errorf("%s, refresh %d: %d 401s for %d calls in flight", name, i+1, c.inFlight401, c.inFlight)
			}
		}
		t.Logf("%s: %d calls (%d not 200), %d refreshes, %d API 401s (%d stray)\n  %s",
			name, calls, bad, st1.RefreshToken-st0.RefreshToken, st1.API401-st0.API401, stray, strings.Join(per, "\n  "))
		if got := st1.RefreshToken - st0.RefreshToken; got < refreshes || got != int64(len(cs)) {
			t.Errorf("%s: %d refreshes at the provider for %d refresh cycles in the browser; want one per cycle, at least %d", name, got, len(cs), refreshes)
		}
		if st1.RefreshReuse != st0.RefreshReuse {
			t.Errorf("%s: a refresh token was reused", name)
		}
		if d := st1.API401 - st0.API401; d != int64(total) {
			t.Errorf("%s: the API counted %d 401s, DevTools saw %d", name, d, total)
		}
		if stray > 0 {
			t.Errorf("%s: %d API 401s belong to no refresh", name, stray)
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
