package caddyenroll

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// limiter slows down password guessing: after `free` consecutive failures
// for a key (an account or a client address) every further attempt is
// refused until a lockout expires; the lockout doubles with each failure up
// to `max`: with free=5 the sixth attempt waits. For an account, a success
// clears the key; an address (limited by its own limiter, with more
// failures allowed: the devices of a site share one) keeps its failures.
//
// Attempts are counted from begin, not only when they fail: no more are
// in flight at once than failures are still allowed before a lockout (one
// at a time past it), so concurrent guesses, each waiting for its bcrypt
// check, cannot run ahead of the count. An attempt beyond that waits for
// one in flight to end (up to maxAttemptWait): a fleet of devices sharing
// an account enrolls at once, each check taking microseconds once the
// first succeeded. The table is bounded: stale
// entries go first, then idle ones under no lockout; lockouts and attempts
// in flight are never dropped (a key that finds the table full of them is
// not tracked). It is per process: in a cluster each instance limits on
// its own, which still bounds guesses per instance.
type limiter struct {
	mu         sync.Mutex
	m          map[string]*failState
	free       int
	base, max  time.Duration
	maxEntries int
}

type failState struct {
	failures int
	inflight int           // attempts begun and not yet ended
	freed    chan struct{} // closed when an attempt ends; nil if none waits
	until    time.Time
	last     time.Time
}

// addressFailuresFactor is how many more failures a client address is
// allowed than an account: the devices of a site share one address.
const addressFailuresFactor = 4

// addressKey is the limiter key of a client address: an IPv6 address by
// its /64, which one host commonly holds whole.
func addressKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "ip:" + ip
	}
	if a = a.Unmap(); a.Is6() {
		p, _ := a.WithZone("").Prefix(64)
		return "ip:" + p.String()
	}
	return "ip:" + a.String()
}

// maxAttemptWait bounds how long an attempt waits for one in flight.
const maxAttemptWait = 5 * time.Second

func newLimiter(free int, base, max time.Duration) *limiter {
	return &limiter{m: make(map[string]*failState), free: free, base: base, max: max, maxEntries: 100000}
}

// begin reserves an attempt for key at now, waiting (until ctx is done,
// at most maxAttemptWait) while as many attempts as allowed are in flight.
// If it is refused, it returns how long a lockout still lasts (0: too many
// attempts in flight). A reserved attempt ends with fail, succeed or
// cancel.
func (l *limiter) begin(ctx context.Context, key string, now time.Time) (bool, time.Duration) {
	var timeout <-chan time.Time
	for {
		l.mu.Lock()
		st := l.entryLocked(key, now)
		if st == nil {
			l.mu.Unlock()
			return true, 0 // untracked: the table is full of lockouts
		}
		if now.Before(st.until) {
			left := st.until.Sub(now) // under the lock: fail and end write it
			l.mu.Unlock()
			return false, left
		}
		l.forgetLocked(st, now)
		if st.inflight < max(l.free-st.failures, 1) {
			st.inflight++
			l.mu.Unlock()
			return true, 0
		}
		if st.freed == nil {
			st.freed = make(chan struct{})
		}
		freed := st.freed
		l.mu.Unlock()
		if timeout == nil {
			t := time.NewTimer(maxAttemptWait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-freed:
			now = time.Now()
		case <-ctx.Done():
			return false, 0
		case <-timeout:
			return false, 0
		}
	}
}

// endLocked ends an attempt in flight and wakes those waiting for one.
func (st *failState) endLocked() {
	if st.inflight > 0 {
		st.inflight--
	}
	if st.freed != nil {
		close(st.freed)
		st.freed = nil
	}
}

// fail ends an attempt as failed and reports whether the key is now past
// its free failures, and the lockout this failure starts (0: none). Every
// failure from the free-th on starts one (attempts are refused while one
// lasts, so they are not failures): each lockout is reported once.
func (l *limiter) fail(key string, now time.Time) (past bool, lockout time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.entryLocked(key, now)
	if st == nil {
		return false, 0
	}
	st.endLocked()
	l.forgetLocked(st, now)
	st.failures++
	st.last = now
	if over := st.failures - l.free; over >= 0 {
		d := l.base
		for i := 0; i < over && d < l.max; i++ {
			d *= 2
		}
		if d > l.max {
			d = l.max
		}
		st.until = now.Add(d)
		lockout = d
	}
	return st.failures > l.free, lockout
}

// succeed ends an attempt as successful: the key's failures are cleared.
func (l *limiter) succeed(key string) { l.end(key, true) }

// cancel ends an attempt that was not made.
func (l *limiter) cancel(key string) { l.end(key, false) }

// end ends an attempt, clearing the key's failures or not, and forgets a
// key with nothing left to remember.
func (l *limiter) end(key string, clear bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st, ok := l.m[key]
	if !ok {
		return
	}
	st.endLocked()
	if clear {
		st.failures, st.until = 0, time.Time{}
	}
	if st.inflight == 0 && st.failures == 0 && st.until.IsZero() {
		delete(l.m, key)
	}
}

// entryLocked returns key's entry, made if need be; nil when the table is
// full of entries it must keep.
func (l *limiter) entryLocked(key string, now time.Time) *failState {
	if st, ok := l.m[key]; ok {
		return st
	}
	if len(l.m) >= l.maxEntries {
		l.evictLocked(now)
		if len(l.m) >= l.maxEntries {
			return nil
		}
	}
	st := &failState{}
	l.m[key] = st
	return st
}

// forgetLocked forgets failures older than twice the longest lockout.
func (l *limiter) forgetLocked(st *failState, now time.Time) {
	if !st.last.IsZero() && now.Sub(st.last) > 2*l.max {
		st.failures = 0
	}
}

// evictLocked makes room: entries with nothing to remember first, then
// idle ones under no lockout, down to 90 % of the bound.
func (l *limiter) evictLocked(now time.Time) {
	droppable := func(st *failState) bool { return st.inflight == 0 && !now.Before(st.until) }
	for k, st := range l.m {
		if droppable(st) && now.Sub(st.last) > 2*l.max {
			delete(l.m, k)
		}
	}
	for k, st := range l.m {
		if len(l.m) < l.maxEntries*9/10 {
			break
		}
		if droppable(st) {
			delete(l.m, k)
		}
	}
}

// loginFailed ends a failed login's attempts and returns the lockouts it
// starts, of the account and of the address (0: none). An address counts
// an account's failures only until that account is locked out: one device
// retrying a stale password must not lock out its site, while guesses
// spread over accounts still add up there.
func (a *App) loginFailed(userKey, addrKey string, now time.Time) (account, address time.Duration) {
	past, account := a.limiter.fail(userKey, now)
	if past {
		a.addrLimiter.cancel(addrKey)
		return account, 0
	}
	_, address = a.addrLimiter.fail(addrKey, now)
	return account, address
}

// loginSucceeded ends a valid login's attempts: the account's failures are
// cleared, its address's stay (a valid login must not wipe the guesses made
// from there against other accounts).
func (a *App) loginSucceeded(userKey, addrKey string) {
	a.limiter.succeed(userKey)
	a.addrLimiter.cancel(addrKey)
}

// loginLimiters are an App's limiters, kept across reloads with the same
// settings in limitersPool: a `caddy reload` does not reset lockouts.
type loginLimiters struct{ account, address *limiter }

// Destruct lets loginLimiters live in a caddy.UsagePool.
func (*loginLimiters) Destruct() error { return nil }

var limitersPool = caddy.NewUsagePool()
