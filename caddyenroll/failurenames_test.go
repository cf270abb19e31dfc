package caddyenroll

import (
	"context"
	"path"
	"strings"
	"testing"

	"github.com/caddyserver/certmagic"
)

// A record whose key holds a username is named by a salted, slow
// derivation, alike on every instance of a storage and otherwise on
// another storage; an address's by a plain hash; a salt that does not
// decode is an error, never replaced.
func TestFailureRecordNames(t *testing.T) {
	ctx := context.Background()
	st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	other := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	a, b, c := newStateStore(st, 0), newStateStore(st, 0), newStateStore(other, 0)
	name := func(s *stateStore, key string) string {
		t.Helper()
		n, err := s.failuresKey(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, key := range []string{"user:ops", "user:hunter2 typed as a username", knownKey("ops", "ip:192.0.2.1")} {
		n := name(a, key)
		if path.Dir(n) != failuresDir() || !strings.HasPrefix(path.Base(n), "u") || len(path.Base(n)) != 65 {
			t.Errorf("%q: record %s, want u and 64 hex digits under %s", key, n, failuresDir())
		}
		if strings.Contains(n, hashKey("login failures", key)) {
			t.Errorf("%q: named by its plain hash", key)
		}
		if name(b, key) != n {
			t.Errorf("%q: another instance of the storage names it %s, not %s", key, name(b, key), n)
		}
		if name(c, key) == n {
			t.Errorf("%q: another storage names it alike (no salt of its own)", key)
		}
		if name(a, key) != n { // cached
			t.Errorf("%q: named otherwise the second time", key)
		}
	}
	if n := name(a, "ip:192.0.2.1"); n != path.Join(failuresDir(), hashKey("login failures", "ip:192.0.2.1")) {
		t.Errorf("an address's record is %s, want its plain hash", n)
	}

	bad := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	if err := bad.Store(ctx, failuresSaltKey(), []byte("not hex")); err != nil {
		t.Fatal(err)
	}
	if _, err := newStateStore(bad, 0).failuresKey(ctx, "user:ops"); err == nil || !strings.Contains(err.Error(), "does not decode") {
		t.Errorf("a salt that does not decode: %v", err)
	}
	if b, _ := bad.Load(ctx, failuresSaltKey()); string(b) != "not hex" {
		t.Errorf("the salt was replaced: %q", b)
	}
}
