package caddyenroll

import (
	"context"
	"errors"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/caddyserver/certmagic"
)

// stepWall is t, which carries a monotonic reading (time.Now's), with its
// wall reading moved by d and its monotonic one kept: what time.Now
// returns after the wall clock was stepped by d. The time package has no
// way to make one, so it is written into time.Time's layout (wall: bit 63
// set when there is a monotonic reading, then 33 bits of seconds since
// 1885, then 30 of nanoseconds; ext: the monotonic reading); a layout that
// no longer matches skips the test.
func stepWall(t *testing.T, tm time.Time, d time.Duration) time.Time {
	t.Helper()
	if d%time.Second != 0 || !strings.Contains(tm.String(), " m=") {
		t.Fatalf("stepWall(%v, %v): a time with a monotonic reading and whole seconds", tm, d)
	}
	type layout struct {
		wall uint64
		ext  int64
		loc  *time.Location
	}
	stepped := tm
	p := (*layout)(unsafe.Pointer(&stepped))
	p.wall = uint64(int64(p.wall) + int64(d/time.Second)<<30)
	if !stepped.Round(0).Equal(tm.Round(0).Add(d)) || !stepped.Equal(tm) || stepped.Sub(tm) != 0 {
		t.Skipf("time.Time's layout changed: cannot simulate a step of the wall clock")
	}
	return stepped
}

// A lockout adopted from another instance's record is kept by the
// monotonic clock, as the lockouts started here are: a step of the wall
// clock after the adoption neither ends it early (forward) nor lengthens
// it (back), nor makes the failures it counts stale early.
func TestLimiterAdoptedLockoutClockStep(t *testing.T) {
	ctx := context.Background()
	for _, step := range []time.Duration{time.Hour, -time.Hour, 0} {
		t.Run(step.String(), func(t *testing.T) {
			l := newLimiter(5, time.Second, time.Minute)
			now := time.Now() // with a monotonic reading
			l.fail("k", now.Add(-5*time.Second))
			// another instance's sixth failure, a second ago, locked the key
			// out for 30s
			wall := now.Round(0)
			l.adopt("k", sharedFailure{Failures: 6, Last: wall.Add(-time.Second), Until: wall.Add(30 * time.Second)}, now, l.m["k"].epoch)
			if !strings.Contains(l.m["k"].until.String(), " m=") {
				t.Fatalf("the adopted lockout ends at %v, a wall-clock reading: a step of the clock moves its end", l.m["k"].until)
			}
			// 10s later by the monotonic clock, the wall clock stepped
			if ok, left := l.begin(ctx, "k", stepWall(t, now.Add(10*time.Second), step)); ok || left != 20*time.Second {
				t.Fatalf("10s after the adoption, stepped %v: begin = %v, %v left; want refused, 20s left", step, ok, left)
			}
			later := stepWall(t, now.Add(31*time.Second), step)
			if ok, _ := l.begin(ctx, "k", later); !ok {
				t.Fatalf("31s after the adoption, stepped %v: still refused, the lockout was 30s", step)
			}
			// its failures still count: the seventh starts a longer lockout
			if past, lockout := l.fail("k", later); !past || lockout != 4*time.Second {
				t.Fatalf("the failure after the lockout, stepped %v: past %v, lockout %v; want the seventh failure's 4s", step, past, lockout)
			}
		})
	}
}

// The lockout a failure record carries is told by the wall clock at the
// failure, as its last failure is: a lockout set before a step back of the
// wall clock and over since is not recorded as one still to come (the
// instance would adopt it back from its own record, the others whose
// clocks are behind too).
func TestLimiterRecordsLockoutByWallClockNow(t *testing.T) {
	l := newLimiter(5, time.Second, time.Minute)
	now := time.Now() // with a monotonic reading
	for range 5 {
		l.fail("k", now) // the fifth starts a lockout of 1s
	}
	// 3 minutes later, the failures stale, the wall clock stepped back an hour
	later := stepWall(t, now.Add(3*time.Minute), -time.Hour)
	_, lockout, after := l.failWith("k", later, sharedFailure{})
	if lockout != 0 || after.Failures != 1 || !after.Last.Equal(later) {
		t.Fatalf("failure after the stale ones: lockout %v, record %+v", lockout, after)
	}
	if want := later.Round(0).Add(-3*time.Minute + time.Second); !after.Until.Equal(want) {
		t.Fatalf("the record's lockout ends at %v, want %v (3 minutes ago less a second by the wall clock of its last failure)", after.Until, want)
	}
}

// steppedNonces is a nonce fixture with a clock from start (start plus
// elapsed), and another instance whose wall clock reads that clock: the
// two sides of a step of this instance's wall clock.
type steppedNonces struct {
	*nonceFixture
	t       *testing.T
	ctx     context.Context
	start   time.Time
	elapsed time.Duration // by the monotonic clock
	other   *stateStore   // its clock does not step
}

func newSteppedNonces(t *testing.T, retention time.Duration, start time.Time) *steppedNonces {
	t.Helper()
	f := &steppedNonces{nonceFixture: newNonceFixture(t, retention), t: t, ctx: nonceTestCtx(t), start: start}
	f.s.sinceStart = func() time.Time { return f.start.Add(f.elapsed) }
	f.other = newStateStore(f.s.st, retention)
	f.other.now = func() time.Time { return f.start.Add(f.elapsed) }
	return f
}

// at moves the clocks to elapsed since start, the wall clock stepped by
// step.
func (f *steppedNonces) at(elapsed, step time.Duration) {
	f.elapsed, f.clock = elapsed, f.start.Add(elapsed+step)
}

// bind binds nonce to binding in s (this instance's store or the
// other's), failing the test on an error: whether it was bound.
func (f *steppedNonces) bind(s *stateStore, nonce, binding string) bool {
	f.t.Helper()
	ok, err := s.bindNonce(f.ctx, []byte(nonce), binding)
	if err != nil {
		f.t.Fatal(err)
	}
	return ok
}

// Nonces are bucketed by the wall clock and by the wall clock at start plus
// the monotonic time since: after a step of the wall clock by more than a
// bucket, forward or back, a nonce bound before it and one bound after it
// are still refused to another binding, by this instance and by another
// whose clock did not step, after this instance's janitor and after the
// other's.
func TestNonceClockStep(t *testing.T) {
	const retention = time.Hour
	for _, c := range []struct {
		name  string
		start time.Duration // the wall clock at start, since nonceEpoch
		step  time.Duration
	}{
		{"forward 3h", 0, 3 * time.Hour},
		{"back 3h", 3 * time.Hour, -3 * time.Hour},
		{"no step", 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newSteppedNonces(t, retention, nonceEpoch.Add(c.start))
			ctx, other, bind := f.ctx, f.other, f.bind
			f.at(30*time.Minute, 0)
			if !bind(f.s, "before", "A") {
				t.Fatal("a new nonce refused before the step")
			}
			// and a nonce file of an earlier version, written then
			legacy := path.Join(noncesPrefix(), hashKey("nonce", "legacy"))
			if err := f.fs.Store(ctx, legacy, []byte("A")); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(f.fs.Filename(legacy), f.clock, f.clock); err != nil {
				t.Fatal(err)
			}
			f.at(40*time.Minute, c.step)
			if !bind(f.s, "after", "A") {
				t.Fatal("a new nonce refused after the step")
			}

			check := func(when string) {
				t.Helper()
				for _, nonce := range []string{"before", "after"} {
					if bind(f.s, nonce, "B") {
						t.Errorf("%s, the nonce bound %s the step was taken again", when, nonce)
					}
					if bind(other, nonce, "B") {
						t.Errorf("%s, the nonce bound %s the step was taken again by another instance", when, nonce)
					}
				}
			}
			f.at(45*time.Minute, c.step)
			check("after the step")
			if _, _, err := f.s.pruneNonces(ctx); err != nil {
				t.Fatal(err)
			}
			check("after the janitor")
			if !f.fs.Exists(ctx, legacy) {
				t.Error("the janitor deleted a nonce file 15 minutes old by the monotonic clock")
			}
			if _, _, err := other.pruneNonces(ctx); err != nil {
				t.Fatal(err)
			}
			check("after the other instance's janitor")
		})
	}
}

// A started app buckets nonces by both clocks, which agree at start (and
// then count as one).
func TestNonceClocksProvisioned(t *testing.T) {
	conf, dir := gw1Config(t)
	a := loadEnroll(t, filepath.Join(dir, "storage"), conf, ApprovalAuto)
	if a.state.sinceStart == nil {
		t.Fatal("a started app has no clock from start")
	}
	if d := time.Until(a.state.sinceStart()); d.Abs() > time.Second {
		t.Fatalf("the clock from start of a started app is %v off the wall clock", d)
	}
	if clocks := a.state.nonceClocks(); len(clocks) != 1 {
		t.Fatalf("nonce clocks of a started app: %v; want one, the two agreeing", clocks)
	}
}

// A failure of an attempt that began before a longer lockout was adopted
// (another instance's record, read while the attempt was checked) keeps
// that lockout: its own, shorter, doubling does not replace it.
func TestLimiterFailureKeepsLongerAdoptedLockout(t *testing.T) {
	ctx := context.Background()
	l := newLimiter(5, time.Second, time.Hour)
	now := time.Now()
	for i := range 5 {
		l.fail("k", now.Add(time.Duration(i-10)*time.Second))
	}
	if ok, _ := l.begin(ctx, "k", now); !ok {
		t.Fatal("the sixth attempt is refused before any lockout")
	}
	wall := now.Round(0)
	l.adopt("k", sharedFailure{Failures: 5, Last: wall.Add(-time.Second), Until: wall.Add(10 * time.Minute)}, now, l.m["k"].epoch)
	past, lockout := l.fail("k", now.Add(time.Second))
	if !past || lockout < 9*time.Minute {
		t.Fatalf("the in-flight attempt's failure: past %v, lockout %v; want the adopted lockout's 10 minutes kept", past, lockout)
	}
	if ok, _ := l.begin(ctx, "k", now.Add(time.Minute)); ok {
		t.Fatal("a minute later an attempt is allowed: the failure shortened the adopted 10-minute lockout to its own")
	}
}

// After a step of the wall clock forward by more than the buckets of
// another nonce_retention still in use, those buckets are still read by
// the clock from start, and kept by the janitor: the sizes of the record
// are judged by both clocks, as their buckets are read (they were judged
// by the wall clock alone: the other size was dropped, its nonces accepted
// again here and its buckets deleted by this instance's janitor).
func TestNonceClockStepOtherSize(t *testing.T) {
	f := newNonceFixture(t, time.Hour)
	ctx := nonceTestCtx(t)
	start := nonceEpoch.Add(30 * time.Minute)
	f.s.sinceStart = func() time.Time { return start }
	f.clock = start.Add(5 * time.Hour) // stepped forward
	// another instance, with a 2h retention and a clock that did not step
	other := newStateStore(f.s.st, 2*time.Hour)
	other.now = func() time.Time { return start }
	if ok, err := other.bindNonce(ctx, []byte("n"), "A"); err != nil || !ok {
		t.Fatalf("the other instance's bind = %v, %v", ok, err)
	}
	if ok, err := f.s.bindNonce(ctx, []byte("n"), "B"); err != nil || ok {
		t.Fatalf("the stepped instance binds the other's nonce again: %v, %v", ok, err)
	}
	if _, _, err := f.s.pruneNonces(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := other.bindNonce(ctx, []byte("n"), "B"); err != nil || ok {
		t.Fatalf("after the stepped instance's janitor, the other binds its nonce again: %v, %v", ok, err)
	}
	if ok, err := f.s.bindNonce(ctx, []byte("n"), "B"); err != nil || ok {
		t.Fatalf("after its janitor, the stepped instance binds the other's nonce again: %v, %v", ok, err)
	}
}

// failingNonceStores is a storage whose Store of the keys in fail fails
// once each, and that counts the Stores made.
type failingNonceStores struct {
	certmagic.Storage
	mu     sync.Mutex
	fail   map[string]bool
	stores int
}

func (s *failingNonceStores) Store(ctx context.Context, key string, value []byte) error {
	s.mu.Lock()
	failing := s.fail[key]
	delete(s.fail, key)
	s.stores++
	s.mu.Unlock()
	if failing {
		return errors.New("disk full")
	}
	return s.Storage.Store(ctx, key, value)
}

func (s *failingNonceStores) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stores
}

// A bind after a step of the wall clock whose write in the bucket of the
// clock from start failed (the one in the wall clock's bucket done) is
// completed when the request is repeated: the nonce is then bound where
// the other instances read it (the repeat found it in the wall clock's
// bucket and wrote nothing more: another instance accepted it for
// another binding). With the clocks agreeing, a repeat writes nothing.
func TestNonceClockStepPartialBind(t *testing.T) {
	ctx := nonceTestCtx(t)
	start := nonceEpoch.Add(30 * time.Minute)
	for _, c := range []struct {
		name   string
		step   time.Duration
		writes int // by the repeat
	}{
		{"stepped forward 3h", 3 * time.Hour, 1},
		{"stepped back 3h", -3 * time.Hour, 1},
		{"no step", 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := &failingNonceStores{Storage: localLocks{&certmagic.FileStorage{Path: t.TempDir()}}}
			s := newStateStore(st, time.Hour)
			s.now = func() time.Time { return start.Add(c.step) }
			s.sinceStart = func() time.Time { return start }
			if c.step != 0 {
				st.fail = map[string]bool{nonceKey(s.bucket(start), []byte("n")): true}
				if ok, err := s.bindNonce(ctx, []byte("n"), "A"); err == nil {
					t.Fatalf("the bind whose second write failed = %v, nil; want its error", ok)
				}
			} else if ok, err := s.bindNonce(ctx, []byte("n"), "A"); err != nil || !ok {
				t.Fatalf("first bind = %v, %v", ok, err)
			}
			before := st.count()
			if ok, err := s.bindNonce(ctx, []byte("n"), "A"); err != nil || !ok {
				t.Fatalf("the repeat = %v, %v; want bound", ok, err)
			}
			if n := st.count() - before; n != c.writes {
				t.Errorf("the repeat wrote %d times, want %d", n, c.writes)
			}
			// another instance, whose clock did not step
			other := newStateStore(st, time.Hour)
			other.now = func() time.Time { return start }
			if ok, err := other.bindNonce(ctx, []byte("n"), "B"); err != nil || ok {
				t.Fatalf("another instance binds the nonce to another binding: %v, %v", ok, err)
			}
		})
	}
}

// Nonce clocks a little apart (read one after the other, or after a small
// step of the wall clock, far under a bucket) count as one: a bind across
// a bucket boundary between them writes once and a lookup reads three
// buckets, as with one clock (it wrote in both buckets and read four:
// extra storage work with clocks that agree, which the reads of the next
// and previous bucket already cover).
func TestNonceClocksAgreeingCostNothing(t *testing.T) {
	ctx := nonceTestCtx(t)
	boundary := nonceEpoch.Add(time.Hour)
	for _, c := range []struct {
		name        string
		wall, start time.Time
		writes      int
		reads       int
	}{
		{"a second apart across a boundary", boundary, boundary.Add(-time.Second), 1, 3},
		{"agreeing", boundary, boundary, 1, 3},
		{"stepped 2h", boundary.Add(2 * time.Hour), boundary, 2, 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := &failingNonceStores{Storage: localLocks{&certmagic.FileStorage{Path: t.TempDir()}}}
			s := newStateStore(st, time.Hour)
			s.now = func() time.Time { return c.wall }
			s.sinceStart = func() time.Time { return c.start }
			if ok, err := s.bindNonce(ctx, []byte("first"), "A"); err != nil || !ok { // records the size
				t.Fatalf("first bind = %v, %v", ok, err)
			}
			before := st.count()
			if ok, err := s.bindNonce(ctx, []byte("n"), "A"); err != nil || !ok {
				t.Fatalf("bind = %v, %v", ok, err)
			}
			if n := st.count() - before; n != c.writes {
				t.Errorf("a bind wrote %d times, want %d", n, c.writes)
			}
			if n := len(s.readBuckets(s.nonceClocks()...)); n != c.reads {
				t.Errorf("a lookup reads %d buckets, want %d", n, c.reads)
			}
		})
	}
}

// An instance whose wall clock stepped records its bucket size with both
// nonce clocks' readings: an instance of another nonce_retention, whose
// clock did not step, reads (and its janitor keeps) the buckets the
// stepped one writes by its clock from start (the record said the wall
// clock's time alone, around which the other read: it found none of the
// stepped instance's nonces, and accepted them again).
func TestNonceClockStepRecordedSize(t *testing.T) {
	for _, step := range []time.Duration{5 * time.Hour, -5 * time.Hour} {
		t.Run(step.String(), func(t *testing.T) {
			f := newNonceFixture(t, 2*time.Hour)
			ctx := nonceTestCtx(t)
			start := nonceEpoch.Add(10 * time.Hour)
			f.s.sinceStart = func() time.Time { return start }
			f.clock = start.Add(step)
			// another instance, with a 1h retention and a clock that did not step
			other := newStateStore(f.s.st, time.Hour)
			other.now = func() time.Time { return start }
			if _, _, err := f.s.pruneNonces(ctx); err != nil { // records its size
				t.Fatal(err)
			}
			if ok, err := f.s.bindNonce(ctx, []byte("n"), "A"); err != nil || !ok {
				t.Fatalf("the stepped instance's bind = %v, %v", ok, err)
			}
			if ok, err := other.bindNonce(ctx, []byte("n"), "B"); err != nil || ok {
				t.Fatalf("the other instance binds the stepped one's nonce again: %v, %v", ok, err)
			}
			if _, _, err := other.pruneNonces(ctx); err != nil {
				t.Fatal(err)
			}
			if ok, err := other.bindNonce(ctx, []byte("n"), "B"); err != nil || ok {
				t.Fatalf("after its janitor, the other instance binds the stepped one's nonce again: %v, %v", ok, err)
			}
			if ok, err := f.s.bindNonce(ctx, []byte("n"), "B"); err != nil || ok {
				t.Fatalf("after the other's janitor, the stepped instance binds its nonce again: %v, %v", ok, err)
			}
		})
	}
}

// A lockout adopted from the record of an instance whose clock is far
// ahead lasts the limiter's longest lockout here at most: read again once
// it ended, the same record does not start it anew (each read took it
// again for up to the longest lockout, until the record's end came by this
// clock: a day later for a clock a day ahead). A record written since,
// with another lockout, is adopted.
func TestLimiterSkewedLockoutCapped(t *testing.T) {
	ctx := context.Background()
	l := newLimiter(5, time.Second, time.Minute)
	now := time.Now()
	l.fail("k", now.Add(-5*time.Second))
	wall := now.Round(0)
	ahead := sharedFailure{Failures: 6, Last: wall.Add(24 * time.Hour), Until: wall.Add(24*time.Hour + 30*time.Second)}
	l.adopt("k", ahead, now, l.m["k"].epoch)
	if ok, left := l.begin(ctx, "k", now.Add(time.Second)); ok || left != 59*time.Second {
		t.Fatalf("after the adoption: begin = %v, %v left; want refused, 59s left (the longest lockout)", ok, left)
	}
	later := now.Add(61 * time.Second)
	l.adopt("k", ahead, later, l.m["k"].epoch) // read again, the lockout over
	if ok, left := l.begin(ctx, "k", later); !ok {
		t.Fatalf("the same record read again after the longest lockout: refused, %v left", left)
	}
	l.cancel("k")
	again := sharedFailure{Failures: 7, Last: ahead.Last.Add(time.Minute), Until: ahead.Until.Add(time.Minute)}
	l.adopt("k", again, later, l.m["k"].epoch)
	if ok, _ := l.begin(ctx, "k", later.Add(time.Second)); ok {
		t.Fatal("a lockout recorded since is not adopted")
	}
}
