// Package redistest starts real redis-server processes for tests, on a free
// loopback port with a private data directory, and stops them when the test
// ends. Tests that need Redis's own behaviour (expiry in real time, Lua,
// persistence, an outage) use it; everything else may use miniredis.
//
// redis-server must be installed (apt-get install -y redis-server): a test
// that asks for it fails, it does not skip.
package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tetherauth/tether/internal/logbuf"
)

// startTimeout bounds how long a server may take to answer PING.
const startTimeout = 10 * time.Second

// Server is one redis-server process owned by a test.
type Server struct {
	// Addr is the server's address, 127.0.0.1:port. It stays the same
	// across Restart.
	Addr string
	// Dir is the server's working directory (where an append-only file or
	// dump would go). It stays the same across Restart.
	Dir string

	tb   testing.TB // nil for a server from Run
	bin  string
	conf string // config file, first on the command line if set
	args []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	out  *logbuf.Buffer
}

// Start starts redis-server on 127.0.0.1 and a free port, without
// persistence, waits until it answers PING and registers its Stop with
// tb.Cleanup. args are appended to the command line and win over the
// defaults, e.g. Start(t, "--appendonly", "yes"). Call it from the test's
// goroutine: it fails the test if the server cannot start.
func Start(tb testing.TB, args ...string) *Server {
	tb.Helper()
	s := newServer(tb, args)
	if err := s.launch(); err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	return s
}

// Run starts redis-server as Start does, for a program rather than a test
// (the whole-stack benchmark in e2e/cmd/tether-bench): dir is its working
// directory, which the caller owns, and it returns an error where Start
// fails the test. The caller stops the server with Stop. Restart is for
// servers from Start.
func Run(dir string, args ...string) (*Server, error) {
	bin, err := lookPath()
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, args: args, Dir: dir}
	if err := s.launch(); err != nil {
		return nil, fmt.Errorf("redistest: %w", err)
	}
	return s, nil
}

// StartSentinel starts a Redis Sentinel (redis-server --sentinel) that
// monitors master under name, with a quorum of one, and waits until it
// answers PING. Clients find the master through it, e.g. with the vault URL
// redis+sentinel://ADDR/?master_name=NAME.
func StartSentinel(tb testing.TB, master *Server, name string) *Server {
	tb.Helper()
	s := newServer(tb, []string{"--sentinel"})
	host, port, _ := net.SplitHostPort(master.Addr)
	s.conf = filepath.Join(s.Dir, "sentinel.conf")
	conf := fmt.Sprintf("sentinel monitor %s %s %s 1\n", name, host, port)
	if err := os.WriteFile(s.conf, []byte(conf), 0o600); err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	if err := s.launch(); err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	return s
}

func newServer(tb testing.TB, args []string) *Server {
	tb.Helper()
	bin, err := lookPath()
	if err != nil {
		tb.Fatal(err)
	}
	s := &Server{tb: tb, bin: bin, args: args, Dir: tb.TempDir()}
	tb.Cleanup(s.Stop)
	return s
}

// lookPath finds redis-server on PATH or in /usr/bin.
func lookPath() (string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		bin = "/usr/bin/redis-server"
		if _, err := exec.LookPath(bin); err != nil {
			return "", errors.New("redistest: redis-server not found; install it: apt-get install -y redis-server")
		}
	}
	return bin, nil
}

// launch starts s on a free port. A port found free can be taken before
// redis binds it, so it tries a few.
func (s *Server) launch() error {
	var last error
	for range 5 {
		port, err := freePort()
		if err != nil {
			return err
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if last = s.start(); last == nil {
			return nil
		}
	}
	return last
}

// Stop stops the server (SIGTERM, then SIGKILL after a few seconds) and
// waits for it to exit. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// Restart starts the server again, stopping it first if it runs, on the same
// address, directory and arguments; with "--appendonly yes" it comes back
// with its data. Call it from the test's goroutine.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Stop()
	var err error
	// The old socket may linger for a moment; redis sets SO_REUSEADDR, but
	// retry briefly all the same.
	for range 5 {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.tb.Fatalf("redistest: restart: %v", err)
}

// start runs the process on s.Addr and waits for PING.
func (s *Server) start() error {
	_, port, _ := net.SplitHostPort(s.Addr)
	var argv []string
	if s.conf != "" {
		argv = append(argv, s.conf)
	}
	argv = append(argv,
		"--port", port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no",
		"--dir", s.Dir)
	argv = append(argv, s.args...)
	cmd := exec.Command(s.bin, argv...)
	cmd.SysProcAttr = sysProcAttr()
	out := &logbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done, s.out = cmd, done, out
	s.mu.Unlock()

	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-done:
			s.mu.Lock()
			s.cmd = nil
			s.mu.Unlock()
			return fmt.Errorf("redis-server on %s exited: %s", s.Addr, out.Tail(2000))
		default:
		}
		if ping(s.Addr) == nil {
			return nil
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("redis-server on %s did not answer PING within %v: %s", s.Addr, startTimeout, out.Tail(2000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Command sends one command to the server over a fresh connection and
// returns its reply: the text of a simple string, integer or bulk string
// ("" for a nil bulk), or an error for an error reply. Array replies are
// not decoded: it returns an error for them. It is for setting a server up
// (CLUSTER ADDSLOTSRANGE, CONFIG SET, FLUSHALL), not for the code under
// test. It does not authenticate, so on a server started with
// --requirepass only AUTH-free commands work.
func (s *Server) Command(args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return "", fmt.Errorf("redistest: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var req bytes.Buffer
	fmt.Fprintf(&req, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&req, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write(req.Bytes()); err != nil {
		return "", fmt.Errorf("redistest: %w", err)
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("redistest: %w", err)
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errors.New("redistest: empty reply")
	}
	switch body := line[1:]; line[0] {
	case '+', ':':
		return body, nil
	case '-':
		return "", fmt.Errorf("redistest: %s: %s", args[0], body)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil {
			return "", fmt.Errorf("redistest: bad bulk length %q", body)
		}
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", fmt.Errorf("redistest: %w", err)
		}
		return string(buf[:n]), nil
	default:
		return "", fmt.Errorf("redistest: %s: reply type %q not supported", args[0], line[0])
	}
}

// ping sends a raw RESP PING and wants +PONG, or -NOAUTH from a server
// started with --requirepass; not, say, -LOADING.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	line = strings.TrimSpace(line)
	if line != "+PONG" && !strings.HasPrefix(line, "-NOAUTH") {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
