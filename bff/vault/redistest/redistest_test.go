package redistest

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestStartStopRestart(t *testing.T) {
	s := Start(t)
	if !strings.HasPrefix(s.Addr, "127.0.0.1:") {
		t.Fatalf("Addr = %q; want 127.0.0.1:port", s.Addr)
	}
	if got, err := s.Command("SET", "k", "v"); err != nil || got != "OK" {
		t.Fatalf("SET = %q, %v; want OK", got, err)
	}
	if got, err := s.Command("GET", "k"); err != nil || got != "v" {
		t.Fatalf("GET = %q, %v; want v", got, err)
	}
	if got, err := s.Command("CONFIG", "GET", "save"); err == nil {
		t.Fatalf("CONFIG GET (an array) = %q; want an error", got)
	}
	s.Stop()
	if err := ping(s.Addr); err == nil {
		t.Fatal("server still answers PING after Stop")
	}
	s.Stop() // again: a no-op
	s.Restart()
	if err := ping(s.Addr); err != nil {
		t.Fatalf("after Restart: %v", err)
	}
	// No persistence by default: the data is gone.
	if got, err := s.Command("GET", "k"); err != nil || got != "" {
		t.Fatalf("GET after restart = %q, %v; want nil", got, err)
	}
}

func TestRestartKeepsAppendOnlyData(t *testing.T) {
	s := Start(t, "--appendonly", "yes", "--appendfsync", "always")
	if _, err := s.Command("SET", "k", "v"); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr
	s.Restart()
	if s.Addr != addr {
		t.Fatalf("Addr changed across Restart: %q -> %q", addr, s.Addr)
	}
	if got, err := s.Command("GET", "k"); err != nil || got != "v" {
		t.Fatalf("GET after restart = %q, %v; want v", got, err)
	}
}

func TestErrorReply(t *testing.T) {
	s := Start(t)
	if _, err := s.Command("NOSUCHCOMMAND"); err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Fatalf("err = %v; want unknown command", err)
	}
}

func TestSentinel(t *testing.T) {
	m := Start(t)
	sn := StartSentinel(t, m, "mymaster")
	deadline := time.Now().Add(5 * time.Second)
	for {
		// SENTINEL GET-MASTER-ADDR-BY-NAME answers an array; ask for the
		// master's state instead, which the Command helper can read.
		got, err := sn.Command("SENTINEL", "CKQUORUM", "mymaster")
		if err == nil && strings.HasPrefix(got, "OK") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SENTINEL CKQUORUM = %q, %v", got, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Run starts a server that no test owns, in the caller's directory, and
// Stop stops it.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	s, err := Run(dir, "--appendonly", "yes")
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	defer s.Stop()
	if s.Dir != dir || !strings.HasPrefix(s.Addr, "127.0.0.1:") {
		t.Fatalf("Dir %q, Addr %q; want %q and 127.0.0.1:port", s.Dir, s.Addr, dir)
	}
	if _, err := s.Command("SET", "k", "v"); err != nil {
		t.Fatal(err)
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) == 0 {
		t.Fatalf("%s holds %v, %v; want the append-only file", dir, entries, err)
	}
	s.Stop()
	if err := ping(s.Addr); err == nil {
		t.Fatal("server still answers PING after Stop")
	}
}
