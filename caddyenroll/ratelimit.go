package caddyenroll

import (
	"sync"
	"time"
)

// limiter slows down password guessing: after `free` consecutive failures
// for a key (an account or a client address) every further attempt is
// refused until a lockout expires; the lockout doubles with each failure up
// to `max`: with free=5 the sixth attempt waits. A success clears the key. It is per process: in a cluster each
// instance limits on its own, which still bounds guesses per instance.
type limiter struct {
	mu         sync.Mutex
	m          map[string]*failState
	free       int
	base, max  time.Duration
	maxEntries int
}

type failState struct {
	failures int
	until    time.Time
	last     time.Time
}

func newLimiter(free int, base, max time.Duration) *limiter {
	return &limiter{m: make(map[string]*failState), free: free, base: base, max: max, maxEntries: 100000}
}

// allow reports whether an attempt for key may be checked now; if not it
// returns how long the caller must wait.
func (l *limiter) allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st, ok := l.m[key]
	if !ok || !now.Before(st.until) {
		return true, 0
	}
	return false, st.until.Sub(now)
}

// fail records a failed attempt.
func (l *limiter) fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st, ok := l.m[key]
	if !ok {
		if len(l.m) >= l.maxEntries {
			l.evictLocked(now)
		}
		st = &failState{}
		l.m[key] = st
	}
	// failures older than the maximum lockout are forgotten
	if !st.last.IsZero() && now.Sub(st.last) > 2*l.max {
		st.failures = 0
	}
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
	}
}

// succeed clears the key's failures.
func (l *limiter) succeed(key string) {
	l.mu.Lock()
	delete(l.m, key)
	l.mu.Unlock()
}

func (l *limiter) evictLocked(now time.Time) {
	for k, st := range l.m {
		if now.Sub(st.last) > 2*l.max {
			delete(l.m, k)
		}
	}
	// still full: drop arbitrary entries (map order) rather than grow without bound
	for k := range l.m {
		if len(l.m) < l.maxEntries*9/10 {
			break
		}
		delete(l.m, k)
	}
}
