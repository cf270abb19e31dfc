package caddyenroll

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/caddyserver/certmagic"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
)

// Caddy's file storage walks a folder to list it, and fails with
// fs.ErrNotExist when an entry goes meanwhile: an atomic write's temporary
// file renamed into place, a folder deleted. Listings made while others
// write or delete beside them must still hold every key that was there
// before and stays (they were empty: exports, pending lists and revocations
// silently short).
func TestFileStorageListWhileWriting(t *testing.T) {
	ctx := context.Background()
	st := &certmagic.FileStorage{Path: t.TempDir()}
	const before = 200
	for i := range before {
		if err := st.Store(ctx, fmt.Sprintf("dir/old%03d", i), []byte("x")); err != nil {
			t.Fatal(err)
		}
		if err := st.Store(ctx, fmt.Sprintf("days/keep%03d/rec", i), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range 2 { // writers beside the listed keys
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				_ = st.Store(ctx, fmt.Sprintf("dir/new%d-%d", w, i), []byte("x"))
			}
		})
	}
	wg.Go(func() { // a purge of other folders
		for i := 0; !stop.Load(); i++ {
			_ = st.Store(ctx, fmt.Sprintf("days/gone%d/rec", i), []byte("x"))
			_ = st.Delete(ctx, fmt.Sprintf("days/gone%d", i))
		}
	})
	short := 0
	for range 50 {
		for prefix, prefixWant := range map[string]int{"dir": before, "days": before} {
			keys, err := ca.ListDir(ctx, st, prefix)
			if err != nil {
				t.Errorf("listing %s: %v", prefix, err)
			}
			if len(keys) < prefixWant {
				short++
			}
		}
	}
	stop.Store(true)
	wg.Wait()
	if short > 0 {
		t.Fatalf("%d of 100 listings were short of the %d keys that stayed", short, before)
	}
}
