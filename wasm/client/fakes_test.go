package client

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetherauth/tether/shared/wire"
)

// The tests run in synctest bubbles: time.Now and time.AfterFunc, which
// the tests give the client as its clock and timer, use a fake clock that
// advances when every goroutine is blocked, and synctest.Wait lets the
// client's goroutines settle.

const api = "https://api.example"

// call is one token request as the fake BFF saw it.
type call struct {
	force    bool
	rejected string
}

// fakeSource is the BFF. reply answers the n-th request (from 0); while
// hold is non-nil, requests wait for it to be closed.
type fakeSource struct {
	mu    sync.Mutex
	calls []call
	reply func(n int, c call) (wire.TokenResponse, error)
	hold  chan struct{}
}

var _ TokenSource = (*fakeSource)(nil)

func (s *fakeSource) RequestToken(force bool, rejected string) (wire.TokenResponse, error) {
	s.mu.Lock()
	n := len(s.calls)
	s.calls = append(s.calls, call{force, rejected})
	hold, reply := s.hold, s.reply
	s.mu.Unlock()
	if hold != nil {
		<-hold
	}
	return reply(n, call{force, rejected})
}

func (s *fakeSource) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

func (s *fakeSource) call(n int) call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[n]
}

func (s *fakeSource) set(reply func(n int, c call) (wire.TokenResponse, error), hold chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if reply != nil {
		s.reply = reply
	}
	s.hold = hold
}

// issuing hands out tok-1, tok-2, ... living life seconds, with buffer.
func issuing(life, buffer int64) func(int, call) (wire.TokenResponse, error) {
	return func(n int, _ call) (wire.TokenResponse, error) {
		return tokenN(n+1, life, buffer), nil
	}
}

func tokenN(n int, life, buffer int64) wire.TokenResponse {
	tr := wire.TokenResponse{AccessToken: "tok-" + strconv.Itoa(n), TokenType: wire.TokenTypeBearer, ExpiresIn: life, RefreshBuffer: buffer}
	if life > 0 {
		tr.ExpiresAt = time.Now().Unix() + life
	}
	return tr
}

func failing(err error) func(int, call) (wire.TokenResponse, error) {
	return func(int, call) (wire.TokenResponse, error) { return wire.TokenResponse{}, err }
}

var (
	errRevoked = &ResponseError{Status: 401, Body: wire.ErrorBody{Error: wire.ErrReconnectRequired, Reason: wire.ReasonRevoked}}
	errOutage  = &ResponseError{Status: 503, Body: wire.ErrorBody{Error: wire.ErrProviderUnavailable}, RetryAfter: 7 * Second}
)

// recorder collects events and what OnToken receives, and the order of
// both.
type recorder struct {
	mu     sync.Mutex
	evs    []Event
	pushes []push
	seq    []string // "kind" for an event, "set(token)" for a push
}

// push is one OnToken call.
type push struct {
	token string
	until int64
}

func (r *recorder) add(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, e)
	r.seq = append(r.seq, e.Kind)
}

func (r *recorder) setToken(token string, until int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pushes = append(r.pushes, push{token, until})
	r.seq = append(r.seq, "set("+token+")")
}

// last is what the page's copy holds: the last push.
func (r *recorder) last() push {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pushes) == 0 {
		return push{}
	}
	return r.pushes[len(r.pushes)-1]
}

// sequence is seq joined by spaces.
func (r *recorder) sequence() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.seq, " ")
}

// memo is what a page holding the last push would attach at now.
func (r *recorder) memo(now int64) string {
	if p := r.last(); now < p.until {
		return p.token
	}
	return ""
}

func (r *recorder) events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.evs...)
}

func (r *recorder) kinds() string {
	var ks []string
	for _, e := range r.events() {
		k := e.Kind
		if e.Reason != "" {
			k += "(" + e.Reason + ")"
		}
		ks = append(ks, k)
	}
	return strings.Join(ks, " ")
}

func (r *recorder) count(kind string) int {
	n := 0
	for _, e := range r.events() {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

// recorders maps a Client made by newClient to its recorder, for wantCached.
var recorders sync.Map

// newClient builds a Client with no jitter, recording its events and token
// pushes; it is closed when the test ends.
func newClient(t *testing.T, src TokenSource, opts ...func(*Config)) (*Client, *recorder) {
	t.Helper()
	rec := &recorder{}
	cfg := Config{
		Source: src, APIOrigins: []string{api}, OnEvent: rec.add, OnToken: rec.setToken,
		Now:       func() int64 { return time.Now().UnixMilli() },
		AfterFunc: func(ms int64, f func()) Timer { return time.AfterFunc(time.Duration(ms)*time.Millisecond, f) },
		Rand:      func() float64 { return 0 },
	}
	for _, o := range opts {
		o(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	recorders.Store(c, rec)
	t.Cleanup(func() {
		recorders.Delete(c)
		c.Close()
		if p := rec.last(); p.token != "" {
			t.Errorf("after Close the page's copy still holds %q", p.token)
		}
		for _, e := range rec.events() {
			if strings.Contains(e.Reason, "tok-") {
				t.Errorf("event %+v carries a token", e)
			}
		}
	})
	return c, rec
}

func mustToken(t *testing.T, c *Client, want string) {
	t.Helper()
	got, err := c.Token()
	if err != nil || got != want {
		t.Fatalf("Token() = %q, %v; want %q", got, err, want)
	}
}

// wantCached checks Cached, and that the copy OnToken keeps gives the same
// answer.
func wantCached(t *testing.T, c *Client, want string) {
	t.Helper()
	got, ok := c.Cached(api)
	if ok != (want != "") || got != want {
		t.Fatalf("Cached(%q) = %q, %v; want %q", api, got, ok, want)
	}
	if rec, ok := recorders.Load(c); ok {
		now := time.Now().UnixMilli()
		if memo := rec.(*recorder).memo(now); memo != want {
			t.Fatalf("the page's copy gives %q (last push %+v, now %d); Cached gives %q", memo, rec.(*recorder).last(), now, want)
		}
	}
}
