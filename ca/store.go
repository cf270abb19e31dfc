package ca

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Store is the persistence interface of the CA. It is deliberately a subset
// of certmagic.Storage's method set (Lock, Unlock, Store, Load, Delete,
// Exists, List), so that the Caddy module can pass its configured
// certmagic.Storage (file system, Redis, Consul, ...) directly, with no
// adapter, and several Caddy instances sharing that storage see one CA state.
//
// Keys are slash-separated paths. Load must return an error wrapping
// fs.ErrNotExist when a key is absent. List returns the keys (full paths,
// prefix included) below path: its direct children when recursive is false,
// all descendants otherwise; a missing path may return an error wrapping
// fs.ErrNotExist. The CA reads listings through ListDir, which also takes
// those of storage modules that list more than the direct children.
//
// Lock blocks until the named lock is held by the caller or ctx is done;
// it must exclude other processes using the same storage.
type Store interface {
	Lock(ctx context.Context, name string) error
	Unlock(ctx context.Context, name string) error
	Store(ctx context.Context, key string, value []byte) error
	Load(ctx context.Context, key string) ([]byte, error)
	Delete(ctx context.Context, key string) error
	Exists(ctx context.Context, key string) bool
	List(ctx context.Context, path string, recursive bool) ([]string, error)
}

// ListDir lists the direct children of prefix in st, as full keys
// (prefix/name), each once, in no particular order; a prefix that does not
// exist lists nothing. Storage modules do not all list as the file storage
// does: some give "directories" a trailing slash, some return every key
// below prefix whatever recursive says, and some (matching the prefix as a
// string, as a database's LIKE does) keys that only start like it
// (devices/gw1.example.org/… for devices/gw1.example). The children are
// taken from what comes back; other keys are dropped.
//
// Caddy's file storage fails a List with fs.ErrNotExist when an entry goes
// while it walks the folder (an atomic write's temporary file renamed into
// place, a folder purged); taking that for an empty folder dropped every
// key. Its folders are read directly (FileNamer); on other storages a List
// failing so while prefix exists is tried again, and if it keeps failing,
// ListDir fails.
func ListDir(ctx context.Context, st Store, prefix string) ([]string, error) {
	keys, err := listExisting(ctx, st, prefix)
	if err != nil || len(keys) == 0 {
		return nil, err
	}
	prefix = strings.Trim(prefix, "/")
	seen := make(map[string]bool, len(keys))
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		rest, ok := strings.CutPrefix(strings.Trim(k, "/"), prefix+"/")
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(rest, "/")
		if name == "" || seen[name] {
			continue
		}
		seen[name] = true
		out = append(out, prefix+"/"+name)
	}
	return out, nil
}

// listAttempts bounds how often listExisting lists a folder whose entries
// vanish while it is listed; the waits between grow from none to 50 ms
// (about 1.5 s in all).
const listAttempts = 40

// FileNamer is a storage that keeps each key in a file of its own:
// Caddy's file storage (certmagic.FileStorage). ListDir reads its folders
// itself: its List walks them with filepath.Walk, which fails as soon as
// an entry goes while it walks (a temporary file renamed into place), so
// a folder that others keep writing to cannot be listed through it.
type FileNamer interface {
	Filename(key string) string
}

// StoreWrapper is a storage that wraps another (the Caddy module's local
// locks): ListDir looks through it for a FileNamer.
type StoreWrapper interface {
	UnwrapStore() Store
}

// fileFolder is the folder of prefix when st, or a storage it wraps, is a
// FileNamer.
func fileFolder(st Store, prefix string) (string, bool) {
	for range 8 {
		if f, ok := st.(FileNamer); ok {
			return f.Filename(prefix), true
		}
		w, ok := st.(StoreWrapper)
		if !ok {
			return "", false
		}
		st = w.UnwrapStore()
	}
	return "", false
}

// listExisting is st.List(prefix, non-recursive), nothing for a prefix
// that does not exist. A FileNamer's folder is read directly; another storage
// is listed again while it fails with fs.ErrNotExist although prefix
// exists.
func listExisting(ctx context.Context, st Store, prefix string) ([]string, error) {
	if dir, ok := fileFolder(st, prefix); ok {
		entries, err := os.ReadDir(dir) // names, no lstat of each
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			if fi, serr := os.Stat(dir); serr == nil && !fi.IsDir() {
				return nil, nil // a key, not a folder: no children (as its List says)
			}
			return nil, err
		}
		keys := make([]string, 0, len(entries))
		for _, e := range entries {
			keys = append(keys, path.Join(prefix, e.Name()))
		}
		return keys, nil
	}
	wait := time.Duration(0) // the first time again at once: the race is short
	for attempt := 1; ; attempt++ {
		keys, err := st.List(ctx, prefix, false)
		switch {
		case err == nil:
			return keys, nil
		case !errors.Is(err, fs.ErrNotExist):
			return nil, err
		case !st.Exists(ctx, prefix):
			return nil, nil
		case attempt == listAttempts:
			return nil, fmt.Errorf("ca: listing %s: entries kept vanishing while it was listed (%d attempts): %v", prefix, attempt, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		wait = min(max(2*wait, time.Millisecond), 50*time.Millisecond)
	}
}

// cleanKey validates a storage key: relative, slash separated, no empty,
// "." or ".." components, no backslashes or NUL bytes.
func cleanKey(key string) (string, error) {
	if key == "" {
		return "", errors.New("ca: empty storage key")
	}
	if strings.ContainsAny(key, "\\\x00") {
		return "", fmt.Errorf("ca: invalid storage key %q", key)
	}
	key = strings.Trim(key, "/")
	for _, part := range strings.Split(key, "/") {
		if part == "" || part == "." || part == ".." {
			return "", fmt.Errorf("ca: invalid storage key %q", key)
		}
	}
	return key, nil
}

// ---------------------------------------------------------------------------
// File store

// File store timing. A held lock's file is touched every lockRefresh; a lock
// file whose modification time is older than lockStale is considered
// abandoned (its holder crashed) and is removed by the next contender.
var (
	lockRefresh = 2 * time.Second
	lockStale   = 15 * time.Second
	lockPoll    = 20 * time.Millisecond
)

type fileStore struct {
	dir string

	mu    sync.Mutex
	held  map[string]heldLock      // lock name -> this store's hold of it
	local map[string]chan struct{} // in-process exclusion, so goroutines queue without polling
}

// NewFileStore returns a Store keeping each key as a file below dir. Files are
// written 0600 and directories 0700 (the CA keys live here); writes go to a
// temporary file that is fsynced and renamed over the target, so readers
// never see a partial value. Locks are files created with O_EXCL under
// dir/locks/, kept fresh while held and broken when stale (the holder died),
// so several processes may share dir.
func NewFileStore(dir string) Store {
	return &fileStore{
		dir:   dir,
		held:  make(map[string]heldLock),
		local: make(map[string]chan struct{}),
	}
}

func (s *fileStore) filename(key string) (string, error) {
	k, err := cleanKey(key)
	if err != nil {
		return "", err
	}
	return filepath.Join(s.dir, "data", filepath.FromSlash(k)), nil
}

func (s *fileStore) Store(ctx context.Context, key string, value []byte) error {
	name, err := s.filename(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		return err
	}
	return writeFileAtomic(name, value)
}

// writeFileAtomic writes data to name via a temporary file in the same
// directory: write, fsync, chmod 0600, rename, fsync the directory.
func writeFileAtomic(name string, data []byte) (err error) {
	dir := filepath.Dir(name)
	f, err := os.CreateTemp(dir, "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err = f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err = fsync(f); err != nil {
		f.Close()
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, name); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil {
		_ = fsync(d)
		d.Close()
	}
	return nil
}

// fsync is (*os.File).Sync (a variable for tests, which check what is
// synced when).
var fsync = (*os.File).Sync

func (s *fileStore) Load(ctx context.Context, key string) ([]byte, error) {
	name, err := s.filename(key)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err // *fs.PathError wraps fs.ErrNotExist when absent
	}
	return b, nil
}

func (s *fileStore) Delete(ctx context.Context, key string) error {
	name, err := s.filename(key)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(name); err != nil {
		return err
	}
	return os.RemoveAll(name)
}

func (s *fileStore) Exists(ctx context.Context, key string) bool {
	name, err := s.filename(key)
	if err != nil {
		return false
	}
	_, err = os.Stat(name)
	return err == nil
}

func (s *fileStore) List(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	root, err := s.filename(prefix)
	if err != nil {
		return nil, err
	}
	prefix, _ = cleanKey(prefix)
	var keys []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") && strings.Contains(d.Name(), ".tmp-") {
			return nil // an in-flight atomic write
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		keys = append(keys, path.Join(prefix, filepath.ToSlash(rel)))
		if !recursive && d.IsDir() {
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return keys, nil
}

func (s *fileStore) lockFile(name string) string {
	return filepath.Join(s.dir, "locks", safeLockName(name)+".lock")
}

// safeLockName maps a lock name to a single file name component.
func safeLockName(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '.':
			b.WriteByte(c)
		case c == '/':
			b.WriteByte('_')
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// heldLock is a lock file this store created: its content (which names
// it alone) and the stop channel of its keepalive.
type heldLock struct {
	content []byte
	stop    chan struct{}
}

func (s *fileStore) Lock(ctx context.Context, name string) error {
	// First queue behind other goroutines of this process.
	for {
		s.mu.Lock()
		ch, busy := s.local[name]
		if !busy {
			s.local[name] = make(chan struct{})
			s.mu.Unlock()
			break
		}
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	content, err := s.lockFileAcquire(ctx, name)
	if err != nil {
		s.releaseLocal(name)
		return err
	}
	stop := make(chan struct{})
	s.mu.Lock()
	s.held[name] = heldLock{content: content, stop: stop}
	s.mu.Unlock()
	go keepLockFresh(s.lockFile(name), stop)
	return nil
}

func (s *fileStore) releaseLocal(name string) {
	s.mu.Lock()
	if ch, ok := s.local[name]; ok {
		delete(s.local, name)
		close(ch)
	}
	s.mu.Unlock()
}

// lockFileAcquire creates the lock file, breaking an abandoned one, and
// returns the content it wrote.
func (s *fileStore) lockFileAcquire(ctx context.Context, name string) ([]byte, error) {
	lf := s.lockFile(name)
	if err := os.MkdirAll(filepath.Dir(lf), 0o700); err != nil {
		return nil, err
	}
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	content := []byte(fmt.Sprintf("pid %d nonce %s\n", os.Getpid(), hex.EncodeToString(nonce[:])))
	for {
		f, err := os.OpenFile(lf, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			_, werr := f.Write(content)
			cerr := f.Close()
			if werr != nil || cerr != nil {
				_ = os.Remove(lf)
				return nil, errors.Join(werr, cerr)
			}
			return content, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		if stale, ok := staleLock(lf); ok {
			// Abandoned lock. Break it by renaming it to a unique name first, so two
			// contenders cannot both delete it after one of them re-created it; if
			// what was renamed is not the stale file read (another contender broke
			// it and took the lock meanwhile), put that live lock back.
			grave := fmt.Sprintf("%s.stale-%s", lf, hex.EncodeToString(nonce[:]))
			if os.Rename(lf, grave) == nil {
				if got, _ := os.ReadFile(grave); !bytes.Equal(got, stale) {
					_ = os.Link(grave, lf)
				}
				_ = os.Remove(grave)
			}
			continue
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("ca: waiting for lock %q: %w", name, ctx.Err())
		case <-time.After(lockPoll):
		}
	}
}

// staleLock reads a lock file that is older than lockStale: its age and
// its content come from one open file, not from whatever the name points
// to at two moments.
func staleLock(lf string) ([]byte, bool) {
	f, err := os.Open(lf)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || time.Since(fi.ModTime()) <= lockStale {
		return nil, false
	}
	b, err := io.ReadAll(io.LimitReader(f, 1<<10))
	return b, err == nil
}

func keepLockFresh(lf string, stop <-chan struct{}) {
	t := time.NewTicker(lockRefresh)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			now := time.Now()
			_ = os.Chtimes(lf, now, now)
		}
	}
}

func (s *fileStore) Unlock(ctx context.Context, name string) error {
	s.mu.Lock()
	h, ok := s.held[name]
	delete(s.held, name)
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("ca: unlock of %q which this store does not hold", name)
	}
	close(h.stop)
	// only our own lock file: if this holder stalled so long that another
	// broke its lock as abandoned, the file is that one's now
	var err error
	lf := s.lockFile(name)
	if b, rerr := os.ReadFile(lf); rerr == nil && bytes.Equal(b, h.content) {
		err = os.Remove(lf)
	}
	s.releaseLocal(name)
	return err
}

// ---------------------------------------------------------------------------
// Memory store

type memStore struct {
	mu    sync.Mutex
	data  map[string][]byte
	locks map[string]chan struct{}
}

// NewMemStore returns an in-memory Store for tests and ephemeral use. Values
// are copied on the way in and out.
func NewMemStore() Store {
	return &memStore{data: make(map[string][]byte), locks: make(map[string]chan struct{})}
}

func (m *memStore) Lock(ctx context.Context, name string) error {
	for {
		m.mu.Lock()
		ch, busy := m.locks[name]
		if !busy {
			m.locks[name] = make(chan struct{})
			m.mu.Unlock()
			return nil
		}
		m.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("ca: waiting for lock %q: %w", name, ctx.Err())
		}
	}
}

func (m *memStore) Unlock(ctx context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	ch, ok := m.locks[name]
	if !ok {
		return fmt.Errorf("ca: unlock of %q which is not locked", name)
	}
	delete(m.locks, name)
	close(ch)
	return nil
}

func (m *memStore) Store(ctx context.Context, key string, value []byte) error {
	k, err := cleanKey(key)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.data[k] = bytes.Clone(value)
	m.mu.Unlock()
	return nil
}

func (m *memStore) Load(ctx context.Context, key string) ([]byte, error) {
	k, err := cleanKey(key)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	v, ok := m.data[k]
	m.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("ca: key %q: %w", k, fs.ErrNotExist)
	}
	return bytes.Clone(v), nil
}

func (m *memStore) Delete(ctx context.Context, key string) error {
	k, err := cleanKey(key)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	found := false
	for kk := range m.data {
		if kk == k || strings.HasPrefix(kk, k+"/") {
			delete(m.data, kk)
			found = true
		}
	}
	if !found {
		return fmt.Errorf("ca: key %q: %w", k, fs.ErrNotExist)
	}
	return nil
}

func (m *memStore) Exists(ctx context.Context, key string) bool {
	k, err := cleanKey(key)
	if err != nil {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.data[k]; ok {
		return true
	}
	for kk := range m.data {
		if strings.HasPrefix(kk, k+"/") {
			return true
		}
	}
	return false
}

func (m *memStore) List(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	p, err := cleanKey(prefix)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	set := make(map[string]struct{})
	for k := range m.data {
		if !strings.HasPrefix(k, p+"/") {
			continue
		}
		rest := k[len(p)+1:]
		parts := strings.Split(rest, "/")
		if !recursive {
			set[p+"/"+parts[0]] = struct{}{}
			continue
		}
		for i := range parts {
			set[p+"/"+strings.Join(parts[:i+1], "/")] = struct{}{}
		}
	}
	if len(set) == 0 {
		return nil, fmt.Errorf("ca: key %q: %w", p, fs.ErrNotExist)
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys, nil
}
