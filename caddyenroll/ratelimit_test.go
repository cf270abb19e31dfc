package caddyenroll

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// noWait is a done context: an attempt that would wait for one in flight
// is refused at once.
var noWait = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

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
		ok, wait := l.begin(noWait, "k", now)
		if ok != s.allowed || wait != s.waitLeft {
			t.Fatalf("step %d: begin = %v, %v; want %v, %v", i, ok, wait, s.allowed, s.waitLeft)
		}
		if s.fail {
			l.fail("k", now)
		}
	}
	l.succeed("k")
	if ok, _ := l.begin(noWait, "k", t0.Add(20*time.Second)); !ok {
		t.Fatal("success did not clear the lockout")
	}
	if ok, _ := l.begin(noWait, "other", t0); !ok {
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

// Attempts in flight count: no more run at once than failures are still
// allowed, one at a time past them (the others wait, here: are refused at
// once); a cancelled attempt gives its place back.
func TestLimiterConcurrentAttempts(t *testing.T) {
	l := newLimiter(3, time.Second, 8*time.Second)
	now := time.Unix(1_000_000, 0)
	begin := func(want bool, what string) {
		t.Helper()
		if ok, _ := l.begin(noWait, "k", now); ok != want {
			t.Fatalf("%s: begin = %v, want %v", what, ok, want)
		}
	}
	begin(true, "first")
	begin(true, "second")
	begin(true, "third")
	begin(false, "a fourth while three are in flight")
	l.cancel("k")
	begin(true, "after a cancel")
	l.fail("k", now) // 1 failure, 2 in flight: 2 allowed
	begin(false, "2 in flight, 2 allowed")
	l.fail("k", now) // 2 failures, 1 in flight: 1 allowed
	begin(false, "1 in flight, 1 allowed")
	l.fail("k", now) // 3 failures: locked out for 1s
	if ok, wait := l.begin(noWait, "k", now); ok || wait != time.Second {
		t.Fatalf("after the third failure: begin = %v, %v; want a 1s lockout", ok, wait)
	}
	now = now.Add(time.Second)
	begin(true, "after the lockout")
	begin(false, "a second one past the allowed failures")
	l.succeed("k")
	for i := range 3 {
		begin(true, fmt.Sprintf("after a success, attempt %d", i+1))
	}
}

// A full table never drops a lockout: a flood of other keys cannot free the
// account it protects.
func TestLimiterKeepsLockouts(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	for _, free := range []int{1, 5} { // the flood's keys locked out themselves, or not
		l := newLimiter(free, time.Minute, time.Hour)
		l.maxEntries = 100
		for range free {
			l.fail("user:victim", now)
		}
		for i := range 1000 {
			k := fmt.Sprintf("user:flood%d", i)
			if ok, _ := l.begin(noWait, k, now); ok {
				l.fail(k, now)
			}
		}
		if len(l.m) > 100 {
			t.Fatalf("free=%d: %d entries, bound 100", free, len(l.m))
		}
		if ok, _ := l.begin(noWait, "user:victim", now.Add(time.Second)); ok {
			t.Fatalf("free=%d: the flood freed the victim's lockout", free)
		}
	}
}

// An attempt beyond those allowed in flight waits for one to end, and then
// runs: devices sharing an account are not refused for arriving together.
func TestLimiterAttemptWaits(t *testing.T) {
	l := newLimiter(1, time.Second, 8*time.Second)
	now := time.Now()
	if ok, _ := l.begin(context.Background(), "k", now); !ok {
		t.Fatal("first attempt refused")
	}
	done := make(chan bool)
	go func() {
		ok, _ := l.begin(context.Background(), "k", now)
		done <- ok
	}()
	// until the second attempt waits (or, wrongly, returns)
	for waiting := false; !waiting; {
		select {
		case <-done:
			t.Fatal("the second attempt did not wait for the first")
		default:
		}
		l.mu.Lock()
		waiting = l.m["k"].freed != nil
		l.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	l.succeed("k")
	if !<-done {
		t.Fatal("the waiting attempt was refused after the first succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	if ok, _ := l.begin(ctx, "k", time.Now()); ok {
		t.Fatal("an attempt waiting while its client left was let through")
	}
}

func TestAddressKey(t *testing.T) {
	for _, c := range []struct{ ip, want string }{
		{"192.0.2.7", "ip:192.0.2.7"},
		{"::ffff:192.0.2.7", "ip:192.0.2.7"},
		{"2001:db8:1:2:3:4:5:6", "ip:2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff::1", "ip:2001:db8:1:2::/64"}, // the same /64: one key
		{"2001:db8:1:3::1", "ip:2001:db8:1:3::/64"},
		{"fe80::1%eth0", "ip:fe80::/64"},
		{"not an address", "ip:not an address"},
	} {
		if got := addressKey(c.ip); got != c.want {
			t.Errorf("addressKey(%q) = %q, want %q", c.ip, got, c.want)
		}
	}
}

// The address limit across accounts: guesses spread over accounts add up
// at their address, and a valid login from there does not wipe them; one
// account failing on and on (a device with a stale password) does not lock
// its site out.
func TestLoginLimits(t *testing.T) {
	newApp := func() *App {
		return &App{limiter: newLimiter(5, time.Second, time.Minute), addrLimiter: newLimiter(4*5, time.Second, time.Minute)}
	}
	now := time.Unix(1_000_000, 0)
	attempt := func(a *App, user, addr string, good bool) bool {
		if ok, _ := a.limiter.begin(noWait, user, now); !ok {
			return false
		}
		if ok, _ := a.addrLimiter.begin(noWait, addr, now); !ok {
			a.limiter.cancel(user)
			return false
		}
		if good {
			a.loginSucceeded(user, addr)
		} else {
			a.loginFailed(user, addr, now)
		}
		return true
	}

	// spraying: 5 guesses at each of 4 accounts, a valid login in between
	a := newApp()
	for i := range 4 {
		for range 5 {
			if !attempt(a, fmt.Sprintf("user:victim%d", i), "ip:203.0.113.9", false) {
				t.Fatalf("guess at victim%d refused before the address's allowance was spent", i)
			}
		}
		if i < 3 && !attempt(a, "user:demo", "ip:203.0.113.9", true) {
			t.Fatal("valid login refused before the address's allowance was spent")
		}
	}
	if attempt(a, "user:victim9", "ip:203.0.113.9", false) {
		t.Error("the address spent its allowance across accounts, valid logins between, and is not locked out")
	}

	// one device failing for an hour, once its lockout allows: the site's
	// other devices still log in
	a = newApp()
	for range 60 {
		attempt(a, "user:stale", "ip:198.51.100.7", false)
		now = now.Add(time.Minute)
		if !attempt(a, "user:demo", "ip:198.51.100.7", true) {
			t.Fatal("one account failing on and on locked its address out")
		}
	}
}
