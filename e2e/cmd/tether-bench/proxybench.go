package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tetherauth/tether/bff"
	"github.com/tetherauth/tether/e2e/stack"
	"github.com/tetherauth/tether/shared/wire"
)

// proxyRoute is the BFF's API route to the dev provider's /api.
const proxyRoute = "bench"

// proxyTarget is one server in the proxy comparison.
type proxyTarget struct {
	name, url string
	proc      *stack.Proc
	sum       run
}

// proxyBench compares proxy mode with a bare httputil.ReverseProxy: a GET
// of the dev provider's /api/public (a small JSON answer) through the BFF
// (its session cache on, and off: every call reads Redis) and through the
// bare proxy process, the same request (the session cookie and X-CSRF) to
// each, in rotating order, summed over rounds. CPU per request is the
// proxy process's own (the upstream and Redis are other processes).
func (b *testbed) proxyBench(ctx context.Context, o options, cookies []string, w io.Writer) error {
	devURL := strings.TrimSuffix(b.dev.URL, "/")
	bare, err := b.startBareProxy(devURL + "/api")
	if err != nil {
		return err
	}
	nocache, nocacheURL, err := b.bins.StartTether("tether-nocache", append(b.env, "TETHER_API_SESSION_CACHE=off", "TETHER_METRICS_ADDR=off")...)
	if err != nil {
		return err
	}
	b.procs = append(b.procs, nocache)
	path := wire.PathAPI + "/" + proxyRoute + "/public"
	targets := []*proxyTarget{
		{name: "tether", url: b.bffURL + path, proc: b.bff},
		{name: "no-cache", url: nocacheURL + path, proc: nocache},
		{name: "bare", url: bare.url, proc: bare.proc},
	}
	fmt.Fprintf(w, "\nProxy mode: GET %s (%s/api/public, a small JSON answer), keep-alive, %d sessions' cookies and X-CSRF to every target; %d rotating runs of %v (after %v warm-up) per target, summed\n",
		path, devURL, len(cookies), o.rounds, o.duration, o.warm)
	fmt.Fprintln(w, "tether: the BFF (TETHER_API_SESSION_CACHE 1 s); no-cache: the same with it off (a Redis GET per call); bare: httputil.ReverseProxy, same transport settings. cpu: the proxy process's CPU per request")
	fmt.Fprintf(w, "%6s  %-10s %10s %9s %9s %12s %7s\n", "conc", "target", "req/s", "p50", "p99", "cpu µs/req", "errors")
	for _, conc := range o.concurrency {
		for _, t := range targets {
			t.sum = run{}
		}
		for round := range o.rounds {
			for k := range targets {
				t := targets[(k+round)%len(targets)]
				t.sum.merge(hammer(ctx, t.name, http.MethodGet, t.url, cookies, conc, o.warm, o.duration, t.proc.Pid()))
			}
		}
		for _, t := range targets {
			t.sum.percentiles()
			fmt.Fprintf(w, "%6d  %-10s %10.0f %9s %9s %12.0f %7d\n", conc, t.name, t.sum.rps(), ms(t.sum.p50), ms(t.sum.p99),
				t.sum.cpuPerRequest(), t.sum.errs)
		}
		ref := targets[2].sum
		for _, t := range targets[:2] {
			r := ratiosOf(t.sum, ref)
			fmt.Fprintf(w, "%6d  %-10s %9.2fx %9s %8.2fx   vs bare: target ≥ 0.70x throughput %s, p99 ≤ 1.50x %s\n",
				conc, t.name, r.throughput, "", r.p99, verdict(r.throughput >= 0.7), verdict(r.p99 <= 1.5))
		}
	}
	return nil
}

// procCPU is a process's user + system CPU time so far (/proc/pid/stat,
// in clock ticks of 10 ms).
func procCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name may hold spaces: fields count from after its ")".
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// bareProxy is the reference process.
type bareProxy struct {
	url  string
	proc *stack.Proc
}

// startBareProxy re-executes this program as the bare proxy in front of
// upstream.
func (b *testbed) startBareProxy(upstream string) (bareProxy, error) {
	self, err := os.Executable()
	if err != nil {
		return bareProxy{}, fmt.Errorf("tether-bench: %w", err)
	}
	p, err := stack.Start("bare-proxy", self, []string{"-bare-proxy", upstream, "-listen", "127.0.0.1:0"})
	if err != nil {
		return bareProxy{}, err
	}
	b.procs = append(b.procs, p)
	u, err := p.WaitListening("bare-proxy: listening on ", 15*time.Second)
	return bareProxy{url: u + "/public", proc: p}, err
}

// serveBareProxy is the reference process of the proxy comparison: a
// bare httputil.ReverseProxy to upstream with the transport settings of
// the BFF's proxy, served with the BFF's server settings (bff.Serve).
func serveBareProxy(ctx context.Context, upstream, addr string, stdout io.Writer) error {
	target, err := url.Parse(upstream)
	if err != nil {
		return fmt.Errorf("tether-bench: -bare-proxy: %w", err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true,
			MaxIdleConns: 1024, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second,
		},
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("tether-bench: bare proxy: %w", err)
	}
	fmt.Fprintf(stdout, "bare-proxy: listening on http://%s\n", ln.Addr())
	return bff.Serve(ctx, ln, rp)
}
