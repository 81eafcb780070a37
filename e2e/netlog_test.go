package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// netLog records a tab's traffic through the DevTools Network domain
// (which chromedp enables in every tab): every request with its headers,
// every response with its headers, the raw headers on the wire (Set-Cookie
// and Cookie included) and, when asked, every response body.
type netLog struct {
	t   testing.TB
	tab context.Context

	mu       sync.Mutex
	requests []*netRequest // in the order they were sent; a redirect adds one
	current  map[network.RequestID]*netRequest
	raw      []rawHeaders // ExtraInfo events, in order
	bodies   map[network.RequestID][]byte
	bodyErrs map[network.RequestID]error
	pending  sync.WaitGroup
}

// netRequest is one HTTP exchange (one hop of a redirect chain).
type netRequest struct {
	ID          network.RequestID
	URL, Method string
	Type        network.ResourceType
	Headers     network.Headers // as the page made them
	Status      int64
	RespHeaders network.Headers
	MimeType    string
	Finished    bool
	Failed      string
	Sent        time.Time // when the test heard of the request
}

// rawHeaders are headers as sent or received on the wire.
type rawHeaders struct {
	ID       network.RequestID
	Response bool
	Headers  network.Headers
}

// recordNetwork starts recording tab's traffic; with bodies it also fetches
// every response body as soon as its loading finishes.
func recordNetwork(t testing.TB, tab context.Context, bodies bool) *netLog {
	t.Helper()
	l := &netLog{
		t: t, tab: tab,
		current:  map[network.RequestID]*netRequest{},
		bodies:   map[network.RequestID][]byte{},
		bodyErrs: map[network.RequestID]error{},
	}
	ctx, cancel := context.WithCancel(tab)
	t.Cleanup(func() { cancel(); l.pending.Wait() })
	err := chromedp.Listen(ctx, func(ev any) {
		// Runs on the tab's reader goroutine: record and return quickly.
		l.mu.Lock()
		defer l.mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			if prev := l.current[ev.RequestID]; prev != nil && ev.RedirectResponse != nil {
				prev.Status, prev.RespHeaders, prev.Finished = ev.RedirectResponse.Status, ev.RedirectResponse.Headers, true
			}
			r := &netRequest{ID: ev.RequestID, URL: ev.Request.URL, Method: ev.Request.Method, Type: ev.Type, Headers: ev.Request.Headers, Sent: time.Now()}
			l.requests = append(l.requests, r)
			l.current[ev.RequestID] = r
		case *network.EventResponseReceived:
			if r := l.current[ev.RequestID]; r != nil {
				r.Status, r.RespHeaders, r.MimeType = ev.Response.Status, ev.Response.Headers, ev.Response.MimeType
			}
		case *network.EventLoadingFinished:
			if r := l.current[ev.RequestID]; r != nil {
				r.Finished = true
			}
			if bodies {
				l.pending.Add(1)
				go l.fetchBody(ctx, ev.RequestID)
			}
		case *network.EventLoadingFailed:
			if r := l.current[ev.RequestID]; r != nil {
				r.Failed = ev.ErrorText
			}
		case *network.EventRequestWillBeSentExtraInfo:
			l.raw = append(l.raw, rawHeaders{ID: ev.RequestID, Headers: ev.Headers})
		case *network.EventResponseReceivedExtraInfo:
			l.raw = append(l.raw, rawHeaders{ID: ev.RequestID, Response: true, Headers: ev.Headers})
		}
	})
	if err != nil {
		t.Fatalf("listening to the network: %v", err)
	}
	return l
}

// fetchBody asks the browser for a response body while it still has it.
func (l *netLog) fetchBody(ctx context.Context, id network.RequestID) {
	defer l.pending.Done()
	step, done := context.WithTimeout(ctx, stepTimeout)
	defer done()
	res, err := chromedp.Call(step, network.GetResponseBody, network.GetResponseBodyParams{RequestID: id})
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.bodyErrs[id] = err
		return
	}
	body := res.Body
	if res.Base64encoded {
		if dec, err := base64.StdEncoding.DecodeString(string(body)); err == nil {
			body = dec
		}
	}
	l.bodies[id] = body
}

// wait waits for the body fetches in progress.
func (l *netLog) wait() { l.pending.Wait() }

// matching returns the requests whose URL has the prefix and, when method
// is not empty, that method.
func (l *netLog) matching(method, prefix string) []netRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []netRequest
	for _, r := range l.requests {
		if strings.HasPrefix(r.URL, prefix) && (method == "" || r.Method == method) {
			out = append(out, *r)
		}
	}
	return out
}

// count is len(matching(method, prefix)), CORS preflights excluded.
func (l *netLog) count(method, prefix string) int {
	n := 0
	for _, r := range l.matching(method, prefix) {
		if r.Type != network.ResourceTypePreflight && r.Method != "OPTIONS" {
			n++
		}
	}
	return n
}

// header returns a header from a CDP header map, case-insensitively.
func header(h network.Headers, name string) (string, bool) {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return fmt.Sprint(v), true
		}
	}
	return "", false
}

// leak is a secret found where the browser can read it.
type leak struct {
	Where  string // what was scanned
	Needle string // which pattern matched
}

// scan looks for each needle in every URL, header (as the page saw them and
// raw), and recorded body, and returns where each was found. binaryMatch
// decides for bodies that are not text.
func (l *netLog) scan(needles []string, binaryMatch func(body []byte) []string) []leak {
	l.mu.Lock()
	defer l.mu.Unlock()
	var found []leak
	look := func(where, text string) {
		for _, n := range needles {
			if strings.Contains(text, n) {
				found = append(found, leak{where, n})
			}
		}
	}
	byID := map[network.RequestID]*netRequest{}
	for _, r := range l.requests {
		byID[r.ID] = r
		look("URL "+r.URL, r.URL)
		look("request headers of "+r.URL, headerText(r.Headers))
		look("response headers of "+r.URL, headerText(r.RespHeaders))
	}
	for _, h := range l.raw {
		kind := "raw request headers of "
		if h.Response {
			kind = "raw response headers of "
		}
		look(kind+urlOf(byID[h.ID]), headerText(h.Headers))
	}
	for id, body := range l.bodies {
		r := byID[id]
		where := "body of " + urlOf(r)
		if r != nil && isBinary(r.MimeType) {
			for _, n := range binaryMatch(body) {
				found = append(found, leak{where, n})
			}
			continue
		}
		look(where, string(body))
	}
	return found
}

// bodyOf returns the recorded bodies of the responses whose URL has prefix.
func (l *netLog) bodyOf(prefix string) [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out [][]byte
	for _, r := range l.requests {
		if b, ok := l.bodies[r.ID]; ok && strings.HasPrefix(r.URL, prefix) {
			out = append(out, b)
		}
	}
	return out
}

// rawSetCookies returns the raw Set-Cookie header lines received.
func (l *netLog) rawSetCookies() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, h := range l.raw {
		if v, ok := header(h.Headers, "Set-Cookie"); ok && h.Response {
			out = append(out, strings.Split(v, "\n")...)
		}
	}
	return out
}

// summary lists the recorded requests, for a log line.
func (l *netLog) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	counts := map[string]int{}
	for _, r := range l.requests {
		u, err := url.Parse(r.URL)
		key := r.Method + " " + r.URL
		if err == nil {
			key = r.Method + " " + u.Host + u.Path
		}
		counts[key]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "  %3d %s\n", counts[k], k)
	}
	fmt.Fprintf(&b, "  bodies %d, body errors %d, raw header sets %d", len(l.bodies), len(l.bodyErrs), len(l.raw))
	return b.String()
}

func headerText(h network.Headers) string {
	var b strings.Builder
	for k, v := range h {
		fmt.Fprintf(&b, "%s: %v\n", k, v)
	}
	return b.String()
}

func urlOf(r *netRequest) string {
	if r == nil {
		return "(unknown request)"
	}
	return r.URL
}

func isBinary(mime string) bool {
	return mime == "application/wasm" || strings.HasPrefix(mime, "image/") || mime == "application/octet-stream"
}
