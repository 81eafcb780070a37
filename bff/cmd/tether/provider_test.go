package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/devprovider"
	"github.com/tetherauth/tether/bff/vault/redistest"
	"github.com/tetherauth/tether/shared/wire"
)

// issuer is a dev provider on a loopback address chosen before it serves,
// that can fail in the ways a provider in trouble does.
type issuer struct {
	t    *testing.T
	url  string
	addr string
	dev  *devprovider.Provider
	down http.HandlerFunc // how a failing request is answered; nil: refused
	// failAll fails every request; failDiscovery only the discovery
	// document.
	failAll, failDiscovery atomic.Bool
	srv                    *http.Server
}

// newIssuer picks the address and starts failing every request in mode:
// "refused" (nothing listens), "503", "timeout" (no answer) or "badjson"
// (a truncated document). up ends it.
func newIssuer(t *testing.T, mode string) *issuer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	is := &issuer{t: t, addr: ln.Addr().String(), url: "http://" + ln.Addr().String()}
	is.dev, err = devprovider.New(devprovider.Config{Issuer: is.url, AutoApprove: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(is.dev.Close)
	switch mode {
	case "refused":
		ln.Close()
		return is
	case "503":
		is.down = func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
		}
	case "timeout":
		is.down = func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	case "badjson":
		is.down = func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"issuer": "`+is.url)
		}
	default:
		t.Fatalf("unknown mode %q", mode)
	}
	is.failAll.Store(true)
	is.serve(ln)
	return is
}

func (is *issuer) serve(ln net.Listener) {
	is.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if is.failAll.Load() || is.failDiscovery.Load() && r.URL.Path == "/.well-known/openid-configuration" {
			is.down(w, r)
			return
		}
		is.dev.ServeHTTP(w, r)
	})}
	go is.srv.Serve(ln)
	is.t.Cleanup(func() { is.srv.Close() })
}

// up makes the provider answer normally.
func (is *issuer) up() {
	is.t.Helper()
	if is.srv == nil {
		ln, err := net.Listen("tcp", is.addr)
		if err != nil {
			is.t.Fatalf("listening again on %s: %v", is.addr, err)
		}
		is.down = func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
		}
		is.serve(ln)
	}
	is.failAll.Store(false)
}

// waitFor polls u until it answers status, and returns the time it took.
func waitFor(t *testing.T, u string, status int, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	c := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := c.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == status {
				return time.Since(start)
			}
		}
		if time.Since(start) > within {
			t.Fatalf("GET %s did not answer %d within %v (last: %v)", u, status, within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLog waits for a line of r's log that contains s.
func (r *running) waitLog(t *testing.T, s string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(r.stderr.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q within %v:\n%s", s, within, r.stderr.Tail(3000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var noRedirect = &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// TestRunProviderDown: the BFF starts while OpenID Connect discovery
// fails in each way a provider in trouble fails: it logs why, answers
// /healthz, says in /readyz (503) why it is not ready, shows a readable
// 503 page at /bff/login, and retries in the background; once the
// provider is back it is ready within the back-off step it was in, and
// logins work.
func TestRunProviderDown(t *testing.T) {
	for _, mode := range []string{"refused", "503", "timeout", "badjson"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			is := newIssuer(t, mode)
			e := devEnv(is.url)
			e["TETHER_PROVIDER_TIMEOUT"] = "500ms"
			r := start(t, e)
			base := r.waitListening(t)

			if code, body := get(t, base+"/healthz"); code != http.StatusOK {
				t.Errorf("/healthz = %d %q; want 200", code, body)
			}
			if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "discovery") {
				t.Errorf("/readyz = %d %q; want 503 saying discovery has not succeeded", code, body)
			}
			resp, err := noRedirect.Get(base + wire.PathLogin)
			if err != nil {
				t.Fatal(err)
			}
			page, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
				!strings.Contains(string(page), "Sign-in is unavailable") || resp.Header.Get(wire.HeaderRetryAfter) == "" {
				t.Errorf("/bff/login = %d %q, Retry-After %q: %.300s; want a 503 page saying sign-in is unavailable",
					resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get(wire.HeaderRetryAfter), page)
			}
			if !strings.Contains(r.stderr.String(), "provider discovery failed") {
				t.Errorf("the failure is not logged:\n%s", r.stderr.Tail(2000))
			}

			// The first retry (1 s) fails too; the next is 2 s later.
			r.waitLog(t, "provider discovery failed again", 10*time.Second)
			is.up()
			took := waitFor(t, base+"/readyz", http.StatusOK, 10*time.Second)
			if limit := 2200*time.Millisecond + 500*time.Millisecond; took > limit {
				t.Errorf("ready %v after the provider came back; want within the 2 s back-off step (%v)", took.Round(time.Millisecond), limit)
			}
			t.Logf("%s: ready %v after the provider came back", mode, took.Round(time.Millisecond))
			resp, err = noRedirect.Get(base + wire.PathLogin)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, is.url+"/authorize?") {
				t.Errorf("/bff/login after discovery = %d to %q; want 302 to the provider", resp.StatusCode, loc)
			}
			if strings.Contains(r.stderr.String(), secret) || strings.Contains(r.stdout.String(), secret) {
				t.Error("the client secret is in the output")
			}
		})
	}
}

// browserSession is a cookie jar that signed in through a BFF.
type browserSession struct {
	c *http.Client
}

// signIn runs the login through base (the dev provider approves at once).
func signIn(t *testing.T, base string) *browserSession {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &browserSession{c: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
	resp, err := b.c.Get(base + wire.PathLogin + "?return_to=/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/" || !strings.HasPrefix(resp.Request.URL.String(), base) {
		t.Fatalf("login ended at %s (%d); want %s/", resp.Request.URL, resp.StatusCode, base)
	}
	return b
}

// token POSTs /bff/token on base; rejected, when set, forces a refresh.
func (b *browserSession) token(t *testing.T, base, rejected string) (int, wire.TokenResponse, http.Header) {
	t.Helper()
	var body io.Reader
	if rejected != "" {
		j, _ := json.Marshal(wire.TokenRequest{Force: true, Rejected: rejected})
		body = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(http.MethodPost, base+wire.PathToken, body)
	req.Header.Set(wire.HeaderCSRF, wire.CSRFValue)
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok wire.TokenResponse
	if resp.StatusCode == http.StatusOK {
		json.NewDecoder(resp.Body).Decode(&tok)
	}
	return resp.StatusCode, tok, resp.Header
}

// TestRunStoredDiscovery: a replica that starts while the provider's
// discovery endpoint is down uses the discovery document another replica
// stored in the vault: it is ready, serves the existing session, refreshes
// it at the token endpoint the document names, and lets users sign in.
// Without the stored document it is not ready, still serves the valid
// token, and answers a refresh with provider_unavailable.
func TestRunStoredDiscovery(t *testing.T) {
	redis := redistest.Start(t)
	is := newIssuer(t, "503")
	is.up()
	e := devEnv(is.url)
	e["TETHER_REDIS_URL"] = "redis://" + redis.Addr
	e["TETHER_VAULT_KEY"] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	e["TETHER_SESSION_KEYS"] = "HyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4="
	e["TETHER_PROVIDER_TIMEOUT"] = "500ms"
	e["TETHER_FORCE_MIN_AGE"] = "1ms" // the test forces two refreshes in a row
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close() // every run listens here: the redirect URI, and the cookie jar keys by host
	e["TETHER_ADDR"], e["TETHER_PUBLIC_URL"] = ln.Addr().String(), "http://"+ln.Addr().String()

	first := start(t, e)
	base := first.waitListening(t)
	if code, body := get(t, base+"/readyz?verbose"); code != http.StatusOK || !strings.Contains(body, "discovered") {
		t.Fatalf("/readyz with the provider up = %d %q; want 200, discovered", code, body)
	}
	b := signIn(t, base)
	code, tok, _ := b.token(t, base, "")
	if code != http.StatusOK {
		t.Fatalf("token = %d", code)
	}
	first.cancel()
	<-first.done
	first.done <- nil

	// The discovery endpoint goes down; the token endpoint does not.
	is.failDiscovery.Store(true)
	restarted := start(t, e)
	base = restarted.waitListening(t)
	restarted.waitLog(t, "using the stored discovery document", 5*time.Second)
	if code, body := get(t, base+"/readyz?verbose"); code != http.StatusOK || !strings.Contains(body, "stored in the vault") {
		t.Errorf("/readyz from the stored document = %d %q; want 200 saying so", code, body)
	}
	if code, got, _ := b.token(t, base, ""); code != http.StatusOK || got.AccessToken != tok.AccessToken {
		t.Fatalf("the session on the restarted replica: %d; want 200 with its token", code)
	}
	code, fresh, _ := b.token(t, base, tok.AccessToken)
	if code != http.StatusOK || fresh.AccessToken == tok.AccessToken || fresh.Degraded {
		t.Fatalf("forced refresh through the stored endpoints: %d %+v; want a new token", code, fresh)
	}
	resp, err := noRedirect.Get(base + wire.PathLogin)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), is.url+"/authorize?") {
		t.Errorf("/bff/login from the stored document = %d %q; want 302 to the provider", resp.StatusCode, resp.Header.Get("Location"))
	}
	restarted.cancel()
	<-restarted.done
	restarted.done <- nil

	// Without the stored document.
	if _, err := redis.Command("EVAL", "for _, k in ipairs(redis.call('KEYS', 'tether:disc:*')) do redis.call('DEL', k) end return 0", "0"); err != nil {
		t.Fatal(err)
	}
	bare := start(t, e)
	base = bare.waitListening(t)
	if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "discovery") {
		t.Errorf("/readyz with no document = %d %q; want 503", code, body)
	}
	if code, got, _ := b.token(t, base, ""); code != http.StatusOK || got.AccessToken != fresh.AccessToken {
		t.Errorf("the valid token with no document: %d; want 200 with it", code)
	}
	code, _, h := b.token(t, base, fresh.AccessToken)
	if ra, err := strconv.Atoi(h.Get(wire.HeaderRetryAfter)); code != http.StatusServiceUnavailable || err != nil || ra < 1 {
		t.Errorf("forced refresh with no document: %d Retry-After %q; want 503 with Retry-After", code, h.Get(wire.HeaderRetryAfter))
	}
	if strings.Contains(bare.stderr.String(), "circuit breaker: the provider is failing") {
		t.Error("a replica without endpoints opened the circuit breaker for every replica")
	}
}

// TestRunConfigErrorsStop: a configuration mistake still stops the BFF at
// once, naming the variable, even with discovery able to fail softly: a
// bad issuer URL, no client id, an issuer whose document names another.
func TestRunConfigErrorsStop(t *testing.T) {
	is := newIssuer(t, "503")
	is.up()
	cases := []struct {
		name string
		env  env
		want string
	}{
		{"bad issuer URL", env{"TETHER_ISSUER": "idp.example"}, "TETHER_ISSUER"},
		{"no client id", env{"TETHER_CLIENT_ID": ""}, "TETHER_CLIENT_ID"},
		{"issuer mismatch", env{"TETHER_ISSUER": is.url + "/"}, "TETHER_ISSUER: provider: discovery"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := devEnv(is.url)
			for k, v := range tc.env {
				e[k] = v
			}
			var stdout, stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := run(ctx, e.get, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run = %v; want an error naming %s", err, tc.want)
			}
			if strings.Contains(stdout.String(), "listening") {
				t.Errorf("run listened despite the mistake: %q", stdout.String())
			}
		})
	}
}
