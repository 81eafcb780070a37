package demo_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tetherauth/tether/bff/demo"
	"github.com/tetherauth/tether/bff/devprovider"
	"github.com/tetherauth/tether/shared/wire"
)

// webDir is a page directory with a stand-in build, enough for the BFF to
// start.
func webDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	dist := filepath.Join(dir, "dist")
	files := map[string]string{
		"manifest.json": `{"wasm":"tether.0.wasm","wasm_exec":"wasm_exec.js"}`,
		"tether.0.wasm": "", "wasm_exec.js": "",
	}
	if err := os.Mkdir(dist, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dist, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// The demo's dev provider takes its settings from the TETHER_DEV_*
// variables, read as the devprovider command reads them: an auto-approved
// login (TETHER_DEV_AUTO_APPROVE=true) gets a token of
// TETHER_DEV_ACCESS_TTL.
func TestStartReadsDevEnv(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	env := map[string]string{
		"TETHER_DEV_PROVIDER_ADDR": "127.0.0.1:0",
		"TETHER_DEV_AUTO_APPROVE":  "true",
		"TETHER_DEV_ACCESS_TTL":    "45s",
	}
	d, err := demo.Start(context.Background(), demo.Options{
		Addr:   "127.0.0.1:0",
		WebDir: webDir(t),
		Getenv: func(k string) string { return env[k] },
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if strings.HasSuffix(d.DevURL, ":9090") {
		t.Errorf("DevURL %s; want the port TETHER_DEV_PROVIDER_ADDR picked", d.DevURL)
	}

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	res, err := c.Get(d.URL + wire.PathLogin + "?return_to=/")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.Request.URL.String() != d.URL+"/" {
		t.Fatalf("login ended at %s (%d); want %s/ at once (auto-approved)", res.Request.URL, res.StatusCode, d.URL)
	}

	req, _ := http.NewRequest(http.MethodPost, d.URL+wire.PathToken, nil)
	req.Header.Set(wire.HeaderCSRF, wire.CSRFValue)
	before := time.Now()
	res, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok wire.TokenResponse
	err = json.NewDecoder(res.Body).Decode(&tok)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %d, %v", wire.PathToken, res.StatusCode, err)
	}
	if left := time.Unix(tok.ExpiresAt, 0).Sub(before); left < 40*time.Second || left > 46*time.Second {
		t.Errorf("the token expires in %v; want about 45s (TETHER_DEV_ACCESS_TTL)", left)
	}
}

// A bad TETHER_DEV_* variable stops Start with an error naming it.
func TestStartRejectsBadDevEnv(t *testing.T) {
	for k, v := range map[string]string{
		"TETHER_DEV_AUTO_APPROVE":  "yes please",
		"TETHER_DEV_QUIRKS":        "gitlab",
		"TETHER_DEV_PROVIDER_ADDR": "nowhere",
	} {
		_, err := demo.Start(context.Background(), demo.Options{
			Addr:   "127.0.0.1:0",
			WebDir: t.TempDir(),
			Getenv: func(name string) string { return map[string]string{k: v}[name] },
		})
		var ce *devprovider.ConfigError
		if !errors.As(err, &ce) || ce.Var != k {
			t.Errorf("%s=%q: Start = %v; want a ConfigError naming it", k, v, err)
		}
	}
}

// TETHER_DEMO_MODE=proxy: the page is told to use proxy mode with the
// sample API's route, the BFF proxies it, and POST /bff/token is off.
func TestStartProxyMode(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	env := map[string]string{
		"TETHER_DEV_PROVIDER_ADDR": "127.0.0.1:0",
		"TETHER_DEV_AUTO_APPROVE":  "true",
		"TETHER_DEMO_MODE":         "proxy",
	}
	d, err := demo.Start(context.Background(), demo.Options{
		Addr: "127.0.0.1:0", WebDir: webDir(t),
		Getenv: func(k string) string { return env[k] },
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { d.Close() })

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	res, err := c.Get(d.URL + "/demo/config.json")
	if err != nil {
		t.Fatal(err)
	}
	var conf demo.Config
	err = json.NewDecoder(res.Body).Decode(&conf)
	res.Body.Close()
	if err != nil || conf.Mode != "proxy" || conf.APIs["dev"] != d.DevURL+"/api" || conf.API != d.DevURL+"/api/me" {
		t.Fatalf("config.json = %+v, %v; want mode proxy with apis.dev = %s/api", conf, err, d.DevURL)
	}
	if res, err = c.Get(d.URL + wire.PathLogin + "?return_to=/"); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	call := func(method, path string) (int, string) {
		req, _ := http.NewRequest(method, d.URL+path, nil)
		req.Header.Set(wire.HeaderCSRF, wire.CSRFValue)
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, _ := call(http.MethodPost, wire.PathToken); code != http.StatusNotFound {
		t.Errorf("POST %s = %d; want 404", wire.PathToken, code)
	}
	if code, body := call(http.MethodGet, wire.PathAPI+"/dev/me"); code != 200 || !strings.Contains(body, `"subject"`) {
		t.Errorf("GET %s/dev/me = %d %s; want the sample API's answer", wire.PathAPI, code, body)
	}
}

// The demo registers its BFF's /bff/backchannel with the dev provider:
// /control/backchannel ends the signed-in session at once (no refresh, no
// click), and TETHER_DEV_BACKCHANNEL_URI=off registers none.
func TestStartWiresBackchannel(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	for _, off := range []bool{false, true} {
		env := map[string]string{"TETHER_DEV_PROVIDER_ADDR": "127.0.0.1:0", "TETHER_DEV_AUTO_APPROVE": "true"}
		if off {
			env["TETHER_DEV_BACKCHANNEL_URI"] = "off"
		}
		d, err := demo.Start(context.Background(), demo.Options{
			Addr: "127.0.0.1:0", WebDir: webDir(t),
			Getenv: func(k string) string { return env[k] }, Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
		res, err := c.Get(d.URL + wire.PathLogin + "?return_to=/")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		sent, err := (&devprovider.Controls{URL: d.DevURL}).Backchannel(context.Background(), "alice", "")
		var session wire.SessionResponse
		req, _ := http.NewRequest(http.MethodGet, d.URL+wire.PathSession, nil)
		req.Header.Set(wire.HeaderCSRF, wire.CSRFValue)
		if res, err := c.Do(req); err == nil {
			json.NewDecoder(res.Body).Decode(&session)
			res.Body.Close()
		}
		switch {
		case !off && (err != nil || sent != 1 || session.Authenticated || session.Reason != wire.ReasonSignedOut):
			t.Errorf("after /control/backchannel: sent %d, %v; session %+v; want the session ended, signed_out", sent, err, session)
		case off && (err == nil || !session.Authenticated):
			t.Errorf("with TETHER_DEV_BACKCHANNEL_URI=off: sent %d, %v; session %+v; want nothing sent, still signed in", sent, err, session)
		}
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
}
