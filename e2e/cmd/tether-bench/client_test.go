package main

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestReadAnswer: readAnswer frames every kind of answer a server may
// send, so that the next answer on the same connection starts where it
// should, and refuses what it cannot frame.
func TestReadAnswer(t *testing.T) {
	const next = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext"
	for _, tc := range []struct {
		name, answer string
		status       int
		keep         bool
	}{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: 11\r\n\r\n{\"a\":\"bcd\"}", 200, true},
		{"empty body", "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n", 401, true},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\na;ext=1\r\n0123456789\r\n0\r\n\r\n", 200, true},
		{"chunked with trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\n", 200, true},
		{"no content", "HTTP/1.1 204 No Content\r\nDate: x\r\n\r\n", 204, true},
		{"close", "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 2\r\n\r\nno", 503, false},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, false},
		{"HTTP/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", 200, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := bufio.NewReader(strings.NewReader(tc.answer + next))
			status, keep, err := readAnswer(r)
			if err != nil || status != tc.status || keep != tc.keep {
				t.Fatalf("readAnswer = %d, keep %v, %v; want %d, keep %v", status, keep, err, tc.status, tc.keep)
			}
			if status, _, err := readAnswer(r); err != nil || status != 200 {
				t.Fatalf("the answer after it: %d, %v (framed wrongly)", status, err)
			}
			if rest, _ := r.Peek(1); len(rest) != 0 {
				t.Fatalf("%q left unread", rest)
			}
		})
	}
	for _, bad := range []string{
		"HTTP/2 200\r\n\r\n",
		"HTTP/1.1 2x0 OK\r\n\r\n",
		"SSH-2.0-OpenSSH\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n",
		"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n",
	} {
		if status, _, err := readAnswer(bufio.NewReader(strings.NewReader(bad))); err == nil {
			t.Errorf("readAnswer(%q) = %d, nil; want an error", bad, status)
		}
	}
}

// TestHammer: the load generator sends the request it was given (method,
// X-CSRF, cookie, no body), keeps its connections (conc of them for a run
// of many requests), counts every non-200 as an error and redials after
// a server closes a connection.
func TestHammer(t *testing.T) {
	var requests, conns, bad atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := requests.Add(1)
		if r.Method != http.MethodPost || r.Header.Get("X-CSRF") != "1" || r.Header.Get("Cookie") != "tether_session=abc" ||
			r.Body != http.NoBody || r.URL.Path != "/bff/token" {
			bad.Add(1)
		}
		switch {
		case n%100 == 0:
			w.Header().Set("Connection", "close") // net/http closes the connection after this answer
			w.Write([]byte("bye"))
		case n%50 == 0:
			http.Error(w, "no", http.StatusServiceUnavailable)
		default:
			w.Write([]byte(`{"access_token":"x"}`))
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	r := hammer(t.Context(), "t", http.MethodPost, srv.URL+"/bff/token", []string{"tether_session=abc"}, 4, 0, 300*time.Millisecond, 0)
	total := requests.Load()
	if bad.Load() != 0 {
		t.Fatalf("%d requests differed from the one asked for", bad.Load())
	}
	if total < 400 || r.n+r.errs != total {
		t.Fatalf("%d requests reached the server, the generator counted %d ok + %d errors; want the same, and at least 400", total, r.n, r.errs)
	}
	if want := total/50 - total/100; r.errs < want-4 || r.errs > want+4 { // every 50th is a 503, but every 100th a 200 that closes
		t.Fatalf("%d errors counted for %d requests; want about %d", r.errs, total, want)
	}
	if c := conns.Load(); c < 4 || c > 4+total/100+4 {
		t.Fatalf("%d connections for %d requests over 4 clients; want 4 plus one per closed connection (%d)", c, total, total/100)
	}
	if r.p50 <= 0 || r.p99 < r.p50 || len(r.lat) != int(r.n) {
		t.Fatalf("latencies: p50 %v, p99 %v, %d recorded for %d answers", r.p50, r.p99, len(r.lat), r.n)
	}
}
