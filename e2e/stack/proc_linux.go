package stack

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts the process in its own group, so that stopping it stops
// anything it started, and has the kernel kill it if this program dies
// without stopping it.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// signalGroup sends sig to the process group that cmd leads.
func signalGroup(cmd *exec.Cmd, sig syscall.Signal) {
	syscall.Kill(-cmd.Process.Pid, sig)
}
