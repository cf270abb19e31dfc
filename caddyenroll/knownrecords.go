package caddyenroll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
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
//     than knownRecordRefresh ago, adds it (the answer waits, bounded by
//     sharedFailuresTimeout, as for the failure records); a known address
//     within that costs no storage access, so the devices' logins read
//     and write nothing;
//   - a login that the account's lockout refuses from an address not
//     known here looks it up in the record (read once per
//     sharedRecheckInterval per account, as the failure records are
//     re-read, and cached meanwhile) and, if it is there, takes it and
//     counts the login at that address;
//   - an unlock of the account clears the failures of the account at each
//     address of the record, which other instances may know it at;
//   - failuresJanitor deletes the records whose addresses all expired.
//
// The record is written read-modify-write under a storage lock: writes
// are rare (a new address, once a day a known one), and an address lost
// to two instances writing at once would be the very device refused
// after a restart. Addresses are stored as a SHA-256 of the account's
// name and the address, never plainly; whoever reads the storage and
// knows a username can test addresses against them (the storage holds
// the CA's key anyway). Each also names the failure record of the account
// at that address, for an unlock.

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

// addKnown records a valid login to username from addrKey at now in the
// account's record, merged with what is there under its storage lock:
// expired addresses go, and past knownPerAccount the least recently used.
func (s *stateStore) addKnown(ctx context.Context, username, addrKey string, now time.Time) error {
	key, err := s.knownRecordKey(ctx, username)
	if err != nil {
		return err
	}
	failures, err := s.failuresKey(ctx, knownKey(username, addrKey))
	if err != nil {
		return err
	}
	lock := knownLockName(key)
	if err := s.st.Lock(ctx, lock); err != nil {
		return fmt.Errorf("locking a record of known addresses: %w", unnamed(err, key))
	}
	defer func() { _ = s.st.Unlock(context.WithoutCancel(ctx), lock) }()
	rec, _, err := s.loadKnownAt(ctx, key)
	if err != nil {
		return err
	}
	hash := knownAddressHash(username, addrKey)
	list := slices.DeleteFunc(rec.Addresses, func(e knownRecordEntry) bool {
		return e.Address == hash || now.Sub(e.Last) > knownAddressesFor
	})
	list = append(list, knownRecordEntry{Address: hash, Last: now, Failures: path.Base(failures)})
	slices.SortStableFunc(list, func(a, b knownRecordEntry) int { return a.Last.Compare(b.Last) })
	if len(list) > knownPerAccount {
		list = list[len(list)-knownPerAccount:]
	}
	return unnamed(s.storeJSON(ctx, key, knownRecord{Addresses: list}), key)
}

// recordKnownAddress adds addrKey to username's record, bounded by
// sharedFailuresTimeout; when the storage fails, the address stays known
// here only, and a login from it tries again after knownRecordRetry.
func (a *App) recordKnownAddress(ctx context.Context, username, addrKey string, now time.Time) {
	if a.state == nil {
		return
	}
	ctx, cancel := sharedCtx(ctx)
	defer cancel()
	if err := a.state.addKnown(ctx, username, addrKey, now); err != nil {
		a.log.Warn("recording a known address in storage", zap.Error(err))
		a.known.recordFailed(username, addrKey, now)
	}
}

// adoptKnownAddress looks addrKey up in username's record (read once per
// sharedRecheckInterval, storedRecord) and, if it is there and not
// expired, makes it known here, and reports so.
func (a *App) adoptKnownAddress(ctx context.Context, username, addrKey string, now time.Time) bool {
	if a.state == nil {
		return false
	}
	rec, cached := a.known.storedRecord(username, now)
	if !cached {
		ctx, cancel := sharedCtx(ctx)
		defer cancel()
		var err error
		if rec, err = a.state.loadKnown(ctx, username); err != nil {
			a.log.Warn("reading known addresses recorded in storage", zap.Error(err))
			return false
		}
		a.known.keepRecord(username, rec, now)
	}
	hash := knownAddressHash(username, addrKey)
	for _, e := range rec.Addresses {
		if e.Address == hash && !a.known.expired(e.Last, now) {
			a.known.adopt(username, addrKey, e.Last, now)
			return true
		}
	}
	return false
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
		if e.Failures == "" || path.Base(e.Failures) != e.Failures {
			continue
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
