package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/tetherauth/tether/bff/assets"
	"github.com/tetherauth/tether/shared/wire"
)

// fetchCalls is how many calls of each kind one BenchmarkBrowserFetch
// iteration makes.
const fetchCalls = 1000

// fetchLoopJS runs fetchCalls wrapped calls (tether.fetch) and as many plain
// ones (fetch with the same Authorization set by hand) against the API, in
// alternating blocks of 100 whose order flips every round, each block timed
// as a whole with performance.now(). It returns the milliseconds per kind
// and the statuses that were not 200.
const fetchLoopJS = `(async (url, n) => {
	const res = await fetch("/bff/token", { method: "POST", headers: { "X-CSRF": "1" } });
	const token = (await res.json()).access_token;
	const bad = [];
	const check = (r) => { if (r.status !== 200) bad.push(r.status); return r.text(); };
	const wrapped = () => window.tether.fetch(url).then(check);
	const plain = () => fetch(url, { headers: { Authorization: "Bearer " + token } }).then(check);
	for (let i = 0; i < 50; i++) { await wrapped(); await plain(); } // warm up
	const rounds = n / 100;
	let tw = 0, tp = 0;
	for (let r = 0; r < rounds; r++) {
		for (const f of r % 2 ? [plain, wrapped] : [wrapped, plain]) {
			const t0 = performance.now();
			for (let i = 0; i < 100; i++) await f();
			const dt = performance.now() - t0;
			if (f === wrapped) tw += dt; else tp += dt;
		}
	}
	return { wrapped: tw, plain: tp, bad: bad.slice(0, 10) };
})`

// BenchmarkBrowserFetch compares tether.fetch with a plain fetch carrying
// the same header, in one tab of the demo page with the DevTools Network
// domain off (it slows every fetch), against the dev provider's /api/me.
// Reported: wrapped/plain (target ≤ 1.05) and µs per call of each.
func BenchmarkBrowserFetch(b *testing.B) {
	s := startStack(b, stackOptions{accessTTL: 10 * time.Minute, autoApprove: true})
	tab := newTab(b)
	p := openPage(b, tab, s)
	p.login(false)
	p.waitFor(`window.tether.state().connected`, stepTimeout, "a token")
	if _, err := chromedp.Call(tab, network.Disable, cdp.Empty{}); err != nil {
		b.Fatal(err)
	}
	type result struct {
		Wrapped, Plain float64
		Bad            []int
	}
	var wrapped, plain float64
	b.ResetTimer()
	for b.Loop() {
		r := evalJS[result](p, fetchLoopJS+`(`+strconv.Quote(s.d.DevURL+"/api/me")+`, `+strconv.Itoa(fetchCalls)+`)`)
		if len(r.Bad) > 0 {
			b.Fatalf("statuses other than 200: %v", r.Bad)
		}
		wrapped += r.Wrapped
		plain += r.Plain
	}
	b.StopTimer()
	calls := float64(b.N * fetchCalls)
	b.ReportMetric(wrapped/plain, "wrapped/plain")
	b.ReportMetric(wrapped*1000/calls, "µs/wrapped")
	b.ReportMetric(plain*1000/calls, "µs/plain")
}

// emptyWasm is the baseline program of BenchmarkBrowserStart: the Go
// runtime, ready at once.
const emptyWasm = `package main

import "syscall/js"

func main() {
	js.Global().Call("__ready")
	select {}
}
`

// startPages are the two pages BenchmarkBrowserStart loads; both note in
// window.__done the time since navigation when the client is usable.
var startPages = map[string]string{
	"tether": `<!doctype html><meta charset="utf-8"><title>start</title>
<script src="dist/wasm_exec.js"></script>
<script src="tether.js" data-wasm="` + assets.Placeholder + `"></script>
<script>Tether.start({ bff: "/bff", apiOrigins: [] }).then(() => { window.__done = performance.now(); });</script>`,
	"empty": `<!doctype html><meta charset="utf-8"><title>start</title>
<script src="dist/wasm_exec.js"></script>
<script>
const go = new Go();
window.__ready = () => { window.__done = performance.now(); };
WebAssembly.instantiateStreaming(fetch("` + assets.Placeholder + `"), go.importObject).then(({ instance }) => go.run(instance));
</script>`,
}

// startSamples is how many loads of each page one BenchmarkBrowserStart
// iteration makes, alternating which goes first.
const startSamples = 6

// BenchmarkBrowserStart compares the time from navigation to Tether.start
// resolved with the time an empty Go program takes to load on the same
// kind of page, served the same way (bff/assets: hashed, brotli). Each
// sample is a first visit (a new browser context, so nothing is cached)
// and then a second one (HTTP and compiled-code caches warm). Reported:
// start/empty for first visits (target ≤ 1.2), start/empty-warm, and the
// medians in ms.
func BenchmarkBrowserStart(b *testing.B) {
	srv := startServer(b)
	cold, warm := map[string][]float64{}, map[string][]float64{}
	b.ResetTimer()
	for b.Loop() {
		for i := range startSamples {
			order := []string{"tether", "empty"}
			if i%2 == 1 {
				slices.Reverse(order)
			}
			for _, name := range order {
				c, w := loadTimes(b, srv.URL+"/"+name+"/start.html")
				cold[name] = append(cold[name], c)
				warm[name] = append(warm[name], w)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(median(cold["tether"])/median(cold["empty"]), "start/empty")
	b.ReportMetric(median(warm["tether"])/median(warm["empty"]), "start/empty-warm")
	b.ReportMetric(median(cold["tether"]), "ms-start")
	b.ReportMetric(median(cold["empty"]), "ms-empty")
}

// startServer serves /tether/ (tether.js and the real dist) and /empty/
// (an empty Go program built and prepared like tether.wasm), both through
// bff/assets, plus a /bff/token that says there is no session.
func startServer(b *testing.B) *httptest.Server {
	b.Helper()
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		b.Fatal(err)
	}
	tmp := b.TempDir()
	emptyDist := filepath.Join(tmp, "empty-dist")
	if err := os.WriteFile(filepath.Join(tmp, "main.go"), []byte(emptyWasm), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "go.mod"), []byte("module empty\n\ngo 1.26\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(emptyDist, assets.BuildOutput), ".")
	build.Dir = tmp
	build.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm", "GOFLAGS=", "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building the empty program: %v\n%s", err, out)
	}
	if _, err := assets.Build(emptyDist, strings.TrimSpace(string(goroot))); err != nil {
		b.Fatal(err)
	}
	js, err := os.ReadFile(filepath.Join(repoRoot, "web", "tether.js"))
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	for name, dist := range map[string]string{"tether": filepath.Join(repoRoot, "web", "dist"), "empty": emptyDist} {
		web := filepath.Join(tmp, name+"-web")
		if err := os.MkdirAll(web, 0o755); err != nil {
			b.Fatal(err)
		}
		for file, content := range map[string]string{"start.html": startPages[name], "tether.js": string(js)} {
			if err := os.WriteFile(filepath.Join(web, file), []byte(content), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		h, err := assets.New(web, assets.WithDist(dist))
		if err != nil {
			b.Fatal(err)
		}
		mux.Handle("/"+name+"/", http.StripPrefix("/"+name, h))
	}
	mux.HandleFunc("POST /bff/token", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(wire.ErrorBody{Error: wire.ErrReconnectRequired, Reason: wire.ReasonNoSession})
	})
	srv := httptest.NewServer(mux)
	b.Cleanup(srv.Close)
	return srv
}

// loadTimes opens url in a new browser context twice, with the Network
// domain off, and returns window.__done (ms since navigation) each time.
func loadTimes(b *testing.B, url string) (cold, warm float64) {
	b.Helper()
	tab, cancel := chromedp.NewContext(sharedBrowser(b), chromedp.WithNewBrowserContext())
	defer cancel()
	if err := chromedp.Do(tab); err != nil {
		b.Fatal(err)
	}
	if _, err := chromedp.Call(tab, network.Disable, cdp.Empty{}); err != nil {
		b.Fatal(err)
	}
	load := func() float64 {
		step, done := context.WithTimeout(tab, stepTimeout)
		defer done()
		if err := chromedp.Do(step, chromedp.Navigate(url)); err != nil {
			b.Fatal(err)
		}
		ms, err := chromedp.Run(step, chromedp.Poll[float64](`window.__done`, chromedp.WithPollingInterval(5*time.Millisecond)))
		if err != nil {
			b.Fatalf("%s: %v", url, err)
		}
		return ms
	}
	return load(), load()
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
