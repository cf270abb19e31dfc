//go:build !unix

package testutil

import "os/exec"

// inOwnProcessGroup does nothing where there are no process groups.
func inOwnProcessGroup(*exec.Cmd) {}

// killProcessGroup kills cmd's process.
func killProcessGroup(cmd *exec.Cmd) { _ = cmd.Process.Kill() }
