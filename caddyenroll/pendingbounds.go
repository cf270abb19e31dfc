package caddyenroll

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// Pending requests are bounded in total (max_pending) and per account
// (max_pending_per_account, requests naming devices not in the file),
// besides per device (maxPendingPerDevice): one account's credentials,
// which every device of a customer holds, must not fill the storage and
// the operator's list with requests of made-up devices. A request over a
// bound is refused (status 10) before anything about it is stored but its
// nonce's binding (bound first, as every request's); a device asking
// again about its request already pending is answered as before.
//
// The account's count is the storage's: its pending requests for unknown
// devices are indexed by account too (clearinghouse/enroll/pending-by/<account hash>/<id>),
// listed under a storage lock of the account, so instances sharing the
// storage count alike. The total is the pending gauge's count, kept in
// memory (pendingCount): the index's at start and at every refresh (30 s),
// plus this process's requests and decisions in between.

const (
	defaultMaxPending           = 10000
	defaultMaxPendingPerAccount = 100
)

// maxPending is the total bound (the default for an app not provisioned).
func (a *App) maxPending() int {
	if a.MaxPending > 0 {
		return a.MaxPending
	}
	return defaultMaxPending
}

// maxPendingPerAccount is the per-account bound.
func (a *App) maxPendingPerAccount() int {
	if a.MaxPendingPerAccount > 0 {
		return a.MaxPendingPerAccount
	}
	return defaultMaxPendingPerAccount
}

// pendingCount is the process's count of pending requests, which the
// pending gauge shows: process-wide, as the gauge is, so that a reload
// keeps it.
var pendingCount struct {
	mu sync.Mutex
	n  int
}

// pendingSet sets the count and the gauge.
func pendingSet(n int) {
	pendingCount.mu.Lock()
	defer pendingCount.mu.Unlock()
	pendingCount.n = n
	metrics.pending.Set(float64(n))
}

// pendingAdd adds delta to the count and the gauge (not below 0: a
// decision of a request counted by another instance).
func pendingAdd(delta int) {
	pendingCount.mu.Lock()
	defer pendingCount.mu.Unlock()
	pendingCount.n = max(pendingCount.n+delta, 0)
	metrics.pending.Set(float64(pendingCount.n))
}

// pendingReserve counts one more pending request if fewer than limit are
// counted, and reports whether it did.
func pendingReserve(limit int) bool {
	pendingCount.mu.Lock()
	defer pendingCount.mu.Unlock()
	if pendingCount.n >= limit {
		return false
	}
	pendingCount.n++
	metrics.pending.Set(float64(pendingCount.n))
	return true
}

func pendingByDir(username string) string {
	return path.Join(statePrefix, "pending-by", hashKey("account", username))
}

func pendingByKey(username, id string) string { return path.Join(pendingByDir(username), id) }

// pendingByIndexKey marks that the per-account index covers every pending
// request (those of versions without it are indexed once, at start).
func pendingByIndexKey() string { return path.Join(statePrefix, "pending-by-index") }

func accountLockName(username string) string {
	return "clearinghouse_enroll_account_" + hashKey("lock", username)[:32]
}

// lockAccount serializes the admission of new pending requests of one
// account across goroutines and processes. It is taken under a device's
// lock, never the other way round.
func (s *stateStore) lockAccount(ctx context.Context, username string) (func(), error) {
	name := accountLockName(username)
	if err := s.st.Lock(ctx, name); err != nil {
		return nil, fmt.Errorf("locking account state: %v", err)
	}
	return func() { _ = s.st.Unlock(context.WithoutCancel(ctx), name) }, nil
}

// unindexPendingBy removes the account's marker of a request that is no
// longer pending.
func (s *stateStore) unindexPendingBy(ctx context.Context, username, id string) error {
	if username == "" {
		return nil
	}
	if err := s.st.Delete(ctx, pendingByKey(username, id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// pendingByCount counts the account's pending requests by their markers.
// From limit on, if verify says so, each is read: markers a crash left
// (their request is no longer pending) do not count, and are removed once
// old enough.
func (s *stateStore) pendingByCount(ctx context.Context, username string, limit int, verify func() bool) (int, error) {
	keys, err := s.list(ctx, pendingByDir(username))
	if err != nil || len(keys) < limit || !verify() {
		return len(keys), err
	}
	n := 0
	for _, k := range keys {
		r, err := s.request(ctx, path.Base(k))
		if err != nil {
			return 0, err
		}
		if r != nil && r.State == statePending {
			n++
		} else if s.markerStale(ctx, k) {
			_ = s.st.Delete(ctx, k)
		}
	}
	return n, nil
}

// indexPendingBy indexes by account, once, the pending requests that
// versions without the per-account index stored.
func (s *stateStore) indexPendingBy(ctx context.Context) error {
	return s.indexPendingOnce(ctx, pendingByIndexKey(), func(r *Request) string {
		if r.Username == "" || r.Known {
			return ""
		}
		return pendingByKey(r.Username, r.ID)
	})
}

// admitPending admits a new pending request of the account under the
// bounds, or returns the refusal. Once admitted, the request is stored and
// done called with whether it was (the account stays locked until then).
// A request naming a device of the file (known) counts only toward
// max_pending: the file bounds those (maxPendingPerDevice each), and a
// fleet's manual rollout must not wait on the account's bound.
func (a *App) admitPending(ctx context.Context, username, device string, known bool) (done func(stored bool), refused *outcome) {
	unlock := func() {}
	if !known {
		if unlock, refused = a.admitForAccount(ctx, username, device); refused != nil {
			return nil, refused
		}
	}
	if !pendingReserve(a.maxPending()) {
		unlock()
		a.warnBound("total", "pending request refused: as many requests are pending as max_pending allows",
			a.accounts.logField(username), zap.String("device", device), zap.Int("max_pending", a.maxPending()))
		o := fail(wire.StatusRateLimited, "too many requests are pending approval; try again later")
		return nil, &o
	}
	return func(stored bool) {
		if !stored {
			pendingAdd(-1)
		}
		unlock()
	}, nil
}

// admitForAccount locks the account and admits a new request under
// max_pending_per_account; the account stays locked until unlock.
func (a *App) admitForAccount(ctx context.Context, username, device string) (unlock func(), refused *outcome) {
	unlock, err := a.state.lockAccount(ctx, username)
	if err != nil {
		a.log.Error("locking account state", a.accounts.logField(username), zap.Error(err))
		o := fail(wire.StatusServerError, "server error")
		return nil, &o
	}
	perAccount := a.maxPendingPerAccount()
	// reading every request of an account at its bound is done at most
	// once per pendingMarkerGrace: refused requests must stay cheap
	verify := func() bool { return a.pendingThrottle.due("verify:"+username, a.now(), pendingMarkerGrace) }
	n, err := a.state.pendingByCount(ctx, username, perAccount, verify)
	if err != nil {
		unlock()
		a.log.Error("counting the account's pending requests", a.accounts.logField(username), zap.Error(err))
		o := fail(wire.StatusServerError, "server error")
		return nil, &o
	}
	if n >= perAccount {
		unlock()
		a.warnBound("account:"+username, "pending request refused: the account has as many pending requests as max_pending_per_account allows",
			a.accounts.logField(username), zap.String("device", device), zap.Int("max_pending_per_account", perAccount))
		o := fail(wire.StatusRateLimited, "too many requests of this account are pending approval; try again later")
		return nil, &o
	}
	return unlock, nil
}

// pendingWarnInterval is how often a bound's refusals are logged at WARN:
// the first, then at most one per interval (each is at DEBUG, as status 10
// is), so that a flood of them cannot flood the log.
const pendingWarnInterval = 5 * time.Minute

// throttle remembers when something keyed (a bound's warning, an
// account's verification) was last done: a few keys per account, one per
// held device of the file. Keys done longer ago than any interval asked
// for (throttleForget) are forgotten as the map grows, so that keys of
// made-up device names do not pile up over months.
type throttle struct {
	mu    sync.Mutex
	last  map[string]time.Time
	swept int // len(last) after the last sweep
}

// throttleForget is longer than every interval due is called with: a key
// done before it is due again, as a key never done.
const throttleForget = 2 * caExpiredLogInterval

// throttleSweepAt is the size of the map from which it is swept, each time
// it has doubled since the last sweep (linear time overall).
const throttleSweepAt = 1024

// due reports whether key was not done in the interval before now, and
// if so records it done at now.
func (t *throttle) due(key string, now time.Time, every time.Duration) bool {
	if t == nil { // an app not provisioned (tests)
		return true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	last, seen := t.last[key]
	if seen && now.Sub(last) < every && !now.Before(last) {
		return false
	}
	if t.last == nil {
		t.last = make(map[string]time.Time)
	}
	t.last[key] = now
	if len(t.last) >= max(throttleSweepAt, 2*t.swept) {
		for k, at := range t.last {
			if now.Sub(at) > throttleForget {
				delete(t.last, k)
			}
		}
		t.swept = len(t.last)
	}
	return true
}

// warnBound logs msg at WARN for key (a pending bound, an account's bound,
// a device held by max_issued_per_device) at the first time and then at
// most every pendingWarnInterval.
func (a *App) warnBound(key, msg string, fields ...zap.Field) {
	if a.pendingThrottle.due("warn:"+key, a.now(), pendingWarnInterval) {
		a.log.Warn(msg, fields...)
	}
}
