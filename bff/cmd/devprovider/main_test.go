package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/devprovider"
	"github.com/tetherauth/tether/internal/logbuf"
)

func envFunc(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

// running is run in the background.
type running struct {
	url            string // from the "listening on" line
	stdout, stderr logbuf.Buffer
	cancel         context.CancelFunc
	finished       chan struct{} // closed when run has returned err
	err            error
}

// start runs run with env until the test ends (or stop) and waits for the
// URL it prints.
func start(t *testing.T, env map[string]string) *running {
	t.Helper()
	r := &running{finished: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.finished)
		r.err = run(ctx, envFunc(env), &r.stdout, &r.stderr)
	}()
	t.Cleanup(func() { r.stop() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if rest, ok := strings.CutPrefix(r.stdout.String(), "devprovider: listening on "); ok {
			r.url = strings.Fields(rest)[0]
			return r
		}
		select {
		case <-r.finished:
			t.Fatalf("run = %v before it listened", r.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("run did not say where it listens; stdout %q", r.stdout.String())
		}
	}
}

// stop ends run, as SIGTERM does, and returns what it returned.
func (r *running) stop() error {
	r.cancel()
	<-r.finished
	return r.err
}

func TestRunServesAndStops(t *testing.T) {
	r := start(t, map[string]string{
		"TETHER_DEV_PROVIDER_ADDR": "127.0.0.1:0",
		"TETHER_DEV_ACCESS_TTL":    "30s",
		"TETHER_DEV_AUTO_APPROVE":  "1",
		"TETHER_LOG_FORMAT":        "json",
	})
	if strings.HasSuffix(r.url, ":0") || !strings.HasPrefix(r.url, "http://127.0.0.1:") {
		t.Fatalf("URL = %q; want the real 127.0.0.1 port", r.url)
	}

	res, err := http.Get(r.url + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var d struct{ Issuer string }
	err = json.NewDecoder(res.Body).Decode(&d)
	res.Body.Close()
	if err != nil || d.Issuer != r.url {
		t.Errorf("issuer %q, %v; want %q", d.Issuer, err, r.url)
	}
	if !strings.Contains(r.stderr.String(), `"path":"/.well-known/openid-configuration"`) {
		t.Errorf("no JSON log line for the request: %q", r.stderr.String())
	}

	// A request held by the timeout outage must not hold up the shutdown.
	ctl := &devprovider.Controls{URL: r.url}
	if _, err := ctl.Outage(t.Context(), devprovider.OutageTimeout, 0, 0); err != nil {
		t.Fatal(err)
	}
	held := make(chan error, 1)
	go func() {
		res, err := http.Post(r.url+"/token", "application/x-www-form-urlencoded", strings.NewReader("grant_type=refresh_token"))
		if err == nil {
			res.Body.Close()
		}
		held <- err
	}()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		st, err := ctl.Stats(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if st.OutageHits > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the token request never arrived")
		}
	}
	begin := time.Now()
	if err := r.stop(); err != nil {
		t.Errorf("run after its context ended: %v", err)
	}
	if took := time.Since(begin); took > 2*time.Second {
		t.Errorf("stopping took %v with a held request", took)
	}
	<-held
	if _, err := http.Get(r.url + "/jwks"); err == nil {
		t.Error("still serving after run returned")
	}
}

func TestRunRejectsBadEnv(t *testing.T) {
	cases := []struct{ key, val string }{
		{"TETHER_DEV_PROVIDER_ADDR", "nowhere"},
		{"TETHER_DEV_PROVIDER_ADDR", "127.0.0.1:99999"},
		{"TETHER_DEV_ISSUER", "127.0.0.1:9090"},
		{"TETHER_DEV_ACCESS_TTL", "60"},
		{"TETHER_DEV_REFRESH_TTL", "-1m"},
		{"TETHER_DEV_AUTO_APPROVE", "yes please"},
		{"TETHER_DEV_ALLOW_ORIGINS", "http://127.0.0.1:8080/app"},
		{"TETHER_LOG_FORMAT", "xml"},
		{"TETHER_DEV_QUIRKS", "gitlab"},
	}
	for _, c := range cases {
		t.Run(c.key+"="+c.val, func(t *testing.T) {
			env := map[string]string{"TETHER_DEV_PROVIDER_ADDR": "127.0.0.1:0", c.key: c.val}
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			var out logbuf.Buffer
			err := run(ctx, envFunc(env), &out, &out)
			var ce *devprovider.ConfigError
			if !errors.As(err, &ce) || ce.Var != c.key || !strings.Contains(err.Error(), c.key) {
				t.Errorf("run = %v; want a ConfigError naming %s", err, c.key)
			}
		})
	}
}

// TETHER_DEV_QUIRKS=github serves GitHub's paths instead of discovery.
func TestRunWithQuirks(t *testing.T) {
	r := start(t, map[string]string{"TETHER_DEV_PROVIDER_ADDR": "127.0.0.1:0", "TETHER_DEV_QUIRKS": "github"})
	if !strings.Contains(r.stdout.String(), "github quirks") {
		t.Errorf("stdout %q does not mention the quirks", r.stdout.String())
	}
	for path, want := range map[string]int{"/.well-known/openid-configuration": 404, "/api/v3/user": 401} {
		res, err := http.Get(r.url + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("GET %s = %d; want %d", path, res.StatusCode, want)
		}
	}
}
