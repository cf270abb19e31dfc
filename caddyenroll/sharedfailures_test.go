package caddyenroll

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// newSharedLoginApps are two Apps of one cluster: their own limiters, one
// storage. 5 failures allowed, lockouts from 1s to 1m.
func newSharedLoginApps(t *testing.T) (a, b *App, st certmagic.Storage) {
	st = localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	return newLoginAppOn(t, st), newLoginAppOn(t, st), st
}

// Failed logins count across the instances of a cluster: the allowance is
// spent once, not once per instance; a lockout one instance started holds
// at another that has seen the key fail; a valid login clears the record;
// stale records are pruned.
func TestSharedFailures(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	type step struct {
		at      time.Duration
		on      string // "a" or "b"
		user    string
		from    string // the client address, if not addr
		good    bool
		refused bool
		lockout time.Duration // the account's lockout this attempt starts
	}
	const addr = "203.0.113.7"
	for _, c := range []struct {
		name  string
		steps []step
	}{
		{"the allowance is the cluster's", []step{
			{at: 0, on: "a", user: "ops"},
			{at: 1, on: "b", user: "ops"},
			{at: 2, on: "a", user: "ops"},
			{at: 3, on: "b", user: "ops"},
			{at: 4, on: "a", user: "ops", lockout: time.Second}, // the fifth failure of the cluster
			// b has seen ops fail: it reads a's lockout and refuses
			{at: 5, on: "b", user: "ops", good: true, refused: true},
			{at: 6, on: "a", user: "ops", good: true, refused: true},
			// after it, the next failure doubles it wherever it happens
			{at: time.Second + 5, on: "b", user: "ops", lockout: 2 * time.Second},
			{at: time.Second + 6, on: "a", user: "ops", good: true, refused: true},
			// over: a valid login clears (from another address, which is
			// not known to ops yet, so that it is ops's own failures)
			{at: 3*time.Second + 6, on: "a", user: "ops", from: "192.0.2.50", good: true},
			// a fresh allowance on both
			{at: 3*time.Second + 7, on: "b", user: "ops"},
			{at: 3*time.Second + 8, on: "b", user: "ops"},
			{at: 3*time.Second + 9, on: "a", user: "ops"},
			{at: 3*time.Second + 10, on: "a", user: "ops"},
			{at: 3*time.Second + 11, on: "a", user: "ops", lockout: time.Second},
		}},
		{"other accounts are not affected", []step{
			{at: 0, on: "a", user: "ops"}, {at: 0, on: "a", user: "ops"}, {at: 0, on: "a", user: "ops"},
			{at: 0, on: "a", user: "ops"}, {at: 0, on: "a", user: "ops", lockout: time.Second},
			{at: 1, on: "b", user: "other", good: true},
			{at: 2, on: "b", user: "other"},
			{at: 3, on: "b", user: "other", good: true},
		}},
		{"stale failures are forgotten", []step{
			{at: 0, on: "a", user: "ops"}, {at: 0, on: "a", user: "ops"}, {at: 0, on: "a", user: "ops"},
			{at: 0, on: "a", user: "ops"},
			// twice the longest lockout later, b does not count a's four
			{at: 3 * time.Minute, on: "b", user: "ops"},
			{at: 3 * time.Minute, on: "b", user: "ops"},
			{at: 3 * time.Minute, on: "b", user: "ops"},
			{at: 3 * time.Minute, on: "b", user: "ops"},
			{at: 3 * time.Minute, on: "b", user: "ops", lockout: time.Second},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b, _ := newSharedLoginApps(t)
			apps := map[string]*App{"a": a, "b": b}
			for i, s := range c.steps {
				app, at, from := apps[s.on], now.Add(s.at), addr
				if s.from != "" {
					from = s.from
				}
				lg, ok := app.beginLogin(noWait, s.user, from, func() time.Time { return at })
				if ok == s.refused {
					t.Fatalf("step %d (%+v): refused = %v", i, s, !ok)
				}
				if !ok {
					continue
				}
				if s.good {
					app.loginSucceeded(noWait, lg, at)
					continue
				}
				if lockout, _ := app.loginFailed(noWait, lg, at); lockout != s.lockout {
					t.Fatalf("step %d (%+v): lockout %v", i, s, lockout)
				}
			}
		})
	}
}

// A valid login after failures deletes the key's record, so that another
// instance does not count them later; a key that never failed writes
// nothing; the janitor deletes what no limiter counts any more.
func TestSharedFailuresRecords(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_000_000, 0)
	a, b, st := newSharedLoginApps(t)
	// (from a new address each time: a valid login makes its address known
	// to the account, whose failures there count apart)
	next := 0
	attempt := func(app *App, user string, good bool) {
		t.Helper()
		next++
		if !tryLogin(app, user, fmt.Sprintf("198.51.100.%d", next), good, now) {
			t.Fatalf("%s refused", user)
		}
	}
	records := func() int {
		keys, err := a.state.list(ctx, failuresDir())
		if err != nil {
			t.Fatal(err)
		}
		return len(keys)
	}
	attempt(a, "demo", true)
	if n := records(); n != 0 {
		t.Fatalf("a valid login wrote %d records", n)
	}
	attempt(a, "ops", false)
	if n := records(); n != 2 { // the account and its address
		t.Fatalf("a failure wrote %d records, want 2", n)
	}
	attempt(a, "ops", true)
	if f, found, err := b.state.loadFailures(ctx, "user:ops"); err != nil || found {
		t.Fatalf("after a valid login the account's record says %+v (%v)", f, err)
	}
	for range 4 {
		attempt(b, "ops", false)
	}
	// a's own count was cleared: it takes b's four
	attempt(a, "ops", false)
	if f, _, _ := a.state.loadFailures(ctx, "user:ops"); f.Failures != 5 || !f.Until.After(now) {
		t.Fatalf("after 5 failures the record says %+v", f)
	}

	if n, err := a.pruneFailures(ctx, now.Add(time.Minute)); err != nil || n != 0 {
		t.Fatalf("pruned %d (%v) of the records still counted", n, err)
	}
	if err := st.Store(ctx, recordKey(t, st, "user:junk"), []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	if n, err := a.pruneFailures(ctx, now.Add(time.Minute)); err != nil || n != 1 {
		t.Fatalf("pruned %d (%v), want the record that does not decode", n, err)
	}
	// the account's and the six addresses' (each failure came from another)
	if n, err := a.pruneFailures(ctx, now.Add(3*time.Minute)); err != nil || n != 7 || records() != 0 {
		t.Fatalf("pruned %d (%v), %d left; want every stale record gone (7)", n, err, records())
	}
}

// brokenStorage fails the writes (and, if reads, the reads) of failure
// records, as a full, read-only or unreachable storage does.
type brokenStorage struct {
	certmagic.Storage
	reads bool
}

var errBrokenStorage = errors.New("storage is broken")

func (s brokenStorage) Store(ctx context.Context, key string, value []byte) error {
	if strings.HasPrefix(key, failuresDir()) {
		return errBrokenStorage
	}
	return s.Storage.Store(ctx, key, value)
}

func (s brokenStorage) Load(ctx context.Context, key string) ([]byte, error) {
	if s.reads && strings.HasPrefix(key, failuresDir()) {
		return nil, errBrokenStorage
	}
	return s.Storage.Load(ctx, key)
}

// When the storage cannot record failures the instance still limits
// guesses on its own: a record it never wrote is not one a valid login
// deleted.
func TestSharedFailuresBrokenStorage(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { return now }
	for _, c := range []struct {
		name string
		st   func(certmagic.Storage) certmagic.Storage
	}{
		{"storage works", func(st certmagic.Storage) certmagic.Storage { return st }},
		{"writes fail", func(st certmagic.Storage) certmagic.Storage { return brokenStorage{Storage: st} }},
		{"reads and writes fail", func(st certmagic.Storage) certmagic.Storage { return brokenStorage{Storage: st, reads: true} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			app := newLoginApp()
			app.state = newStateStore(c.st(localLocks{&certmagic.FileStorage{Path: t.TempDir()}}), 0)
			app.log = zap.NewNop()
			for i := range 5 {
				lg, ok := app.beginLogin(noWait, "ops", "203.0.113.7", clock)
				if !ok {
					t.Fatalf("failure %d refused", i+1)
				}
				if lockout, _ := app.loginFailed(noWait, lg, now); (lockout > 0) != (i == 4) {
					t.Fatalf("failure %d: lockout %v", i+1, lockout)
				}
			}
			if _, ok := app.beginLogin(noWait, "ops", "203.0.113.7", clock); ok {
				t.Fatal("a sixth attempt is let through after five failures")
			}
		})
	}
}

// reorderingStorage holds the write of a record counting one failure
// until another write of that record lands (or a while passes): two
// writes in flight at once land out of order.
type reorderingStorage struct {
	certmagic.Storage
	key    string
	landed chan struct{}
}

func (s *reorderingStorage) Store(ctx context.Context, key string, value []byte) error {
	if key != s.key {
		return s.Storage.Store(ctx, key, value)
	}
	if strings.Contains(string(value), `"failures":1,`) {
		select {
		case <-s.landed:
		case <-time.After(300 * time.Millisecond):
		}
		return s.Storage.Store(ctx, key, value)
	}
	err := s.Storage.Store(ctx, key, value)
	close(s.landed)
	return err
}

// Concurrent failures of a key on one instance write its record in the
// order they were counted: the record never goes back to a lower count
// (which a restarted instance, or one that never saw the key fail, would
// count from).
func TestSharedFailuresWriteOrder(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	base := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	st := &reorderingStorage{Storage: base, key: recordKey(t, base, "user:ops"), landed: make(chan struct{})}
	app := newLoginApp()
	app.state, app.log = newStateStore(st, 0), zap.NewNop()
	withKnownWriter(t, app)
	for range 2 {
		if ok, _ := app.limiter.begin(noWait, "user:ops", now); !ok {
			t.Fatal("refused")
		}
	}
	done := make(chan struct{})
	for range 2 {
		go func() {
			defer func() { done <- struct{}{} }()
			app.failShared(noWait, app.limiter, "user:ops", now)
		}()
	}
	<-done
	<-done
	if f, _, err := app.state.loadFailures(context.Background(), "user:ops"); err != nil || f.Failures != 2 {
		t.Fatalf("after 2 failures the record says %+v (%v)", f, err)
	}
}

// A failure that waits sharedFailuresTimeout behind another of its key
// still counts here (only its write is skipped).
func TestSharedFailuresWriteWaitBounded(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	app, _, _ := newSharedLoginApps(t)
	unlock, ok := app.limiter.lockRecord(context.Background(), "user:ops")
	if !ok {
		t.Fatal("lockRecord refused")
	}
	defer unlock()
	start := time.Now()
	app.failShared(noWait, app.limiter, "user:ops", now)
	if waited := time.Since(start); waited < sharedFailuresTimeout || waited > sharedFailuresTimeout+time.Second {
		t.Errorf("the failure waited %v for the record", waited)
	}
	if !app.limiter.hasFailures("user:ops") {
		t.Error("the failure was not counted")
	}
}

// The janitor deletes records that are stale or do not decode (or say
// nothing), not those the storage failed to read.
func TestSharedFailuresPruneReadErrors(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_000_000, 0)
	records := map[string]string{
		"user:fresh": `{"failures":5,"last":"1970-01-12T13:46:40Z"}`,
		"user:stale": `{"failures":5,"last":"1970-01-12T13:00:00Z"}`,
		"user:empty": `{}`,
		"user:junk":  `{not json`,
	}
	for _, c := range []struct {
		name      string
		readsFail bool
		kept      []string
	}{
		{"reads work", false, []string{"user:fresh"}},
		{"reads fail", true, []string{"user:fresh", "user:stale", "user:empty", "user:junk"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			base := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
			app := newLoginApp()
			app.state, app.log = newStateStore(brokenStorage{Storage: base, reads: c.readsFail}, 0), zap.NewNop()
			for k, v := range records {
				if err := base.Store(ctx, recordKey(t, base, k), []byte(v)); err != nil {
					t.Fatal(err)
				}
			}
			n, err := app.pruneFailures(ctx, now)
			if n != len(records)-len(c.kept) || (err != nil) != c.readsFail {
				t.Errorf("pruned %d (%v), want %d", n, err, len(records)-len(c.kept))
			}
			for k := range records {
				_, err := base.Load(ctx, recordKey(t, base, k))
				if kept := err == nil; kept != slices.Contains(c.kept, k) {
					t.Errorf("%s kept = %v", k, kept)
				}
			}
		})
	}
}

// What the README promises of an instance that has not seen a key fail:
// once the cluster locked it out, it lets through at most the attempts
// it allows at once (failures_allowed), and none after their failures.
func TestSharedFailuresFreshInstanceBound(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { return now }
	a, b, _ := newSharedLoginApps(t)
	for range 5 {
		lg, ok := a.beginLogin(noWait, "ops", "203.0.113.7", clock)
		if !ok {
			t.Fatal("refused before the lockout")
		}
		a.loginFailed(noWait, lg, now)
	}
	var begun []login
	for range 10 {
		if lg, ok := b.beginLogin(noWait, "ops", "198.51.100.7", clock); ok {
			begun = append(begun, lg)
		}
	}
	if len(begun) != 5 {
		t.Fatalf("b let %d attempts through at once, want failures_allowed (5)", len(begun))
	}
	for _, lg := range begun {
		b.loginFailed(noWait, lg, now)
	}
	if _, ok := b.beginLogin(noWait, "ops", "198.51.100.7", clock); ok {
		t.Fatal("b lets an attempt through after its failures")
	}
}

// Attempts refused by a lockout here read its record at most once per
// sharedRecheckInterval (a guesser hammering a locked-out account must not
// turn each request into a read of the cluster's storage), still often
// enough to notice an unlock; nor do they read the address's record.
func TestSharedFailuresRefusedReads(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	st := &opCountingStorage{Storage: localLocks{&certmagic.FileStorage{Path: t.TempDir()}}}
	app := newLoginApp()
	app.limiter = newLimiter(5, time.Minute, time.Hour)
	app.state, app.log = newStateStore(st, 0), zap.NewNop()
	withKnownWriter(t, app)
	attempt := func(at time.Duration) bool {
		now := t0.Add(at)
		lg, ok := app.beginLogin(noWait, "ops", "203.0.113.7", func() time.Time { return now })
		if ok {
			app.loginFailed(noWait, lg, now)
		}
		return ok
	}
	loads := func() int { return st.get("Load", failuresDir()) } // (knownrecords_test.go counts the known addresses')
	for range 5 {
		attempt(0)
	}
	before := loads()
	for i := range 100 { // 2.5 intervals of the minute's lockout
		if attempt(time.Duration(i) * sharedRecheckInterval / 40) {
			t.Fatalf("attempt %d let through", i)
		}
	}
	// the account's record at 1 and 2 intervals (the fifth failure's
	// attempt read it at 0)
	if got := loads() - before; got != 2 {
		t.Errorf("100 refused attempts read %d records, want 2", got)
	}
}

// gatedDeletes holds Deletes until released, telling when one waits.
type gatedDeletes struct {
	certmagic.Storage
	waiting, release chan struct{}
}

func (s *gatedDeletes) Delete(ctx context.Context, key string) error {
	s.waiting <- struct{}{}
	<-s.release
	return s.Storage.Delete(ctx, key)
}

// A failure at the same time as a valid login or an unlock that deletes
// the account's record does not count from the record being deleted: the
// valid login or unlock clears the failures before it, as on a single
// instance.
func TestSharedFailuresClearRace(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { return now }
	for _, c := range []struct {
		name  string
		clear func(app *App)
	}{
		{"valid login", func(app *App) {
			good, ok := app.beginLogin(noWait, "ops", "192.0.2.1", clock)
			if !ok {
				panic("refused")
			}
			app.loginSucceeded(noWait, good, now)
		}},
		{"unlock", func(app *App) {
			if _, err := app.unlockKey(context.Background(), app.limiter, "user:ops"); err != nil {
				panic(err)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := &gatedDeletes{Storage: localLocks{&certmagic.FileStorage{Path: t.TempDir()}}, waiting: make(chan struct{}), release: make(chan struct{})}
			app := newLoginApp()
			app.state, app.log = newStateStore(st, 0), zap.NewNop()
			withKnownWriter(t, app)
			for range 3 {
				lg, _ := app.beginLogin(noWait, "ops", "203.0.113.7", clock)
				app.loginFailed(noWait, lg, now)
			}
			bad, ok := app.beginLogin(noWait, "ops", "198.51.100.1", clock)
			if !ok {
				t.Fatal("refused")
			}
			done := make(chan struct{}, 2)
			go func() { c.clear(app); done <- struct{}{} }()
			select {
			case <-st.waiting: // the record is being deleted
			case <-time.After(time.Minute):
				close(st.release)
				t.Fatal("the clear never deleted the shared record")
			}
			go func() { app.loginFailed(noWait, bad, now); done <- struct{}{} }()
			time.Sleep(100 * time.Millisecond)
			close(st.release)
			<-done
			<-done
			if f, found, err := app.state.loadFailures(context.Background(), "user:ops"); err != nil || !found || f.Failures != 1 {
				t.Fatalf("the failure after the %s left the record %+v (found %v, %v), want 1 failure", c.name, f, found, err)
			}
		})
	}
}

// A key whose failures here are stale (and lockout over) reads nothing:
// a site's address that failed once does not read the storage at each
// of its devices' logins for ever.
func TestSharedFailuresStaleReadsNothing(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	st := &opCountingStorage{Storage: brokenStorage{Storage: localLocks{&certmagic.FileStorage{Path: t.TempDir()}}}}
	app := newLoginApp()
	app.state, app.log = newStateStore(st, 0), zap.NewNop()
	withKnownWriter(t, app)
	attempt := func(at time.Duration, user string, good bool) {
		now := t0.Add(at)
		lg, ok := app.beginLogin(noWait, user, "203.0.113.7", func() time.Time { return now })
		if !ok {
			t.Fatalf("refused at %v", at)
		}
		if good {
			app.loginSucceeded(noWait, lg, now)
		} else {
			app.loginFailed(noWait, lg, now)
		}
	}
	// failure records (a new address's first login records it as known:
	// knownrecords_test.go)
	loads := func() int { return st.get("Load", failuresDir()) }
	for i := range 20 { // the address is locked out; its records cannot be written (kept here)
		attempt(0, fmt.Sprint("user", i), false)
	}
	before := loads()
	for i := range 10 {
		attempt(3*time.Minute+time.Duration(i)*time.Second, "ops", true)
	}
	if got := loads() - before; got != 0 {
		t.Errorf("10 logins after the failures went stale read %d records", got)
	}
}

// gatedLoads holds one Load of a failure record, once armed, after
// reading it: the record as it was, answered late.
type gatedLoads struct {
	certmagic.Storage
	armed            atomic.Bool
	waiting, release chan struct{}
}

func (s *gatedLoads) Load(ctx context.Context, key string) ([]byte, error) {
	b, err := s.Storage.Load(ctx, key)
	if strings.HasPrefix(key, failuresDir()) && s.armed.CompareAndSwap(true, false) {
		s.waiting <- struct{}{}
		<-s.release
	}
	return b, err
}

// A record read before a valid login deleted it is not adopted after:
// the valid login's clearing stands.
func TestSharedFailuresAdoptAfterClear(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { return now }
	st := &gatedLoads{Storage: localLocks{&certmagic.FileStorage{Path: t.TempDir()}}, waiting: make(chan struct{}), release: make(chan struct{})}
	app := newLoginApp()
	app.state, app.log = newStateStore(st, 0), zap.NewNop()
	withKnownWriter(t, app)
	for range 3 {
		lg, _ := app.beginLogin(noWait, "ops", "203.0.113.7", clock)
		app.loginFailed(noWait, lg, now)
	}
	good, ok1 := app.beginLogin(noWait, "ops", "192.0.2.1", clock)
	held, ok2 := app.beginLogin(noWait, "ops", "192.0.2.2", clock) // in flight throughout
	if !ok1 || !ok2 {
		t.Fatal("refused")
	}
	st.armed.Store(true)
	other := make(chan login)
	go func() {
		lg, _ := app.beginLogin(noWait, "ops", "198.51.100.1", clock)
		other <- lg
	}()
	<-st.waiting // it read the record {3}
	app.loginSucceeded(noWait, good, now)
	close(st.release)
	lg := <-other
	for _, lg := range []login{lg, held} {
		app.limiter.cancel(lg.user)
		app.addrLimiter.cancel(lg.addr)
	}
	if app.limiter.hasFailures("user:ops") {
		t.Fatal("the record read before the valid login was adopted after it")
	}
}

// pathErrStorage fails the reads and writes of failure records as a file
// storage does: naming the file.
type pathErrStorage struct{ certmagic.Storage }

func (s pathErrStorage) Load(ctx context.Context, key string) ([]byte, error) {
	if strings.HasPrefix(key, failuresDir()) {
		return nil, &fs.PathError{Op: "open", Path: "/data/" + key, Err: errors.New("input/output error")}
	}
	return s.Storage.Load(ctx, key)
}

func (s pathErrStorage) Store(ctx context.Context, key string, value []byte) error {
	if strings.HasPrefix(key, failuresDir()) {
		return &fs.PathError{Op: "open", Path: "/data/" + key, Err: errors.New("read-only file system")}
	}
	return s.Storage.Store(ctx, key, value)
}

// The log does not carry a record's name: it is a plain hash of the
// username (which may be a mistyped password), that anyone reading the
// log could check guesses against.
func TestSharedFailuresLogNoRecordName(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_000_000, 0)
	base := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	core, logs := observer.New(zapcore.DebugLevel)
	app := newLoginApp()
	app.state, app.log = newStateStore(pathErrStorage{base}, 0), zap.New(core)
	const typed = "hunter2" // a password typed as a username
	for range 2 {
		lg, _ := app.beginLogin(noWait, typed, "203.0.113.7", func() time.Time { return now })
		app.loginFailed(noWait, lg, now)
	}
	if err := base.Store(ctx, recordKey(t, base, "user:"+typed), []byte(`{"failures":1,"last":"1970-01-12T13:46:40Z"}`)); err != nil {
		t.Fatal(err)
	}
	_, err := app.pruneFailures(ctx, now.Add(time.Hour))
	if err == nil {
		t.Fatal("pruning: no error")
	}
	app.log.Error("pruning failed-login records", zap.Error(err))
	hash := path.Base(recordKey(t, base, "user:"+typed))
	if logs.Len() == 0 {
		t.Fatal("nothing logged")
	}
	for _, e := range logs.All() {
		for k, v := range e.ContextMap() {
			if strings.Contains(fmt.Sprint(v), hash) {
				t.Errorf("%q logs %s=%v", e.Message, k, v)
			}
		}
	}
}

// recordKey is where a limiter key's failure record is in st (making the
// storage's salt if need be).
func recordKey(t *testing.T, st certmagic.Storage, limiterKey string) string {
	t.Helper()
	k, err := newStateStore(st, 0).failuresKey(context.Background(), limiterKey)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// The janitors prune by the wall clock bounded by the wall clock at start
// plus the monotonic time since: a step of the wall clock forward does not
// make them delete live state (here, the record of a lockout that another
// instance enforces, which it would take for an unlock).
func TestJanitorNowIgnoresForwardStep(t *testing.T) {
	start := time.Unix(1_000_000, 0)
	for _, c := range []struct {
		name    string
		wall    time.Duration // the wall clock, since start
		elapsed time.Duration // the monotonic time since start
		unbound bool          // no bound set (a test's clock alone)
		want    time.Duration
	}{
		{"no step", 10 * time.Minute, 10 * time.Minute, false, 10 * time.Minute},
		{"stepped forward an hour", time.Hour + 10*time.Minute, 10 * time.Minute, false, 10 * time.Minute},
		{"stepped back an hour", -50 * time.Minute, 10 * time.Minute, false, -50 * time.Minute},
		{"no bound", time.Hour + 10*time.Minute, 10 * time.Minute, true, time.Hour + 10*time.Minute},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := &App{clock: func() time.Time { return start.Add(c.wall) }}
			if !c.unbound {
				a.wallAtStart, a.sinceStart = start, func() time.Duration { return c.elapsed }
			}
			if got := a.janitorNow(); !got.Equal(start.Add(c.want)) {
				t.Errorf("janitorNow = start%+v, want start%+v", got.Sub(start), c.want)
			}
		})
	}

	ctx := context.Background()
	a, b, _ := newSharedLoginApps(t)
	for i := range 5 {
		if !tryLogin(a, "ops", "198.51.100.1", false, start.Add(time.Duration(i))) {
			t.Fatal("refused")
		}
	}
	if f, _, _ := a.state.loadFailures(ctx, "user:ops"); f.Failures != 5 || !f.Until.After(start) {
		t.Fatalf("after 5 failures the record says %+v", f)
	}
	// b's wall clock steps an hour forward 10 seconds after start
	b.clock = func() time.Time { return start.Add(time.Hour) }
	b.wallAtStart, b.sinceStart = start, func() time.Duration { return 10 * time.Second }
	if n, err := b.pruneFailures(ctx, b.janitorNow()); err != nil || n != 0 {
		t.Fatalf("a janitor after a step forward pruned %d (%v) live records", n, err)
	}
	// an hour later by the monotonic clock too, they are stale
	b.sinceStart = func() time.Duration { return time.Hour }
	if n, err := b.pruneFailures(ctx, b.janitorNow()); err != nil || n == 0 {
		t.Fatalf("pruned %d (%v), want the stale records", n, err)
	}
}
