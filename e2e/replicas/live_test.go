package replicas

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherauth/tether/shared/wire"
)

// Sessions and bounds of TestLiveEndAtScale.
const (
	liveSessions = 200
	liveOthers   = 10 // bob's, which nothing ends
	// liveBound is what the test accepts from the ending to the last
	// stream's session_ended: generous, for a loaded 2-core machine; the
	// target (1 s at p99) is logged.
	liveBound = 10 * time.Second
)

// stream is one GET /bff/events as an EventSource would hold it.
type stream struct {
	resp   *http.Response
	opened chan struct{} // closed at the stream's first field (retry:)
	mu     sync.Mutex
	ended  string    // session_ended's reason
	at     time.Time // when session_ended arrived
	other  []string  // any other event
	closed chan struct{}
}

// openStream opens s's event stream on replica i.
func (c *cluster) openStream(ctx context.Context, s *session, i int) (*stream, error) {
	r, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.urls[i]+wire.PathEvents, nil)
	r.Header.Set("Accept", "text/event-stream")
	client := &http.Client{Jar: s.c.Jar, Transport: c.tr} // no timeout: it streams
	resp, err := client.Do(r)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return nil, fmt.Errorf("session %d, replica %d: GET /bff/events = %d %s", s.id, i, resp.StatusCode, body)
	}
	st := &stream{resp: resp, opened: make(chan struct{}), closed: make(chan struct{})}
	go func() {
		defer close(st.closed)
		sc := bufio.NewScanner(resp.Body)
		first, event := true, ""
		for sc.Scan() {
			line := sc.Text()
			if first {
				close(st.opened)
				first = false
			}
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				now := time.Now()
				var d wire.SessionEnded
				json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &d)
				st.mu.Lock()
				if event == wire.EventSessionEnded && st.ended == "" {
					st.ended, st.at = d.Reason, now
				} else {
					st.other = append(st.other, event+" "+line)
				}
				st.mu.Unlock()
			}
		}
		if first {
			close(st.opened)
		}
	}()
	return st, nil
}

func (st *stream) result() (reason string, at time.Time, other []string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.ended, st.at, st.other
}

// loginAs logs a session in as user (login_hint at the dev provider,
// which auto-approves).
func (c *cluster) loginAs(id int, user string) (*session, error) {
	jar, _ := cookiejar.New(nil)
	s := &session{id: id, c: &http.Client{Jar: jar, Transport: c.tr, Timeout: 30 * time.Second,
		CheckRedirect: func(r *http.Request, _ []*http.Request) error {
			if strings.HasPrefix(r.URL.String(), c.devURL) {
				q := r.URL.Query()
				q.Set("login_hint", user)
				r.URL.RawQuery = q.Encode()
			}
			return nil
		}}}
	resp, err := s.c.Get(c.urls[0] + wire.PathLogin + "?return_to=/")
	if err != nil {
		return nil, fmt.Errorf("login %d: %w", id, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Request.URL.Path != "/" || resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotFound {
		return nil, fmt.Errorf("login %d ended at %s (%d)", id, resp.Request.URL, resp.StatusCode)
	}
	return s, nil
}

// TestLiveEndAtScale (issue 14): 3 BFF processes on one redis-server, 200
// sessions of alice spread over them with an event stream each, and 10 of
// bob's. One back-channel logout token for alice, sent by the dev provider
// to replica 1, ends her sessions; every one of her streams,
// on every replica, gets one session_ended and closes; her token requests
// are 401 on every replica; bob's streams and tokens are untouched. The
// latency from the end to each stream's event is logged (target: 1 s at
// p99).
func TestLiveEndAtScale(t *testing.T) {
	// The dev provider's back-channel URI is replica 1's, known once the
	// replicas run: a relay in front of it until then.
	var target atomic.Pointer[url.URL]
	relay := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httputil.NewSingleHostReverseProxy(target.Load()).ServeHTTP(w, r)
	}))
	defer relay.Close()
	c := startCluster(t, options{devEnv: []string{"TETHER_DEV_BACKCHANNEL_URI=" + relay.URL + wire.PathBackchannel}})
	u, _ := url.Parse(c.urls[1])
	target.Store(u)
	c.tr.MaxIdleConnsPerHost = 2 * (liveSessions + liveOthers)
	n := liveSessions + liveOthers
	ss := make([]*session, n)
	errs := make([]error, n)
	runBounded(n, 16, func(i int) {
		user := "alice"
		if i >= liveSessions {
			user = "bob"
		}
		ss[i], errs[i] = c.loginAs(i, user)
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := liveSessions; i < n; i++ {
		c.mustToken(ss[i], i%len(c.urls), nil)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	streams := make([]*stream, n)
	runBounded(n, 32, func(i int) { streams[i], errs[i] = c.openStream(ctx, ss[i], i%len(c.urls)) })
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, st := range streams {
		select {
		case <-st.opened:
		case <-time.After(10 * time.Second):
			t.Fatalf("stream %d sent nothing in 10 s", i)
		}
	}

	// The ending: one back-channel logout token naming alice, which the
	// dev provider sends to replica 1.
	start := time.Now()
	accepted, err := c.ctl.Backchannel(ctx, "alice", "")
	if err != nil || accepted != 1 {
		t.Fatalf("back-channel logout: %d accepted, %v; want 1", accepted, err)
	}
	t.Logf("the back-channel call to replica 1 took %v", time.Since(start).Round(time.Millisecond))

	lat := make([]time.Duration, 0, liveSessions)
	deadline := time.After(liveBound)
	for i := range liveSessions {
		select {
		case <-streams[i].closed:
		case <-deadline:
			t.Fatalf("stream %d (replica %d) still open %v after the ending began", i, i%len(c.urls), liveBound)
		}
		reason, at, other := streams[i].result()
		if reason != wire.ReasonSignedOut || len(other) > 0 {
			t.Errorf("stream %d (replica %d): session_ended %q, other events %q; want one session_ended signed_out", i, i%len(c.urls), reason, other)
			continue
		}
		lat = append(lat, at.Sub(start))
	}
	slices.Sort(lat)
	t.Logf("session_ended after the back-channel call, over %d streams on %d replicas: p50 %v, p99 %v, max %v (target p99 ≤ 1 s)",
		len(lat), len(c.urls), pct(lat, 50).Round(time.Millisecond), pct(lat, 99).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
	if p99 := pct(lat, 99); p99 > time.Second {
		t.Logf("p99 %v is over the 1 s target (machine load?)", p99)
	}

	// Every replica refuses alice's sessions; bob's are untouched.
	runBounded(n, 32, func(i int) {
		for r := range c.urls {
			a := c.token(ss[i], r, nil)
			switch {
			case i < liveSessions && (a.status != http.StatusUnauthorized || a.err.Reason != wire.ReasonSignedOut):
				errs[i] = fmt.Errorf("alice's session %d on replica %d after the end: %v; want 401 signed_out", i, r, a)
			case i >= liveSessions && a.status != http.StatusOK:
				errs[i] = fmt.Errorf("bob's session %d on replica %d: %v; want 200", i, r, a)
			}
		}
	})
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for i := liveSessions; i < n; i++ {
		select {
		case <-streams[i].closed:
			t.Errorf("bob's stream %d closed", i)
		default:
		}
		if reason, _, other := streams[i].result(); reason != "" || len(other) > 0 {
			t.Errorf("bob's stream %d got %q %q; want nothing", i, reason, other)
		}
	}
	if n := c.sessionRecords(); n != liveOthers {
		t.Errorf("%d session records in Redis; want bob's %d", n, liveOthers)
	}
	// The per-user index: alice's is gone with her sessions, bob's stays.
	if v, err := c.redis.Command("EVAL", "return #redis.call('KEYS', ARGV[1])", "0", "tether:ix:sub:*"); err != nil || v != "1" {
		t.Errorf("per-user index keys: %q, %v; want 1 (bob's)", v, err)
	}
}
