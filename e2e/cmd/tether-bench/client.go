package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"time"

	"github.com/tetherauth/tether/shared/wire"
)

// The load generator shares the CPUs with the servers it measures, so it
// must take as little of them as it can, and the same for every target.
// net/http's client did neither: it took about as much CPU per request as
// the servers (a Request, a header map, two goroutines and channel
// handoffs per connection) and parsed every answer header into a map, so
// the target with more headers lost throughput to the client's work, and
// both targets lost a fixed share that pulled their ratio towards 1.
// loadConn works as wrk does: a request built once, written as bytes on a
// kept-alive connection, and an answer read for its status and framing
// only, its body discarded. On this machine wrk and loadConn agree on the
// ratio of the two targets' throughput (README, Performance).

// loadRequest builds the bytes of one HTTP/1.1 request: method on u with
// X-CSRF and cookie (when not empty); a POST says Content-Length: 0, as
// net/http's client does for a request without a body. It returns the
// address to dial too.
func loadRequest(method, u, cookie string) (addr string, req []byte, err error) {
	pu, err := url.Parse(u)
	if err != nil || pu.Scheme != "http" || pu.Host == "" {
		return "", nil, fmt.Errorf("tether-bench: %q is not an http:// URL", u)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n%s: %s\r\n", method, pu.RequestURI(), pu.Host, wire.HeaderCSRF, wire.CSRFValue)
	if cookie != "" {
		fmt.Fprintf(&b, "Cookie: %s\r\n", cookie)
	}
	if method == "POST" {
		b.WriteString("Content-Length: 0\r\n")
	}
	b.WriteString("\r\n")
	return pu.Host, b.Bytes(), nil
}

// loadConn is one client of the load generator: a kept-alive connection
// that sends the same request again and again, redialling when the
// server closes it.
type loadConn struct {
	addr     string
	req      []byte
	deadline time.Time // of every connection: the end of the run plus a margin
	conn     net.Conn
	r        *bufio.Reader
}

// do sends the request once and returns the answer's status code.
func (c *loadConn) do() (int, error) {
	if c.conn == nil {
		conn, err := net.DialTimeout("tcp", c.addr, 10*time.Second)
		if err != nil {
			return 0, err
		}
		conn.SetDeadline(c.deadline) // once: a deadline per request costs the client a timer each
		c.conn, c.r = conn, bufio.NewReaderSize(conn, 16<<10)
	}
	if _, err := c.conn.Write(c.req); err != nil {
		c.close()
		return 0, err
	}
	status, keep, err := readAnswer(c.r)
	if err != nil || !keep {
		c.close()
	}
	return status, err
}

func (c *loadConn) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn, c.r = nil, nil
	}
}

// errAnswer is an answer readAnswer cannot frame.
var errAnswer = errors.New("tether-bench: malformed HTTP answer")

// readAnswer reads one HTTP/1.1 answer from r, its body discarded, and
// returns its status code and whether the connection can carry another
// request. It frames the body by Transfer-Encoding: chunked, else
// Content-Length, else the connection's end; it reads no header into
// memory beyond the line it looks at.
func readAnswer(r *bufio.Reader) (status int, keep bool, err error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, false, errAnswer
	}
	if status = digits(line[9:12]); status < 100 {
		return 0, false, errAnswer
	}
	keep = line[7] == '1' // HTTP/1.0 closes unless it says keep-alive
	length, chunked := -1, false
	for {
		line, err = r.ReadSlice('\n')
		if err != nil {
			return status, false, err
		}
		h := bytes.TrimRight(line, "\r\n")
		if len(h) == 0 {
			break
		}
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return status, false, errAnswer
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length = digits(value); length < 0 {
				return status, false, errAnswer
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			switch {
			case bytes.EqualFold(value, []byte("close")):
				keep = false
			case bytes.EqualFold(value, []byte("keep-alive")):
				keep = true
			}
		}
	}
	switch {
	case status == 204 || status == 304 || status < 200:
		return status, keep, nil
	case chunked:
		return status, keep, discardChunks(r)
	case length >= 0:
		_, err = r.Discard(length)
		return status, keep, err
	}
	_, err = io.Copy(io.Discard, r) // framed by the connection's end
	return status, false, err
}

// discardChunks reads a chunked body and its trailer.
func discardChunks(r *bufio.Reader) error {
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return err
		}
		size := 0
		for _, c := range bytes.TrimRight(line, "\r\n") {
			d := hexDigit(c)
			if d < 0 {
				if c == ';' { // a chunk extension
					break
				}
				return errAnswer
			}
			if size > 1<<30 {
				return errAnswer
			}
			size = size<<4 | d
		}
		if size == 0 {
			for { // the trailer, up to its empty line
				line, err := r.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					return nil
				}
			}
		}
		if _, err := r.Discard(size + 2); err != nil { // the data and its CRLF
			return err
		}
	}
}

// digits is the decimal number b spells, or -1 when it is not one (or
// longer than 9 digits).
func digits(b []byte) int {
	if len(b) == 0 || len(b) > 9 {
		return -1
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

func hexDigit(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
