package stack

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/tetherauth/tether/internal/logbuf"
)

// stopGrace is how long Stop waits after SIGTERM before SIGKILL.
const stopGrace = 5 * time.Second

// Proc is a child process in its own process group, its stdout and stderr
// collected. On Linux the kernel kills it should the program that started
// it die without stopping it. A Proc is safe for concurrent use.
type Proc struct {
	// Name names the process in errors.
	Name string

	cmd  *exec.Cmd
	out  logbuf.Buffer
	done chan struct{} // closed when the process has exited
}

// Start starts bin with args. Its environment is this program's without
// any TETHER_* variable, plus env (where a variable is given twice, the
// last wins). The caller stops it with Stop or Kill.
func Start(name, bin string, args []string, env ...string) (*Proc, error) {
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TETHER_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	setProcAttr(cmd)
	p := &Proc{Name: name, cmd: cmd, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("stack: start %s: %w", name, err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	return p, nil
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM to the process group, SIGKILL a few seconds later if
// the process still runs, and waits for it to exit. Stopping an exited
// process does nothing.
func (p *Proc) Stop() {
	if p.Exited() {
		return
	}
	signalGroup(p.cmd, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopGrace):
		p.Kill()
	}
}

// Kill sends SIGKILL to the process group, as a crash would end it, and
// waits for the process to exit.
func (p *Proc) Kill() {
	if p.Exited() {
		return
	}
	signalGroup(p.cmd, syscall.SIGKILL)
	<-p.done
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Output returns all the process has written so far.
func (p *Proc) Output() string { return p.out.String() }

// Tail returns about the last n bytes of Output, for an error message.
func (p *Proc) Tail(n int) string { return p.out.Tail(n) }

// tailSize is how much output an error quotes.
const tailSize = 3000

// WaitListening waits up to within for an output line that starts with
// prefix, such as "devprovider: listening on ", and returns the word after
// it (the URL).
func (p *Proc) WaitListening(prefix string, within time.Duration) (string, error) {
	deadline := time.Now().Add(within)
	for {
		sc := bufio.NewScanner(strings.NewReader(p.Output()))
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
				if f := strings.Fields(rest); len(f) > 0 {
					return f[0], nil
				}
			}
		}
		if p.Exited() {
			return "", fmt.Errorf("stack: %s exited before it said %q:\n%s", p.Name, prefix, p.Tail(tailSize))
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("stack: %s did not say %q within %v:\n%s", p.Name, prefix, within, p.Tail(tailSize))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WaitHTTP polls GET u until it answers 200, for up to within. It gives up
// at once when the process exits.
func (p *Proc) WaitHTTP(u string, within time.Duration) error {
	deadline := time.Now().Add(within)
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	for {
		if p.Exited() {
			return fmt.Errorf("stack: %s exited before GET %s answered 200:\n%s", p.Name, u, p.Tail(tailSize))
		}
		if resp, err := client.Get(u); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("stack: %s: GET %s not 200 within %v:\n%s", p.Name, u, within, p.Tail(tailSize))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
