package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// procSample is a process's CPU time so far (clock ticks, 100 per second
// on Linux) and resident set (KiB), read from /proc.
type procSample struct {
	ticks int64
	rssKB int64
}

// readProc samples process pid. The fields of /proc/PID/stat are counted
// after the command name's closing parenthesis, which may itself hold
// spaces.
func readProc(pid int) (procSample, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procSample{}, fmt.Errorf("reading the server's CPU time: %w", err)
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 > len(b) {
		return procSample{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 13 {
		return procSample{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	// fields 14 and 15 of stat(5), utime and stime, are 11 and 12 here
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return procSample{}, fmt.Errorf("/proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procSample{}, fmt.Errorf("reading the server's RSS: %w", err)
	}
	for _, l := range strings.Split(string(st), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			if err != nil {
				return procSample{}, fmt.Errorf("/proc/%d/status: VmRSS %q", pid, rest)
			}
			return procSample{ticks: u + s, rssKB: kb}, nil
		}
	}
	return procSample{}, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}
