package bff

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tetherauth/tether/bff/vault/redistest"
	"github.com/tetherauth/tether/shared/wire"
)

// sse is one GET /bff/events stream as a browser's EventSource sees it.
type sse struct {
	t      *testing.T
	resp   *http.Response
	fields chan string // "event: x", "data: y", "retry: n", ":" (comments), "" (end of an event); closed at EOF
	cancel context.CancelFunc
}

// openEvents asks bffURL for the event stream with b's cookie and the
// given extra headers. The caller reads the answer (status, fields).
func (b *browser) openEvents(t *testing.T, bffURL string, header map[string]string) *sse {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r, _ := http.NewRequestWithContext(ctx, http.MethodGet, bffURL+wire.PathEvents, nil)
	r.Header.Set("Accept", "text/event-stream")
	for k, v := range header {
		r.Header.Set(k, v)
	}
	c := &http.Client{Jar: b.c.Jar} // not the recording transport: it reads bodies whole
	resp, err := c.Do(r)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	s := &sse{t: t, resp: resp, fields: make(chan string, 64), cancel: cancel}
	go func() {
		defer close(s.fields)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			s.fields <- sc.Text()
		}
	}()
	t.Cleanup(s.close)
	return s
}

// close hangs up, as a closed tab does.
func (s *sse) close() {
	s.cancel()
	s.resp.Body.Close()
}

// next returns the next event (name, data), skipping comments and
// retry fields; ok is false at the end of the stream.
func (s *sse) next(within time.Duration) (name, data string, ok bool) {
	s.t.Helper()
	timeout := time.After(within)
	for {
		select {
		case f, open := <-s.fields:
			switch {
			case !open:
				if name != "" || data != "" {
					return name, data, true
				}
				return "", "", false
			case strings.HasPrefix(f, "event: "):
				name = strings.TrimPrefix(f, "event: ")
			case strings.HasPrefix(f, "data: "):
				data = strings.TrimPrefix(f, "data: ")
			case f == "" && (name != "" || data != ""):
				return name, data, true
			}
		case <-timeout:
			s.t.Fatalf("no event within %v", within)
		}
	}
}

// expectEnded waits for the one session_ended event with reason, then
// the end of the stream.
func (s *sse) expectEnded(reason string, within time.Duration) {
	s.t.Helper()
	name, data, ok := s.next(within)
	if !ok || name != wire.EventSessionEnded {
		s.t.Fatalf("event %q %q (stream open: %v); want %s", name, data, ok, wire.EventSessionEnded)
	}
	var ev wire.SessionEnded
	if err := json.Unmarshal([]byte(data), &ev); err != nil || ev.Reason != reason {
		s.t.Fatalf("session_ended data %q; want reason %q", data, reason)
	}
	if name, data, ok := s.next(5 * time.Second); ok {
		s.t.Fatalf("after session_ended: %q %q; want the stream closed", name, data)
	}
}

// expectOpen checks the answer of a stream that stays open.
func (s *sse) expectOpen() {
	s.t.Helper()
	if s.resp.StatusCode != http.StatusOK || s.resp.Header.Get("Content-Type") != "text/event-stream" {
		s.t.Fatalf("GET /bff/events = %d %s; want 200 text/event-stream", s.resp.StatusCode, s.resp.Header.Get("Content-Type"))
	}
	if s.resp.Header.Get("X-Accel-Buffering") != "no" || s.resp.Header.Get("Cache-Control") != "no-store" {
		s.t.Errorf("stream headers %v; want X-Accel-Buffering: no and Cache-Control: no-store", s.resp.Header)
	}
}

// expectError checks a refused stream's status and error code.
func (s *sse) expectError(status int, code string) {
	s.t.Helper()
	var raw strings.Builder
	for f := range s.fields { // the reader goroutine has the body
		raw.WriteString(f)
	}
	var body wire.ErrorBody
	json.Unmarshal([]byte(raw.String()), &body)
	if s.resp.StatusCode != status || body.Error != code {
		s.t.Fatalf("GET /bff/events = %d %+v; want %d %s", s.resp.StatusCode, body, status, code)
	}
}

// metricValue reads a gauge or a counter.
func metricValue(m prometheus.Metric) float64 {
	var d dto.Metric
	m.Write(&d)
	if d.Gauge != nil {
		return d.Gauge.GetValue()
	}
	return d.Counter.GetValue()
}

// streamsOpen is every replica's tether_event_streams gauge, summed.
func (s *stack) streamsOpen() int {
	n := 0.0
	for _, h := range s.bffs {
		n += metricValue(h.metrics.eventStreams)
	}
	return int(n)
}

// TestEventsSessionEnded: streams on every replica get one session_ended
// with the reason, then close, whatever ended the session and wherever:
// a logout from another client, a revocation that a token request on
// another replica noticed, the idle timeout, the refresh token's end.
func TestEventsSessionEnded(t *testing.T) {
	cases := []struct {
		reason string
		tune   func(*Config)
		end    func(s *stack, other *browser, tok string)
	}{
		{wire.ReasonSignedOut, nil, func(s *stack, other *browser, _ string) {
			if code := other.jsonCall(http.MethodPost, s.urls[2]+wire.PathLogout, nil); code != http.StatusNoContent {
				s.t.Fatalf("logout = %d", code)
			}
		}},
		{wire.ReasonRevoked, nil, func(s *stack, other *browser, tok string) {
			s.revoke("alice")
			if r := other.token(s.urls[2], &wire.TokenRequest{Force: true, Rejected: tok}); r.err.Reason != wire.ReasonRevoked {
				s.t.Fatalf("token after the revocation: %d %+v", r.status, r.err)
			}
		}},
		{wire.ReasonExpired, func(c *Config) { c.SessionIdle = 10 * time.Minute }, func(s *stack, other *browser, _ string) {
			s.clock.Advance(time.Hour) // idle
			if r := other.token(s.urls[2], nil); r.err.Reason != wire.ReasonExpired {
				s.t.Fatalf("token after an idle hour: %d %+v", r.status, r.err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.reason, func(t *testing.T) {
			s := newStack(t, stackOptions{replicas: 3, tune: c.tune})
			b := s.newBrowser()
			b.login(s.urls[0], "/")
			tok := b.mustToken(s.urls[0], nil).AccessToken
			other := s.newBrowser() // another session, which nothing ends
			other.login(s.urls[1], "/")
			var streams []*sse
			for i := range 2 {
				st := b.openEvents(t, s.urls[i], nil)
				st.expectOpen()
				streams = append(streams, st)
			}
			untouched := other.openEvents(t, s.urls[0], nil)
			untouched.expectOpen()
			waitFor(t, "the streams to open", func() bool { return s.streamsOpen() == 3 })

			c.end(s, s.steal(b), tok)
			for _, st := range streams {
				st.expectEnded(c.reason, 5*time.Second)
			}
			waitFor(t, "the ended streams to close", func() bool { return s.streamsOpen() == 1 })
			select {
			case f := <-untouched.fields:
				if f != "" && !strings.HasPrefix(f, ":") && !strings.HasPrefix(f, "retry:") {
					t.Fatalf("another session's stream got %q", f)
				}
			case <-time.After(200 * time.Millisecond):
			}
			sent := 0.0
			for _, h := range s.bffs {
				sent += metricValue(h.metrics.eventsSent.WithLabelValues(wire.EventSessionEnded))
			}
			if sent != 2 {
				t.Errorf("tether_events_sent_total{event=session_ended} = %v; want 2", sent)
			}

			// A stream asked for after the end (a browser that reconnects)
			// gets the one event at once, and the cookie is rewritten to
			// say why; with that cookie, the same answer without Redis.
			for i := range 2 {
				st := b.openEvents(t, s.urls[1], nil)
				st.expectOpen()
				st.expectEnded(c.reason, 5*time.Second)
				if i == 0 && s.sid(b) != "" {
					t.Error("the cookie still names the ended session")
				}
			}
		})
	}
}

// TestEventsRefused: no session → 401 at once, touching no Redis key; a
// request from another origin → 403 (a configured extension's is
// welcome); more streams than the session's bound → 429, and a closed one
// frees its place.
func TestEventsRefused(t *testing.T) {
	srv := redistest.Start(t)
	ext := "chrome-extension://" + strings.Repeat("abcdefghijklmnop", 2)
	s := newStack(t, stackOptions{redisURL: "redis://" + srv.Addr, tune: func(c *Config) {
		c.EventsPerSession = 3
		c.ExtensionOrigins = []string{ext}
	}})
	u := s.urls[0]

	anon := s.newBrowser()
	before := commandCalls(t, srv)
	for range 200 {
		anon.openEvents(t, u, nil).expectError(http.StatusUnauthorized, wire.ErrReconnectRequired)
	}
	after := commandCalls(t, srv)
	for cmd, n := range after {
		if d := n - before[cmd]; cmd != "info" && d != 0 {
			t.Errorf("200 anonymous GET /bff/events made %d %s; want no Redis command", d, cmd)
		}
	}

	b := s.newBrowser()
	b.login(u, "/")
	for _, h := range []map[string]string{
		{"Origin": "http://evil.example"},
		{"Origin": "http://127.0.0.1:1"}, // another port is another origin
		{"Sec-Fetch-Site": "same-site"},
		{"Sec-Fetch-Site": "cross-site"},
		{"Origin": "chrome-extension://" + strings.Repeat("ponmlkjihgfedcba", 2)}, // another extension
	} {
		b.openEvents(t, u, h).expectError(http.StatusForbidden, wire.ErrOriginNotAllowed)
	}
	first := b.openEvents(t, u, map[string]string{"Origin": u, "Sec-Fetch-Site": "same-origin"})
	first.expectOpen()
	b.openEvents(t, u, map[string]string{"Sec-Fetch-Site": "same-origin"}).expectOpen()
	b.openEvents(t, u, map[string]string{"Origin": ext, "Sec-Fetch-Site": "none"}).expectOpen() // the extension's page
	over := b.openEvents(t, u, nil)
	if over.resp.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	over.expectError(http.StatusTooManyRequests, wire.ErrTooManyStreams)
	first.close()
	waitFor(t, "the closed stream's place to free", func() bool { return s.bffs[0].events.watcher.Watching() == 2 })
	b.openEvents(t, u, nil).expectOpen()
}

// TestEventsHeartbeatsPastTimeouts: a stream opens with its retry advice,
// carries heartbeats, and outlives the server's read and write timeouts.
func TestEventsHeartbeatsPastTimeouts(t *testing.T) {
	s := newStack(t, stackOptions{tune: func(c *Config) { c.EventsHeartbeat = 50 * time.Millisecond }})
	// The same BFF behind a server with short timeouts (Serve's are 30
	// and 60 s).
	ln, u := listen(t)
	short := &http.Server{Handler: s.bffs[0], ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond}
	go short.Serve(ln)
	t.Cleanup(func() { short.Close() })
	b := s.newBrowser()
	b.login(s.urls[0], "/")
	st := b.openEvents(t, u, nil)
	st.expectOpen()
	retry, beats := "", 0
	deadline := time.After(10 * time.Second)
	start := time.Now()
	for time.Since(start) < time.Second || beats < 5 {
		select {
		case f, ok := <-st.fields:
			switch {
			case !ok:
				t.Fatalf("stream closed after %v, %d heartbeats", time.Since(start), beats)
			case strings.HasPrefix(f, "retry: "):
				retry = f
			case strings.HasPrefix(f, ":"):
				beats++
			}
		case <-deadline:
			t.Fatalf("%d heartbeats in 10 s", beats)
		}
	}
	if ms, err := strconv.Atoi(strings.TrimPrefix(retry, "retry: ")); err != nil || ms < 5000 || ms > 7500 {
		t.Errorf("retry field %q; want 5000 to 7500 ms", retry)
	}
	if code := s.steal(b).jsonCall(http.MethodPost, s.urls[0]+wire.PathLogout, nil); code != http.StatusNoContent {
		t.Fatalf("logout = %d", code)
	}
	st.expectEnded(wire.ReasonSignedOut, 5*time.Second)
}

// TestEventsNoLeak: streams whose clients hang up leave no goroutine, no
// watch and no open-stream count behind; a shutting-down server ends its
// streams at once instead of waiting out its grace.
func TestEventsNoLeak(t *testing.T) {
	s := newStack(t, stackOptions{})
	b := s.newBrowser()
	b.login(s.urls[0], "/")
	// The subscription's goroutines start with the first stream: open and
	// close one before counting.
	b.openEvents(t, s.urls[0], nil).close()
	waitFor(t, "the first stream to go", func() bool { return s.bffs[0].events.watcher.Watching() == 0 })
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	baseline := runtime.NumGoroutine()

	var streams []*sse
	for range 4 {
		st := b.openEvents(t, s.urls[0], nil)
		st.expectOpen()
		streams = append(streams, st)
	}
	waitFor(t, "4 streams", func() bool { return s.streamsOpen() == 4 })
	for _, st := range streams {
		st.close()
	}
	waitFor(t, "the streams to close", func() bool {
		return s.streamsOpen() == 0 && s.bffs[0].events.watcher.Watching() == 0
	})
	var n int
	deadline := time.Now().Add(10 * time.Second)
	for n = runtime.NumGoroutine(); n > baseline && time.Now().Before(deadline); n = runtime.NumGoroutine() {
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		time.Sleep(20 * time.Millisecond)
	}
	if n > baseline {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines after the clients left; %d before they came:\n%s", n, baseline, buf[:runtime.Stack(buf, true)])
	}

	// Shutdown: Serve returns within its grace period's first second.
	ln, u := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan time.Duration, 1)
	go func() {
		Serve(ctx, ln, s.bffs[0])
		done <- 0
	}()
	st := b.openEvents(t, u, nil)
	st.expectOpen()
	start := time.Now()
	cancel()
	select {
	case <-done:
		if d := time.Since(start); d > time.Second {
			t.Errorf("shutdown took %v with a stream open", d)
		}
	case <-time.After(ShutdownGrace - time.Second):
		t.Fatal("a stream held the shutdown")
	}
	if _, _, ok := st.next(5 * time.Second); ok {
		t.Error("an event on shutdown; want the stream closed (the browser reconnects elsewhere)")
	}
}
