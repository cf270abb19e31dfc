package caddyenroll

import (
	"context"
	"testing"
	"time"
)

// A stale record of another instance (its last failure older than twice
// the longest lockout) counts for nothing, even while this instance holds
// fresh failures of the key: else its count would be taken with this
// instance's fresh last failure, and a week-old flood of guesses would lock
// the account out at its next failure.
func TestLimiterStaleSharedCountIgnored(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	stale := sharedFailure{Failures: 10, Last: t0.Add(-3 * time.Minute)}
	for _, c := range []struct {
		name string
		run  func(l *limiter) (failures int, lockout time.Duration)
	}{
		{"failure with the record", func(l *limiter) (int, time.Duration) {
			if ok, _ := l.begin(noWait, "k", t0); !ok {
				t.Fatal("first attempt refused")
			}
			_, lockout, _ := l.failWith("k", t0, stale)
			return l.m["k"].failures, lockout
		}},
		{"record adopted after a fresh failure", func(l *limiter) (int, time.Duration) {
			l.fail("k", t0)
			l.adopt("k", stale, t0, l.m["k"].epoch)
			return l.m["k"].failures, l.m["k"].until.Sub(t0)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := newLimiter(5, time.Second, time.Minute)
			if failures, lockout := c.run(l); failures != 1 || lockout > 0 {
				t.Errorf("%d failures, lockout %v; want 1, none", failures, lockout)
			}
		})
	}
}

// The limiter keys of an account at its known addresses name one account
// at one address each: an address that is a prefix of another, followed
// by a username that starts with the rest, must not share the failures
// and lockouts of the account that other address knows.
func TestKnownKeyDistinct(t *testing.T) {
	for _, c := range []struct{ userA, addrA, userB, addrB string }{
		{"5ops", "ip:192.0.2.1", "ops", "ip:192.0.2.15"},
		{"ops", "ip:192.0.2.1", "ops", "ip:192.0.2.2"},
	} {
		if a, b := knownKey(c.userA, c.addrA), knownKey(c.userB, c.addrB); a == b {
			t.Errorf("%s at %s and %s at %s share the key %q", c.userA, c.addrA, c.userB, c.addrB, a)
		}
	}
}

// A storage record found missing clears the failures of a key only when
// this instance's record held them (a valid login or an unlock elsewhere
// deleted it): failures whose write failed, or came after the one written,
// are kept, else a storage refusing writes reset a guesser's count at
// every attempt.
func TestLimiterForgetRecorded(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	for _, c := range []struct {
		name string
		run  func(l *limiter)
		want int // failures left
	}{
		{"never written", func(l *limiter) { l.fail("k", t0) }, 1},
		{"written", func(l *limiter) {
			_, _, after := l.failWith("k", t0, sharedFailure{})
			l.markRecorded("k", after)
		}, 0},
		{"failed again since the write", func(l *limiter) {
			_, _, after := l.failWith("k", t0, sharedFailure{})
			l.fail("k", t0.Add(time.Second))
			l.markRecorded("k", after)
		}, 2},
		{"cleared and failed as often since the write", func(l *limiter) {
			_, _, after := l.failWith("k", t0, sharedFailure{})
			l.clear("k")
			l.fail("k", t0.Add(time.Second))
			l.markRecorded("k", after)
		}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := newLimiter(5, time.Second, time.Minute)
			c.run(l)
			l.forgetRecorded("k")
			got := 0
			if st, ok := l.m["k"]; ok {
				got = st.failures
			}
			if got != c.want {
				t.Errorf("%d failures left, want %d", got, c.want)
			}
		})
	}
}

// Failures gone stale do not narrow the attempts let in at once: a fleet
// sharing an account, which failed long ago, enrolls again as many at a
// time as a key that never failed.
func TestLimiterStaleFailuresFreeAttempts(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	for _, c := range []struct {
		name string
		at   time.Duration // since the failures
		want int           // attempts let in at once
	}{
		{"fresh failures", time.Minute, 1},
		{"stale failures", 3 * time.Minute, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := newLimiter(3, time.Second, time.Minute)
			for range 3 {
				l.fail("k", t0)
			}
			got := 0
			for range 5 {
				if ok, _ := l.begin(noWait, "k", t0.Add(c.at)); ok {
					got++
				}
			}
			if got != c.want {
				t.Errorf("%d attempts let in at once, want %d", got, c.want)
			}
		})
	}
}

// Lockouts double up to the longest, and stop there even when doubling
// steps over it (a longest lockout that is no power of two times the
// first one).
func TestLimiterLockoutCappedBetweenDoublings(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	l := newLimiter(1, time.Second, 5*time.Second)
	now := t0
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second} {
		if ok, left := l.begin(noWait, "k", now); !ok {
			t.Fatalf("failure %d: refused, %v left", i+1, left)
		}
		if _, lockout := l.fail("k", now); lockout != want {
			t.Errorf("failure %d: lockout %v, want %v", i+1, lockout, want)
		}
		now = now.Add(want)
	}
}

// An address counts an account's failures only until the account is past
// its free ones: a device retrying a stale password at each lockout's end
// must not lock out the other devices of its site.
func TestAddressStopsCountingPastAccountLockout(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	a := &App{limiter: newLimiter(2, time.Second, time.Minute), addrLimiter: newLimiter(8, time.Second, time.Minute), known: newKnownAddresses()}
	lg := login{username: "dev", user: "user:dev", addr: addressKey("192.0.2.7")}
	now := t0
	for range 6 {
		_, address := a.loginFailed(context.Background(), lg, now)
		if address > 0 {
			t.Fatalf("the address is locked out for %v", address)
		}
		now = now.Add(time.Minute) // past each lockout
	}
	if got := a.addrLimiter.m[lg.addr].failures; got != 2 {
		t.Errorf("the address counts %d failures, want the account's free 2", got)
	}
}

// A failure at a known address asks for the account's record to be
// written (to name its failure record there) once: at the first failure,
// and again only after a write failed; not at every guess, which would
// cost a storage write each.
func TestKnownNoteFailedOnce(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	k := newKnownAddresses()
	k.add("dev", "ip:192.0.2.7", t0)
	for i, s := range []struct {
		writeFailed bool // recordFailed before the failure
		want        bool
	}{{false, true}, {false, false}, {false, false}, {true, true}, {false, false}} {
		if s.writeFailed {
			k.recordFailed("dev", t0)
		}
		if got := k.noteFailed("dev", "ip:192.0.2.7"); got != s.want {
			t.Errorf("failure %d: write %v, want %v", i+1, got, s.want)
		}
	}
	if k.noteFailed("dev", "ip:198.51.100.1") {
		t.Error("a failure at an address not known asks for a write")
	}
}
