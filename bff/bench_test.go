package bff

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/devprovider"
	"github.com/tetherauth/tether/bff/vault/redistest"
	"github.com/tetherauth/tether/shared/wire"
)

// benchStores runs a benchmark on the embedded Redis and on a real
// redis-server.
func benchStores(b *testing.B, fn func(b *testing.B, redisURL string)) {
	b.Run("miniredis", func(b *testing.B) { fn(b, "") })
	b.Run("redis-server", func(b *testing.B) { fn(b, "redis://"+redistest.Start(b).Addr) })
}

// BenchmarkTokenHotPath is POST /bff/token for a session whose token is
// fresh: cookie decode, one vault read, AES-GCM open, JSON out, over real
// loopback HTTP with keep-alive, from parallel clients.
func BenchmarkTokenHotPath(b *testing.B) {
	benchStores(b, func(b *testing.B, redisURL string) { benchTokenHotPath(b, redisURL, 0) })
}

// BenchmarkTokenHotPathAfterLoginFlood is BenchmarkTokenHotPath after
// 20,000 unauthenticated GET /bff/login (issue 9 §1: they used to leave a
// Redis record each, and slowed /bff/token for everyone). Compare its
// ns/op with BenchmarkTokenHotPath's.
func BenchmarkTokenHotPathAfterLoginFlood(b *testing.B) {
	benchStores(b, func(b *testing.B, redisURL string) { benchTokenHotPath(b, redisURL, 20000) })
}

func benchTokenHotPath(b *testing.B, redisURL string, flood int) {
	s := newStack(b, stackOptions{redisURL: redisURL, tune: func(c *Config) { c.Logger = discardLogger() }})
	br := s.newBrowser()
	br.login(s.urls[0], "/")
	if flood > 0 {
		floodLogins(b, s.bffs[0], flood)
	}
	cookies := br.c.Jar.Cookies(mustURL(s.urls[0]))
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r, _ := http.NewRequest(http.MethodPost, s.urls[0]+wire.PathToken, nil)
			r.Header.Set(wire.HeaderCSRF, "1")
			for _, c := range cookies {
				r.AddCookie(c)
			}
			resp, err := client.Do(r)
			if err != nil {
				b.Error(err)
				return
			}
			// Read to the end: a body closed unread closes the
			// connection, and every request would dial a new one.
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkTokenHandler is the server's side of BenchmarkTokenHotPath
// alone: POST /bff/token handed to the Handler in the process, without
// HTTP, so that B/op and allocs/op are the handler's own (the vault's
// Redis client included), not the load generator's or net/http's.
func BenchmarkTokenHandler(b *testing.B) {
	benchStores(b, func(b *testing.B, redisURL string) {
		s := newStack(b, stackOptions{redisURL: redisURL, tune: func(c *Config) { c.Logger = discardLogger() }})
		br := s.newBrowser()
		br.login(s.urls[0], "/")
		tmpl := httptest.NewRequest(http.MethodPost, s.urls[0]+wire.PathToken, nil)
		tmpl.Body = http.NoBody // as net/http gives a request without a body
		tmpl.Header.Set(wire.HeaderCSRF, "1")
		for _, c := range br.c.Jar.Cookies(mustURL(s.urls[0])) {
			tmpl.AddCookie(c)
		}
		h := s.bffs[0]
		b.SetParallelism(4)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			w := &benchWriter{h: make(http.Header)}
			for pb.Next() {
				r := new(http.Request) // net/http makes one per request too
				*r = *tmpl
				clear(w.h)
				w.status, w.n = 0, 0
				h.ServeHTTP(w, r)
				if w.status != http.StatusOK || w.n == 0 {
					b.Errorf("status %d, %d bytes", w.status, w.n)
					return
				}
			}
		})
	})
}

// benchWriter is a ResponseWriter that keeps the status and counts the
// bytes.
type benchWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *benchWriter) Header() http.Header { return w.h }

func (w *benchWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *benchWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.n += len(p)
	return len(p), nil
}

// BenchmarkRefreshContention: each iteration moves one session into its
// refresh buffer and sends 50 concurrent /bff/token calls over 3 replicas.
// It reports the time until the last caller is served and the provider's
// refreshes per iteration (1.00 is exactly once).
func BenchmarkRefreshContention(b *testing.B) {
	benchStores(b, func(b *testing.B, redisURL string) {
		s := newStack(b, stackOptions{replicas: 3, redisURL: redisURL,
			tune:    func(c *Config) { c.Logger = discardLogger() },
			devTune: func(c *devprovider.Config) { c.RefreshTTL = 100000 * time.Hour }})
		br := s.newBrowser()
		br.login(s.urls[0], "/")
		br.mustToken(s.urls[0], nil)
		before := s.dev.Stats().RefreshToken
		b.ResetTimer()
		for range b.N {
			s.clock.Advance(45 * time.Second)
			var wg sync.WaitGroup
			for i := range 50 {
				wg.Go(func() {
					if r := br.token(s.urls[i%3], nil); r.status != 200 {
						b.Errorf("status %d %+v", r.status, r.err)
					}
				})
			}
			wg.Wait()
		}
		b.ReportMetric(float64(s.dev.Stats().RefreshToken-before)/float64(b.N), "refreshes/op")
	})
}
