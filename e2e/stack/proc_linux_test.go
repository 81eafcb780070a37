package stack

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func init() {
	if os.Getenv(helperEnv) == "parent" {
		parentHelper()
	}
}

// parentHelper starts a grandchild (the test binary serving) in its own
// process group, says its pid and waits: a group signal must reach the
// grandchild too.
func parentHelper() {
	self, _ := os.Executable()
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), helperEnv+"=serve")
	if err := cmd.Start(); err != nil {
		os.Exit(1)
	}
	os.Stdout.WriteString("grandchild pid " + strconv.Itoa(cmd.Process.Pid) + "\n")
	select {}
}

// Kill signals the whole process group: what the process started dies
// with it.
func TestKillReachesTheGroup(t *testing.T) {
	p := startHelper(t, "parent")
	pidText, err := p.WaitListening("grandchild pid ", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(pidText))
	p.Kill()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if dead(pid) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %d still runs after Kill", pid)
		}
	}
}

// dead reports whether pid is gone or a zombie (killed, not yet reaped by
// init).
func dead(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	rest := stat[strings.LastIndexByte(string(stat), ')')+1:]
	f := strings.Fields(string(rest))
	return len(f) > 0 && f[0] == "Z"
}
