package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tetherauth/tether/bff"
	"github.com/tetherauth/tether/e2e/stack"
	"github.com/tetherauth/tether/shared/wire"
)

// referenceKey holds the reference handler's value, sized so that the
// reference's answer is as many bytes on the wire as Tether's.
const referenceKey = "bench:reference"

// serveReference is the reference process: a bare net/http handler that
// does one Redis GET (go-redis, default pool, as the vault) and writes the
// value back, served with the BFF's own server settings (bff.Serve). It is
// the floor a token endpoint backed by Redis cannot beat on this machine.
func serveReference(ctx context.Context, redisAddr, addr string, stdout io.Writer) error {
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rdb.Close()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("tether-bench: reference: %w", err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := rdb.Get(r.Context(), referenceKey).Bytes()
		if err != nil {
			http.Error(w, "redis unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(v)
	})
	fmt.Fprintf(stdout, "reference: listening on http://%s\n", ln.Addr())
	return bff.Serve(ctx, ln, h)
}

// reference is the reference process.
type reference struct {
	url  string
	proc *stack.Proc
}

// startReference re-executes this program as the reference process.
func (b *testbed) startReference(ctx context.Context) (reference, error) {
	self, err := os.Executable()
	if err != nil {
		return reference{}, fmt.Errorf("tether-bench: %w", err)
	}
	p, err := stack.Start("reference", self, []string{"-reference", "-redis", b.redis.Addr, "-listen", "127.0.0.1:0"})
	if err != nil {
		return reference{}, err
	}
	b.procs = append(b.procs, p)
	u, err := p.WaitListening("reference: listening on ", 15*time.Second)
	return reference{url: u, proc: p}, err
}

// sizeReference sets the reference's value so that its answer takes want
// bytes on the wire, and returns the answer's size as measured.
func (b *testbed) sizeReference(ctx context.Context, u, cookie string, want int) (answer, error) {
	value := 0
	for range 3 { // the value's length changes Content-Length's digits
		if _, err := b.redis.Command("SET", referenceKey, strings.Repeat("x", value)); err != nil {
			return answer{}, fmt.Errorf("tether-bench: %w", err)
		}
		a, err := answerSize(ctx, http.MethodPost, u, cookie)
		if err != nil || a.total() == want {
			return a, err
		}
		value = max(0, want-a.head)
	}
	return answer{}, fmt.Errorf("tether-bench: could not size the reference's answer to %d bytes", want)
}

// answer is the size of an HTTP answer on the wire.
type answer struct {
	head int // status line and headers
	body int
}

func (a answer) total() int { return a.head + a.body }

// answerSize sends one request like the load generator's (X-CSRF and the
// cookie) on a connection of its own and counts the bytes of the 200
// answer.
func answerSize(ctx context.Context, method, u, cookie string) (answer, error) {
	pu, err := url.Parse(u)
	if err != nil {
		return answer{}, fmt.Errorf("tether-bench: %w", err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", pu.Host)
	if err != nil {
		return answer{}, fmt.Errorf("tether-bench: %w", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	req, _ := http.NewRequestWithContext(ctx, method, u, nil)
	req.Header.Set(wire.HeaderCSRF, wire.CSRFValue)
	req.Header.Set("Cookie", cookie)
	if err := req.Write(conn); err != nil {
		return answer{}, fmt.Errorf("tether-bench: %w", err)
	}
	cr := &countingReader{r: conn}
	resp, err := http.ReadResponse(bufio.NewReader(cr), req)
	if err != nil {
		return answer{}, fmt.Errorf("tether-bench: %s: %w", u, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		return answer{}, fmt.Errorf("tether-bench: %s: %d %v", u, resp.StatusCode, err)
	}
	return answer{head: cr.n - len(body), body: len(body)}, nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}
