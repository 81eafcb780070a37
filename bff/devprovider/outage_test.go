package devprovider_test

import (
	"context"
	"errors"
	"io"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tetherauth/tether/bff/devprovider"
)

func TestOutageModes(t *testing.T) {
	cases := []struct {
		mode  string
		query string
		check func(t *testing.T, err error, took time.Duration)
	}{
		{"503", "", func(t *testing.T, err error, _ time.Duration) {
			wantGrantError(t, err, 503, "temporarily_unavailable")
			var re *oauth2.RetrieveError
			errors.As(err, &re)
			if re.Response.Header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
		}},
		{"500", "", func(t *testing.T, err error, _ time.Duration) {
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) || re.Response.StatusCode != 500 {
				t.Errorf("err = %v; want RetrieveError 500", err)
			}
		}},
		{"malformed", "", func(t *testing.T, err error, _ time.Duration) {
			var re *oauth2.RetrieveError
			if err == nil || errors.As(err, &re) || !strings.Contains(err.Error(), "cannot parse json") {
				t.Errorf("err = %v; want a JSON decode error", err)
			}
		}},
		{"error200", "", func(t *testing.T, err error, _ time.Duration) {
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) || re.Response.StatusCode != 200 || re.ErrorCode != "server_error" {
				t.Errorf("err = %v; want RetrieveError 200 server_error", err)
			}
		}},
		{"timeout", "", func(t *testing.T, err error, _ time.Duration) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err = %v; want context.DeadlineExceeded", err)
			}
		}},
		{"reset", "", func(t *testing.T, err error, _ time.Duration) {
			var ue *url.Error
			reset := errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
			if !errors.As(err, &ue) || !reset {
				t.Errorf("err = %v; want a connection reset", err)
			}
		}},
		{"slow", "&delay=300ms", func(t *testing.T, err error, took time.Duration) {
			if err != nil || took < 300*time.Millisecond {
				t.Errorf("slow: err %v after %v; want success after >= 300ms", err, took)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.mode, func(t *testing.T) {
			e := newEnv(t, devprovider.Config{AutoApprove: true})
			tok := e.login()
			var out struct {
				Mode  string
				Until int64
			}
			e.control("/control/outage?mode="+c.mode+c.query, &out)
			if out.Mode != c.mode || out.Until != 0 {
				t.Errorf("outage answer %+v; want mode %s, until 0", out, c.mode)
			}
			ctx, cancel := context.WithTimeout(e.ctx, 2*time.Second)
			defer cancel()
			if c.mode == "timeout" {
				ctx, cancel = context.WithTimeout(e.ctx, 200*time.Millisecond)
				defer cancel()
			}
			start := time.Now()
			got, err := e.refresh(ctx, tok.RefreshToken)
			c.check(t, err, time.Since(start))
			if s := e.p.Stats(); s.OutageHits != 1 {
				t.Errorf("outage_hits = %d; want 1", s.OutageHits)
			}

			e.control("/control/outage?mode=none", nil)
			rt := tok.RefreshToken
			if c.mode == "slow" && got != nil {
				rt = got.RefreshToken // slow answers normally
			}
			if _, err := e.refresh(e.ctx, rt); err != nil {
				t.Errorf("refresh after mode=none: %v (an outage must not touch token state)", err)
			}
		})
	}
}

func TestOutageEndsByItself(t *testing.T) {
	e := newEnv(t, devprovider.Config{AutoApprove: true})
	tok := e.login()
	var out struct {
		Mode  string
		Until int64
	}
	e.control("/control/outage?mode=503&seconds=1", &out)
	if want := e.clk.Now().Add(time.Second).Unix(); out.Until != want {
		t.Errorf("until = %d; want %d", out.Until, want)
	}
	_, err := e.refresh(e.ctx, tok.RefreshToken)
	wantGrantError(t, err, 503, "temporarily_unavailable")
	e.clk.Advance(time.Second)
	if _, err := e.refresh(e.ctx, tok.RefreshToken); err != nil {
		t.Errorf("refresh after the outage: %v", err)
	}
}

// TestOutageTimeoutReleased checks that a request held by mode=timeout is
// answered (503) as soon as the outage is lifted or the provider closes.
func TestOutageTimeoutReleased(t *testing.T) {
	for _, how := range []string{"none", "close"} {
		t.Run(how, func(t *testing.T) {
			e := newEnv(t, devprovider.Config{AutoApprove: true})
			tok := e.login()
			e.control("/control/outage?mode=timeout", nil)
			done := make(chan error, 1)
			go func() {
				_, err := e.refresh(e.ctx, tok.RefreshToken)
				done <- err
			}()
			// Wait until the request is being held.
			for deadline := time.Now().Add(5 * time.Second); e.p.Stats().OutageHits == 0; {
				if time.Now().After(deadline) {
					t.Fatal("the request never reached the token endpoint")
				}
				time.Sleep(5 * time.Millisecond)
			}
			select {
			case err := <-done:
				t.Fatalf("answered while held: %v", err)
			case <-time.After(100 * time.Millisecond):
			}
			if how == "none" {
				e.control("/control/outage?mode=none", nil)
			} else {
				e.p.Close()
			}
			select {
			case err := <-done:
				wantGrantError(t, err, 503, "temporarily_unavailable")
			case <-time.After(5 * time.Second):
				t.Fatal("still held 5s after release")
			}
		})
	}
}

func TestOutageOnlyAffectsTokenEndpoint(t *testing.T) {
	e := newEnv(t, devprovider.Config{AutoApprove: true})
	tok := e.login()
	e.control("/control/outage?mode=503", nil)
	if res, _ := e.me(tok.AccessToken); res.StatusCode != 200 {
		t.Errorf("/api/me during the outage: %d", res.StatusCode)
	}
	code, _ := e.authorize()
	if code == "" {
		t.Error("/authorize gave no code during the outage")
	}
	if s := e.p.Stats(); s.OutageHits != 0 {
		t.Errorf("outage_hits = %d; want 0", s.OutageHits)
	}
}

func TestControlOutageRejectsBadInput(t *testing.T) {
	e := newEnv(t, devprovider.Config{})
	for _, q := range []string{"mode=teapot", "mode=", "mode=503&seconds=-1", "mode=slow&delay=soon"} {
		if res := e.do("POST", "/control/outage?"+q, nil, nil); res.StatusCode != 400 {
			t.Errorf("%s: %d; want 400", q, res.StatusCode)
		}
	}
}

// TestOutageRetryAfter: mode 503 sends the Retry-After it is given, not the
// time left in the outage; without one, the time left.
func TestOutageRetryAfter(t *testing.T) {
	e := newEnv(t, devprovider.Config{AutoApprove: true})
	tok := e.login()
	c := &devprovider.Controls{URL: e.srv.URL, Client: e.srv.Client()}
	retryAfter := func() string {
		t.Helper()
		_, err := e.refresh(e.ctx, tok.RefreshToken)
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.Response.StatusCode != 503 {
			t.Fatalf("refresh during a 503 outage: %v", err)
		}
		return re.Response.Header.Get("Retry-After")
	}
	if _, err := c.Outage(e.ctx, devprovider.Outage503, 20*time.Second, 0, devprovider.WithRetryAfter(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := retryAfter(); got != "3600" {
		t.Errorf("Retry-After = %q; want 3600 as asked", got)
	}
	if _, err := e.p.SetOutage(devprovider.Outage503, 20*time.Second, 0); err != nil {
		t.Fatal(err)
	}
	if got := retryAfter(); got != "20" {
		t.Errorf("Retry-After = %q; want 20, the time left, once a new outage drops the option", got)
	}
	if res := e.do("POST", "/control/outage?mode=503&retry_after=0", nil, nil); res.StatusCode != 400 {
		t.Errorf("retry_after=0: %d; want 400", res.StatusCode)
	}
}
