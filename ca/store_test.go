package ca

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

// A certmagic.Storage is a Store with no adapter (compile-time check).
var _ Store = (*certmagic.FileStorage)(nil)
var _ Store = certmagic.Storage(nil)

func storeImpls(t *testing.T) map[string]func() Store {
	return map[string]func() Store{
		"mem":       NewMemStore,
		"file":      func() Store { return NewFileStore(t.TempDir()) },
		"certmagic": func() Store { return &certmagic.FileStorage{Path: t.TempDir()} },
	}
}

func TestStoreConformance(t *testing.T) {
	ctx := context.Background()
	for name, mk := range storeImpls(t) {
		t.Run(name, func(t *testing.T) {
			st := mk()
			if _, err := st.Load(ctx, "a/b"); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("Load missing: %v", err)
			}
			if st.Exists(ctx, "a/b") {
				t.Fatal("Exists missing")
			}
			for _, k := range []string{"a/b", "a/c/d", "a/c/e", "x"} {
				if err := st.Store(ctx, k, []byte(k)); err != nil {
					t.Fatal(err)
				}
			}
			if v, err := st.Load(ctx, "a/c/d"); err != nil || string(v) != "a/c/d" {
				t.Fatal(v, err)
			}
			st.Store(ctx, "a/b", []byte("new"))
			if v, _ := st.Load(ctx, "a/b"); string(v) != "new" {
				t.Fatal("overwrite")
			}
			got, err := st.List(ctx, "a", false)
			if err != nil {
				t.Fatal(err)
			}
			sort.Strings(got)
			if !reflect.DeepEqual(got, []string{"a/b", "a/c"}) {
				t.Fatalf("List: %v", got)
			}
			got, _ = st.List(ctx, "a", true)
			sort.Strings(got)
			if !reflect.DeepEqual(got, []string{"a/b", "a/c", "a/c/d", "a/c/e"}) {
				t.Fatalf("List recursive: %v", got)
			}
			if err := st.Delete(ctx, "a/c/d"); err != nil {
				t.Fatal(err)
			}
			if st.Exists(ctx, "a/c/d") {
				t.Fatal("Delete")
			}
			if _, err := st.List(ctx, "nope", false); err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("List missing: %v", err)
			}
			// Lock excludes.
			if err := st.Lock(ctx, "l"); err != nil {
				t.Fatal(err)
			}
			tctx, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
			defer cancel()
			if err := st.Lock(tctx, "l"); err == nil {
				t.Fatal("lock acquired twice")
			}
			if err := st.Unlock(ctx, "l"); err != nil {
				t.Fatal(err)
			}
			if err := st.Lock(ctx, "l"); err != nil {
				t.Fatal(err)
			}
			st.Unlock(ctx, "l")
		})
	}
}

func TestStoreRejectsBadKeys(t *testing.T) {
	ctx := context.Background()
	for _, st := range []Store{NewMemStore(), NewFileStore(t.TempDir())} {
		for _, k := range []string{"", "../x", "a/../../x", "a//b", "a\\b"} {
			if err := st.Store(ctx, k, nil); err == nil {
				t.Errorf("%T accepted key %q", st, k)
			}
		}
	}
}

// Two FileStores on one directory behave like two processes: the lock file
// serializes them.
func TestFileStoreLockAcrossInstances(t *testing.T) {
	dir := t.TempDir()
	a, b := NewFileStore(dir), NewFileStore(dir)
	ctx := context.Background()
	var inside, max atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		st := a
		if i%2 == 1 {
			st = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 5; j++ {
				if err := st.Lock(ctx, "shared/lock"); err != nil {
					t.Error(err)
					return
				}
				n := inside.Add(1)
				if n > max.Load() {
					max.Store(n)
				}
				time.Sleep(time.Millisecond)
				inside.Add(-1)
				if err := st.Unlock(ctx, "shared/lock"); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if max.Load() != 1 {
		t.Fatalf("%d holders at once", max.Load())
	}
}

func TestFileStoreStaleLock(t *testing.T) {
	old := lockStale
	lockStale = 200 * time.Millisecond
	defer func() { lockStale = old }()
	dir := t.TempDir()
	st := NewFileStore(dir).(*fileStore)
	// A crashed holder left its lock file behind.
	lf := st.lockFile("x")
	os.MkdirAll(filepath.Dir(lf), 0o700)
	os.WriteFile(lf, []byte("pid 1"), 0o600)
	past := time.Now().Add(-time.Second)
	os.Chtimes(lf, past, past)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := st.Lock(ctx, "x"); err != nil {
		t.Fatalf("stale lock not broken: %v", err)
	}
	// A fresh lock is not broken (however slow this machine: stale only
	// after an hour now).
	lockStale = time.Hour
	other := NewFileStore(dir)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	if err := other.Lock(ctx2, "x"); err == nil {
		t.Fatal("held lock broken")
	}
	st.Unlock(context.Background(), "x")
}

// A holder whose lock was broken as abandoned (it stalled) and taken by
// another does not remove the other's lock file when it unlocks.
func TestFileStoreUnlockOnlyOwnLock(t *testing.T) {
	dir := t.TempDir()
	st := NewFileStore(dir).(*fileStore)
	ctx := context.Background()
	if err := st.Lock(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	lf := st.lockFile("x")
	other := []byte("pid 2 nonce 00000000deadbeef\n")
	if err := os.WriteFile(lf, other, 0o600); err != nil { // broken and taken meanwhile
		t.Fatal(err)
	}
	if err := st.Unlock(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(lf); err != nil || string(b) != string(other) {
		t.Fatalf("the other holder's lock file is gone or changed: %q, %v", b, err)
	}
}
