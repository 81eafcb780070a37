package bff

import (
	"context"
	"io"
	"net/http"
	"net/http/httputil"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tetherauth/tether/shared/wire"
)

// benchUpstream serves a small JSON answer, like an API's GET /user.
func benchUpstream(b *testing.B) string {
	body := []byte(`{"login":"alice","id":1001,"name":"Alice Liddell","company":"Tether","public_repos":12}`)
	ln, u := listen(b)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	serve(b, ln, h)
	return u
}

// BenchmarkAPIProxy is a proxied GET of a small upstream answer over real
// loopback HTTP with keep-alive, from 8 client goroutines: Tether's proxy
// (cookie, CSRF check, the session's record, the rewrite, the token) on
// the embedded Redis and on a real redis-server, side by side with the
// reference, a bare httputil.ReverseProxy in front of the same upstream
// with the same transport settings, sent the same request. The two take turns (ABBA) in slices
// of 500 requests, so that the machine's other load hits both alike; b.N
// is the requests per target (run it with -benchtime 20000x or so).
//
// It reports each target's req/s, p50 and p99 and the ratios (targets:
// throughput ≥ 0.7× the bare proxy's, p99 ≤ 1.5×), and cpu-µs/op: the
// process's CPU per request, load generator and upstream included (the
// same for both), and the embedded Redis for miniredis.
func BenchmarkAPIProxy(b *testing.B) {
	up := benchUpstream(b)
	target := mustURL(up)
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second},
	}
	ln, bare := listen(b)
	serve(b, ln, rp)
	benchStores(b, func(b *testing.B, redisURL string) {
		s := newStack(b, stackOptions{redisURL: redisURL, tune: func(c *Config) {
			c.Logger = discardLogger()
			c.APIRoutes = []APIRoute{{Name: "bench", URL: up}}
		}})
		br := s.newBrowser()
		br.login(s.urls[0], "/")
		// Both get the same request: the page's cookie and X-CSRF.
		cookies := br.c.Jar.Cookies(mustURL(s.urls[0]))
		targets := [2]*loadTarget{
			{url: s.urls[0] + wire.PathAPI + "/bench/user", cookies: cookies},
			{url: bare + "/user", cookies: cookies},
		}
		for _, t := range targets {
			t.run(b, 200) // warm the connection pools
			*t = loadTarget{url: t.url, cookies: t.cookies}
		}
		const slice = 500
		b.ResetTimer()
		for done, round := 0, 0; done < b.N; round++ {
			n := min(slice, b.N-done)
			for _, i := range [2][2]int{{0, 1}, {1, 0}}[round%2] {
				targets[i].run(b, n)
			}
			done += n
		}
		b.StopTimer()
		tether, ref := targets[0].report(), targets[1].report()
		b.ReportMetric(tether.rps, "req/s")
		b.ReportMetric(ref.rps, "bare-req/s")
		b.ReportMetric(tether.rps/ref.rps, "throughput-ratio")
		b.ReportMetric(float64(tether.p50.Microseconds()), "p50-µs")
		b.ReportMetric(float64(ref.p50.Microseconds()), "bare-p50-µs")
		b.ReportMetric(float64(tether.p99.Microseconds()), "p99-µs")
		b.ReportMetric(float64(ref.p99.Microseconds()), "bare-p99-µs")
		b.ReportMetric(float64(tether.p99)/float64(ref.p99), "p99-ratio")
		b.ReportMetric(tether.cpu, "cpu-µs/op")
		b.ReportMetric(ref.cpu, "bare-cpu-µs/op")
	})
}

// loadTarget accumulates the runs against one URL.
type loadTarget struct {
	url     string
	cookies []*http.Cookie
	client  *http.Client
	n       int
	elapsed time.Duration
	cpu     time.Duration
	lat     []time.Duration
}

type loadReport struct {
	rps, cpu float64
	p50, p99 time.Duration
}

// run sends n GETs from 8 goroutines (4 per CPU on two) with X-CSRF and
// the cookies, and adds their time, latencies and the process's CPU.
func (t *loadTarget) run(b *testing.B, n int) {
	if t.client == nil {
		t.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		b.Cleanup(t.client.CloseIdleConnections)
	}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		next atomic.Int64
	)
	cpu0, t0 := cpuTime(), time.Now()
	for range 8 {
		wg.Go(func() {
			mine := make([]time.Duration, 0, n/8+1)
			for next.Add(1) <= int64(n) {
				d, err := t.get(b.Context())
				if err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, d)
			}
			mu.Lock()
			t.lat = append(t.lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	t.elapsed += time.Since(t0)
	t.cpu += cpuTime() - cpu0
	t.n += n
}

func (t *loadTarget) get(ctx context.Context) (time.Duration, error) {
	t0 := time.Now()
	r, _ := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
	r.Header.Set(wire.HeaderCSRF, wire.CSRFValue)
	for _, c := range t.cookies {
		r.AddCookie(c)
	}
	resp, err := t.client.Do(r)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return 0, &statusError{resp.StatusCode}
	}
	return time.Since(t0), nil
}

func (t *loadTarget) report() loadReport {
	slices.Sort(t.lat)
	r := loadReport{rps: float64(t.n) / t.elapsed.Seconds(), cpu: float64(t.cpu.Microseconds()) / float64(max(t.n, 1))}
	if len(t.lat) > 0 {
		r.p50, r.p99 = t.lat[len(t.lat)/2], t.lat[len(t.lat)*99/100]
	}
	return r
}

type statusError struct{ code int }

func (e *statusError) Error() string { return "status " + http.StatusText(e.code) }

// cpuTime is the CPU time (user + system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
