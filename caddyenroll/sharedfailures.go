package caddyenroll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Failed logins are shared through the storage, so that the instances of
// a cluster limit guesses together instead of each granting the whole
// allowance. A limiter key (an account, an account at a known address, an
// address) that fails gets a record under clearinghouse/enroll/failures/:
//
//   - a failure reads the record first and counts from the larger of its
//     count and the instance's own, then writes the result back;
//   - an attempt for a key the instance has seen fail reads the record and
//     honours a lockout another instance started (while a lockout here
//     refuses the key, once per sharedRecheckInterval);
//   - a valid login that clears the key's failures, or an unlock, deletes
//     the record; a failure here waits for that (and for the others of
//     its key here: one instance writes a record in order).
//
// A key that never failed costs no storage access: the devices' logins
// read nothing (but the write of their account's record of known
// addresses, in the background, at a new address and once a day:
// knownrecords.go). Records are written without a lock (concurrent failures
// on two instances may count one failure, not two) and are forgotten as
// the process's counts are (twice the longest lockout after the last
// failure); failuresJanitor deletes those. A storage that fails leaves
// each instance limiting on its own, as before records were shared.

// sharedFailure is a limiter key's failures as the storage holds them.
type sharedFailure struct {
	Failures int       `json:"failures"`
	Last     time.Time `json:"last"`           // the last failure
	Until    time.Time `json:"until,omitzero"` // the lockout it started
}

func failuresDir() string { return path.Join(statePrefix, "failures") }

// sharedRecheckInterval is how often attempts that a lockout here refuses
// read the key's record (to learn of an unlock, or a longer lockout).
const sharedRecheckInterval = time.Second

// sharedFailuresTimeout bounds the storage work a login adds, so that a
// slow storage slows a guesser's failures, not the devices.
const sharedFailuresTimeout = 2 * time.Second

// loadFailures reads limiterKey's record: found is false when there is
// none (never written, or deleted by a valid login or an unlock).
func (s *stateStore) loadFailures(ctx context.Context, limiterKey string) (f sharedFailure, found bool, err error) {
	key, err := s.failuresKey(ctx, limiterKey)
	if err != nil {
		return sharedFailure{}, false, err
	}
	found, err = s.loadJSON(ctx, key, &f)
	if err != nil || !found || f.Failures < 0 || f.Last.IsZero() {
		return sharedFailure{}, found && err == nil, unnamed(err, key)
	}
	return f, true, nil
}

func (s *stateStore) storeFailures(ctx context.Context, limiterKey string, f sharedFailure) error {
	key, err := s.failuresKey(ctx, limiterKey)
	if err != nil {
		return err
	}
	return unnamed(s.storeJSON(ctx, key, f), key)
}

func (s *stateStore) clearFailures(ctx context.Context, limiterKey string) error {
	key, err := s.failuresKey(ctx, limiterKey)
	if err != nil {
		return err
	}
	if err := s.st.Delete(ctx, key); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return unnamed(err, key)
	}
	return nil
}

// unnamed is err without the name of the record at key, which storage
// errors commonly carry: a hash of a username (that may be a mistyped
// password; failurenames.go), which the log and the admin API's answers
// need not show, as accounts.logField does not.
func unnamed(err error, key string) error {
	if err == nil {
		return nil
	}
	return unnamedErr{msg: strings.ReplaceAll(err.Error(), path.Base(key), "…"), err: err}
}

type unnamedErr struct {
	msg string
	err error
}

func (e unnamedErr) Error() string { return e.msg }
func (e unnamedErr) Unwrap() error { return e.err }

// sharedCtx is the context of a login's storage work: not cut short by a
// device hanging up (a failure must be recorded), bounded in time.
func sharedCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), sharedFailuresTimeout)
}

// adoptSharedLockout gives l the lockout other instances recorded for key,
// when this instance has seen key fail (else it reads nothing; while a
// lockout here refuses key, once per sharedRecheckInterval). When the
// record is gone (a valid login or an unlock deleted it) the key's
// failures here go too, if this instance had recorded them there (a
// storage that fails to write must not reset them). shed reports that
// the record was due but not read for want of a hash slot: the attempt
// must be refused, not checked without the lockout it may hold.
func (a *App) adoptSharedLockout(ctx context.Context, l *limiter, key string, now time.Time) (shed bool) {
	if a.state == nil {
		return false
	}
	epoch, ok := l.shouldRead(key, now)
	if !ok {
		return false
	}
	ctx, cancel := sharedCtx(ctx)
	defer cancel()
	if !a.nameUnderBound(ctx, key) {
		// without a slot for its name the record is read at a later
		// attempt, and this one is shed (a slot free by its own check
		// would let a password be tried past another instance's lockout)
		return true
	}
	shared, found, err := a.state.loadFailures(ctx, key)
	switch {
	case err != nil:
		a.log.Warn("reading failed logins recorded in storage", zap.Error(err))
	case !found:
		l.forgetRecorded(key)
	default:
		l.adopt(key, shared, now, epoch)
	}
	return false
}

// failShared is l.fail counting the failures recorded in storage, and
// recording the result there. Failures of one key wait for each other,
// within sharedFailuresTimeout (a slow storage slows the guesser's
// failures of that key).
func (a *App) failShared(ctx context.Context, l *limiter, key string, now time.Time) (past bool, lockout time.Duration) {
	if a.state == nil {
		return l.fail(key, now)
	}
	ctx, cancel := sharedCtx(ctx)
	defer cancel()
	// one failure of key at a time reads, counts and writes back here, so
	// that the record is written in the order of the counts; one that
	// waits too long for the others only counts here
	unlock, ok := l.lockRecord(ctx, key)
	if !ok {
		a.log.Warn("recording a failed login in storage: timed out behind the others of its key")
		return l.fail(key, now)
	}
	defer unlock()
	shared, _, err := a.state.loadFailures(ctx, key)
	if err != nil {
		a.log.Warn("reading failed logins recorded in storage", zap.Error(err))
	}
	past, lockout, after := l.failWith(key, now, shared)
	if after.Failures > 0 {
		if err := a.state.storeFailures(ctx, key, after); err != nil {
			a.log.Warn("recording a failed login in storage", zap.Error(err))
		} else {
			l.markRecorded(key, after)
		}
	}
	return past, lockout
}

// succeedShared is l.succeed, deleting key's record when this instance
// had counted failures of key. Failures of key here wait for the deletion
// (else one could count from the record being deleted, as if the valid
// login had not cleared it); the devices' logins, which had none, wait
// for nothing.
func (a *App) succeedShared(ctx context.Context, l *limiter, key string) {
	if a.state == nil || !l.hasFailures(key) {
		l.succeed(key)
		return
	}
	lockCtx, cancel := sharedCtx(ctx)
	unlock, locked := l.lockRecord(lockCtx, key)
	cancel()
	if locked {
		defer unlock()
	}
	if !l.succeed(key) {
		return
	}
	ctx, cancel = sharedCtx(ctx)
	defer cancel()
	if err := a.state.clearFailures(ctx, key); err != nil {
		a.log.Warn("clearing failed logins recorded in storage", zap.Error(err))
	}
}

// failuresJanitorInterval is how often stale failure records are deleted.
const failuresJanitorInterval = time.Hour

// pruneFailures deletes the failure records no limiter would count any
// more at now: last failure older than twice the longest lockout, and no
// lockout left; and those that do not decode or count nothing. A record the storage fails
// to read is kept (the first such error is returned once the others are
// done).
func (a *App) pruneFailures(ctx context.Context, now time.Time) (int, error) {
	keys, err := a.state.list(ctx, failuresDir())
	if err != nil {
		return 0, err
	}
	removed := 0
	var readErr error
	for _, k := range keys {
		b, err := a.state.st.Load(ctx, k)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue // deleted meanwhile
		case err != nil && ctx.Err() != nil:
			return removed, err
		case err != nil:
			if readErr == nil {
				readErr = fmt.Errorf("reading a record: %w", unnamed(err, k))
			}
			continue
		}
		var f sharedFailure
		if json.Unmarshal(b, &f) == nil && !f.Last.IsZero() && (now.Before(f.Until) || !a.limiter.stale(f.Last, now)) {
			continue // still counted
		}
		// stale, or not a record (of no use either)
		if err := a.state.st.Delete(ctx, k); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, unnamed(err, k)
		}
		removed++
	}
	return removed, readErr
}

// failuresJanitor runs pruneFailures, and pruneKnown (knownrecords.go),
// at each interval until the app stops.
func (a *App) failuresJanitor(every time.Duration) {
	a.every(every, func() {
		n, err := a.pruneFailures(a.bgCtx, a.janitorNow())
		switch {
		case err != nil && a.bgCtx.Err() == nil:
			a.log.Error("pruning failed-login records", zap.Error(err), zap.Int("removed", n))
		case n > 0:
			a.log.Info("stale failed-login records pruned", zap.Int("removed", n))
		}
		n, err = a.pruneKnown(a.bgCtx, a.janitorNow())
		switch {
		case err != nil && a.bgCtx.Err() == nil:
			a.log.Error("pruning records of known addresses", zap.Error(err), zap.Int("removed", n))
		case n > 0:
			a.log.Info("expired records of known addresses pruned", zap.Int("removed", n))
		}
	})
}
