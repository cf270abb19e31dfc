package caddyenroll

import (
	"context"
	"runtime"
	"sync"
	"time"
)

// The password hashes of logins not in the accounts' cache (a bcrypt
// check, and a failure's PBKDF2 record name, each tens of milliseconds of
// CPU, and the name again when a login reads a record whose name the
// cache dropped: its failure record, or its record of known addresses)
// are bounded in the whole process, and so are the names the background
// writer of records of known addresses derives (it waits for a slot):
// the limiters bound each account and each address, but a flood from
// many addresses with many usernames would otherwise keep every core
// hashing, and getcacert, OSP and the admin API would wait behind it. A
// login that finds every slot taken waits a little (hashWaitMax, behind
// at most hashWaitersPerSlot waiters a slot) and is then refused as rate
// limited (status 10); a valid login found in the cache takes no slot.

// hashSlotsPerCPU are the hash checks in flight per GOMAXPROCS: a slot
// also holds a failure's name derivation and, once, the storage's read
// of its salt, so twice the cores keeps them all busy.
const hashSlotsPerCPU = 2

// hashWaitersPerSlot bounds the logins waiting for a slot; beyond them a
// login is refused at once.
const hashWaitersPerSlot = 8

// hashWaitMax bounds how long a login waits for a slot: about what a
// device's request takes when the server is merely busy.
const hashWaitMax = time.Second

// hashWork is a semaphore of hash checks with a bounded queue.
type hashWork struct {
	slots      chan struct{}
	mu         sync.Mutex
	waiting    int
	maxWaiting int
	maxWait    time.Duration
}

func newHashWork(slots, maxWaiting int, maxWait time.Duration) *hashWork {
	return &hashWork{slots: make(chan struct{}, max(slots, 1)), maxWaiting: maxWaiting, maxWait: maxWait}
}

// processHashWork is the process's: the cores are, whatever the configs.
// It is sized at first use (GOMAXPROCS may follow a container's limit).
var processHashWork = sync.OnceValue(func() *hashWork {
	n := hashSlotsPerCPU * runtime.GOMAXPROCS(0)
	return newHashWork(n, hashWaitersPerSlot*n, hashWaitMax)
})

// hashGate is the App's hash work: the process's, unless a test set one.
func (a *App) hashGate() *hashWork {
	if a.hashes != nil {
		return a.hashes
	}
	return processHashWork()
}

// acquire takes a slot, waiting (while fewer than maxWaiting wait) at
// most maxWait and until ctx is done; ok false means refused. release
// gives the slot back.
func (h *hashWork) acquire(ctx context.Context) (release func(), ok bool) {
	release = func() { <-h.slots }
	select {
	case h.slots <- struct{}{}:
		return release, true
	default:
	}
	h.mu.Lock()
	if h.waiting >= h.maxWaiting {
		h.mu.Unlock()
		return nil, false
	}
	h.waiting++
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.waiting--
		h.mu.Unlock()
	}()
	t := time.NewTimer(h.maxWait)
	defer t.Stop()
	select {
	case h.slots <- struct{}{}:
		return release, true
	case <-t.C:
	case <-ctx.Done():
	}
	return nil, false
}

// wait takes a slot for background work, waiting for one as long as ctx
// lasts: it has no client to refuse, and a background job is one waiter,
// not counted among the logins' (maxWaiting bounds those).
func (h *hashWork) wait(ctx context.Context) (release func(), err error) {
	select {
	case h.slots <- struct{}{}:
		return func() { <-h.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// nameUnderBound derives the name of limiterKey's records (a PBKDF2,
// failurenames.go) under a hash slot when the cache of names dropped it:
// false when no slot was free, and nothing was derived. The name is then
// cached for the caller; a derivation's error is the caller's to meet.
func (a *App) nameUnderBound(ctx context.Context, limiterKey string) bool {
	if a.state.nameCached(limiterKey) {
		return true
	}
	release, ok := a.hashGate().acquire(ctx)
	if !ok {
		return false
	}
	defer release() // a storage module's panic must not keep the slot
	_, _ = a.state.failuresKey(ctx, limiterKey)
	return true
}
