package vault

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetherauth/tether/bff/vault/redistest"
)

func TestOpenEmbedded(t *testing.T) {
	ctx := context.Background()
	v, err := Open(ctx, "", testKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	addr := v.EmbeddedAddr()
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("EmbeddedAddr = %q; want 127.0.0.1:port", addr)
	}
	if err := v.Put(ctx, "sid", sampleRecord(), time.Hour); err != nil {
		t.Fatal(err)
	}

	// The port is open to every local process: without the password it
	// answers nothing, neither to a vault nor to a bare RESP client.
	if _, err := Open(ctx, "redis://"+addr, testKey); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("Open without the password: err = %v; want NOAUTH", err)
	}
	if _, err := Open(ctx, "redis://:guess@"+addr, testKey); err == nil {
		t.Fatal("Open with a wrong password: err = nil")
	}
	for _, cmd := range []string{"PING", "FLUSHALL", "SET tether:lock:x planted", "KEYS *"} {
		if reply := rawCommand(t, addr, cmd); !strings.HasPrefix(reply, "-NOAUTH") {
			t.Errorf("%s without the password: %q; want -NOAUTH", cmd, reply)
		}
	}
	if got, err := v.Get(ctx, "sid"); err != nil || got.AccessToken != sampleRecord().AccessToken {
		t.Fatalf("the record after the refused clients: %+v, %v", got, err)
	}
	u := v.EmbeddedURL()
	if !strings.HasPrefix(u, "redis://:") || !strings.HasSuffix(u, "@"+addr) || len(u) < len("redis://:@"+addr)+20 {
		t.Fatalf("EmbeddedURL = %q; want redis://:<long password>@%s", u, addr)
	}

	// A second vault (say, another BFF in a test) shares it over RESP.
	peer, err := Open(ctx, u, testKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	if peer.EmbeddedAddr() != "" || peer.EmbeddedURL() != "" {
		t.Fatalf("peer EmbeddedAddr, EmbeddedURL = %q, %q; want empty", peer.EmbeddedAddr(), peer.EmbeddedURL())
	}
	if got, err := peer.Get(ctx, "sid"); err != nil || got.AccessToken != sampleRecord().AccessToken {
		t.Fatalf("peer Get = %+v, %v", got, err)
	}
	if _, err := v.TryLock(ctx, "sid", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := peer.TryLock(ctx, "sid", time.Minute); !errors.Is(err, ErrLocked) {
		t.Fatalf("peer TryLock: err = %v; want ErrLocked", err)
	}

	// Keys expire in real time, not only on FastForward.
	if err := v.Put(ctx, "short", sampleRecord(), 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if _, err := v.TryLock(ctx, "short", 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)
	if _, err := v.Get(ctx, "short"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("embedded record did not expire: err = %v", err)
	}
	if _, err := peer.TryLock(ctx, "short", time.Minute); err != nil {
		t.Fatalf("embedded lock did not expire: %v", err)
	}

	if err := v.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := v.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("embedded miniredis still listens after Close")
	}
	if _, err := peer.Get(ctx, "sid"); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("peer Get after the embedded server closed: err = %v; want an outage", err)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name, url string
		want      string        // in the error text
		timeout   time.Duration // for Open's ctx, if not 10s
	}{
		{"refused", "redis://:secretpw@127.0.0.1:1/", "vault: open redis://:xxxxx@127.0.0.1:1/: dial tcp", 0},
		{"refused with user", "redis://bob:secretpw@127.0.0.1:1/0?dial_timeout=1s", "bob:xxxxx@127.0.0.1:1", 0},
		{"unix refused", "unix://:secretpw@/nonexistent/redis.sock", "vault: open unix:", 0},
		{"cluster refused", "redis+cluster://:secretpw@127.0.0.1:1", "vault: open redis+cluster://:xxxxx@127.0.0.1:1", 0},
		{"sentinel refused", "redis+sentinel://:secretpw@127.0.0.1:1/?master_name=m&password=secretpw", "vault: open redis+sentinel://:xxxxx@127.0.0.1:1/?master_name=m&password=xxxxx: ", time.Second},
		{"sentinel without master", "redis+sentinel://:secretpw@127.0.0.1:1/", "master_name", 0},
		{"bad scheme", "http://:secretpw@127.0.0.1:1/", `unsupported scheme "http"`, 0},
		{"bad port", "redis://:secretpw@127.0.0.1:port/", "vault: invalid redis URL: invalid port", 0},
		{"bad db", "redis://:secretpw@127.0.0.1:1/db", "invalid database number", 0},
		{"unknown option", "redis://:secretpw@127.0.0.1:1/?frobnicate=1", "unexpected option: frobnicate", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel() // most wait out go-redis's dial retries
			// A failover client retries unreachable sentinels until ctx ends.
			timeout := cmp.Or(c.timeout, 10*time.Second)
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			v, err := Open(ctx, c.url, testKey)
			if err == nil {
				v.Close()
				t.Fatal("err = nil")
			}
			if strings.Contains(err.Error(), "secretpw") {
				t.Fatalf("error leaks the password: %q", err)
			}
			t.Logf("%s", err)
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %q; want it to contain %q", err, c.want)
			}
		})
	}
	t.Run("short key", func(t *testing.T) {
		if _, err := Open(ctx, "", testKey[:16]); err == nil || !strings.Contains(err.Error(), "key is 16 bytes, want 32") {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestOpenRealRedis opens every URL form against real servers and uses the
// vault through it, Lua scripts included.
func TestOpenRealRedis(t *testing.T) {
	ctx := context.Background()
	plain := redistest.Start(t, "--requirepass", "secretpw")
	sock := filepath.Join(t.TempDir(), "r.sock")
	redistest.Start(t, "--unixsocket", sock, "--unixsocketperm", "700")
	master := redistest.Start(t)
	sentinel := redistest.StartSentinel(t, master, "mymaster")
	cluster := startCluster(t)

	cases := []struct{ name, url string }{
		{"redis with password and db", "redis://:secretpw@" + plain.Addr + "/2"},
		{"unix socket", "unix://" + sock + "?db=1"},
		{"sentinel", "redis+sentinel://" + sentinel.Addr + "/?master_name=mymaster"},
		{"cluster", "redis+cluster://" + cluster.Addr},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := Open(ctx, c.url, testKey)
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			if err := v.Put(ctx, "sid", sampleRecord(), time.Minute); err != nil {
				t.Fatal(err)
			}
			if _, err := v.Get(ctx, "sid"); err != nil {
				t.Fatal(err)
			}
			l, err := v.TryLock(ctx, "sid", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Renew(ctx, time.Minute); err != nil {
				t.Fatal(err)
			}
			if err := l.Release(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		_, err := Open(ctx, "redis://:wrongpw@"+plain.Addr, testKey)
		if err == nil || strings.Contains(err.Error(), "wrongpw") || !strings.Contains(err.Error(), "WRONGPASS") {
			t.Fatalf("err = %v; want WRONGPASS without the password", err)
		}
	})
}

// rawCommand sends one command (words separated by spaces) to the RESP
// server at addr and returns the first line of its reply.
func rawCommand(t *testing.T, addr, cmd string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	words := strings.Fields(cmd)
	req := fmt.Sprintf("*%d\r\n", len(words))
	for _, w := range words {
		req += fmt.Sprintf("$%d\r\n%s\r\n", len(w), w)
	}
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return strings.TrimSpace(line)
}

// startCluster starts a one-node Redis Cluster that owns every slot.
func startCluster(t *testing.T) *redistest.Server {
	t.Helper()
	s := redistest.Start(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
	if _, err := s.Command("CLUSTER", "ADDSLOTSRANGE", "0", "16383"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := s.Command("CLUSTER", "INFO")
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster not ok: %q, %v", info, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
