package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/devprovider"
)

func envFunc(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

func TestRunServesAndCloses(t *testing.T) {
	var out, logs bytes.Buffer
	m := &Main{
		Getenv: envFunc(map[string]string{
			"TETHER_DEV_PROVIDER_ADDR": "127.0.0.1:0",
			"TETHER_DEV_ACCESS_TTL":    "30s",
			"TETHER_DEV_AUTO_APPROVE":  "1",
			"TETHER_LOG_FORMAT":        "json",
		}),
		Stdout: &out, Stderr: &logs,
	}
	if err := m.Run(t.Context()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if strings.HasSuffix(m.URL, ":0") || !strings.HasPrefix(m.URL, "http://127.0.0.1:") {
		t.Fatalf("URL = %q; want the real 127.0.0.1 port", m.URL)
	}
	if !strings.Contains(out.String(), "listening on "+m.URL) {
		t.Errorf("stdout %q does not name %s", out.String(), m.URL)
	}

	res, err := http.Get(m.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var d struct{ Issuer string }
	err = json.NewDecoder(res.Body).Decode(&d)
	res.Body.Close()
	if err != nil || d.Issuer != m.URL {
		t.Errorf("issuer %q, %v; want %q", d.Issuer, err, m.URL)
	}
	if !strings.Contains(logs.String(), `"path":"/.well-known/openid-configuration"`) {
		t.Errorf("no JSON log line for the request: %q", logs.String())
	}

	// A request held by the timeout outage must not hold up Close.
	if _, err := m.Provider.SetOutage(devprovider.OutageTimeout, 0, 0); err != nil {
		t.Fatal(err)
	}
	held := make(chan error, 1)
	go func() {
		res, err := http.Post(m.URL+"/token", "application/x-www-form-urlencoded", strings.NewReader("grant_type=refresh_token"))
		if err == nil {
			res.Body.Close()
		}
		held <- err
	}()
	for deadline := time.Now().Add(5 * time.Second); m.Provider.Stats().OutageHits == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the token request never arrived")
		}
	}
	start := time.Now()
	if err := m.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Close took %v with a held request", took)
	}
	<-held
	if _, err := http.Get(m.URL + "/jwks"); err == nil {
		t.Error("still serving after Close")
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
			m := &Main{Getenv: envFunc(env), Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}}
			err := m.Run(t.Context())
			t.Cleanup(func() { m.Close() })
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Var != c.key || !strings.Contains(err.Error(), c.key) {
				t.Errorf("Run = %v; want a ConfigError naming %s", err, c.key)
			}
		})
	}
}

// TETHER_DEV_QUIRKS=github serves GitHub's paths instead of discovery.
func TestRunWithQuirks(t *testing.T) {
	var out bytes.Buffer
	m := &Main{
		Getenv: envFunc(map[string]string{"TETHER_DEV_PROVIDER_ADDR": "127.0.0.1:0", "TETHER_DEV_QUIRKS": "github"}),
		Stdout: &out, Stderr: &bytes.Buffer{},
	}
	if err := m.Run(t.Context()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if !strings.Contains(out.String(), "github quirks") {
		t.Errorf("stdout %q does not mention the quirks", out.String())
	}
	for path, want := range map[string]int{"/.well-known/openid-configuration": 404, "/api/v3/user": 401} {
		res, err := http.Get(m.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("GET %s = %d; want %d", path, res.StatusCode, want)
		}
	}
}
