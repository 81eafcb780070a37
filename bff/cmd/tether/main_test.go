package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff"
	"github.com/tetherauth/tether/bff/devprovider"
	"github.com/tetherauth/tether/internal/logbuf"
)

// startDev runs a dev provider on 127.0.0.1 and returns its issuer URL.
func startDev(t *testing.T) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String()
	dp, err := devprovider.New(devprovider.Config{Issuer: issuer, AutoApprove: true})
	if err != nil {
		srv.Close()
		t.Fatalf("devprovider.New: %v", err)
	}
	srv.Config.Handler = dp
	srv.Start()
	t.Cleanup(func() {
		dp.Close()
		srv.Close()
	})
	return issuer
}

// env is a map-backed getenv.
type env map[string]string

func (e env) get(k string) string { return e[k] }

const secret = "tether-dev-secret"

func devEnv(issuer string) env {
	return env{
		"TETHER_PUBLIC_URL":    "http://127.0.0.1:8080",
		"TETHER_ISSUER":        issuer,
		"TETHER_CLIENT_ID":     devprovider.DefaultClientID,
		"TETHER_CLIENT_SECRET": secret,
		"TETHER_ADDR":          "127.0.0.1:0",
		"TETHER_METRICS_ADDR":  "127.0.0.1:0",
	}
}

// running is run() in a goroutine.
type running struct {
	cancel context.CancelFunc
	done   chan error
	stdout logbuf.Buffer
	stderr logbuf.Buffer
}

// start calls run with e and stops it when the test ends.
func start(t *testing.T, e env) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- run(ctx, e.get, &r.stdout, &r.stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(15 * time.Second):
			t.Error("run did not return 15s after its context was cancelled")
		}
	})
	return r
}

var (
	listening        = regexp.MustCompile(`listening on (http://\S+)`)
	metricsListening = regexp.MustCompile(`metrics on (http://\S+)/metrics`)
)

// metricsURL returns the metrics base URL from run's output, or "".
func (r *running) metricsURL() string {
	if m := metricsListening.FindStringSubmatch(r.stdout.String()); m != nil {
		return m[1]
	}
	return ""
}

// waitListening returns the base URL from run's "listening on" line.
func (r *running) waitListening(t *testing.T) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m := listening.FindStringSubmatch(r.stdout.String()); m != nil {
			return m[1]
		}
		select {
		case err := <-r.done:
			t.Fatalf("run returned %v before listening; stderr:\n%s", err, r.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("no listening line after 10s; stdout %q, stderr:\n%s", r.stdout.String(), r.stderr.String())
	return ""
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestRunBadEnv(t *testing.T) {
	cases := []struct {
		name string
		env  env
		want string
	}{
		{"no public URL", env{"TETHER_CLIENT_ID": "c", "TETHER_ISSUER": "http://127.0.0.1:1"}, "TETHER_PUBLIC_URL"},
		{"bad refresh buffer", env{"TETHER_PUBLIC_URL": "http://127.0.0.1:8080", "TETHER_CLIENT_ID": "c",
			"TETHER_ISSUER": "http://127.0.0.1:1", "TETHER_REFRESH_BUFFER": "soon"}, "TETHER_REFRESH_BUFFER"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr logbuf.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := run(ctx, tc.env.get, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run = %v; want an error naming %s", err, tc.want)
			}
			if strings.Contains(stdout.String(), "listening") {
				t.Errorf("run printed %q despite a bad environment", stdout.String())
			}
		})
	}
}

func TestRunBadAddr(t *testing.T) {
	e := devEnv(startDev(t))
	e["TETHER_ADDR"] = "127.0.0.1:notaport"
	var stdout, stderr logbuf.Buffer
	err := run(context.Background(), e.get, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "TETHER_ADDR") {
		t.Fatalf("run = %v; want an error naming TETHER_ADDR", err)
	}
}

func TestRunServesAndStops(t *testing.T) {
	r := start(t, devEnv(startDev(t)))
	base := r.waitListening(t)
	if !strings.HasPrefix(base, "http://127.0.0.1:") || strings.HasSuffix(base, ":0") {
		t.Fatalf("listening on %q; want 127.0.0.1 and a real port", base)
	}
	if code, body := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("GET /healthz = %d %q; want 200 ok", code, body)
	}
	if code, _ := get(t, base+"/readyz"); code != 200 {
		t.Errorf("GET /readyz = %d; want 200", code)
	}
	// Metrics are on their own listener, not the app's.
	if code, _ := get(t, base+"/metrics"); code != 404 {
		t.Errorf("GET /metrics on the app's listener = %d; want 404", code)
	}
	metrics := r.metricsURL()
	if metrics == "" || metrics == base || !strings.HasPrefix(metrics, "http://127.0.0.1:") {
		t.Fatalf("metrics listener %q; want its own on 127.0.0.1 (stdout %q)", metrics, r.stdout.String())
	}
	if code, body := get(t, metrics+"/metrics"); code != 200 || !strings.Contains(body, "tether_token_requests_total") && !strings.Contains(body, "go_goroutines") {
		t.Errorf("GET %s/metrics = %d; want 200 with the series", metrics, code)
	}
	if code, _ := get(t, metrics+"/bff/login"); code != 404 {
		t.Errorf("the metrics listener answers /bff/login: %d", code)
	}
	// /bff/login goes to the dev provider's authorization endpoint.
	c := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(base + "/bff/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.Contains(loc, "/authorize?") {
		t.Errorf("GET /bff/login = %d to %q; want 302 to the provider", resp.StatusCode, loc)
	}

	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("run after cancel = %v; want nil", err)
		}
		r.done <- err // for the cleanup
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return within 5s of cancel")
	}
	if _, err := (&http.Client{Timeout: time.Second}).Get(base + "/healthz"); err == nil {
		t.Error("still answering after run returned")
	}
	if _, err := (&http.Client{Timeout: time.Second}).Get(metrics + "/metrics"); err == nil {
		t.Error("the metrics listener still answers after run returned")
	}
	if strings.Contains(r.stderr.String(), secret) || strings.Contains(r.stdout.String(), secret) {
		t.Error("the client secret is in the output")
	}
}

func TestRunMetricsAddr(t *testing.T) {
	t.Run("off", func(t *testing.T) {
		e := devEnv(startDev(t))
		e["TETHER_METRICS_ADDR"] = "off"
		r := start(t, e)
		base := r.waitListening(t)
		if code, _ := get(t, base+"/healthz"); code != 200 {
			t.Errorf("GET /healthz = %d", code)
		}
		if m := r.metricsURL(); m != "" {
			t.Errorf("TETHER_METRICS_ADDR=off still serves metrics on %s", m)
		}
		if code, _ := get(t, base+"/metrics"); code != 404 {
			t.Errorf("GET /metrics on the app = %d; want 404", code)
		}
	})
	t.Run("taken", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		e := devEnv(startDev(t))
		e["TETHER_METRICS_ADDR"] = ln.Addr().String()
		var stdout, stderr logbuf.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = run(ctx, e.get, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), "TETHER_METRICS_ADDR") {
			t.Fatalf("run = %v; want an error naming TETHER_METRICS_ADDR", err)
		}
	})
}

func TestRunJSONLogs(t *testing.T) {
	e := devEnv(startDev(t))
	e["TETHER_LOG_FORMAT"] = "json"
	r := start(t, e)
	base := r.waitListening(t)
	get(t, base+"/healthz")
	r.cancel()
	<-r.done
	r.done <- nil

	lines := strings.Split(strings.TrimSpace(r.stderr.String()), "\n")
	if len(lines) == 0 || lines[0] == "" {
		t.Fatal("no log lines on stderr")
	}
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Errorf("log line %q is not JSON: %v", l, err)
			continue
		}
		if rec["level"] == nil || rec["msg"] == nil || rec["time"] == nil {
			t.Errorf("log line %q lacks time, level or msg", l)
		}
	}
	if !strings.Contains(r.stderr.String(), `"level":"WARN"`) {
		t.Errorf("no WARN line (generated keys) in %q", r.stderr.String())
	}
}

func TestRunTextLogsAndLevel(t *testing.T) {
	e := devEnv(startDev(t))
	r := start(t, e)
	r.waitListening(t)
	if out := r.stderr.String(); !strings.Contains(out, "level=WARN") || strings.HasPrefix(out, "{") {
		t.Errorf("default logs are not text with a WARN line: %q", out)
	}

	e = devEnv(startDev(t))
	e["TETHER_LOG_LEVEL"] = "error"
	r = start(t, e)
	r.waitListening(t)
	if out := r.stderr.String(); strings.Contains(out, "WARN") || strings.Contains(out, "INFO") {
		t.Errorf("TETHER_LOG_LEVEL=error still logs: %q", out)
	}
}

// `tether -h` prints every variable with its default, one a line, and
// exits 0.
func TestHelp(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "tether")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("tether -h: %v\n%s", err, out)
	}
	for _, v := range bff.EnvVars {
		var line string
		for _, l := range strings.Split(string(out), "\n") {
			if f := strings.Fields(l); len(f) > 0 && f[0] == v.Name {
				line = l
			}
		}
		if line == "" || !strings.Contains(line, v.Default) {
			t.Errorf("tether -h has no line for %s with its default %q:\n%s", v.Name, v.Default, out)
		}
	}
}
