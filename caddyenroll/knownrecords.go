package caddyenroll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// The addresses known to an account (knownAddresses) are recorded in
// storage too, so that a restart and the other instances of a cluster do
// not refuse a device at its usual address while a guesser keeps the
// account locked out from elsewhere. An account has one record under
// clearinghouse/enroll/known/, named as its failure record is
// (failurenames.go), holding at most knownPerAccount addresses:
//
//   - a valid login from an address not known here, or last recorded more
//     than knownRecordRefresh ago, has the account's record written in
//     the background (knownWriter): the answer does not wait, and the
//     logins of an account meanwhile go into one write, at most one per
//     knownWriteEvery; a known address within that costs no storage
//     access, so the devices' logins read and write nothing;
//   - a login that the account's lockout refuses from an address not
//     known here looks it up in the record (read once per
//     sharedRecheckInterval per account, as the failure records are
//     re-read, and cached meanwhile; the logins that come while it is
//     read wait for that read) and, if it is there, takes it and counts
//     the login at that address;
//   - an unlock of the account clears the failures of the account at each
//     address of the record that names its failure record there (where it
//     failed), which other instances may know it at;
//   - failuresJanitor deletes the records whose addresses all expired, and
//     those that do not decode.
//
// The record is written read-modify-write under a storage lock: writes
// are rare (a new address, once a day a known one), and an address lost
// to two instances writing at once would be the very device refused
// after a restart. Addresses are stored as a SHA-256 of the account's
// name and the address, never plainly; whoever reads the storage and
// knows a username can test addresses against them (the storage holds
// the CA's key anyway). An address where the account failed also names
// the account's failure record there, for an unlock; its name costs a
// PBKDF2 (failurenames.go), which the writer spends only then, never for
// a valid login. The record's own name costs one too when the cache of
// names dropped it: the writer derives either under a hash slot
// (hashwork.go), waiting for one.

// knownRecord is an account's known addresses as the storage holds them.
type knownRecord struct {
	Addresses []knownRecordEntry `json:"addresses"` // least recently used first
}

type knownRecordEntry struct {
	Address  string    `json:"address"`            // knownAddressHash
	Last     time.Time `json:"last"`               // its last valid login
	Failures string    `json:"failures,omitempty"` // the base name of the account's failure record at the address
}

func knownDir() string { return path.Join(statePrefix, "known") }

// knownRecordRefresh is how often a login from a known address records
// it again (its last login, which keeps it known for knownAddressesFor).
const knownRecordRefresh = 24 * time.Hour

// knownRecordRetry is how soon a login tries again to record an address
// the storage failed to take.
const knownRecordRetry = time.Minute

// knownAddressHash is how an account's record holds addrKey.
func knownAddressHash(username, addrKey string) string {
	return hashKey("known address", username, addrKey)
}

// knownRecordKey is where username's record is.
func (s *stateStore) knownRecordKey(ctx context.Context, username string) (string, error) {
	name, err := s.saltedName(ctx, "user:"+username)
	if err != nil {
		return "", err
	}
	return path.Join(knownDir(), name), nil
}

// loadKnown reads username's record; a record that does not decode is
// empty (the next write replaces it).
func (s *stateStore) loadKnown(ctx context.Context, username string) (knownRecord, error) {
	key, err := s.knownRecordKey(ctx, username)
	if err != nil {
		return knownRecord{}, err
	}
	rec, _, err := s.loadKnownAt(ctx, key)
	return rec, err
}

// loadKnownAt is loadKnown of the record at key; found is false when
// there is none.
func (s *stateStore) loadKnownAt(ctx context.Context, key string) (rec knownRecord, found bool, err error) {
	b, err := s.st.Load(ctx, key)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return rec, false, nil
	case err != nil:
		return rec, false, unnamed(err, key)
	}
	if json.Unmarshal(b, &rec) != nil {
		return knownRecord{}, true, nil
	}
	return rec, true, nil
}

// knownLockName is the storage lock of the record at key.
func knownLockName(key string) string { return "clearinghouse_enroll_known_" + path.Base(key) }

// addKnown merges the addresses known here to username (entries, with
// the time of their last valid login) into the account's record at key,
// under its storage lock: expired addresses go, and past knownPerAccount
// the least recently used. An entry that failed gets the name of the
// account's failure record at its address (failures, by address hash;
// knownWriteNames derives them and key), which the record keeps.
func (s *stateStore) addKnown(ctx context.Context, key, username string, entries []knownAddress, failures map[string]string, now time.Time) error {
	lock := knownLockName(key)
	if err := s.st.Lock(ctx, lock); err != nil {
		return fmt.Errorf("locking a record of known addresses: %w", unnamed(err, key))
	}
	defer func() { _ = s.st.Unlock(context.WithoutCancel(ctx), lock) }()
	rec, _, err := s.loadKnownAt(ctx, key)
	if err != nil {
		return err
	}
	byHash := make(map[string]knownRecordEntry, len(rec.Addresses)+len(entries))
	for _, e := range rec.Addresses {
		if now.Sub(e.Last) <= knownAddressesFor {
			byHash[e.Address] = e
		}
	}
	for _, e := range entries {
		hash := knownAddressHash(username, e.key)
		old, had := byHash[hash]
		n := knownRecordEntry{Address: hash, Last: e.last, Failures: old.Failures}
		if had && old.Last.After(n.Last) {
			n.Last = old.Last // a later login on another instance
		}
		if f := failures[hash]; f != "" {
			n.Failures = f
		}
		if now.Sub(n.Last) <= knownAddressesFor {
			byHash[hash] = n
		}
	}
	list := slices.Collect(maps.Values(byHash))
	slices.SortFunc(list, func(a, b knownRecordEntry) int {
		if c := a.Last.Compare(b.Last); c != 0 {
			return c
		}
		return strings.Compare(a.Address, b.Address)
	})
	if len(list) > knownPerAccount {
		list = list[len(list)-knownPerAccount:]
	}
	return unnamed(s.storeJSON(ctx, key, knownRecord{Addresses: list}), key)
}

// knownWriter writes the accounts' records of known addresses in the
// background, so that a login that makes an address known does not wait
// for the storage (a lock, a read and a write of the account's record,
// which the logins of a fleet behind many addresses would take in turn),
// and the logins of an account meanwhile go into one write.
type knownWriter struct {
	every   time.Duration // between rounds: knownWriteEvery (0 in tests)
	mu      sync.Mutex
	pending map[string]time.Time // usernames whose record is to be written, by the time of the latest login
	running bool
	last    time.Time     // when the last round of writes started
	idle    chan struct{} // closed when the writer ends (waitKnownWrites)
}

// knownWriteEvery spaces the rounds of writes: an account's record is
// written at most once per interval, however many addresses log in to
// it.
const knownWriteEvery = time.Second

// maxPendingKnown bounds the accounts waiting for a write; past it a
// login's address stays known here only, and a later login tries again.
const maxPendingKnown = 10000

// scheduleKnownWrite has username's record written with the addresses
// known here, in the background.
func (a *App) scheduleKnownWrite(username string, now time.Time) {
	w := a.knownWrites
	if a.state == nil || w == nil {
		return
	}
	w.mu.Lock()
	if _, queued := w.pending[username]; !queued && len(w.pending) >= maxPendingKnown {
		w.mu.Unlock()
		a.known.recordFailed(username, now)
		return
	}
	if w.pending == nil {
		w.pending = make(map[string]time.Time)
	}
	w.pending[username] = now
	start := !w.running
	if start {
		w.running, w.idle = true, make(chan struct{})
	}
	w.mu.Unlock()
	if start {
		a.background(a.writeKnownRecords)
	}
}

// writeKnownRecords writes the pending records, round after round, until
// none is pending.
func (a *App) writeKnownRecords() {
	w := a.knownWrites
	ctx := a.bgCtx
	if ctx == nil {
		ctx = context.Background()
	}
	for {
		w.mu.Lock()
		wait := w.every - time.Since(w.last)
		w.mu.Unlock()
		if wait > 0 && ctx.Err() == nil {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
		w.mu.Lock()
		batch := w.pending
		w.pending = nil
		if len(batch) == 0 {
			w.running = false
			close(w.idle)
			w.mu.Unlock()
			return
		}
		w.last = time.Now()
		w.mu.Unlock()
		for username, now := range batch {
			if ctx.Err() != nil {
				a.known.recordFailed(username, now) // a later login tries again
				continue
			}
			entries := a.known.entries(username)
			key, failures, err := a.knownWriteNames(ctx, username, entries)
			if err == nil {
				wctx, cancel := sharedCtx(ctx)
				err = a.state.addKnown(wctx, key, username, entries, failures, now)
				cancel()
			}
			if err != nil {
				if ctx.Err() == nil {
					a.log.Warn("recording known addresses in storage", zap.Error(err))
				}
				a.known.recordFailed(username, now)
			}
		}
	}
}

// knownWriteNames names what a write of username's record takes: the
// record's key, and the failure records (base names, by address hash) of
// the entries where the account failed. A name the cache dropped costs a
// PBKDF2 (failurenames.go), derived under a hash slot (hashwork.go) as a
// login's is, which the writer waits for while ctx lasts: a flood of
// logins taking every slot delays the write, it does not hash beside
// them. Nothing is derived without the slot.
func (a *App) knownWriteNames(ctx context.Context, username string, entries []knownAddress) (key string, failures map[string]string, err error) {
	var release func()
	defer func() {
		if release != nil {
			release()
		}
	}()
	name := func(limiterKey string) (string, error) {
		if n, ok := a.state.cachedName(limiterKey); ok {
			return n, nil
		}
		if release == nil {
			r, err := a.hashGate().wait(ctx)
			if err != nil {
				return "", fmt.Errorf("waiting for a hash slot to name a record: %w", err)
			}
			release = r
		}
		sctx, cancel := sharedCtx(ctx)
		defer cancel()
		return a.state.saltedName(sctx, limiterKey)
	}
	base, err := name("user:" + username)
	if err != nil {
		return "", nil, err
	}
	failures = make(map[string]string) // by address hash
	for _, e := range entries {
		if e.failed {
			f, err := name(knownKey(username, e.key))
			if err != nil {
				return "", nil, err
			}
			failures[knownAddressHash(username, e.key)] = f
		}
	}
	return path.Join(knownDir(), base), failures, nil
}

// waitKnownWrites waits until no write of records of known addresses is
// pending.
func (a *App) waitKnownWrites() {
	w := a.knownWrites
	if w == nil {
		return
	}
	w.mu.Lock()
	idle, running := w.idle, w.running
	w.mu.Unlock()
	if running {
		<-idle
	}
}

// adoptKnownAddress looks addrKey up in username's record (read once per
// sharedRecheckInterval, storedRecord) and, if it is there and not
// expired, makes it known here, and reports so. A record whose name finds
// no hash slot is not read: the address is not known this time, and the
// next attempt reads it.
func (a *App) adoptKnownAddress(ctx context.Context, username, addrKey string, now time.Time) bool {
	if a.state == nil {
		return false
	}
	r, claimed := a.known.storedRecord(username, now)
	ctx, cancel := sharedCtx(ctx)
	defer cancel()
	if claimed {
		settled := false
		defer func() {
			if !settled {
				// a panic of the storage module (Caddy recovers the
				// handler's): the logins waiting for this read find no
				// address, and the next one reads it again, rather than
				// waiting out their bound at each interval
				a.known.dropRecord(username, r)
			}
		}()
		key, ok, err := a.boundedKnownRecordKey(ctx, username)
		if !ok {
			// no hash slot to name the record: the attempt stays refused
			// by the lockout, and a later one reads it
			settled = true
			a.known.dropRecord(username, r)
			return false
		}
		var rec knownRecord
		if err == nil {
			rec, _, err = a.state.loadKnownAt(ctx, key)
		}
		if err != nil {
			a.log.Warn("reading known addresses recorded in storage", zap.Error(err))
		}
		settled = true
		a.known.keepRecord(r, rec) // empty if it failed: read again next interval
		if err != nil {
			return false
		}
	} else {
		select {
		case <-r.done: // read by another login (or being read: a device
			// refused while a guesser's login reads it would be refused
			// at each interval that the guesser claims)
		case <-ctx.Done(): // that read has the same bound
			return false
		}
	}
	hash := knownAddressHash(username, addrKey)
	for _, e := range r.rec.Addresses {
		if e.Address == hash && !a.known.expired(e.Last, now) {
			a.known.adopt(username, addrKey, e.Last, now)
			return true
		}
	}
	return false
}

// boundedKnownRecordKey is knownRecordKey with its name's PBKDF2, when
// the cache of names dropped it, under a hash slot (hashwork.go): a
// guesser cycling refused attempts through more locked-out accounts than
// the cache holds would otherwise have each cost a derivation outside the
// bound. ok false means no slot was free, and nothing was derived.
func (a *App) boundedKnownRecordKey(ctx context.Context, username string) (key string, ok bool, err error) {
	if !a.nameUnderBound(ctx, "user:"+username) {
		return "", false, nil
	}
	key, err = a.state.knownRecordKey(ctx, username)
	return key, true, err
}

// unlockKnownFailures deletes the failure records of username at the
// addresses of its record of known addresses, and reports whether one
// counted failures.
func (a *App) unlockKnownFailures(ctx context.Context, username string) (had bool, err error) {
	if a.state == nil {
		return false, nil
	}
	ctx, cancel := sharedCtx(ctx)
	defer cancel()
	rec, err := a.state.loadKnown(ctx, username)
	if err != nil {
		return false, fmt.Errorf("reading known addresses recorded in storage: %w", err)
	}
	for _, e := range rec.Addresses {
		if !isSaltedName(e.Failures) {
			continue // none, or not a name saltedName makes: not under failuresDir
		}
		key := path.Join(failuresDir(), e.Failures)
		var f sharedFailure
		found, err := a.state.loadJSON(ctx, key, &f)
		if err != nil {
			return had, fmt.Errorf("reading failed logins recorded in storage: %w", unnamed(err, key))
		}
		if !found {
			continue
		}
		had = had || f.Failures > 0
		if err := a.state.st.Delete(ctx, key); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return had, fmt.Errorf("clearing failed logins recorded in storage: %w", unnamed(err, key))
		}
	}
	return had, nil
}

// pruneKnown deletes the records of known addresses whose addresses all
// expired at now, and those that do not decode (re-reading them under
// their lock: a login may be adding one). A record the storage fails to
// read is kept (the first such error is returned once the others are
// done).
func (a *App) pruneKnown(ctx context.Context, now time.Time) (int, error) {
	keys, err := a.state.list(ctx, knownDir())
	if err != nil {
		return 0, err
	}
	expired := func(rec knownRecord) bool {
		return !slices.ContainsFunc(rec.Addresses, func(e knownRecordEntry) bool {
			return !a.known.expired(e.Last, now)
		})
	}
	removed := 0
	var readErr error
	for _, k := range keys {
		rec, found, err := a.state.loadKnownAt(ctx, k)
		switch {
		case err != nil && ctx.Err() != nil:
			return removed, err
		case err != nil:
			if readErr == nil {
				readErr = fmt.Errorf("reading a record: %w", err)
			}
			continue
		case !found || !expired(rec):
			continue // deleted meanwhile, or still of use
		}
		gone, err := a.deleteKnownIf(ctx, k, expired)
		if err != nil {
			return removed, err
		}
		if gone {
			removed++
		}
	}
	return removed, readErr
}

// deleteKnownIf deletes the record at key if it still is what drop says,
// under its lock.
func (a *App) deleteKnownIf(ctx context.Context, key string, drop func(knownRecord) bool) (bool, error) {
	lock := knownLockName(key)
	if err := a.state.st.Lock(ctx, lock); err != nil {
		return false, fmt.Errorf("locking a record of known addresses: %w", unnamed(err, key))
	}
	defer func() { _ = a.state.st.Unlock(context.WithoutCancel(ctx), lock) }()
	rec, found, err := a.state.loadKnownAt(ctx, key)
	if err != nil || !found || !drop(rec) {
		return false, err
	}
	if err := a.state.st.Delete(ctx, key); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, unnamed(err, key)
	}
	return true, nil
}
