package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/admin"
)

var adminListening = regexp.MustCompile(`admin on http://(\S+)/admin/sessions`)

// TestRunAdminListener: with TETHER_ADMIN_TOKEN the command serves the
// admin API on TETHER_ADMIN_ADDR, which `tether sessions list|end`
// reaches (401 without the token); without a token it is off and the log
// says so; a token too short stops the command with the variable's name.
func TestRunAdminListener(t *testing.T) {
	issuer := startDev(t)
	t.Run("on", func(t *testing.T) {
		e := devEnv(issuer)
		e["TETHER_ADMIN_ADDR"], e["TETHER_ADMIN_TOKEN"] = "127.0.0.1:0", "0123456789abcdef0123"
		r := start(t, e)
		r.waitListening(t)
		m := adminListening.FindStringSubmatch(r.stdout.String())
		if m == nil {
			t.Fatalf("no admin line in %q", r.stdout.String())
		}
		if !strings.HasPrefix(m[1], "127.0.0.1:") || strings.HasSuffix(m[1], ":0") {
			t.Fatalf("admin on %q; want 127.0.0.1 and a real port", m[1])
		}
		getenv := func(k string) string {
			return map[string]string{"TETHER_ADMIN_ADDR": m[1], "TETHER_ADMIN_TOKEN": e["TETHER_ADMIN_TOKEN"]}[k]
		}
		var out bytes.Buffer
		if err := admin.RunCLI(context.Background(), []string{"list", "--subject", "alice"}, getenv, &out); err != nil || !strings.Contains(out.String(), "0 sessions of alice") {
			t.Fatalf("tether sessions list: %v, %q", err, out.String())
		}
		if err := admin.RunCLI(context.Background(), []string{"end", "--subject", "alice"}, getenv, &out); err != nil || !strings.Contains(out.String(), "ended 0 sessions of alice") {
			t.Fatalf("tether sessions end: %v, %q", err, out.String())
		}
		wrong := func(k string) string {
			return map[string]string{"TETHER_ADMIN_ADDR": m[1], "TETHER_ADMIN_TOKEN": "not-the-token-at-all"}[k]
		}
		if err := admin.RunCLI(context.Background(), []string{"list", "--subject", "alice"}, wrong, &out); err == nil || !strings.Contains(err.Error(), "401") {
			t.Fatalf("with a wrong token: %v; want 401", err)
		}
		// The command itself: main dispatches `tether sessions`.
		bin := filepath.Join(t.TempDir(), "tether")
		if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		cmd := exec.Command(bin, "sessions", "list", "--subject", "bob")
		cmd.Env = append(os.Environ(), "TETHER_ADMIN_ADDR="+m[1], "TETHER_ADMIN_TOKEN="+e["TETHER_ADMIN_TOKEN"])
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "0 sessions of bob") {
			t.Errorf("tether sessions list --subject bob: %v\n%s", err, out)
		}
		cmd = exec.Command(bin, "sessions", "frobnicate")
		usage, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(usage), "usage: tether sessions") {
			t.Errorf("tether sessions frobnicate: %v\n%s; want exit 2 and the usage", err, usage)
		}
		// The admin API is not on the app's listener.
		if code, _ := get(t, r.waitListening(t)+admin.PathSessions+"?subject=alice"); code != 404 {
			t.Errorf("GET /admin/sessions on the app = %d; want 404", code)
		}
	})
	t.Run("off without a token", func(t *testing.T) {
		e := devEnv(issuer)
		e["TETHER_ADMIN_ADDR"] = "127.0.0.1:0"
		r := start(t, e)
		r.waitListening(t)
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(r.stderr.String(), "TETHER_ADMIN_TOKEN is not set") && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if !strings.Contains(r.stderr.String(), "the admin listener (tether sessions list|end) is off") {
			t.Errorf("the log does not say the admin listener is off:\n%s", r.stderr.String())
		}
		if adminListening.MatchString(r.stdout.String()) {
			t.Errorf("an admin listener without a token: %q", r.stdout.String())
		}
	})
	t.Run("short token", func(t *testing.T) {
		e := devEnv(issuer)
		e["TETHER_ADMIN_TOKEN"] = "short"
		err := run(context.Background(), e.get, &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "TETHER_ADMIN_TOKEN") || strings.Contains(err.Error(), "short") {
			t.Fatalf("run with a 5-byte token: %v; want an error naming the variable, not the token", err)
		}
	})
}
