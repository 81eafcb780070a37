package devprovider

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// Stats are the provider's counters, as GET /control/stats answers them.
// Requests that an outage failed or swallowed count only in OutageHits;
// those that mode slow delayed and then served count there and as usual.
type Stats struct {
	// AuthorizationCode counts POST /token requests with
	// grant_type=authorization_code that reached the token logic,
	// successful or not.
	AuthorizationCode int64 `json:"authorization_code"`
	// RefreshToken counts POST /token requests with grant_type=refresh_token
	// that reached the token logic, successful or not.
	RefreshToken int64 `json:"refresh_token"`
	// RefreshReuse counts refresh requests that presented an already
	// rotated refresh token (each also revoked its grant).
	RefreshReuse int64 `json:"refresh_reuse"`
	// Revoke counts POST /revoke requests that authenticated the client and
	// named a token (answered 200, known token or not) and, in the GitHub
	// modes, grants deleted by DELETE /api/v3/applications/{client_id}/grant.
	Revoke int64 `json:"revoke"`
	// APIOK counts GET /api/me answered 200.
	APIOK int64 `json:"api_ok"`
	// API401 counts GET /api/me answered 401.
	API401 int64 `json:"api_401"`
	// TokenErrors counts POST /token requests that reached the token logic
	// and got an error answer (invalid_grant, invalid_client, ...), of any
	// grant type.
	TokenErrors int64 `json:"token_errors"`
	// OutageHits counts POST /token requests that an outage mode failed,
	// swallowed or (mode slow) delayed.
	OutageHits int64 `json:"outage_hits"`
	// CodesIssued counts authorization codes /authorize handed out.
	CodesIssued int64 `json:"codes_issued"`
	// BackchannelSent and BackchannelFailed count the logout tokens sent
	// to the client's back-channel logout URI that it accepted (200), and
	// those it refused or that could not be delivered.
	BackchannelSent   int64 `json:"backchannel_sent"`
	BackchannelFailed int64 `json:"backchannel_failed"`
}

type counters struct {
	authorizationCode, refreshToken, refreshReuse, revoke atomic.Int64
	apiOK, api401, tokenErrors, outageHits, codesIssued   atomic.Int64
	backchannelSent, backchannelFailed                    atomic.Int64
}

func (c *counters) all() []*atomic.Int64 {
	return []*atomic.Int64{&c.authorizationCode, &c.refreshToken, &c.refreshReuse, &c.revoke,
		&c.apiOK, &c.api401, &c.tokenErrors, &c.outageHits, &c.codesIssued,
		&c.backchannelSent, &c.backchannelFailed}
}

// Stats returns the counters, the same numbers as GET /control/stats.
func (p *Provider) Stats() Stats {
	c := &p.stats
	return Stats{
		AuthorizationCode: c.authorizationCode.Load(),
		RefreshToken:      c.refreshToken.Load(),
		RefreshReuse:      c.refreshReuse.Load(),
		Revoke:            c.revoke.Load(),
		APIOK:             c.apiOK.Load(),
		API401:            c.api401.Load(),
		TokenErrors:       c.tokenErrors.Load(),
		OutageHits:        c.outageHits.Load(),
		CodesIssued:       c.codesIssued.Load(),
		BackchannelSent:   c.backchannelSent.Load(),
		BackchannelFailed: c.backchannelFailed.Load(),
	}
}

// ResetStats zeroes the counters.
func (p *Provider) ResetStats() {
	for _, c := range p.stats.all() {
		c.Store(0)
	}
}

// OutageMode is how POST /token misbehaves during an outage.
type OutageMode string

// Outage modes.
const (
	OutageNone      OutageMode = "none"      // normal service
	Outage503       OutageMode = "503"       // 503 temporarily_unavailable + Retry-After
	Outage500       OutageMode = "500"       // 500 with an HTML body
	OutageTimeout   OutageMode = "timeout"   // never answers (until the client gives up, Close, or the outage ends)
	OutageMalformed OutageMode = "malformed" // 200 with a truncated JSON body
	OutageReset     OutageMode = "reset"     // TCP RST
	OutageError200  OutageMode = "error200"  // 200 with {"error":"server_error"}
	OutageSlow      OutageMode = "slow"      // sleeps Delay, then answers normally
)

// DefaultSlowDelay is the delay of OutageSlow when none is given.
const DefaultSlowDelay = 2 * time.Second

// maxHang bounds how long the timeout and slow modes hold a request.
const maxHang = 5 * time.Minute

var errUnknownMode = errors.New("devprovider: unknown outage mode")

func (m OutageMode) valid() bool {
	switch m {
	case OutageNone, Outage503, Outage500, OutageTimeout, OutageMalformed, OutageReset, OutageError200, OutageSlow:
		return true
	}
	return false
}

type outage struct {
	mode       OutageMode
	until      time.Time // zero: until mode none
	delay      time.Duration
	retryAfter time.Duration // Retry-After of mode 503; zero: the time left
	changed    chan struct{} // closed when this outage is replaced
}

// OutageOption adjusts an outage beyond its mode and duration.
type OutageOption func(*outage)

// WithRetryAfter makes mode 503 send Retry-After: d (whole seconds, at
// least one) instead of the time left in the outage (5 s when
// open-ended): a provider that asks for more patience than its outage
// needs.
func WithRetryAfter(d time.Duration) OutageOption {
	return func(o *outage) { o.retryAfter = d }
}

// SetOutage makes POST /token misbehave in mode for d (0: until mode
// OutageNone is set). delay is for OutageSlow (0: DefaultSlowDelay). It
// returns when the outage ends, zero when open-ended.
func (p *Provider) SetOutage(mode OutageMode, d, delay time.Duration, opts ...OutageOption) (time.Time, error) {
	if !mode.valid() {
		return time.Time{}, fmt.Errorf("%w %q", errUnknownMode, mode)
	}
	if d < 0 || delay < 0 {
		return time.Time{}, errors.New("devprovider: outage durations must not be negative")
	}
	if delay == 0 {
		delay = DefaultSlowDelay
	}
	o := outage{mode: mode, delay: min(delay, maxHang), changed: make(chan struct{})}
	for _, opt := range opts {
		opt(&o)
	}
	if d > 0 && mode != OutageNone {
		o.until = p.now().Add(d)
	}
	p.outMu.Lock()
	close(p.out.changed)
	p.out = o
	p.outMu.Unlock()
	return o.until, nil
}

// currentOutage returns the outage in force now.
func (p *Provider) currentOutage() outage {
	p.outMu.Lock()
	defer p.outMu.Unlock()
	if p.out.mode != OutageNone && !p.out.until.IsZero() && !p.now().Before(p.out.until) {
		close(p.out.changed)
		p.out = outage{mode: OutageNone, changed: make(chan struct{})}
	}
	return p.out
}

// wait blocks for d or until the client leaves, Close is called or the
// outage changes. It reports whether the client is still there.
func (p *Provider) wait(ctx context.Context, o outage, d time.Duration) bool {
	t := time.NewTimer(min(d, maxHang))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-p.closed:
	case <-o.changed:
	case <-t.C:
	}
	return true
}

// serveOutage answers r as the current outage dictates and reports whether
// it did; false means serve normally.
func (p *Provider) serveOutage(w http.ResponseWriter, r *http.Request) bool {
	o := p.currentOutage()
	if o.mode == OutageNone {
		return false
	}
	p.stats.outageHits.Add(1)
	switch o.mode {
	case OutageSlow:
		if !p.wait(r.Context(), o, o.delay) {
			return true // the client gave up; nothing to answer
		}
		return false
	case OutageTimeout:
		hang := maxHang
		if !o.until.IsZero() {
			hang = o.until.Sub(p.now())
		}
		if !p.wait(r.Context(), o, hang) {
			return true
		}
		p.unavailable(w, o)
	case Outage503:
		p.unavailable(w, o)
	case Outage500:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte("<!doctype html><title>500</title><h1>500 Internal Server Error</h1>\n"))
	case OutageMalformed:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(`{"access_token":"x`))
	case OutageError200:
		writeError(w, http.StatusOK, "server_error", "dev provider outage (error200)")
	case OutageReset:
		resetConnection(w)
	}
	return true
}

func (p *Provider) unavailable(w http.ResponseWriter, o outage) {
	retry := int64(5)
	switch {
	case o.retryAfter > 0:
		retry = max(1, int64(o.retryAfter/time.Second))
	case !o.until.IsZero():
		retry = max(1, int64((o.until.Sub(p.now())+time.Second-1)/time.Second))
	}
	w.Header().Set("Retry-After", strconv.FormatInt(retry, 10))
	writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "dev provider outage (503)")
}

// resetConnection closes the client's TCP connection with a RST. Where the
// connection cannot be hijacked (HTTP/2) it aborts the handler instead.
func resetConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

func (p *Provider) handleControlOutage(w http.ResponseWriter, r *http.Request) {
	mode := OutageMode(r.FormValue("mode"))
	var d, delay time.Duration
	if s := r.FormValue("seconds"); s != "" {
		n, err := strconv.ParseFloat(s, 64)
		if err != nil || n < 0 || n > 86400 {
			writeError(w, http.StatusBadRequest, "invalid_request", "seconds must be a number from 0 to 86400")
			return
		}
		d = time.Duration(n * float64(time.Second))
	}
	if s := r.FormValue("delay"); s != "" {
		var err error
		if delay, err = time.ParseDuration(s); err != nil || delay < 0 {
			writeError(w, http.StatusBadRequest, "invalid_request", "delay must be a Go duration such as 2s")
			return
		}
	}
	var opts []OutageOption
	if s := r.FormValue("retry_after"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 86400 {
			writeError(w, http.StatusBadRequest, "invalid_request", "retry_after must be whole seconds from 1 to 86400")
			return
		}
		opts = append(opts, WithRetryAfter(time.Duration(n)*time.Second))
	}
	until, err := p.SetOutage(mode, d, delay, opts...)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request",
			"mode must be one of 503, 500, timeout, malformed, reset, error200, slow, none")
		return
	}
	p.log.Info("devprovider: outage", "mode", string(mode), "seconds", d.Seconds())
	var u int64
	if !until.IsZero() {
		u = until.Unix()
	}
	writeJSON(w, http.StatusOK, map[string]any{"mode": mode, "until": u})
}

func (p *Provider) handleControlRevoke(w http.ResponseWriter, r *http.Request) {
	subject := r.FormValue("subject")
	if _, ok := lookupUser(subject); !ok {
		writeError(w, http.StatusBadRequest, "invalid_request", "subject must name a known user (alice, bob)")
		return
	}
	out := map[string]int{"revoked": p.RevokeSubject(subject)}
	// With backchannel=1 the client is also told at once, with a logout
	// token naming the subject (as a provider that ends the user's
	// sessions with the grant does). Without, the revocation is noticed
	// at the next refresh.
	if on, _ := strconv.ParseBool(r.FormValue("backchannel")); on {
		n, err := p.BackchannelLogout(r.Context(), subject, "")
		if err != nil {
			writeError(w, http.StatusBadGateway, "backchannel_failed", err.Error())
			return
		}
		out["sent"] = n
	}
	writeJSON(w, http.StatusOK, out)
}

func (p *Provider) handleControlExpire(w http.ResponseWriter, r *http.Request) {
	subject := r.FormValue("subject")
	if _, ok := lookupUser(subject); subject != "" && !ok {
		writeError(w, http.StatusBadRequest, "invalid_request", "subject must name a known user (alice, bob)")
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"expired": p.ExpireAccessTokens(subject)})
}

func (p *Provider) handleControlStats(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, p.Stats())
}

func (p *Provider) handleControlResetStats(w http.ResponseWriter, r *http.Request) {
	p.ResetStats()
	writeJSON(w, http.StatusOK, p.Stats())
}
