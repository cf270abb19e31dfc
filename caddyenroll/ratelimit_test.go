package caddyenroll

import (
	"testing"
	"time"
)

func TestLimiterGrowingLockouts(t *testing.T) {
	l := newLimiter(2, time.Second, 8*time.Second)
	t0 := time.Unix(1_000_000, 0)
	steps := []struct {
		at       time.Duration // since t0
		fail     bool          // record a failure after checking
		allowed  bool
		waitLeft time.Duration
	}{
		{0, true, true, 0},
		{1 * time.Millisecond, true, true, 0},                          // second failure starts a 1s lockout
		{500 * time.Millisecond, false, false, 501 * time.Millisecond}, // locked
		{1100 * time.Millisecond, true, true, 0},                       // third failure: 2s
		{2 * time.Second, false, false, 1100 * time.Millisecond},
		{3200 * time.Millisecond, true, true, 0},  // fourth: 4s
		{7300 * time.Millisecond, true, true, 0},  // fifth: 8s (max)
		{15400 * time.Millisecond, true, true, 0}, // sixth: still 8s
		{20 * time.Second, false, false, 3400 * time.Millisecond},
	}
	for i, s := range steps {
		now := t0.Add(s.at)
		ok, wait := l.allow("k", now)
		if ok != s.allowed || wait != s.waitLeft {
			t.Fatalf("step %d: allow = %v, %v; want %v, %v", i, ok, wait, s.allowed, s.waitLeft)
		}
		if s.fail {
			l.fail("k", now)
		}
	}
	l.succeed("k")
	if ok, _ := l.allow("k", t0.Add(20*time.Second)); !ok {
		t.Fatal("success did not clear the lockout")
	}
	if ok, _ := l.allow("other", t0); !ok {
		t.Fatal("keys are not independent")
	}
}

func TestLimiterBounded(t *testing.T) {
	l := newLimiter(1, time.Second, time.Minute)
	l.maxEntries = 100
	now := time.Unix(1_000_000, 0)
	for i := 0; i < 1000; i++ {
		l.fail(string(rune('a'+i%26))+string(rune(i)), now)
	}
	if len(l.m) > 100 {
		t.Fatalf("limiter holds %d entries, bound is 100", len(l.m))
	}
}
