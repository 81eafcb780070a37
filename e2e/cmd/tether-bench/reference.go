package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tetherauth/tether/bff"
	"github.com/tetherauth/tether/e2e/stack"
)

// referenceKey holds the reference handler's value: random bytes the size
// of a real vault record.
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

// startReference re-executes this program as the reference process.
func (b *testbed) startReference(ctx context.Context) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("tether-bench: %w", err)
	}
	p, err := stack.Start("reference", self, []string{"-reference", "-redis", b.redis.Addr, "-listen", "127.0.0.1:0"})
	if err != nil {
		return "", err
	}
	b.procs = append(b.procs, p)
	return p.WaitListening("reference: listening on ", 15*time.Second)
}
