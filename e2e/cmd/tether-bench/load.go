package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetherauth/tether/shared/wire"
)

// run is one or more load runs against one target.
type run struct {
	target   string
	conc     int
	n, errs  int64
	elapsed  time.Duration
	cpu      time.Duration   // the server process's CPU over the measured time (with a pid)
	lat      []time.Duration // one per successful request
	p50, p99 time.Duration
}

func (r run) rps() float64 { return float64(r.n) / r.elapsed.Seconds() }

// cpuPerRequest is the server process's CPU per successful request, in µs.
func (r run) cpuPerRequest() float64 {
	return float64(r.cpu) / float64(time.Microsecond) / float64(max(r.n, 1))
}

// merge adds o's counts, time and latencies to r; percentiles sets p50
// and p99 once all are in.
func (r *run) merge(o run) {
	r.target, r.conc = o.target, o.conc
	r.n, r.errs, r.elapsed, r.cpu = r.n+o.n, r.errs+o.errs, r.elapsed+o.elapsed, r.cpu+o.cpu
	r.lat = append(r.lat, o.lat...)
}

// percentiles sorts the latencies and sets p50 and p99 from them.
func (r *run) percentiles() {
	slices.Sort(r.lat)
	if len(r.lat) > 0 {
		r.p50, r.p99 = r.lat[len(r.lat)/2], r.lat[len(r.lat)*99/100]
	}
}

// ratios are one target's figures over the reference's.
type ratios struct{ throughput, p99, cpu float64 }

func ratiosOf(t, ref run) ratios {
	return ratios{
		throughput: t.rps() / ref.rps(),
		p99:        float64(t.p99) / float64(ref.p99),
		cpu:        t.cpuPerRequest() / ref.cpuPerRequest(),
	}
}

// medianRatios is each figure's median over the rounds (the mean of the
// middle two for an even count).
func medianRatios(rs []ratios) ratios {
	med := func(f func(ratios) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		if len(v) == 0 {
			return 0
		}
		return (v[(len(v)-1)/2] + v[len(v)/2]) / 2
	}
	return ratios{
		throughput: med(func(r ratios) float64 { return r.throughput }),
		p99:        med(func(r ratios) float64 { return r.p99 }),
		cpu:        med(func(r ratios) float64 { return r.cpu }),
	}
}

// spread says the range of each figure over the rounds.
func spread(rs []ratios) string {
	lo, hi := rs[0], rs[0]
	for _, r := range rs[1:] {
		lo = ratios{min(lo.throughput, r.throughput), min(lo.p99, r.p99), min(lo.cpu, r.cpu)}
		hi = ratios{max(hi.throughput, r.throughput), max(hi.p99, r.p99), max(hi.cpu, r.cpu)}
	}
	return fmt.Sprintf("rounds: throughput %.2f–%.2fx, p99 %.2f–%.2fx, cpu %.2f–%.2fx",
		lo.throughput, hi.throughput, lo.p99, hi.p99, lo.cpu, hi.cpu)
}

// hammer sends method requests to u from conc clients (loadConn), each
// with one of the cookies, for warm (not measured) and then d, over
// keep-alive connections. Every answer must be 200; others are counted as
// errors. With a pid, the result has that process's CPU time over the
// measured phase.
func hammer(ctx context.Context, target, method, u string, cookies []string, conc int, warm, d time.Duration, pid int) run {
	clients := make([]loadConn, conc)
	for w := range clients {
		addr, req, err := loadRequest(method, u, cookies[w%len(cookies)])
		if err != nil {
			return run{target: target, conc: conc, errs: 1}
		}
		clients[w] = loadConn{addr: addr, req: req, deadline: time.Now().Add(warm + d + 30*time.Second)}
	}
	defer func() {
		for w := range clients {
			clients[w].close()
		}
	}()
	phase := func(d time.Duration, record bool) run {
		var (
			wg      sync.WaitGroup
			n, errs atomic.Int64
			lat     = make([][]time.Duration, conc)
		)
		start := time.Now()
		end := start.Add(d)
		for w := range conc {
			wg.Go(func() {
				c := &clients[w]
				for {
					t0 := time.Now()
					if t0.After(end) || ctx.Err() != nil {
						return
					}
					status, err := c.do()
					if err != nil || status != http.StatusOK {
						errs.Add(1)
						continue
					}
					n.Add(1)
					if record {
						lat[w] = append(lat[w], time.Since(t0))
					}
				}
			})
		}
		wg.Wait()
		return run{target: target, conc: conc, n: n.Load(), errs: errs.Load(), elapsed: time.Since(start), lat: slices.Concat(lat...)}
	}
	phase(warm, false)
	cpu0 := procCPU(pid)
	r := phase(d, true)
	r.cpu = procCPU(pid) - cpu0
	r.percentiles()
	return r
}

// stormResult is the refresh storm's outcome.
type stormResult struct {
	sessions, calls, inflight int
	lastServed                time.Duration // from the expiry to the last answer
	refreshes, reuses         int64
	errors                    int64 // answers other than 200 with the session's one new token
	cookies                   []string
}

// storm logs in sessions, expires every access token at the provider and
// sends calls forced /bff/token requests ({"force":true,"rejected":old}),
// inflight at a time, spread evenly over the sessions.
func (b *testbed) storm(ctx context.Context, sessions, calls, inflight int) (stormResult, error) {
	res := stormResult{sessions: sessions, calls: calls, inflight: inflight}
	var err error
	if res.cookies, err = b.loginMany(ctx, sessions, 8, 0); err != nil {
		return res, err
	}
	client := &http.Client{Transport: b.tr, Timeout: 30 * time.Second}
	old := make([]string, sessions)
	for i, ck := range res.cookies {
		tok, status, err := tokenCall(ctx, client, b.bffURL, ck, nil)
		if err != nil || status != http.StatusOK {
			return res, fmt.Errorf("tether-bench: first token: %d %v", status, err)
		}
		old[i] = tok.AccessToken
	}
	before, err := b.dev.Stats(ctx)
	if err != nil {
		return res, err
	}
	if _, err := b.dev.Expire(ctx, ""); err != nil {
		return res, err
	}
	start := time.Now()
	var (
		mu    sync.Mutex
		fresh = make([]string, sessions)
		last  time.Time
		errs  atomic.Int64
		sem   = make(chan struct{}, inflight)
		wg    sync.WaitGroup
	)
	per := (calls + sessions - 1) / sessions
	for k := range calls {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			i := k / per
			tok, status, err := tokenCall(ctx, client, b.bffURL, res.cookies[i], &wire.TokenRequest{Force: true, Rejected: old[i]})
			now := time.Now()
			mu.Lock()
			defer mu.Unlock()
			if now.After(last) {
				last = now
			}
			switch {
			case err != nil || status != http.StatusOK || tok.AccessToken == old[i]:
				errs.Add(1)
			case fresh[i] == "":
				fresh[i] = tok.AccessToken
			case fresh[i] != tok.AccessToken:
				errs.Add(1)
			}
		})
	}
	wg.Wait()
	after, err := b.dev.Stats(ctx)
	if err != nil {
		return res, err
	}
	res.lastServed = last.Sub(start)
	res.refreshes, res.reuses = after.RefreshToken-before.RefreshToken, after.RefreshReuse-before.RefreshReuse
	res.errors = errs.Load()
	return res, nil
}

// loginMany logs in n sessions, conc at a time, and returns their cookies;
// with budget > 0 it stops early when the budget is spent.
func (b *testbed) loginMany(ctx context.Context, n, conc int, budget time.Duration) ([]string, error) {
	var (
		mu      sync.Mutex
		cookies []string
		first   error
		next    atomic.Int64
		wg      sync.WaitGroup
	)
	deadline := time.Now().Add(budget)
	for range conc {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if budget > 0 && time.Now().After(deadline) {
					return
				}
				ck, err := b.login(ctx)
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				if err == nil {
					cookies = append(cookies, ck)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	return cookies, first
}

// tokenCall is one POST /bff/token.
func tokenCall(ctx context.Context, c *http.Client, bffURL, cookie string, body *wire.TokenRequest) (wire.TokenResponse, int, error) {
	var tok wire.TokenResponse
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, bffURL+wire.PathToken, rd)
	req.Header.Set(wire.HeaderCSRF, wire.CSRFValue)
	req.Header.Set("Cookie", cookie)
	resp, err := c.Do(req)
	if err != nil {
		return tok, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		err = json.NewDecoder(resp.Body).Decode(&tok)
	} else {
		io.Copy(io.Discard, resp.Body)
	}
	return tok, resp.StatusCode, err
}

// memResult is the memory measurement.
type memResult struct {
	wanted, created       int
	took                  time.Duration
	redisBefore           int64 // used_memory
	redisAfter            int64
	usage, valueLen       float64 // mean MEMORY USAGE and STRLEN of sampled records
	heapBefore, heapAfter float64 // the BFF's go_memstats_heap_inuse_bytes
	rssBefore, rssAfter   float64 // the BFF's process_resident_memory_bytes
}

// memory logs in up to n more sessions (conc at a time, within budget) and
// measures Redis and the BFF before and after.
func (b *testbed) memory(ctx context.Context, n, conc int, budget time.Duration) (memResult, error) {
	m := memResult{wanted: n}
	var err error
	if m.redisBefore, err = b.usedMemory(); err != nil {
		return m, err
	}
	if m.heapBefore, m.rssBefore, err = b.bffMemory(ctx); err != nil {
		return m, err
	}
	start := time.Now()
	cookies, err := b.loginMany(ctx, n, conc, budget)
	m.created, m.took = len(cookies), time.Since(start)
	if err != nil {
		return m, err
	}
	if m.redisAfter, err = b.usedMemory(); err != nil {
		return m, err
	}
	if m.heapAfter, m.rssAfter, err = b.bffMemory(ctx); err != nil {
		return m, err
	}
	keys, err := b.records(200)
	if err != nil {
		return m, err
	}
	keys = keys[:min(len(keys), 20)]
	for _, k := range keys {
		u, err := b.redisInt("MEMORY", "USAGE", k)
		if err != nil {
			return m, err
		}
		l, err := b.redisInt("STRLEN", k)
		if err != nil {
			return m, err
		}
		m.usage += float64(u) / float64(len(keys))
		m.valueLen += float64(l) / float64(len(keys))
	}
	return m, nil
}

// usedMemory is Redis's INFO memory used_memory.
func (b *testbed) usedMemory() (int64, error) {
	v, err := b.infoField("memory", "used_memory")
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(v, 10, 64)
}

// bffMemory reads the BFF's heap in use and resident set from its metrics
// listener.
func (b *testbed) bffMemory(ctx context.Context) (heap, rss float64, err error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.metricsURL+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("tether-bench: metrics: %w", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		switch f[0] {
		case "go_memstats_heap_inuse_bytes":
			heap, _ = strconv.ParseFloat(f[1], 64)
		case "process_resident_memory_bytes":
			rss, _ = strconv.ParseFloat(f[1], 64)
		}
	}
	return heap, rss, sc.Err()
}
