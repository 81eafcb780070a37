// Package admin is the contract of the BFF's admin listener
// (TETHER_ADMIN_ADDR) and its client: the `tether sessions list|end`
// commands. The listener itself is bff.Handler.AdminHandler.
//
//	GET    /admin/sessions?subject=alice   the user's sessions (Sessions)
//	DELETE /admin/sessions?subject=alice   end them all, revoking each grant (Ended)
//
// Every request carries Authorization: Bearer <TETHER_ADMIN_TOKEN>; the
// listener answers 401 without it. Sessions are named by hashed ids (the
// vault's: base64url SHA-256 of the cookie's session id), never by the id
// itself, and no token is ever part of an answer.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// PathSessions is the admin listener's one route.
const PathSessions = "/admin/sessions"

// DefaultAddr is where the admin listener listens without
// TETHER_ADMIN_ADDR: loopback only (the app is on 8080, the metrics on
// 9100, the dev provider on 9090).
const DefaultAddr = "127.0.0.1:9092"

// MinTokenLen is the shortest TETHER_ADMIN_TOKEN accepted.
const MinTokenLen = 16

// Session is one session as the admin listener shows it. Times are Unix
// seconds; 0 means unknown.
type Session struct {
	// ID is the session's hashed id, as the vault names it.
	ID       string `json:"id"`
	Name     string `json:"name,omitempty"`
	Created  int64  `json:"created"`
	LastUsed int64  `json:"last_used,omitempty"`
	// ExpiresAt is when the vault drops the session's record.
	ExpiresAt int64 `json:"expires_at"`
	// AccessExpiresAt is when its current access token expires.
	AccessExpiresAt int64 `json:"access_expires_at,omitempty"`
}

// Sessions answers GET /admin/sessions.
type Sessions struct {
	Subject  string    `json:"subject"`
	Sessions []Session `json:"sessions"`
}

// Ended answers DELETE /admin/sessions: how many sessions ended, and how
// many of their grants were revoked at the provider (or failed to be).
type Ended struct {
	Subject      string `json:"subject"`
	Ended        int    `json:"ended"`
	Revoked      int    `json:"revoked"`
	RevokeFailed int    `json:"revoke_failed"`
}

// Error is the admin listener's error body.
type Error struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// Client calls an admin listener.
type Client struct {
	// Addr is the listener's host:port (or an http:// URL).
	Addr string
	// Token is TETHER_ADMIN_TOKEN.
	Token string
	// HTTP sends the requests; default a client with a 30-second timeout.
	HTTP *http.Client
}

// List returns subject's sessions.
func (c *Client) List(ctx context.Context, subject string) (*Sessions, error) {
	var out Sessions
	if err := c.do(ctx, http.MethodGet, subject, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// End ends every session of subject and revokes their grants at the
// provider (where it can).
func (c *Client) End(ctx context.Context, subject string) (*Ended, error) {
	var out Ended
	if err := c.do(ctx, http.MethodDelete, subject, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func (c *Client) do(ctx context.Context, method, subject string, out any) error {
	base := c.Addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	req, err := http.NewRequestWithContext(ctx, method, base+PathSessions+"?"+url.Values{"subject": {subject}}.Encode(), nil)
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("admin: %s %s: %w", method, PathSessions, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("admin: %s %s: %w", method, PathSessions, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e Error
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return fmt.Errorf("admin: %s %s: %d %s: %s", method, PathSessions, resp.StatusCode, e.Error, e.Message)
		}
		return fmt.Errorf("admin: %s %s: %d", method, PathSessions, resp.StatusCode)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("admin: %s %s: %w", method, PathSessions, err)
	}
	return nil
}

// Usage is the sessions command's usage.
const Usage = `usage: tether sessions list --subject <sub>
       tether sessions end  --subject <sub>

list shows the user's sessions (hashed ids, created, last used, expiry);
end ends them all and revokes each grant at the provider. Both call the
admin listener at TETHER_ADMIN_ADDR (default ` + DefaultAddr + `) with
TETHER_ADMIN_TOKEN.
`

// ErrUsage is a command line RunCLI does not understand.
var ErrUsage = errors.New("admin: bad command line")

// RunCLI runs `tether sessions <args>`: args are what follows
// "sessions". It prints to stdout and reads TETHER_ADMIN_ADDR and
// TETHER_ADMIN_TOKEN through getenv.
func RunCLI(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) < 1 || (args[0] != "list" && args[0] != "end") {
		return fmt.Errorf("%w\n%s", ErrUsage, Usage)
	}
	subject := ""
	for i := 1; i < len(args); i++ {
		switch a := args[i]; {
		case (a == "--subject" || a == "-subject") && i+1 < len(args):
			subject = args[i+1]
			i++
		case strings.HasPrefix(a, "--subject="):
			subject = strings.TrimPrefix(a, "--subject=")
		default:
			return fmt.Errorf("%w: %q\n%s", ErrUsage, a, Usage)
		}
	}
	if subject == "" {
		return fmt.Errorf("%w: --subject is required\n%s", ErrUsage, Usage)
	}
	c := &Client{Addr: getenv("TETHER_ADMIN_ADDR"), Token: getenv("TETHER_ADMIN_TOKEN")}
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.Token == "" {
		return errors.New("admin: TETHER_ADMIN_TOKEN is not set")
	}
	if args[0] == "end" {
		e, err := c.End(ctx, subject)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "ended %d sessions of %s; revoked %d grants at the provider (%d failed)\n", e.Ended, e.Subject, e.Revoked, e.RevokeFailed)
		return nil
	}
	l, err := c.List(ctx, subject)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d sessions of %s\n", len(l.Sessions), l.Subject)
	if len(l.Sessions) > 0 {
		fmt.Fprintf(stdout, "%-43s  %-20s  %-20s  %-20s\n", "ID (hashed)", "CREATED", "LAST USED", "EXPIRES")
	}
	for _, s := range l.Sessions {
		fmt.Fprintf(stdout, "%-43s  %-20s  %-20s  %-20s\n", s.ID, when(s.Created), when(s.LastUsed), when(s.ExpiresAt))
	}
	return nil
}

func when(unix int64) string {
	if unix == 0 {
		return "-"
	}
	return time.Unix(unix, 0).UTC().Format("2006-01-02 15:04:05Z")
}
