package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tetherauth/tether/bff/devprovider"
	"github.com/tetherauth/tether/shared/wire"
)

// stack is what the benchmark runs against: redis-server, the dev provider
// and one BFF, each its own process, on loopback.
type stack struct {
	dir       string // binaries and Redis's data
	redisAddr string
	rdb       *redis.Client // for measurements, not for the code under test
	devURL    string
	bffURL    string
	metrics   string // the BFF's metrics listener, http://host:port
	procs     []*proc
	tr        *http.Transport // logins and the storm
}

// startStack builds the tether and devprovider binaries and starts the
// three processes. Close stops them.
func startStack(ctx context.Context) (s *stack, err error) {
	s = &stack{tr: &http.Transport{MaxIdleConnsPerHost: 256}}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.dir, err = os.MkdirTemp("", "tether-bench-"); err != nil {
		return s, err
	}
	if err := buildBinaries(ctx, s.dir); err != nil {
		return s, err
	}
	if err := s.startRedis(ctx); err != nil {
		return s, err
	}
	dev, err := startProc(ctx, "devprovider", filepath.Join(s.dir, "devprovider"), nil,
		"TETHER_DEV_PROVIDER_ADDR=127.0.0.1:0", "TETHER_DEV_ACCESS_TTL=1h", "TETHER_DEV_REFRESH_TTL=24h",
		"TETHER_DEV_AUTO_APPROVE=1", "TETHER_LOG_FORMAT=json")
	if err != nil {
		return s, err
	}
	s.procs = append(s.procs, dev)
	if s.devURL, err = dev.waitListening("devprovider: listening on "); err != nil {
		return s, err
	}
	addr, err := freeAddr()
	if err != nil {
		return s, err
	}
	s.bffURL = "http://" + addr
	maddr, err := freeAddr()
	if err != nil {
		return s, err
	}
	s.metrics = "http://" + maddr
	bff, err := startProc(ctx, "tether", filepath.Join(s.dir, "tether"), nil,
		"TETHER_ADDR="+addr, "TETHER_PUBLIC_URL="+s.bffURL, "TETHER_METRICS_ADDR="+maddr,
		"TETHER_REDIS_URL=redis://"+s.redisAddr,
		"TETHER_VAULT_KEY="+randomKey(), "TETHER_SESSION_KEYS="+randomKey(),
		"TETHER_ISSUER="+s.devURL,
		"TETHER_CLIENT_ID="+devprovider.DefaultClientID, "TETHER_CLIENT_SECRET="+devprovider.DefaultClientSecret,
		"TETHER_LOG_FORMAT=json")
	if err != nil {
		return s, err
	}
	s.procs = append(s.procs, bff)
	return s, waitHTTP(bff, s.bffURL+"/readyz", 15*time.Second)
}

// Close stops every process and removes the temporary directory.
func (s *stack) Close() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		s.procs[i].stop()
	}
	if s.rdb != nil {
		s.rdb.Close()
	}
	s.tr.CloseIdleConnections()
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}

// logs returns the output of every process, for a scan and for errors.
func (s *stack) logs() string {
	var b strings.Builder
	for _, p := range s.procs {
		fmt.Fprintf(&b, "--- %s\n%s\n", p.name, p.out.String())
	}
	return b.String()
}

// buildBinaries runs go build for the BFF and the dev provider from the
// module root.
func buildBinaries(ctx context.Context, dir string) error {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("tether-bench: go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return errors.New("tether-bench: run me inside the tether module (go run ./bff/cmd/tether-bench)")
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(filepath.Separator), "./bff/cmd/tether", "./bff/cmd/devprovider")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("tether-bench: go build: %w\n%s", err, out)
	}
	return nil
}

// startRedis starts redis-server without persistence on a free port.
func (s *stack) startRedis(ctx context.Context) error {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		bin = "/usr/bin/redis-server"
		if _, err := os.Stat(bin); err != nil {
			return errors.New("tether-bench: redis-server not found; install it: apt-get install -y redis-server")
		}
	}
	if s.redisAddr, err = freeAddr(); err != nil {
		return err
	}
	_, port, _ := net.SplitHostPort(s.redisAddr)
	p, err := startProc(ctx, "redis-server", bin,
		[]string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", s.dir})
	if err != nil {
		return err
	}
	s.procs = append(s.procs, p)
	s.rdb = redis.NewClient(&redis.Options{Addr: s.redisAddr})
	deadline := time.Now().Add(10 * time.Second)
	for s.rdb.Ping(ctx).Err() != nil {
		if p.exited() || time.Now().After(deadline) {
			return fmt.Errorf("tether-bench: redis-server did not start:\n%s", p.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// login runs the authorization-code flow (the dev provider approves at
// once) and returns the session cookie as a Cookie header value.
func (s *stack) login(ctx context.Context) (string, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Transport: s.tr, Timeout: 30 * time.Second}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.bffURL+wire.PathLogin+"?return_to=/", nil)
	resp, err := c.Do(req)
	if err != nil {
		return "", fmt.Errorf("tether-bench: login: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	u, _ := url.Parse(s.bffURL)
	var parts []string
	for _, ck := range jar.Cookies(u) {
		parts = append(parts, ck.Name+"="+ck.Value)
	}
	if resp.Request.URL.Path != "/" || len(parts) == 0 {
		return "", fmt.Errorf("tether-bench: login ended at %s (%d) without a session", resp.Request.URL, resp.StatusCode)
	}
	return strings.Join(parts, "; "), nil
}

// control POSTs to a dev provider /control endpoint; stats reads its
// counters.
func (s *stack) control(ctx context.Context, path string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.devURL+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("tether-bench: %s: %w", path, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("tether-bench: %s: status %d", path, resp.StatusCode)
	}
	return nil
}

// proc is a child process in its own process group, output collected.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
}

// startProc starts bin with args and the environment minus TETHER_*
// variables, plus env.
func startProc(ctx context.Context, name, bin string, args []string, env ...string) (*proc, error) {
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TETHER_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	setProcAttr(cmd)
	p := &proc{name: name, cmd: cmd, out: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("tether-bench: start %s: %w", name, err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the group, SIGKILL after 5 seconds, and waits.
func (p *proc) stop() {
	if p.exited() {
		return
	}
	signalGroup(p.cmd, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		signalGroup(p.cmd, syscall.SIGKILL)
		<-p.done
	}
}

// waitListening waits for "<prefix>http://host:port" in the output.
func (p *proc) waitListening(prefix string) (string, error) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		sc := bufio.NewScanner(strings.NewReader(p.out.String()))
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
				return strings.Fields(rest)[0], nil
			}
		}
		if p.exited() || time.Now().After(deadline) {
			return "", fmt.Errorf("tether-bench: %s did not start:\n%s", p.name, p.out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitHTTP polls u until it answers 200.
func waitHTTP(p *proc, u string, within time.Duration) error {
	deadline := time.Now().Add(within)
	c := &http.Client{Timeout: time.Second}
	for {
		if resp, err := c.Get(u); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if p.exited() || time.Now().After(deadline) {
			return fmt.Errorf("tether-bench: %s not ready at %s:\n%s", p.name, u, p.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lockedBuffer collects a process's output.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("tether-bench: find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func randomKey() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}
