package caddyenroll

import (
	"context"
	"sync"

	"github.com/caddyserver/certmagic"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
)

// localLocks wraps a storage so that goroutines of this process queue on an
// in-process lock before taking the storage lock. Storage locks are for
// other processes sharing the storage: a held one is polled (every
// fileLockPoll on Caddy's file storage, filelock.go; once a second by
// certmagic's own Lock), which local waiters must not pay.
type localLocks struct {
	certmagic.Storage
}

// UnwrapStore lets ca.ListDir find the storage's files (ca.StoreWrapper).
func (s localLocks) UnwrapStore() ca.Store { return s.Storage }

// lockTable is process-wide: apps of an old and a new config share it
// during a reload.
var lockTable = struct {
	mu sync.Mutex
	m  map[string]*localLock
}{m: make(map[string]*localLock)}

type localLock struct {
	ch   chan struct{}
	refs int
}

func acquireLocal(ctx context.Context, name string) (*localLock, error) {
	lockTable.mu.Lock()
	l := lockTable.m[name]
	if l == nil {
		l = &localLock{ch: make(chan struct{}, 1)}
		lockTable.m[name] = l
	}
	l.refs++
	lockTable.mu.Unlock()
	select {
	case l.ch <- struct{}{}:
		return l, nil
	case <-ctx.Done():
		dropRef(name, l)
		return nil, ctx.Err()
	}
}

func dropRef(name string, l *localLock) {
	lockTable.mu.Lock()
	l.refs--
	if l.refs == 0 {
		delete(lockTable.m, name)
	}
	lockTable.mu.Unlock()
}

func releaseLocal(name string) {
	lockTable.mu.Lock()
	l := lockTable.m[name]
	lockTable.mu.Unlock()
	if l == nil {
		return
	}
	<-l.ch
	dropRef(name, l)
}

// Lock takes the in-process lock, then the storage lock (on Caddy's file
// storage, its lock file as filelock.go takes it).
func (s localLocks) Lock(ctx context.Context, name string) error {
	if _, err := acquireLocal(ctx, name); err != nil {
		return err
	}
	var err error
	if fsys, ok := s.Storage.(*certmagic.FileStorage); ok {
		err = lockFile(ctx, fileLockName(fsys, name))
	} else {
		err = s.Storage.Lock(ctx, name)
	}
	if err != nil {
		releaseLocal(name)
		return err
	}
	return nil
}

// Unlock releases the storage lock, then the in-process lock.
func (s localLocks) Unlock(ctx context.Context, name string) error {
	var err error
	if fsys, ok := s.Storage.(*certmagic.FileStorage); ok {
		err = unlockFile(fileLockName(fsys, name))
	} else {
		err = s.Storage.Unlock(ctx, name)
	}
	releaseLocal(name)
	return err
}
