package caddyenroll

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"
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
	now := time.Unix(1_000_000, 0)
	attempt := func(a *App, user, addr string, good bool) bool { return tryLogin(a, user, addr, good, now) }

	// spraying: 5 guesses at each of 4 accounts, a valid login in between
	a := newLoginApp()
	for i := range 4 {
		for range 5 {
			if !attempt(a, fmt.Sprintf("victim%d", i), "203.0.113.9", false) {
				t.Fatalf("guess at victim%d refused before the address's allowance was spent", i)
			}
		}
		if i < 3 && !attempt(a, "demo", "203.0.113.9", true) {
			t.Fatal("valid login refused before the address's allowance was spent")
		}
	}
	if attempt(a, "victim9", "203.0.113.9", false) {
		t.Error("the address spent its allowance across accounts, valid logins between, and is not locked out")
	}

	// one device failing for an hour, once its lockout allows: the site's
	// other devices still log in
	a = newLoginApp()
	for range 60 {
		attempt(a, "stale", "198.51.100.7", false)
		now = now.Add(time.Minute)
		if !attempt(a, "demo", "198.51.100.7", true) {
			t.Fatal("one account failing on and on locked its address out")
		}
	}
}

// newLoginApp is an App with the login limiters and the known addresses
// only: 5 failures allowed, lockouts from 1s to 1m.
func newLoginApp() *App {
	return &App{limiter: newLimiter(5, time.Second, time.Minute), addrLimiter: newLimiter(4*5, time.Second, time.Minute),
		known: newKnownAddresses()}
}

// An account locked out by failures from elsewhere still logs in from the
// addresses (IPv6: /64s) it logged in from before, and not from others; a
// guesser at a known address is limited there as the account is, without
// locking out the account elsewhere; a valid login at a known address
// leaves the account's lockout to the guesser.
func TestKnownAddressLogins(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	type step struct {
		at          time.Duration // since t0
		user, addr  string
		good        bool
		refused     bool          // by a lockout
		lockout     time.Duration // the account's (or the account's at a known address) this attempt starts
		addrLockout time.Duration
	}
	const site, site6, home = "192.0.2.10", "2001:db8:1:2::10", "198.51.100.4"
	const guesser, guesser2, newSite = "203.0.113.3", "203.0.113.4", "192.0.2.99"
	for _, c := range []struct {
		name  string
		steps []step
	}{
		{"the reproduction: locked account, a known address logs in", []step{
			{at: 0, user: "ops", addr: site, good: true},
			{at: 0, user: "ops", addr: site6, good: true},
			{at: 1, user: "ops", addr: guesser},
			{at: 2, user: "ops", addr: guesser},
			{at: 3, user: "ops", addr: guesser},
			{at: 4, user: "ops", addr: guesser},
			{at: 5, user: "ops", addr: guesser, lockout: time.Second},
			{at: 6, user: "ops", addr: guesser, refused: true},
			{at: 7, user: "ops", addr: newSite, good: true, refused: true}, // unknown: still refused
			{at: 8, user: "ops", addr: site, good: true},
			{at: 9, user: "ops", addr: "2001:db8:1:2:ffff::1", good: true}, // the same /64
			{at: 10, user: "ops", addr: "2001:db8:1:3::1", good: true, refused: true},
			{at: 11, user: "other", addr: site, good: true, refused: false}, // known to ops, and other is not locked
			// the valid logins at known addresses did not clear the lockout
			{at: 12, user: "ops", addr: newSite, good: true, refused: true},
			{at: time.Second + 5, user: "ops", addr: guesser, lockout: 2 * time.Second},
			{at: time.Second + 6, user: "ops", addr: guesser2, refused: true},
			{at: 3*time.Second + 5, user: "ops", addr: newSite, good: true}, // the lockout is over: it clears
			{at: 3*time.Second + 6, user: "ops", addr: guesser},             // a fresh allowance
		}},
		{"a guesser at a known address is limited there", []step{
			{at: 0, user: "ops", addr: site, good: true},
			{at: 0, user: "ops", addr: home, good: true},
			{at: 1, user: "ops", addr: site},
			{at: 2, user: "ops", addr: site},
			{at: 3, user: "ops", addr: site},
			{at: 4, user: "ops", addr: site},
			{at: 5, user: "ops", addr: site, lockout: time.Second},
			{at: 6, user: "ops", addr: site, refused: true},
			{at: 7, user: "ops", addr: site, good: true, refused: true},
			{at: 8, user: "ops", addr: home, good: true},    // another known address is not locked
			{at: 9, user: "ops", addr: newSite, good: true}, // nor is the account
			{at: time.Second + 5, user: "ops", addr: site, lockout: 2 * time.Second},
			{at: time.Second + 6, user: "ops", addr: site, refused: true},
			{at: 3*time.Second + 5, user: "ops", addr: site, good: true}, // clears the account's failures there
			{at: 3*time.Second + 6, user: "ops", addr: site},
		}},
		{"failures at a known address count at the address too", []step{
			{at: 0, user: "ops", addr: site, good: true},
			{at: 0, user: "a", addr: site, good: true},
			{at: 0, user: "b", addr: site, good: true},
			{at: 0, user: "c", addr: site, good: true},
			{at: 1, user: "ops", addr: site}, {at: 1, user: "ops", addr: site}, {at: 1, user: "ops", addr: site},
			{at: 1, user: "ops", addr: site}, {at: 1, user: "ops", addr: site, lockout: time.Second},
			{at: 2, user: "a", addr: site}, {at: 2, user: "a", addr: site}, {at: 2, user: "a", addr: site},
			{at: 2, user: "a", addr: site}, {at: 2, user: "a", addr: site, lockout: time.Second},
			{at: 3, user: "b", addr: site}, {at: 3, user: "b", addr: site}, {at: 3, user: "b", addr: site},
			{at: 3, user: "b", addr: site}, {at: 3, user: "b", addr: site, lockout: time.Second},
			{at: 4, user: "c", addr: site}, {at: 4, user: "c", addr: site}, {at: 4, user: "c", addr: site},
			{at: 4, user: "c", addr: site}, {at: 4, user: "c", addr: site, lockout: time.Second, addrLockout: time.Second},
			{at: 5, user: "d", addr: site, good: true, refused: true},
		}},
		{"a known address expires", []step{
			{at: 0, user: "ops", addr: site, good: true},
			{at: 1, user: "ops", addr: guesser}, {at: 1, user: "ops", addr: guesser}, {at: 1, user: "ops", addr: guesser},
			{at: 1, user: "ops", addr: guesser}, {at: 1, user: "ops", addr: guesser, lockout: time.Second},
			{at: 2, user: "ops", addr: site, good: true}, // its last valid login: now
			{at: 2 + knownAddressesFor, user: "ops", addr: guesser},
			{at: 2 + knownAddressesFor, user: "ops", addr: guesser}, {at: 2 + knownAddressesFor, user: "ops", addr: guesser},
			{at: 2 + knownAddressesFor, user: "ops", addr: guesser}, {at: 2 + knownAddressesFor, user: "ops", addr: guesser, lockout: time.Second},
			{at: 2 + knownAddressesFor, user: "ops", addr: site, good: true}, // known for exactly knownFor
			{at: 3 + 2*knownAddressesFor, user: "ops", addr: guesser},
			{at: 3 + 2*knownAddressesFor, user: "ops", addr: guesser}, {at: 3 + 2*knownAddressesFor, user: "ops", addr: guesser},
			{at: 3 + 2*knownAddressesFor, user: "ops", addr: guesser}, {at: 3 + 2*knownAddressesFor, user: "ops", addr: guesser, lockout: time.Second},
			{at: 3 + 2*knownAddressesFor, user: "ops", addr: site, good: true, refused: true}, // a moment too late
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := newLoginApp()
			for i, s := range c.steps {
				now := t0.Add(s.at)
				lg, ok := a.beginLogin(noWait, s.user, s.addr, func() time.Time { return now })
				if ok == s.refused {
					t.Fatalf("step %d (%s from %s): begun %v, want %v", i, s.user, s.addr, ok, !s.refused)
				}
				if !ok {
					continue
				}
				var lockout, addrLockout time.Duration
				if s.good {
					a.loginSucceeded(noWait, lg, now)
				} else {
					lockout, addrLockout = a.loginFailed(noWait, lg, now)
				}
				if lockout != s.lockout || addrLockout != s.addrLockout {
					t.Fatalf("step %d (%s from %s): lockouts %v, %v; want %v, %v", i, s.user, s.addr, lockout, addrLockout, s.lockout, s.addrLockout)
				}
			}
			assertNothingInFlight(t, a)
		})
	}
}

// assertNothingInFlight fails if an attempt is still counted in flight.
func assertNothingInFlight(t *testing.T, a *App) {
	t.Helper()
	for _, l := range []*limiter{a.limiter, a.addrLimiter} {
		l.mu.Lock()
		for k, st := range l.m {
			if st.inflight != 0 || st.freed != nil {
				t.Errorf("%s: %d attempts in flight (waiters %v)", k, st.inflight, st.freed != nil)
			}
		}
		l.mu.Unlock()
	}
}

// The known addresses are bounded: the least recently used of an account's
// go first, then whole accounts, those whose addresses expired first, then
// those whose last valid login is the oldest.
func TestKnownAddressesBounded(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }
	k := newKnownAddresses()
	for i := range 20 {
		k.add("ops", fmt.Sprintf("ip:192.0.2.%d", i), at(i))
	}
	k.add("ops", "ip:192.0.2.4", at(20)) // used again: now the most recent
	k.add("ops", "ip:192.0.2.20", at(21))
	if n := len(k.m["ops"]); n != k.perAccount {
		t.Fatalf("%d addresses known to an account, bound %d", n, k.perAccount)
	}
	for i := range 21 {
		want := i == 4 || i >= 6 // 0-3 went first, then 5
		if got := k.has("ops", fmt.Sprintf("ip:192.0.2.%d", i), at(22)); got != want {
			t.Errorf("192.0.2.%d known: %v, want %v", i, got, want)
		}
	}

	k = newKnownAddresses()
	k.maxAccounts = 10
	k.add("expired", "ip:192.0.2.1", t0)
	late := t0.Add(knownAddressesFor + time.Hour)
	for i := range 9 {
		k.add(fmt.Sprintf("user%d", i), "ip:192.0.2.1", late.Add(time.Duration(i)*time.Second))
	}
	k.add("user9", "ip:192.0.2.1", late.Add(time.Minute))
	if _, ok := k.m["expired"]; ok || len(k.m) != 10 {
		t.Fatalf("a full table kept an expired account, or dropped a live one: %d accounts", len(k.m))
	}
	k.add("user10", "ip:192.0.2.1", late.Add(2*time.Minute)) // full of live ones: down to 90 % (9), then 10
	if len(k.m) != 10 {
		t.Fatalf("%d accounts, want 10", len(k.m))
	}
	for i := range 11 {
		want := i >= 1 // user0 logged in the longest ago
		if _, ok := k.m[fmt.Sprintf("user%d", i)]; ok != want {
			t.Errorf("user%d kept: %v, want %v", i, ok, want)
		}
	}
	k.add("user10", "ip:192.0.2.2", late.Add(3*time.Minute)) // an account already in: nothing evicted
	if len(k.m) != 10 {
		t.Fatalf("%d accounts after an address was added to a tracked one, want 10", len(k.m))
	}
}

// Logins from known and unknown addresses, failing and succeeding, at
// once: every attempt begun ends (run with -race).
func TestKnownAddressConcurrentLogins(t *testing.T) {
	a := newLoginApp()
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { return now }
	for _, addr := range []string{"192.0.2.1", "192.0.2.2"} {
		lg, _ := a.beginLogin(noWait, "ops", addr, clock)
		a.loginSucceeded(noWait, lg, now)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				addr := fmt.Sprintf("192.0.2.%d", 1+(g+i)%4) // two known, two not
				lg, ok := a.beginLogin(context.Background(), "ops", addr, clock)
				if !ok {
					continue
				}
				if (g+i)%3 == 0 {
					a.loginSucceeded(noWait, lg, now)
				} else {
					a.loginFailed(noWait, lg, now)
				}
			}
		})
	}
	wg.Wait()
	assertNothingInFlight(t, a)
}

// adopt takes another instance's count and lockout where they exceed the
// key's own, counting neither side's stale failures, and caps a lockout
// at the longest this limiter starts (the other clock may be ahead).
func TestLimiterAdopt(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	for _, c := range []struct {
		name         string
		own          int           // failures here at t0
		at           time.Duration // when the record is adopted, since t0
		shared       sharedFailure
		wantFailures int
		wantUntil    time.Time
	}{
		{"larger shared count", 2, time.Second, sharedFailure{Failures: 4, Last: t0.Add(time.Second)}, 4, time.Time{}},
		{"larger own count", 4, time.Second, sharedFailure{Failures: 2, Last: t0.Add(time.Second)}, 4, time.Time{}},
		{"stale shared count", 2, 3 * time.Minute, sharedFailure{Failures: 4, Last: t0}, 0, time.Time{}},
		{"stale own count", 9, 3 * time.Minute, sharedFailure{Failures: 1, Last: t0.Add(3 * time.Minute)}, 1, time.Time{}},
		{"shared lockout capped", 1, time.Second, sharedFailure{Failures: 6, Last: t0.Add(time.Second), Until: t0.Add(time.Hour)}, 6, t0.Add(time.Second + time.Minute)},
		// another clock a day ahead: its failures count now, not for a day
		{"shared last failure ahead", 1, time.Second, sharedFailure{Failures: 3, Last: t0.Add(24 * time.Hour)}, 3, time.Time{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := newLimiter(5, time.Second, time.Minute)
			for range c.own {
				l.fail("k", t0)
			}
			now := t0.Add(c.at)
			l.adopt("k", c.shared, now, l.m["k"].epoch)
			st := l.m["k"]
			failures := st.failures
			if l.stale(st.last, now) {
				failures = 0
			}
			until := st.until
			if !until.After(now) {
				until = time.Time{}
			}
			if failures != c.wantFailures || !until.Equal(c.wantUntil) {
				t.Fatalf("after adopt: %d failures (last %v), lockout until %v; want %d, %v", failures, st.last, until, c.wantFailures, c.wantUntil)
			}
			if st.last.After(now) {
				t.Fatalf("after adopt the last failure is %v, after now (%v): its count outlives twice the longest lockout", st.last, now)
			}
		})
	}
}

// Each lockout a failed login starts is counted once, by what it locks
// out: the account, the account at a known address, the address.
func TestLockoutsCounted(t *testing.T) {
	initMetrics()
	count := func(kind string) float64 { return promtest.ToFloat64(metrics.lockouts.WithLabelValues(kind)) }
	kinds := []string{"account", "account_at_known_address", "address"}
	before := map[string]float64{}
	for _, k := range kinds {
		before[k] = count(k)
	}
	a := newLoginApp()
	now := time.Unix(1_000_000, 0)
	attempt := func(user, addr string, good bool) {
		if !tryLogin(a, user, addr, good, now) {
			t.Fatalf("%s from %s refused", user, addr)
		}
		now = now.Add(2 * time.Minute) // past every lockout, within the failures' memory
	}
	a.limiter.max, a.addrLimiter.max = time.Minute, time.Minute
	attempt("ops", "192.0.2.1", true) // 192.0.2.1 is known to ops
	for range 5 {
		attempt("ops", "203.0.113.1", false) // the fifth locks ops out
	}
	for range 5 {
		attempt("ops", "192.0.2.1", false) // and at its known address
	}
	for i := range 20 { // 20 accounts' first failures: the address's allowance
		attempt(fmt.Sprintf("guess%d", i), "198.51.100.1", false)
	}
	for k, want := range map[string]float64{"account": 1, "account_at_known_address": 1, "address": 1} {
		if got := count(k) - before[k]; got != want {
			t.Errorf("%s lockouts counted: %v, want %v", k, got, want)
		}
	}
}

// tryLogin makes a login attempt of user from addr at now, with the right
// password (good) or not, and reports whether the limiters let it through.
func tryLogin(a *App, user, addr string, good bool, now time.Time) bool {
	lg, ok := a.beginLogin(noWait, user, addr, func() time.Time { return now })
	if !ok {
		return false
	}
	if good {
		a.loginSucceeded(noWait, lg, now)
	} else {
		a.loginFailed(noWait, lg, now)
	}
	a.waitKnownWrites()
	return true
}
