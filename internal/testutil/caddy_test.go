package testutil

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
)

// A built binary's folder is gone after RemoveLeftovers (Main calls it):
// each test process built a 100 MB Caddy into the system's temporary
// folder and left it there.
func TestBuiltBinariesRemoved(t *testing.T) {
	path, err := buildPackage("./internal/testutil/testdata/hello", "hello")
	if err != nil {
		t.Fatal(err)
	}
	shared := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(shared, 0o700); err != nil {
		t.Fatal(err)
	}
	RemoveAtExit(shared)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("built binary: %v", err)
	}
	RemoveLeftovers()
	for _, p := range []string{filepath.Dir(path), shared} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left after RemoveLeftovers (stat: %v)", p, err)
		}
	}
}

// FreePort never returns a port twice: the system hands a closed port out
// again, and a Caddyfile with two sites on one port does not load.
func TestFreePortDistinct(t *testing.T) {
	seen := map[int]bool{}
	for range 2000 {
		p := FreePort(t)
		if seen[p] {
			t.Fatalf("port %d returned twice", p)
		}
		seen[p] = true
	}
}

// The logs kept of the Caddys one test starts are named apart, in start
// order (a cluster test's two instances wrote the same file, the second
// over the first); another test's first keeps the plain name.
func TestKeptLogNames(t *testing.T) {
	dir := t.TempDir()
	u := rand.Text() // the counts are the process's: names of this run only
	for i, tc := range []struct{ test, want string }{
		{u + "/sub one", u + "_sub_one.log"},
		{u + "/sub one", u + "_sub_one-2.log"},
		{u + "Other", u + "Other.log"},
		{u + "/sub one", u + "_sub_one-3.log"},
	} {
		if got := keptLogName(dir, tc.test); got != filepath.Join(dir, tc.want) {
			t.Errorf("%d: %s's log kept in %s, want %s", i, tc.test, got, tc.want)
		}
	}
}
