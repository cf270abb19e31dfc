package caddyenroll

import (
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
