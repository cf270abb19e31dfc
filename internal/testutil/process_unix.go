//go:build unix

package testutil

import (
	"os/exec"
	"syscall"
)

// inOwnProcessGroup makes cmd the leader of a new process group, so that
// killProcessGroup also ends what it started.
func inOwnProcessGroup(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }

// killProcessGroup sends SIGKILL to cmd's process group.
func killProcessGroup(cmd *exec.Cmd) { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
