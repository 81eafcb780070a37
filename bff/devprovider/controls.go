package devprovider

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Controls is a client of a running provider's /control/ endpoints, for
// tests and tools that hold its URL rather than the *Provider (another
// process, another package's server). Its methods do over HTTP what the
// Provider methods of the same names do in-process. The zero Client is
// http.DefaultClient. A Controls is safe for concurrent use.
type Controls struct {
	// URL is the provider's base URL, e.g. http://127.0.0.1:9090.
	URL string
	// Client sends the requests. Default http.DefaultClient.
	Client *http.Client
}

// Expire makes every current access token (of subject, when not empty)
// expire now: POST /control/expire. It returns how many it expired.
func (c *Controls) Expire(ctx context.Context, subject string) (int, error) {
	var out struct{ Expired int }
	err := c.post(ctx, "/control/expire", url.Values{"subject": nonEmpty(subject)}, &out)
	return out.Expired, err
}

// Revoke revokes every grant of subject (alice or bob): POST
// /control/revoke. It returns how many grants it revoked.
func (c *Controls) Revoke(ctx context.Context, subject string) (int, error) {
	var out struct{ Revoked int }
	err := c.post(ctx, "/control/revoke", url.Values{"subject": {subject}}, &out)
	return out.Revoked, err
}

// Backchannel sends the client's back-channel logout URI one logout
// token naming subject (every session of it), and sid when not empty
// (that provider session only): POST /control/backchannel. It returns
// how many tokens the client accepted.
func (c *Controls) Backchannel(ctx context.Context, subject, sid string) (int, error) {
	var out struct{ Sent int }
	err := c.post(ctx, "/control/backchannel", url.Values{"subject": {subject}, "sid": nonEmpty(sid)}, &out)
	return out.Sent, err
}

// RevokeAndLogout revokes every grant of subject, as Revoke does, and
// sends the client a back-channel logout token naming the subject: POST
// /control/revoke?backchannel=1. It returns how many grants it revoked.
func (c *Controls) RevokeAndLogout(ctx context.Context, subject string) (int, error) {
	var out struct{ Revoked int }
	err := c.post(ctx, "/control/revoke", url.Values{"subject": {subject}, "backchannel": {"1"}}, &out)
	return out.Revoked, err
}

// Outage makes POST /token misbehave in mode for d (0: until mode
// OutageNone), with delay for OutageSlow (0: DefaultSlowDelay), as
// Provider.SetOutage does: POST /control/outage. It returns when the outage
// ends, to the second; zero when open-ended.
func (c *Controls) Outage(ctx context.Context, mode OutageMode, d, delay time.Duration, opts ...OutageOption) (time.Time, error) {
	q := url.Values{"mode": {string(mode)}}
	var o outage
	for _, opt := range opts {
		opt(&o)
	}
	if o.retryAfter > 0 {
		q.Set("retry_after", strconv.FormatInt(max(1, int64(o.retryAfter/time.Second)), 10))
	}
	if d > 0 {
		q.Set("seconds", strconv.FormatFloat(d.Seconds(), 'f', -1, 64))
	}
	if delay > 0 {
		q.Set("delay", delay.String())
	}
	var out struct{ Until int64 }
	if err := c.post(ctx, "/control/outage", q, &out); err != nil {
		return time.Time{}, err
	}
	if out.Until == 0 {
		return time.Time{}, nil
	}
	return time.Unix(out.Until, 0), nil
}

// Stats reads the provider's counters: GET /control/stats.
func (c *Controls) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	err := c.do(ctx, http.MethodGet, "/control/stats", nil, &st)
	return st, err
}

// ResetStats zeroes the counters: POST /control/reset-stats.
func (c *Controls) ResetStats(ctx context.Context) error {
	return c.post(ctx, "/control/reset-stats", nil, &Stats{})
}

func (c *Controls) post(ctx context.Context, path string, q url.Values, out any) error {
	return c.do(ctx, http.MethodPost, path, q, out)
}

// do sends one request and decodes a 200 answer's JSON body into out. Any
// other status is an error carrying the provider's error description.
func (c *Controls) do(ctx context.Context, method, path string, q url.Values, out any) error {
	u := c.URL + path
	if enc := q.Encode(); enc != "" {
		u += "?" + enc
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return fmt.Errorf("devprovider: %s %s: %w", method, path, err)
	}
	client := c.Client
	if client == nil {
		client = http.DefaultClient
	}
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("devprovider: %s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("devprovider: %s %s: %w", method, path, err)
	}
	if res.StatusCode != http.StatusOK {
		var e errorBody
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return fmt.Errorf("devprovider: %s %s: %d %s: %s", method, path, res.StatusCode, e.Error, e.ErrorDescription)
		}
		return fmt.Errorf("devprovider: %s %s: %d %.200q", method, path, res.StatusCode, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("devprovider: %s %s: %w", method, path, err)
	}
	return nil
}

// nonEmpty is {s}, or nil when s is empty (no parameter).
func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}
