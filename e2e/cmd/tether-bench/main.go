// Command tether-bench measures Tether end to end on this machine, with
// real processes on loopback: it builds the tether and devprovider
// binaries, starts redis-server (without persistence), the dev provider and
// one BFF, logs sessions in, and prints a table:
//
//   - POST /bff/token on the hot path (a valid token) at each concurrency,
//     throughput, p50/p99 latency and each server process's CPU per
//     request, beside a reference process (this program re-executed with
//     -reference): a bare net/http handler that does one Redis GET and
//     writes the value back, the value sized so that its answer is as many
//     bytes on the wire as Tether's. Targets: Tether at least 0.9× the
//     reference's throughput, p99 at most 1.3×, CPU per request at most
//     1.15×.
//   - the refresh storm: access tokens expired at the provider, then many
//     concurrent forced calls; time from the expiry to the last caller
//     served, and refreshes per session (target 1.00).
//   - memory: Redis bytes per session (target ≤ 2 KiB) and the BFF's heap,
//     over many sessions logged in through the whole authorization-code
//     flow, within a time budget (fewer when the budget runs out: the table
//     says how many).
//
// Every run is bounded in time and count. Run it from the module root:
//
//	go run ./e2e/cmd/tether-bench [-duration 3s] [-concurrency 16,64] [-sessions 10000]
//
// redis-server must be installed (apt-get install -y redis-server).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tetherauth/tether/bff/devprovider"
	"github.com/tetherauth/tether/shared/wire"
)

// options are the command-line flags.
type options struct {
	duration      time.Duration
	warm          time.Duration
	concurrency   []int
	rounds        int
	stormSessions int
	stormCalls    int
	stormInflight int
	sessions      int
	loginConc     int
	loginBudget   time.Duration

	reference bool   // run as the reference process
	bareProxy string // run as the bare proxy in front of this upstream
	noProxy   bool
	redis     string
	listen    string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o, err := parseFlags(os.Args[1:])
	if err == nil {
		switch {
		case o.reference:
			err = serveReference(ctx, o.redis, o.listen, os.Stdout)
		case o.bareProxy != "":
			err = serveBareProxy(ctx, o.bareProxy, o.listen, os.Stdout)
		default:
			err = bench(ctx, o, os.Stdout)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("tether-bench", flag.ContinueOnError)
	fs.DurationVar(&o.duration, "duration", 2*time.Second, "measured time of each hot-path run")
	fs.DurationVar(&o.warm, "warm", 500*time.Millisecond, "warm-up before each hot-path run")
	conc := fs.String("concurrency", "16,64", "comma-separated client concurrencies for the hot path")
	fs.IntVar(&o.rounds, "rounds", 4, "interleaved runs per target and concurrency (the verdict is the median of their ratios)")
	fs.IntVar(&o.stormSessions, "storm-sessions", 50, "sessions in the refresh storm")
	fs.IntVar(&o.stormCalls, "storm-calls", 2000, "forced /bff/token calls in the refresh storm")
	fs.IntVar(&o.stormInflight, "storm-inflight", 200, "storm calls in flight at once")
	fs.IntVar(&o.sessions, "sessions", 10000, "sessions to log in for the memory measurement")
	fs.IntVar(&o.loginConc, "login-concurrency", 8, "logins in flight at once")
	fs.DurationVar(&o.loginBudget, "login-budget", 90*time.Second, "stop logging in after this long")
	fs.BoolVar(&o.reference, "reference", false, "internal: serve the reference handler")
	fs.StringVar(&o.bareProxy, "bare-proxy", "", "internal: serve a bare reverse proxy to this upstream URL")
	fs.BoolVar(&o.noProxy, "no-proxy", false, "skip the proxy-mode comparison")
	fs.StringVar(&o.redis, "redis", "", "internal: the reference's Redis address")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:0", "internal: the reference's listen address")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for _, f := range strings.Split(*conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 1024 {
			return o, fmt.Errorf("tether-bench: -concurrency %q: want numbers from 1 to 1024", *conc)
		}
		o.concurrency = append(o.concurrency, n)
	}
	switch {
	case o.duration <= 0 || o.duration > time.Minute:
		return o, fmt.Errorf("tether-bench: -duration %v: want up to 1m", o.duration)
	case o.rounds < 1 || o.rounds > 30:
		return o, fmt.Errorf("tether-bench: -rounds %d: want 1 to 30", o.rounds)
	case o.stormSessions < 1 || o.stormCalls < o.stormSessions || o.stormInflight < 1:
		return o, fmt.Errorf("tether-bench: the storm needs sessions ≥ 1, calls ≥ sessions, inflight ≥ 1")
	case o.sessions < 0 || o.sessions > 100000 || o.loginBudget > 10*time.Minute:
		return o, fmt.Errorf("tether-bench: -sessions up to 100000 and -login-budget up to 10m")
	case o.reference && o.redis == "":
		return o, fmt.Errorf("tether-bench: -reference needs -redis")
	}
	return o, nil
}

// The hot path's targets against the reference (issue 18).
const (
	targetThroughput = 0.90 // at least, Tether's req/s over the reference's
	targetP99        = 1.30 // at most
	targetCPU        = 1.15 // at most, CPU per request
)

// bench runs every measurement and prints the table to w.
func bench(ctx context.Context, o options, w io.Writer) error {
	b, err := startTestbed(ctx)
	if err != nil {
		return err
	}
	defer b.Close()
	fmt.Fprintf(w, "Tether bench: %s, %d CPUs, %s, %s, redis %s, load average %s\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), runtime.GOOS+"/"+runtime.GOARCH,
		runtime.Version(), b.redisVersion(), loadAverage())
	fmt.Fprintln(w, "One BFF process (bff/cmd/tether), the dev provider and redis-server, on loopback; the load generator shares the CPUs.")

	st, err := b.storm(ctx, o.stormSessions, o.stormCalls, o.stormInflight)
	if err != nil {
		return err
	}

	fmt.Fprintf(w, "\nRefresh storm: %d sessions, access tokens expired at the provider, %d forced /bff/token calls, %d in flight\n",
		st.sessions, st.calls, st.inflight)
	perSession := float64(st.refreshes) / float64(st.sessions)
	fmt.Fprintf(w, "  expiry → last caller served %s; refreshes per session %.2f (target 1.00) %s; refresh token reuses %d; wrong answers %d\n",
		ms(st.lastServed), perSession, verdict(st.refreshes == int64(st.sessions) && st.reuses == 0 && st.errors == 0), st.reuses, st.errors)

	if o.sessions > 0 {
		m, err := b.memory(ctx, o.sessions, o.loginConc, o.loginBudget)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "\nMemory: %d sessions logged in (asked %d) in %v, %.0f logins/s, %d at a time\n",
			m.created, m.wanted, m.took.Round(100*time.Millisecond), float64(m.created)/m.took.Seconds(), o.loginConc)
		per := float64(m.redisAfter-m.redisBefore) / float64(max(m.created, 1))
		fmt.Fprintf(w, "  Redis used_memory +%.1f MiB: %.0f bytes per session (target ≤ 2048) %s; MEMORY USAGE of a record %.0f bytes, value %.0f bytes\n",
			mib(float64(m.redisAfter-m.redisBefore)), per, verdict(per <= 2048), m.usage, m.valueLen)
		fmt.Fprintf(w, "  BFF heap in use %.1f → %.1f MiB, resident %.1f → %.1f MiB (the BFF keeps no per-session state)\n",
			mib(m.heapBefore), mib(m.heapAfter), mib(m.rssBefore), mib(m.rssAfter))
		if m.created < m.wanted {
			fmt.Fprintf(w, "  (the login budget ran out: %d of %d sessions; per-session figures are measured on those)\n", m.created, m.wanted)
		}
	}

	// The reference answers as many bytes as Tether's /bff/token does.
	keys, err := b.records(100)
	if err != nil || len(keys) == 0 {
		return fmt.Errorf("tether-bench: no vault record: %v", err)
	}
	recordLen, err := b.redisInt("STRLEN", keys[0])
	if err != nil {
		return err
	}
	tether, err := answerSize(ctx, http.MethodPost, b.bffURL+wire.PathToken, st.cookies[0])
	if err != nil {
		return err
	}
	ref, err := b.startReference(ctx)
	if err != nil {
		return err
	}
	refAnswer, err := b.sizeReference(ctx, ref.url, st.cookies[0], tether.total())
	if err != nil {
		return err
	}

	fmt.Fprintf(w, "\n/bff/token hot path: valid token, %d sessions, keep-alive; per target %d interleaved runs of %v (after %v warm-up each); ratios are the median of the runs' own\n",
		len(st.cookies), o.rounds, o.duration, o.warm)
	targets := []struct {
		name, url string
		pid       int
	}{{"tether", b.bffURL + wire.PathToken, b.bff.Pid()}, {"reference", ref.url, ref.proc.Pid()}}
	fmt.Fprintf(w, "reference: net/http handler, one Redis GET of a %d-byte value, written back (a vault record is %d bytes)\n", refAnswer.body, recordLen)
	fmt.Fprintf(w, "answers on the wire: tether %d bytes (%d status line and headers + %d JSON), reference %d bytes (%d + %d value)\n",
		tether.total(), tether.head, tether.body, refAnswer.total(), refAnswer.head, refAnswer.body)
	fmt.Fprintln(w, "cpu: the server process's own user+system CPU (/proc/<pid>/stat) over the measured runs, per request")
	fmt.Fprintf(w, "%6s  %-10s %10s %9s %9s %12s %7s\n", "conc", "target", "req/s", "p50", "p99", "cpu µs/req", "errors")
	for _, conc := range o.concurrency {
		// ABBA order, summed: drift in the machine's load hits both alike.
		// Each round's own ratios are kept too: their median is the
		// verdict (a slow second on a shared machine moves one round's
		// pair, not the whole sum).
		var sum [2]run
		var rounds []ratios
		for round := range o.rounds {
			order := []int{0, 1}
			if round%2 == 1 {
				order = []int{1, 0}
			}
			var pair [2]run
			for _, t := range order {
				pair[t] = hammer(ctx, targets[t].name, http.MethodPost, targets[t].url, st.cookies, conc, o.warm, o.duration, targets[t].pid)
				sum[t].merge(pair[t])
			}
			rounds = append(rounds, ratiosOf(pair[0], pair[1]))
		}
		for i := range sum {
			sum[i].percentiles()
		}
		for _, r := range sum {
			fmt.Fprintf(w, "%6d  %-10s %10.0f %9s %9s %12.1f %7d\n", r.conc, r.target, r.rps(), ms(r.p50), ms(r.p99), r.cpuPerRequest(), r.errs)
		}
		m := medianRatios(rounds)
		fmt.Fprintf(w, "%6d  %-10s %9.2fx %9s %8.2fx %11.2fx   target ≥ %.2fx throughput %s, p99 ≤ %.2fx %s, cpu ≤ %.2fx %s\n",
			conc, "ratio", m.throughput, "", m.p99, m.cpu, targetThroughput, verdict(m.throughput >= targetThroughput),
			targetP99, verdict(m.p99 <= targetP99), targetCPU, verdict(m.cpu <= targetCPU))
		all := ratiosOf(sum[0], sum[1])
		fmt.Fprintf(w, "%6s  %-10s %s; of the sums %.2fx, p99 %.2fx, cpu %.2fx\n", "", "", spread(rounds), all.throughput, all.p99, all.cpu)
	}

	if !o.noProxy {
		if err := b.proxyBench(ctx, o, st.cookies, w); err != nil {
			return err
		}
	}

	for _, secret := range []string{devprovider.PrefixRefreshToken, devprovider.DefaultClientSecret} {
		if strings.Contains(b.logs(), secret) {
			return fmt.Errorf("tether-bench: a process logged %q (a refresh token or the client secret)", secret)
		}
	}
	return nil
}

func (b *testbed) redisVersion() string {
	v, err := b.infoField("server", "redis_version")
	if err != nil {
		return "?"
	}
	return v
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

func mib(b float64) float64 { return b / (1 << 20) }

func verdict(ok bool) string {
	if ok {
		return "(met)"
	}
	return "(MISSED)"
}
