// Package testutil starts a real Caddy with the plugin for end-to-end
// tests: the binary built from ./cmd/caddy, run as a separate process on
// loopback, so tests can also kill -9 it and start it again.
package testutil

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error

	raceOnce sync.Once
	racePath string
	raceErr  error

	// folders Main removes when the package's tests end
	atExit struct {
		sync.Mutex
		dirs []string
	}
)

// Main runs a package's tests (call it from TestMain) and then removes what
// they left outside their t.TempDir folders: the Caddy binaries built for
// them (about 100 MB each) and the folders given to RemoveAtExit.
func Main(m *testing.M) {
	code := m.Run()
	RemoveLeftovers()
	os.Exit(code)
}

// RemoveAtExit has Main remove dir (a folder shared by several tests or
// benchmarks, which no single t.TempDir outlives).
func RemoveAtExit(dir string) {
	atExit.Lock()
	defer atExit.Unlock()
	atExit.dirs = append(atExit.dirs, dir)
}

// RemoveLeftovers removes the built binaries and RemoveAtExit's folders.
func RemoveLeftovers() {
	atExit.Lock()
	defer atExit.Unlock()
	for _, dir := range atExit.dirs {
		os.RemoveAll(dir)
	}
	atExit.dirs = nil
}

// RepoRoot is the repository's root folder.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// CaddyBinary builds ./cmd/caddy once per test process and returns its path.
func CaddyBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() { buildPath, buildErr = build() })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// CaddyRaceBinary builds ./cmd/caddy with the race detector once per test
// process and returns its path. A data race it detects is reported on its
// standard error ("WARNING: DATA RACE"), which Caddy.Logs holds.
func CaddyRaceBinary(t testing.TB) string {
	t.Helper()
	raceOnce.Do(func() { racePath, raceErr = build("-race") })
	if raceErr != nil {
		t.Fatal(raceErr)
	}
	return racePath
}

func build(flags ...string) (string, error) {
	return buildPackage("./cmd/caddy", "caddy", flags...)
}

// buildPackage builds pkg (relative to the repository's root) into a new
// temporary folder that Main removes.
func buildPackage(pkg, name string, flags ...string) (string, error) {
	dir, err := os.MkdirTemp("", "caddy-bin-")
	if err != nil {
		return "", err
	}
	RemoveAtExit(dir)
	path := filepath.Join(dir, name)
	args := append(append([]string{"build"}, flags...), "-o", path, pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = RepoRoot()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("building caddy %v: %v\n%s", flags, err, out)
	}
	return path, nil
}

// handedOut are the ports FreePort returned in this process.
var handedOut struct {
	sync.Mutex
	ports map[int]bool
}

// FreePort returns a TCP port free on 127.0.0.1 at the time of the call,
// never one it returned before in this process: the system may hand out a
// port again as soon as it is closed, and two sites of one Caddyfile (or a
// Caddy of an earlier test) would then share it.
func FreePort(t testing.TB) int {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	if handedOut.ports == nil {
		handedOut.ports = map[int]bool{}
	}
	for range 1000 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !handedOut.ports[port] {
			handedOut.ports[port] = true
			return port
		}
	}
	t.Fatal("no free port that was not handed out before")
	return 0
}

// Caddy is a running Caddy process.
type Caddy struct {
	t         testing.TB
	Dir       string // working directory (holds Caddyfile, storage, config file)
	Config    string // path of the Caddyfile
	AdminAddr string // host:port of the admin API
	bin       string // the Caddy binary
	cmd       *exec.Cmd
	logs      *syncBuffer
	done      chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// StartCaddy writes caddyfile into dir/Caddyfile and runs Caddy on it. The
// Caddyfile must set `admin <AdminAddr>`; waitAddrs are host:port addresses
// that must accept connections before it returns.
func StartCaddy(t testing.TB, dir, caddyfile, adminAddr string, waitAddrs ...string) *Caddy {
	t.Helper()
	return StartCaddyBinary(t, CaddyBinary(t), dir, caddyfile, adminAddr, waitAddrs...)
}

// StartCaddyBinary is StartCaddy with another Caddy binary, such as
// CaddyRaceBinary's.
func StartCaddyBinary(t testing.TB, bin, dir, caddyfile, adminAddr string, waitAddrs ...string) *Caddy {
	t.Helper()
	cfgPath := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cfgPath, []byte(caddyfile), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &Caddy{t: t, Dir: dir, Config: cfgPath, AdminAddr: adminAddr, bin: bin}
	// CADDY_TEST_LOGS names a folder to keep a failed test's whole logs in
	keep := os.Getenv("CADDY_TEST_LOGS")
	if keep != "" {
		keep = keptLogName(keep, t.Name())
	}
	c.start(bin, waitAddrs)
	t.Cleanup(func() {
		c.Kill()
		if t.Failed() {
			t.Logf("caddy logs:\n%s", tail(c.logs.String(), 8000))
			if keep == "" {
				return
			}
			err := os.MkdirAll(filepath.Dir(keep), 0o700)
			if err == nil {
				err = os.WriteFile(keep, []byte(c.logs.String()), 0o600)
			}
			if err != nil {
				t.Logf("keeping caddy's whole log: %v", err)
				return
			}
			t.Logf("caddy's whole log: %s", keep)
		}
	})
	return c
}

// startedByTest counts the Caddys each test started, so that their kept
// logs are named apart (a cluster test starts two).
var startedByTest struct {
	sync.Mutex
	n map[string]int
}

// keptLogName is where the log of the next Caddy test starts is kept in
// dir: <test>.log for its first, <test>-<n>.log for its n-th.
func keptLogName(dir, test string) string {
	startedByTest.Lock()
	defer startedByTest.Unlock()
	if startedByTest.n == nil {
		startedByTest.n = make(map[string]int)
	}
	startedByTest.n[test]++
	name := strings.NewReplacer("/", "_", " ", "_").Replace(test)
	if n := startedByTest.n[test]; n > 1 {
		name += fmt.Sprintf("-%d", n)
	}
	return filepath.Join(dir, name+".log")
}

func (c *Caddy) start(bin string, waitAddrs []string) {
	t := c.t
	t.Helper()
	c.logs = new(syncBuffer)
	cmd := exec.Command(bin, "run", "--config", c.Config, "--adapter", "caddyfile")
	cmd.Dir = c.Dir
	cmd.Stdout, cmd.Stderr = c.logs, c.logs
	cmd.Env = append(os.Environ(), "HOME="+c.Dir, "XDG_DATA_HOME="+filepath.Join(c.Dir, "xdg-data"), "XDG_CONFIG_HOME="+filepath.Join(c.Dir, "xdg-config"))
	inOwnProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c.cmd = cmd
	c.done = make(chan struct{})
	go func() { _ = cmd.Wait(); close(c.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for _, addr := range append([]string{c.AdminAddr}, waitAddrs...) {
		for {
			select {
			case <-c.done:
				t.Fatalf("caddy exited early:\n%s", tail(c.logs.String(), 8000))
			default:
			}
			conn, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				conn.Close()
				break
			}
			if time.Now().After(deadline) {
				c.Kill()
				t.Fatalf("caddy did not listen on %s:\n%s", addr, tail(c.logs.String(), 8000))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// Restart kills the process with SIGKILL and starts it again on the same
// files, as a crash and a supervisor restart would.
func (c *Caddy) Restart(waitAddrs ...string) {
	c.t.Helper()
	c.Kill()
	c.start(c.bin, waitAddrs)
}

// Kill stops the process with SIGKILL.
func (c *Caddy) Kill() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	killProcessGroup(c.cmd)
	<-c.done
}

// Logs returns what Caddy printed so far.
func (c *Caddy) Logs() string { return c.logs.String() }

// Admin performs an admin API request and returns status and body.
func (c *Caddy) Admin(method, uri string, body string) (int, string) {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, "http://"+c.AdminAddr+uri, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("admin %s %s: %v", method, uri, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
