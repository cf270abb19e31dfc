package caddyenroll

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

// shortFileLocks shortens the lock file times for a test.
func shortFileLocks(t *testing.T) {
	r, s := fileLockRefresh, fileLockStale
	fileLockRefresh, fileLockStale = 50*time.Millisecond, 200*time.Millisecond
	t.Cleanup(func() { fileLockRefresh, fileLockStale = r, s })
}

func readLockMeta(t *testing.T, filename string) fileLockMeta {
	t.Helper()
	meta, ok, err := readFileLock(filename)
	if err != nil || !ok {
		t.Fatalf("reading lock file: ok=%v, %v", ok, err)
	}
	return meta
}

const testLockName = "clearinghouse_test_lock"

// lockedStorage is a file storage with the module's locks and shortened
// lock times, and the file of the lock testLockName.
func lockedStorage(t *testing.T) (localLocks, string) {
	t.Helper()
	shortFileLocks(t)
	fsys := &certmagic.FileStorage{Path: t.TempDir()}
	t.Cleanup(func() {
		// a test that failed holding the lock must not leave the next
		// one waiting for it in the process-wide table
		lockTable.mu.Lock()
		delete(lockTable.m, testLockName)
		lockTable.mu.Unlock()
	})
	return localLocks{fsys}, fileLockName(fsys, testLockName)
}

// plantLock writes a lock file as another process holding the lock does.
func plantLock(t *testing.T, filename string, created time.Time) {
	t.Helper()
	b, _ := json.Marshal(fileLockMeta{Created: created, Updated: created})
	// a new file, as a process taking a lock over makes one (certmagic and
	// lockFile remove the stale file, then create theirs): written in
	// place, the file could be overwritten by a refresh here that read it
	// just before
	if err := os.Remove(filename); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	if err := os.WriteFile(filename, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// A process killed while holding a lock that this process held just
// before leaves a lock that turns stale and is taken over: nothing here
// keeps refreshing it. (certmagic's FileStorage.Lock left a refresher
// running after Unlock that refreshed the next holder's lock file: a
// killed holder's lock stayed fresh for ever and every instance hung.)
func TestFileLockOfKilledProcessTurnsStale(t *testing.T) {
	st, filename := lockedStorage(t)
	ctx := context.Background()
	if err := st.Lock(ctx, testLockName); err != nil {
		t.Fatal(err)
	}
	if err := st.Unlock(ctx, testLockName); err != nil {
		t.Fatal(err)
	}
	// another process takes the lock at once, then is killed
	dead := time.Now().Round(0)
	plantLock(t, filename, dead)
	time.Sleep(3 * fileLockStale)
	if m := readLockMeta(t, filename); !m.Updated.Equal(dead) {
		t.Fatalf("the killed process's lock was refreshed at %v", m.Updated)
	}
	lctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := st.Lock(lctx, testLockName); err != nil {
		t.Fatalf("taking over the killed process's stale lock: %v", err)
	}
	if m := readLockMeta(t, filename); m.Created.Equal(dead) {
		t.Fatal("the lock file is still the killed process's")
	}
	if err := st.Unlock(ctx, testLockName); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filename); !os.IsNotExist(err) {
		t.Fatalf("lock file after Unlock: %v", err)
	}
}

// A held lock is kept fresh, so that others wait; once another takes it
// over (this process stalled beyond the stale time), the refresher stops
// and Unlock leaves the other's lock file alone.
func TestFileLockRefreshAndTakeover(t *testing.T) {
	st, filename := lockedStorage(t)
	// a stale time far above the refresh interval: a refresh delayed on a
	// loaded machine (the race detector, other tests) must not look stale
	fileLockRefresh, fileLockStale = 100*time.Millisecond, 2*time.Second
	ctx := context.Background()
	if err := st.Lock(ctx, testLockName); err != nil {
		t.Fatal(err)
	}
	first := readLockMeta(t, filename)
	m := first
	for deadline := time.Now().Add(10 * fileLockStale); !m.Updated.After(first.Updated) && time.Now().Before(deadline); {
		time.Sleep(fileLockRefresh)
		m = readLockMeta(t, filename)
	}
	if !m.Updated.After(first.Updated) || time.Since(m.Updated) > fileLockStale {
		t.Fatalf("held lock not kept fresh: updated %v, created %v", m.Updated, first.Created)
	}
	// a waiter (another process: the file alone) does not get it meanwhile
	wctx, cancel := context.WithTimeout(ctx, fileLockStale+fileLockStale/2)
	err := lockFile(wctx, filename)
	cancel()
	if err == nil {
		t.Fatal("a waiter took a held, fresh lock")
	}
	// another process takes it over
	other := time.Now().Add(time.Minute).Round(0)
	plantLock(t, filename, other)
	time.Sleep(3 * fileLockRefresh)
	if m := readLockMeta(t, filename); !m.Updated.Equal(other) {
		t.Fatalf("the other process's lock was refreshed here: %v", m.Updated)
	}
	if err := st.Unlock(ctx, testLockName); err != nil {
		t.Fatal(err)
	}
	if m := readLockMeta(t, filename); !m.Created.Equal(other) {
		t.Fatalf("Unlock removed or changed the other process's lock: %+v", m)
	}
}

// Goroutines of one process, each taking the lock through localLocks (the
// in-process lock, then the lock file), hold it one at a time, and every
// Unlock finds its lock. (Goroutines calling lockFile directly would stand
// for processes sharing this process's table of held files: not a case
// that arises.)
func TestFileLockExcludes(t *testing.T) {
	st, filename := lockedStorage(t)
	var in, most atomic.Int32
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				if err := st.Lock(context.Background(), testLockName); err != nil {
					t.Error(err)
					return
				}
				n := in.Add(1)
				if n > most.Load() {
					most.Store(n)
				}
				time.Sleep(time.Millisecond)
				in.Add(-1)
				if err := st.Unlock(context.Background(), testLockName); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if most.Load() != 1 {
		t.Fatalf("%d holders at once", most.Load())
	}
	if _, err := os.Stat(filename); !os.IsNotExist(err) {
		t.Fatalf("lock file after the last Unlock: %v", err)
	}
}

// A refresh never shortens the lock file. Lock files are not fsynced: a
// crash of the machine after a refresh that cut the file shorter could
// leave the new length over the old bytes, a JSON cut short, which
// certmagic's Lock (instances of earlier versions) refuses as an error
// rather than taking over as stale. Written over and never shorter, the
// file holds the old or the new JSON, both whole.
func TestFileLockRefreshNeverShortens(t *testing.T) {
	dir := t.TempDir()
	filename := dir + "/x.lock"
	created := time.Now().Round(0)
	h := &heldFileLock{created: created}
	// a lock written longer than a refresh writes it (an update time with
	// every digit, spaces after)
	b, _ := json.Marshal(fileLockMeta{Created: created, Updated: created})
	long := append(append(b[:len(b):len(b)], make([]byte, 40)...), '\n')
	for i := len(b); i < len(long)-1; i++ {
		long[i] = ' '
	}
	if err := os.WriteFile(filename, long, 0o644); err != nil {
		t.Fatal(err)
	}
	if !h.touch(filename) {
		t.Fatal("touch refused its own lock")
	}
	got, err := os.ReadFile(filename)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < len(long) {
		t.Errorf("the refresh cut the file from %d to %d bytes", len(long), len(got))
	}
	var meta fileLockMeta
	if err := json.Unmarshal(got, &meta); err != nil || !meta.Created.Equal(created) || !meta.Updated.After(created) {
		t.Errorf("after the refresh %q: %+v, %v", got, meta, err)
	}
}
