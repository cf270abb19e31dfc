package caddyenroll

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// newLoginAppOn is an App of the login limiters on st, as
// newSharedLoginApps makes them: another instance, or one restarted. Its
// records of known addresses are written without waiting between rounds.
func newLoginAppOn(t *testing.T, st certmagic.Storage) *App {
	app := newLoginApp()
	app.state, app.log = newStateStore(st, 0), zap.NewNop()
	withKnownWriter(t, app)
	return app
}

// withKnownWriter gives app a writer of records of known addresses that
// does not wait between rounds, and waits for it when the test ends.
func withKnownWriter(t *testing.T, app *App) {
	app.bg, app.knownWrites = new(backgroundWork), new(knownWriter)
	t.Cleanup(app.waitKnownWrites)
}

// An address known to an account on one instance is known on the others
// and after a restart, once the account's lockout refuses it there: the
// device logs in while a guesser keeps the account locked out from
// elsewhere. Addresses not known to the account, or no longer, are still
// refused.
func TestKnownAddressesShared(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	const site, guesser, newSite = "192.0.2.10", "203.0.113.3", "192.0.2.99"
	type step struct {
		on         string // "a", "b" or "restart" (a new App on the storage, from then on)
		at         time.Duration
		user, addr string
		good       bool
		refused    bool
		known      bool // counted at a known address
	}
	fails := func(on string, at time.Duration, n int) []step {
		var out []step
		for range n {
			out = append(out, step{on: on, at: at, user: "ops", addr: guesser})
		}
		return out
	}
	cat := func(parts ...[]step) []step {
		var out []step
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	for _, c := range []struct {
		name  string
		steps []step
	}{
		{"another instance", cat(
			[]step{{on: "a", user: "ops", addr: site, good: true}},
			fails("b", 1, 5), // b locks ops out
			[]step{
				{on: "b", at: 2, user: "ops", addr: newSite, good: true, refused: true},
				{on: "b", at: 2, user: "ops", addr: site, good: true, known: true},
				{on: "b", at: 3, user: "ops", addr: site, good: true, known: true},
			})},
		{"a restart", cat(
			[]step{{on: "a", user: "ops", addr: site, good: true}},
			[]step{{on: "restart", at: 1, user: "demo", addr: newSite, good: true}},
			fails("a", 1, 5),
			[]step{
				{on: "a", at: 2, user: "ops", addr: site, good: true, known: true},
				{on: "a", at: 2, user: "ops", addr: newSite, good: true, refused: true},
			})},
		{"a lockout of the cluster's", cat(
			[]step{{on: "a", user: "ops", addr: site, good: true}},
			fails("a", 1, 4),
			fails("b", 1, 1), // the fifth of the cluster: b locks out
			[]step{{on: "b", at: 2, user: "ops", addr: site, good: true, known: true}})},
		{"an expired address", cat(
			[]step{{on: "a", user: "ops", addr: site, good: true}},
			fails("b", knownAddressesFor+1, 5),
			[]step{{on: "b", at: knownAddressesFor + 2, user: "ops", addr: site, good: true, refused: true}})},
		{"another account's address", cat(
			[]step{{on: "a", user: "other", addr: site, good: true}},
			fails("b", 1, 5),
			[]step{{on: "b", at: 2, user: "ops", addr: site, good: true, refused: true}})},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b, st := newSharedLoginApps(t)
			apps := map[string]*App{"a": a, "b": b}
			for i, s := range c.steps {
				if s.on == "restart" {
					apps["a"] = newLoginAppOn(t, st)
					s.on = "a"
				}
				app, now := apps[s.on], t0.Add(s.at)
				lg, ok := app.beginLogin(noWait, s.user, s.addr, func() time.Time { return now })
				if ok == s.refused {
					t.Fatalf("step %d (%+v): refused = %v", i, s, !ok)
				}
				if !ok {
					continue
				}
				if lg.known != s.known {
					t.Fatalf("step %d (%+v): counted at a known address: %v", i, s, lg.known)
				}
				if s.good {
					app.loginSucceeded(noWait, lg, now)
				} else {
					app.loginFailed(noWait, lg, now)
				}
				app.waitKnownWrites()
			}
			for _, app := range apps {
				assertNothingInFlight(t, app)
			}
		})
	}
}

// An account's record holds the knownPerAccount addresses of its most
// recent valid logins, on whichever instance, also when they log in at
// once (it is written under a lock).
func TestKnownRecordBounded(t *testing.T) {
	ctx := context.Background()
	t0 := time.Unix(1_000_000, 0)
	addr := func(i int) string { return fmt.Sprintf("198.51.100.%d", i) }
	hashes := func(t *testing.T, app *App) []string {
		t.Helper()
		rec, err := app.state.loadKnown(ctx, "ops")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range rec.Addresses {
			out = append(out, e.Address)
		}
		return out
	}
	want := func(from, to int) []string {
		var out []string
		for i := from; i < to; i++ {
			out = append(out, knownAddressHash("ops", addressKey(addr(i))))
		}
		return out
	}

	t.Run("least recently used dropped", func(t *testing.T) {
		a, b, _ := newSharedLoginApps(t)
		for i := range 20 {
			app := a
			if i%2 == 1 {
				app = b
			}
			if !tryLogin(app, "ops", addr(i), true, t0.Add(time.Duration(i)*time.Minute)) {
				t.Fatalf("login %d refused", i)
			}
		}
		if got, w := hashes(t, a), want(4, 20); fmt.Sprint(got) != fmt.Sprint(w) {
			t.Fatalf("record holds %d addresses %v, want the last 16 %v", len(got), got, w)
		}
		rec, _ := a.state.loadKnown(ctx, "ops")
		for _, e := range rec.Addresses {
			if strings.Contains(e.Address, "198.51.100") || strings.Contains(e.Failures, "198.51.100") {
				t.Errorf("the record holds an address in clear: %+v", e)
			}
		}
	})

	t.Run("at once", func(t *testing.T) {
		a, b, _ := newSharedLoginApps(t)
		var wg sync.WaitGroup
		for i := range knownPerAccount {
			app := a
			if i%2 == 1 {
				app = b
			}
			wg.Go(func() {
				if !tryLogin(app, "ops", addr(i), true, t0) {
					t.Errorf("login %d refused", i)
				}
			})
		}
		wg.Wait()
		// every write that succeeded is in the record (a write that timed
		// out behind the others, on a loaded machine, is tried again later)
		got := hashes(t, a)
		written := 0
		for _, app := range []*App{a, b} {
			app.known.mu.Lock()
			for _, e := range app.known.m["ops"] {
				if !e.recorded.Equal(t0) {
					continue
				}
				written++
				if !slices.Contains(got, knownAddressHash("ops", e.key)) {
					t.Errorf("%s was written and is not in the record", e.key)
				}
			}
			app.known.mu.Unlock()
		}
		if written < 2 {
			t.Fatalf("only %d of %d writes at once succeeded", written, knownPerAccount)
		}
	})
}

// opCountingStorage counts the storage operations on the records of
// failures and known addresses.
type opCountingStorage struct {
	certmagic.Storage
	mu  sync.Mutex
	ops map[string]int // by operation and directory: "Load enroll/known"
}

func (s *opCountingStorage) count(op, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ops == nil {
		s.ops = make(map[string]int)
	}
	s.ops[op+" "+path.Dir(key)]++
}

func (s *opCountingStorage) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.ops {
		n += v
	}
	return n
}

func (s *opCountingStorage) get(op, dir string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ops[op+" "+dir]
}

func (s *opCountingStorage) Load(ctx context.Context, key string) ([]byte, error) {
	s.count("Load", key)
	return s.Storage.Load(ctx, key)
}

func (s *opCountingStorage) Store(ctx context.Context, key string, value []byte) error {
	s.count("Store", key)
	return s.Storage.Store(ctx, key, value)
}

func (s *opCountingStorage) Delete(ctx context.Context, key string) error {
	s.count("Delete", key)
	return s.Storage.Delete(ctx, key)
}

func (s *opCountingStorage) Exists(ctx context.Context, key string) bool {
	s.count("Exists", key)
	return s.Storage.Exists(ctx, key)
}

func (s *opCountingStorage) List(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	s.count("List", prefix)
	return s.Storage.List(ctx, prefix, recursive)
}

func (s *opCountingStorage) Lock(ctx context.Context, name string) error {
	s.count("Lock", name)
	return s.Storage.Lock(ctx, name)
}

// The devices' logins at an address already known to their account cost
// no storage access, locked out or not, until the address is recorded
// again after knownRecordRefresh; a guesser refused by the lockout reads
// the account's record at most once per sharedRecheckInterval.
func TestKnownRecordStorageWork(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	const site, guesser = "192.0.2.10", "203.0.113.3"
	st := &opCountingStorage{Storage: localLocks{&certmagic.FileStorage{Path: t.TempDir()}}}
	app := newLoginAppOn(t, st)
	app.limiter = newLimiter(5, time.Hour, 48*time.Hour) // locked out throughout
	if !tryLogin(app, "ops", site, true, t0) {
		t.Fatal("refused")
	}
	if st.get("Store", knownDir()) != 1 {
		t.Fatalf("a new address's login stored %d records of known addresses, want 1", st.get("Store", knownDir()))
	}
	for range 5 {
		tryLogin(app, "ops", guesser, false, t0)
	}
	before := st.total()
	for i := range 24 { // a day of hourly logins, and concurrent ones
		at := t0.Add(time.Duration(i) * time.Hour)
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				if !tryLogin(app, "ops", site, true, at) {
					t.Errorf("refused at %v", at.Sub(t0))
				}
			})
		}
		wg.Wait()
	}
	if n := st.total() - before; n != 0 {
		t.Fatalf("logins at a known address within a day cost %d storage operations: %v", n, st.ops)
	}
	if !tryLogin(app, "ops", site, true, t0.Add(knownRecordRefresh+time.Hour)) {
		t.Fatal("refused after a day")
	}
	if n := st.get("Store", knownDir()); n != 2 {
		t.Fatalf("a login a day later stored the record %d times in all, want 2", n)
	}
	rec, err := app.state.loadKnown(context.Background(), "ops")
	if err != nil || len(rec.Addresses) != 1 || !rec.Addresses[0].Last.Equal(t0.Add(knownRecordRefresh+time.Hour)) {
		t.Fatalf("after the refresh the record is %+v (%v)", rec, err)
	}

	t1 := t0.Add(knownRecordRefresh + 2*time.Hour)
	tryLogin(app, "ops", guesser, false, t1) // locked out again
	before = st.get("Load", knownDir())
	for i := range 100 { // 2.5 intervals
		if tryLogin(app, "ops", guesser, true, t1.Add(time.Duration(i)*sharedRecheckInterval/40)) {
			t.Fatalf("guess %d let through", i)
		}
	}
	if n := st.get("Load", knownDir()) - before; n != 3 {
		t.Errorf("100 refused guesses read the record of known addresses %d times, want 3", n)
	}
}

// The janitor deletes the records whose addresses all expired, and those
// that do not decode; the others stay.
func TestKnownRecordsPruned(t *testing.T) {
	ctx := context.Background()
	t0 := time.Unix(1_000_000, 0)
	a, _, st := newSharedLoginApps(t)
	tryLogin(a, "ops", "192.0.2.1", true, t0)
	tryLogin(a, "other", "192.0.2.1", true, t0)
	tryLogin(a, "other", "192.0.2.2", true, t0.Add(20*24*time.Hour))
	junk := path.Join(knownDir(), "ujunk")
	if err := st.Store(ctx, junk, []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	records := func() int {
		keys, err := a.state.list(ctx, knownDir())
		if err != nil {
			t.Fatal(err)
		}
		return len(keys)
	}
	for _, c := range []struct {
		at            time.Duration
		removed, left int
	}{
		{0, 1, 2}, // the junk
		{knownAddressesFor, 0, 2},
		{knownAddressesFor + time.Second, 1, 1}, // ops's
		{knownAddressesFor + 20*24*time.Hour, 0, 1},
		{knownAddressesFor + 21*24*time.Hour, 1, 0}, // other's last
	} {
		if n, err := a.pruneKnown(ctx, t0.Add(c.at)); err != nil || n != c.removed || records() != c.left {
			t.Fatalf("at %v: pruned %d (%v), %d left; want %d, %d left", c.at, n, err, records(), c.removed, c.left)
		}
	}
}

// blockingKnownLocks makes the storage locks of records of known
// addresses wait until release is closed.
type blockingKnownLocks struct {
	certmagic.Storage
	release chan struct{}
}

func (s blockingKnownLocks) Lock(ctx context.Context, name string) error {
	if strings.HasPrefix(name, "clearinghouse_enroll_known_") {
		select {
		case <-s.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.Storage.Lock(ctx, name)
}

// A valid login does not wait for the storage to record its address (a
// fleet behind many addresses would take the account's lock in turn):
// the record is written in the background, the logins of an account
// meanwhile go into one write per knownWriteEvery, and addresses an app
// stops before writing are written again by a later login.
func TestKnownRecordWrittenInBackground(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	addr := func(i int) string { return fmt.Sprintf("198.51.100.%d", i) }
	release := make(chan struct{})
	st := &opCountingStorage{Storage: blockingKnownLocks{localLocks{&certmagic.FileStorage{Path: t.TempDir()}}, release}}
	app := newLoginAppOn(t, st)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	app.bgCtx = ctx
	app.knownWrites.every = time.Hour
	const logins = 6
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range logins {
			lg, ok := app.beginLogin(noWait, "ops", addr(i), func() time.Time { return t0 })
			if !ok {
				t.Errorf("login %d refused", i)
				return
			}
			app.loginSucceeded(noWait, lg, t0)
		}
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		close(release)
		t.Fatal("the logins waited for the storage")
	}
	close(release)
	for deadline := time.Now().Add(time.Minute); st.get("Store", knownDir()) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the record was never written")
		}
	}
	cancel() // the next round, an hour later, never comes
	app.waitKnownWrites()
	if n := st.get("Store", knownDir()); n != 1 {
		t.Fatalf("%d logins from new addresses wrote the record %d times within knownWriteEvery, want 1", logins, n)
	}
	rec, err := app.state.loadKnown(context.Background(), "ops")
	if err != nil || len(rec.Addresses) == 0 {
		t.Fatalf("record %+v (%v)", rec, err)
	}
	written := 0
	for i := range logins {
		h := knownAddressHash("ops", addressKey(addr(i)))
		if slices.ContainsFunc(rec.Addresses, func(e knownRecordEntry) bool { return e.Address == h }) {
			written++
			continue
		}
		if !app.known.add("ops", addressKey(addr(i)), t0.Add(2*knownRecordRetry)) {
			t.Errorf("%s, not written before the app stopped, is not written by a later login", addr(i))
		}
	}
	if written == 0 {
		t.Error("no address written")
	}
}

// A valid login does not name the account's failure record at its
// address (a PBKDF2 per new address of a fleet); a failure there does, in
// the next write, so that an unlock by username reaches it.
func TestKnownRecordNamesFailuresOnlyAfterOne(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	const site = "192.0.2.10"
	a, _, _ := newSharedLoginApps(t)
	a.limiter = newLimiter(5, time.Hour, 48*time.Hour)
	load := func() knownRecordEntry {
		t.Helper()
		rec, err := a.state.loadKnown(context.Background(), "ops")
		if err != nil || len(rec.Addresses) != 1 {
			t.Fatalf("record %+v (%v)", rec, err)
		}
		return rec.Addresses[0]
	}
	if !tryLogin(a, "ops", site, true, t0) {
		t.Fatal("refused")
	}
	a.state.failureNames.mu.Lock()
	_, named := a.state.failureNames.names[knownKey("ops", addressKey(site))]
	a.state.failureNames.mu.Unlock()
	if named || load().Failures != "" {
		t.Fatal("a valid login named the account's failure record at its address")
	}
	tryLogin(a, "ops", site, false, t0.Add(time.Second))
	want, err := a.state.failuresKey(context.Background(), knownKey("ops", addressKey(site)))
	if err != nil {
		t.Fatal(err)
	}
	if got := load().Failures; got != path.Base(want) {
		t.Fatalf("after a failure at the known address the record names %q, want %q", got, path.Base(want))
	}
	if !tryLogin(a, "ops", site, true, t0.Add(2*time.Second)) || load().Failures != path.Base(want) {
		t.Fatal("a valid login after the failure dropped the name")
	}
}

// gatedKnownLoads holds one read of a record of known addresses, once
// armed, until release is closed.
type gatedKnownLoads struct {
	certmagic.Storage
	armed            atomic.Bool
	waiting, release chan struct{}
	panics           bool // then: panic once released (a storage module's bug)
}

func (s *gatedKnownLoads) Load(ctx context.Context, key string) ([]byte, error) {
	if strings.HasPrefix(key, knownDir()+"/") && s.armed.CompareAndSwap(true, false) {
		s.waiting <- struct{}{}
		<-s.release
		if s.panics {
			panic("storage module bug")
		}
	}
	return s.Storage.Load(ctx, key)
}

// Two instances on a storage whose next read of a record of known
// addresses, once armed, waits for release (and, when panics, panics):
// a device logged in to "ops" from site on a, and a guesser locked the
// account out on b for the time the tests take; at is the time to log in
// at on b next.
const knownSite, knownGuesser = "192.0.2.10", "203.0.113.3"

func lockedOutAccount(t *testing.T, panics bool) (st *gatedKnownLoads, a, b *App, at time.Time) {
	t.Helper()
	t0 := time.Unix(1_000_000, 0)
	st = &gatedKnownLoads{Storage: localLocks{&certmagic.FileStorage{Path: t.TempDir()}},
		waiting: make(chan struct{}), release: make(chan struct{}), panics: panics}
	a, b = newLoginAppOn(t, st), newLoginAppOn(t, st)
	b.limiter = newLimiter(5, time.Hour, 48*time.Hour) // locked out throughout
	if !tryLogin(a, "ops", knownSite, true, t0) {
		t.Fatal("the device refused on a")
	}
	for range 5 {
		tryLogin(b, "ops", knownGuesser, false, t0)
	}
	return st, a, b, t0.Add(time.Second)
}

// A device's login that the account's lockout refuses while another
// login (a guesser's) reads the account's record of known addresses
// waits for that read and finds its address there: a guesser hammering
// the account claims a read at each interval, which must not refuse the
// devices that come while it lasts.
func TestKnownRecordReadInProgress(t *testing.T) {
	st, _, b, at := lockedOutAccount(t, false)
	st.armed.Store(true)
	guessed := make(chan bool)
	go func() { guessed <- tryLogin(b, "ops", knownGuesser, false, at) }()
	<-st.waiting // the guess reads the record
	go func() {
		time.Sleep(100 * time.Millisecond) // the device's login comes meanwhile
		close(st.release)
	}()
	if !tryLogin(b, "ops", knownSite, true, at) {
		t.Error("the device was refused while a guess read the record of its account's known addresses")
	}
	if <-guessed {
		t.Error("the guess was let through")
	}
}

// An unlock by username deletes the failure records that the account's
// record of known addresses names, and nothing else: a name that is not
// one of a failure record (a record written by hand, or damaged) is
// skipped, not read or deleted elsewhere in the storage.
func TestKnownRecordUnlockNames(t *testing.T) {
	ctx := context.Background()
	t0 := time.Unix(1_000_000, 0)
	failures, err := newLoginAppOn(t, localLocks{&certmagic.FileStorage{Path: t.TempDir()}}).state.failuresKey(ctx, knownKey("ops", "ip:192.0.2.1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"..", ".", "u..", "x" + path.Base(failures)[1:], path.Base(failures) + "0", "U" + path.Base(failures)[1:]} {
		t.Run(name, func(t *testing.T) {
			st := &opCountingStorage{Storage: localLocks{&certmagic.FileStorage{Path: t.TempDir()}}}
			app := newLoginAppOn(t, st)
			key, err := app.state.knownRecordKey(ctx, "ops")
			if err != nil {
				t.Fatal(err)
			}
			rec := knownRecord{Addresses: []knownRecordEntry{{Address: knownAddressHash("ops", "ip:192.0.2.1"), Last: t0, Failures: name}}}
			if err := app.state.storeJSON(ctx, key, rec); err != nil {
				t.Fatal(err)
			}
			st.mu.Lock()
			st.ops = nil
			st.mu.Unlock()
			if _, err := app.unlockKnownFailures(ctx, "ops"); err != nil {
				t.Fatalf("unlock: %v", err)
			}
			st.mu.Lock()
			defer st.mu.Unlock()
			for op := range st.ops {
				if !strings.HasSuffix(op, " "+knownDir()) {
					t.Errorf("the unlock did %q for the name %q", op, name)
				}
			}
		})
	}
}

// failingKnownStores fails the writes of records of known addresses while
// failing is set.
type failingKnownStores struct {
	certmagic.Storage
	failing *atomic.Bool
}

func (s failingKnownStores) Store(ctx context.Context, key string, value []byte) error {
	if strings.HasPrefix(key, knownDir()+"/") && s.failing.Load() {
		return errBrokenStorage
	}
	return s.Storage.Store(ctx, key, value)
}

// A failure at a known address whose write did not name the account's
// failure record there (the storage failed, or the config was reloaded
// before the write) has the next failure there name it: else a device
// retrying a stale password, which never logs in to retry the write, is
// out of reach of an unlock by username on the other instances.
func TestKnownRecordFailureNamedAfterFailedWrite(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	const site = "192.0.2.10"
	for _, c := range []struct {
		name   string
		broken bool // the first write fails; else the app that fails first has stopped
	}{
		{"the write failed", true},
		{"reloaded before the write", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var failing atomic.Bool
			st := failingKnownStores{localLocks{&certmagic.FileStorage{Path: t.TempDir()}}, &failing}
			first := newLoginAppOn(t, st)
			next := first
			if !c.broken { // a reload: the same limiters and known addresses, its own writer
				next = newLoginAppOn(t, st)
				next.limiter, next.addrLimiter, next.known = first.limiter, first.addrLimiter, first.known
			}
			if !tryLogin(first, "ops", site, true, t0) {
				t.Fatal("refused")
			}
			if c.broken {
				failing.Store(true)
			} else {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				first.bgCtx = ctx // stopped
			}
			tryLogin(first, "ops", site, false, t0.Add(time.Second))
			failing.Store(false)
			tryLogin(next, "ops", site, false, t0.Add(2*time.Second))
			want, err := next.state.failuresKey(context.Background(), knownKey("ops", addressKey(site)))
			if err != nil {
				t.Fatal(err)
			}
			rec, err := next.state.loadKnown(context.Background(), "ops")
			if err != nil || len(rec.Addresses) != 1 {
				t.Fatalf("record %+v (%v)", rec, err)
			}
			if got := rec.Addresses[0].Failures; got != path.Base(want) {
				t.Fatalf("after a second failure at the known address the record names %q, want %q", got, path.Base(want))
			}
		})
	}
}

// The cache of records read for refused logins stays bounded under a
// flood of locked-out accounts, and a scan that makes room leaves a tenth
// of the bound free at least, so that a flood does not scan it at every
// refused login.
func TestKnownRecordsCacheFlood(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	k := newKnownAddresses()
	k.maxAccounts = 10
	read := func(name string, at time.Time) {
		r, claimed := k.storedRecord(name, at)
		if claimed {
			k.keepRecord(r, knownRecord{})
		}
	}
	read("stale", t0.Add(-time.Hour))
	for i := range 9 {
		read(fmt.Sprintf("u%d", i), t0)
	}
	read("u9", t0) // full: the stale one goes, the nine fresh are 90 %
	if n := len(k.records); n > 1 {
		t.Fatalf("after making room the cache holds %d records, want at most 1 (a tenth free)", n)
	}
	for i := range 1000 {
		read(fmt.Sprintf("v%d", i), t0)
		if n := len(k.records); n > k.maxAccounts {
			t.Fatalf("the cache holds %d records, bound %d", n, k.maxAccounts)
		}
	}
}
