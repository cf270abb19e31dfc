package enrollclient

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/enrollclient/enrolltest"
)

// fakeClock drives Client.now and Client.sleep so that polling runs
// instantly while backoff and MaxWait are computed as in real time.
type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	sleeps []time.Duration
	onWait func(n int)
}

func newClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (f *fakeClock) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = t
}

func (f *fakeClock) sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.sleeps = append(f.sleeps, d)
	n := len(f.sleeps)
	cb := f.onWait
	f.mu.Unlock()
	if cb != nil {
		cb(n)
	}
	return ctx.Err()
}

func (f *fakeClock) waits() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.sleeps...)
}

// newClient returns a Client for srv with the CA pinned and a fake clock.
func newClient(t *testing.T, srv *enrolltest.Server, clk *fakeClock) *Client {
	t.Helper()
	c := &Client{
		ServerURL:     srv.URL,
		HTTPClient:    srv.HTTP.Client(),
		CAFingerprint: srv.CAFingerprint(),
		DeviceName:    "gw1.example.com",
		DeviceID:      "134217728",
		Customer:      "0",
		Username:      "user",
		Password:      "pass",
		Dir:           t.TempDir(),
	}
	if clk != nil {
		c.nowFunc, c.sleep = clk.now, clk.sleep
	}
	return c
}

// snapshot returns the names and contents of the files in dir.
func snapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]byte{}
	for _, e := range ents {
		if e.Name() == lockFile {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = b
	}
	return m
}

func names(m map[string][]byte) []string {
	var n []string
	for k := range m {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

func sameFiles(t *testing.T, before, after map[string][]byte) {
	t.Helper()
	if len(before) != len(after) {
		t.Fatalf("files changed: before %v, after %v", names(before), names(after))
	}
	for k, v := range before {
		if !bytes.Equal(v, after[k]) {
			t.Fatalf("%s changed", k)
		}
	}
}

func exists(dir, name string) bool {
	_, err := os.Stat(filepath.Join(dir, name))
	return err == nil
}

func countOps(ops []string, op string) int {
	n := 0
	for _, o := range ops {
		if o == op {
			n++
		}
	}
	return n
}
