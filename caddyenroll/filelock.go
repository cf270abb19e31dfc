package caddyenroll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
)

// The locks of Caddy's file storage are taken here rather than by
// certmagic's FileStorage.Lock, whose refresher goroutine outlives the
// lock: for up to 5 s after Unlock it refreshes whatever lock file is at
// its path, including one another process created since. When that
// process is killed while holding the lock, the survivor keeps the dead
// process's lock fresh for as long as the file exists, so it never turns
// stale and every instance waits on it for ever (certmagic v0.25.6; the
// module takes the CA's lock at every issuance).
//
// The files are certmagic's (same path, same JSON: created and updated
// times), so instances of earlier versions and certmagic's stale-lock
// takeover read them as before. A lock is told apart by its creation time
// (nanoseconds), which certmagic's refresher keeps: a refresher here
// refreshes only the lock it created, and Unlock removes only that one.

// As certmagic's: instances of earlier versions share the locks. Tests
// shorten them.
var (
	fileLockRefresh = 5 * time.Second  // certmagic's lockFreshnessInterval
	fileLockStale   = 10 * time.Second // when certmagic deems a lock stale
	fileLockPoll    = 250 * time.Millisecond
)

// fileLockMeta is the content of a lock file (certmagic's lockMeta).
type fileLockMeta struct {
	Created time.Time `json:"created,omitempty"`
	Updated time.Time `json:"updated,omitempty"`
}

// heldFileLocks are the locks this process holds, by file name.
var heldFileLocks = struct {
	mu sync.Mutex
	m  map[string]*heldFileLock
}{m: make(map[string]*heldFileLock)}

type heldFileLock struct {
	created time.Time
	stop    chan struct{}
	done    chan struct{}
}

// fileLockName is where certmagic's FileStorage keeps the lock name.
func fileLockName(s *certmagic.FileStorage, name string) string {
	return filepath.Join(s.Path, "locks", safeLockName(name)+".lock")
}

// safeLockName is certmagic.StorageKeys.Safe(name), as certmagic names
// lock files, without its regular expression when name is already safe
// (the module's lock names are): lower-case word characters, '@', '-'
// and single dots.
func safeLockName(name string) string {
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '_', c == '@', c == '-':
		case c == '.' && (i == 0 || name[i-1] != '.'):
		default:
			return certmagic.StorageKeys.Safe(name)
		}
	}
	return name
}

// readFileLock reads a lock file; ok is false when it is empty or not
// JSON (being written, or cut short by a crash).
func readFileLock(filename string) (meta fileLockMeta, ok bool, err error) {
	b, err := os.ReadFile(filename)
	if err != nil {
		return meta, false, err
	}
	return meta, json.Unmarshal(b, &meta) == nil, nil
}

// lockFile takes the lock at filename: it creates the file, or waits
// while another holds it, taking it over once stale (not refreshed for
// fileLockStale, or unreadable for as long).
func lockFile(ctx context.Context, filename string) error {
	if err := os.MkdirAll(filepath.Dir(filename), 0o700); err != nil {
		return fmt.Errorf("creating lock folder: %v", err)
	}
	var unreadableSince time.Time
	for {
		created := time.Now().Round(0) // no monotonic reading: compared with the file's
		err := createFileLock(filename, created)
		if err == nil {
			h := &heldFileLock{created: created, stop: make(chan struct{}), done: make(chan struct{})}
			heldFileLocks.mu.Lock()
			heldFileLocks.m[filename] = h
			heldFileLocks.mu.Unlock()
			go h.refresh(filename)
			return nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("creating lock file: %v", err)
		}
		meta, ok, err := readFileLock(filename)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue // released meanwhile
		case err != nil:
			return fmt.Errorf("reading lock file: %v", err)
		case !ok:
			if unreadableSince.IsZero() {
				unreadableSince = time.Now()
			}
			if time.Since(unreadableSince) > fileLockStale {
				_ = os.Remove(filename) // cut short by a crash
				unreadableSince = time.Time{}
				continue
			}
		default:
			unreadableSince = time.Time{}
			ref := meta.Updated
			if ref.IsZero() {
				ref = meta.Created
			}
			if time.Since(ref) > fileLockStale {
				// its holder is gone; as certmagic does, remove and retry
				if err := os.Remove(filename); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("removing stale lock file: %v", err)
				}
				continue
			}
		}
		select {
		case <-time.After(fileLockPoll):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// createFileLock creates the lock file, failing with fs.ErrExist when it
// exists.
//
// Lock files are not fsynced (certmagic's are): a lock needs no
// durability, since a crash of the machine ends every holder, and the file
// a crash leaves — absent, empty or unreadable — is taken over like a stale
// one (lockFile). A device's lock is taken at every issuance, whose six
// syncs would otherwise include this one, on a disk that makes about 3,000
// a second (BENCHMARKS.md).
func createFileLock(filename string, created time.Time) error {
	f, err := os.OpenFile(filename, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	err = json.NewEncoder(f).Encode(fileLockMeta{Created: created, Updated: created})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(filename)
	}
	return err
}

// refresh keeps the lock fresh until it is released, or until the file is
// no longer the one it created (taken over as stale, removed by hand).
func (h *heldFileLock) refresh(filename string) {
	defer close(h.done)
	t := time.NewTicker(fileLockRefresh)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		if !h.touch(filename) {
			return
		}
	}
}

// touch writes the lock's update time if the file is still its own.
func (h *heldFileLock) touch(filename string) bool {
	f, err := os.OpenFile(filename, os.O_RDWR, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	var meta fileLockMeta
	b, err := io.ReadAll(io.LimitReader(f, 2048))
	if err != nil || json.Unmarshal(b, &meta) != nil || !meta.Created.Equal(h.created) {
		return false
	}
	old := len(b)
	meta.Updated = time.Now()
	b, _ = json.Marshal(meta)
	// never shorter than it was (spaces before the newline): not synced,
	// a shorter file could be left by a crash at its new length over the
	// old bytes, a JSON cut short, which certmagic's readers refuse as an
	// error instead of taking it over as stale
	for len(b)+1 < old {
		b = append(b, ' ')
	}
	b = append(b, '\n')
	// written over, then cut to length: the file never reads as empty, as
	// with a truncation first (certmagic's readers would wait on that)
	if _, err := f.WriteAt(b, 0); err != nil || f.Truncate(int64(len(b))) != nil {
		return false
	}
	return true // not synced either (createFileLock)
}

// unlockFile releases the lock at filename taken by lockFile: the refresher
// stops, and the file is removed if it is still the one it created.
func unlockFile(filename string) error {
	heldFileLocks.mu.Lock()
	h := heldFileLocks.m[filename]
	delete(heldFileLocks.m, filename)
	heldFileLocks.mu.Unlock()
	if h == nil {
		return fmt.Errorf("lock %s is not held", filepath.Base(filename))
	}
	close(h.stop)
	<-h.done
	meta, ok, err := readFileLock(filename)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && ok && !meta.Created.Equal(h.created)) {
		return nil // taken over as stale meanwhile: another's now
	}
	if err := os.Remove(filename); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing lock file: %v", err)
	}
	return nil
}
