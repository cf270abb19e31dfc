package ca

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// prefixListStore is a Store whose List, like storage modules that match
// keys as strings (a database's `key LIKE 'prefix%'`), returns every key
// that starts with the prefix: descendants at any depth and siblings that
// merely start like it, in any order, ignoring recursive.
type prefixListStore struct{ *memStore }

func (s prefixListStore) List(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []string
	for k := range s.data {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	rand.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	return keys, nil
}

// slashListStore lists "directories" with a trailing slash, as S3's
// common prefixes come.
type slashListStore struct{ *memStore }

func (s slashListStore) List(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	keys, err := s.memStore.List(ctx, prefix, recursive)
	for i, k := range keys {
		if !recursive && s.Exists(ctx, k) {
			if _, err := s.memStore.Load(ctx, k); err != nil {
				keys[i] = k + "/"
			}
		}
	}
	return keys, err
}

// A device's certificates are its own, whatever a storage's List returns
// besides the direct children of the prefix: a device whose name starts
// like another's (device1.itsp.com, device1.itsp.com.evil.example) is not
// revoked with it, and no record is listed twice.
func TestListOnlyDirectChildren(t *testing.T) {
	ctx := context.Background()
	for name, st := range map[string]Store{
		"prefix": prefixListStore{NewMemStore().(*memStore)},
		"slash":  slashListStore{NewMemStore().(*memStore)},
	} {
		t.Run(name, func(t *testing.T) {
			c, _ := openCA(t, st, Config{}, "")
			mine := issueN(t, c, "device1.itsp.com", 2)
			other := issueN(t, c, "device1.itsp.com.evil.example", 1)[0]
			recs, err := c.Records(ctx, "device1.itsp.com")
			if err != nil || len(recs) != 2 {
				t.Fatalf("records of device1.itsp.com: %d, %v; want its 2", len(recs), err)
			}
			all, err := c.Records(ctx, "")
			if err != nil || len(all) != 3 {
				t.Fatalf("all records: %d, %v; want 3", len(all), err)
			}
			got, err := c.RevokeDevice(ctx, "device1.itsp.com", ReasonCessationOfOperation, "")
			if err != nil {
				t.Fatal(err)
			}
			sort.Strings(got)
			want := []string{mine[0].Serial, mine[1].Serial}
			sort.Strings(want)
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("revoked %v, want %v", got, want)
			}
			if revoked, err := c.IsRevoked(ctx, other.Serial); err != nil || revoked {
				t.Fatalf("another device's certificate revoked: %v %v", revoked, err)
			}
			if _, err := c.CRL(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// vanishingListStore's List fails with fs.ErrNotExist `fails` times while
// the prefix exists, as Caddy's file storage does when an entry goes while
// it walks the folder.
type vanishingListStore struct {
	*memStore
	fails int
	calls int
}

func (s *vanishingListStore) List(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	s.calls++
	if s.fails > 0 {
		s.fails--
		return nil, &fs.PathError{Op: "lstat", Path: prefix + "/123456", Err: fs.ErrNotExist}
	}
	return s.memStore.List(ctx, prefix, recursive)
}

// A listing that fails because an entry vanished while it was listed is
// tried again rather than taken for an empty folder; one that keeps
// failing is an error; a folder that does not exist lists nothing.
func TestListDirEntryVanishing(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name      string
		fails     int
		keys      int
		wantError bool
	}{
		{"lists at once", 0, 3, false},
		{"one entry vanished", 1, 3, false},
		{"several times", 5, 3, false},
		{"keeps vanishing", listAttempts, 3, true},
		{"no folder", 2, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := &vanishingListStore{memStore: NewMemStore().(*memStore), fails: c.fails}
			for i := range c.keys {
				if err := st.Store(ctx, fmt.Sprintf("dir/k%d", i), []byte("v")); err != nil {
					t.Fatal(err)
				}
			}
			keys, err := ListDir(ctx, st, "dir")
			if c.wantError {
				if err == nil || errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("keys %v, error %v: want an error that is not ErrNotExist", keys, err)
				}
				return
			}
			if err != nil || len(keys) != c.keys {
				t.Fatalf("keys %v, error %v: want %d keys", keys, err, c.keys)
			}
			if c.keys == 0 && st.calls != 1 {
				t.Fatalf("a missing folder was listed %d times", st.calls)
			}
		})
	}
}

// fileNamerStore keeps keys as files below dir, as Caddy's file storage
// does; its List always fails, so that ListDir is seen not to use it.
type fileNamerStore struct {
	*memStore
	dir string
}

func (s fileNamerStore) Filename(key string) string {
	return filepath.Join(s.dir, filepath.FromSlash(key))
}

func (s fileNamerStore) List(context.Context, string, bool) ([]string, error) {
	return nil, errors.New("List used")
}

type wrappedStore struct{ inner Store }

func (w wrappedStore) UnwrapStore() Store { return w.inner }

func (w wrappedStore) Lock(ctx context.Context, name string) error { return w.inner.Lock(ctx, name) }
func (w wrappedStore) Unlock(ctx context.Context, name string) error {
	return w.inner.Unlock(ctx, name)
}
func (w wrappedStore) Store(ctx context.Context, key string, value []byte) error {
	return w.inner.Store(ctx, key, value)
}
func (w wrappedStore) Load(ctx context.Context, key string) ([]byte, error) {
	return w.inner.Load(ctx, key)
}
func (w wrappedStore) Delete(ctx context.Context, key string) error { return w.inner.Delete(ctx, key) }
func (w wrappedStore) Exists(ctx context.Context, key string) bool  { return w.inner.Exists(ctx, key) }
func (w wrappedStore) List(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	return w.inner.List(ctx, prefix, recursive)
}

// A storage that keeps keys in files has its folders read directly (its
// List fails when an entry goes while it walks), also through a wrapper: a
// folder lists its children, files and folders; a missing one nothing; a
// key that is a file no children.
func TestListDirFileNamer(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, name := range []string{"p/a", "p/b", "p/c/d", "f"} {
		file := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	st := fileNamerStore{NewMemStore().(*memStore), dir}
	for _, s := range []Store{st, wrappedStore{st}, wrappedStore{wrappedStore{st}}} {
		keys, err := ListDir(ctx, s, "p")
		sort.Strings(keys)
		if err != nil || strings.Join(keys, " ") != "p/a p/b p/c" {
			t.Fatalf("%T: keys %v, %v", s, keys, err)
		}
		if keys, err := ListDir(ctx, s, "missing"); err != nil || keys != nil {
			t.Fatalf("missing folder: %v, %v", keys, err)
		}
		if keys, err := ListDir(ctx, s, "f"); err != nil || len(keys) != 0 {
			t.Fatalf("a file: %v, %v", keys, err)
		}
	}
	// a wrapper of a storage without files still lists through List
	if _, err := ListDir(ctx, wrappedStore{NewMemStore()}, "p"); err != nil {
		t.Fatal(err)
	}
}
