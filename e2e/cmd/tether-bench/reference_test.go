package main

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestAnswerSize: answerSize counts the status line and headers, and the
// body, of an answer exactly as a server wrote them.
func TestAnswerSize(t *testing.T) {
	const head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\nX-Extra: 1\r\n\r\n"
	const body = `{"a":"bcd"}`
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan *http.Request, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		req, err := http.ReadRequest(bufio.NewReader(conn))
		if err != nil {
			got <- nil
			return
		}
		got <- req
		conn.Write([]byte(head + body))
		<-t.Context().Done() // nothing more, and no close: the count must not wait for one
	}()
	start := time.Now()
	a, err := answerSize(t.Context(), http.MethodPost, "http://"+ln.Addr().String()+"/bff/token", "tether_session=abc")
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("answerSize took %v: it waited for the connection to close", d)
	}
	if a.head != len(head) || a.body != len(body) || a.total() != len(head)+len(body) {
		t.Fatalf("answerSize = %+v; want head %d, body %d", a, len(head), len(body))
	}
	req := <-got
	if req == nil || req.Method != http.MethodPost || req.Header.Get("X-CSRF") != "1" || !strings.Contains(req.Header.Get("Cookie"), "tether_session=abc") {
		t.Fatalf("the request was %+v; want a POST with X-CSRF and the cookie", req)
	}
}
