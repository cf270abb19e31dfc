package caddyenroll

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"

	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// hashWork's slots: taken at once while one is free; else a login waits
// for one (at most maxWait, while its context lasts) if fewer than
// maxWaiting wait, and is refused otherwise.
func TestHashWorkBounds(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		name       string
		maxWaiting int
		maxWait    time.Duration
		ctx        context.Context
		freeAfter  time.Duration // the slot held is given back after this (0: never)
		ok         bool
	}{
		{"no waiters allowed", 0, time.Minute, context.Background(), 0, false},
		{"slot freed while waiting", 1, time.Minute, context.Background(), 20 * time.Millisecond, true},
		{"wait expires", 1, 30 * time.Millisecond, context.Background(), 0, false},
		{"client gone", 1, time.Minute, canceled, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHashWork(1, c.maxWaiting, c.maxWait)
			held, ok := h.acquire(context.Background())
			if !ok {
				t.Fatal("the free slot was refused")
			}
			if c.freeAfter > 0 {
				time.AfterFunc(c.freeAfter, held)
			}
			release, ok := h.acquire(c.ctx)
			if ok != c.ok {
				t.Fatalf("acquire with the slot taken: ok %v, want %v", ok, c.ok)
			}
			if ok {
				release()
			} else if c.freeAfter == 0 {
				held()
			}
			if h.waiting != 0 {
				t.Errorf("%d waiters left", h.waiting)
			}
			if r, ok := h.acquire(context.Background()); !ok {
				t.Error("the slot was not given back")
			} else {
				r()
			}
		})
	}
}

// With one slot taken by a login whose bcrypt check is in progress, a
// login of another username that is not in the cache is refused as rate
// limited (at once, or after its bounded wait), while a valid login
// checked before (in the cache) goes through without a slot.
func TestLoginHashBound(t *testing.T) {
	for _, c := range []struct {
		name       string
		maxWaiting int
		maxWait    time.Duration
	}{
		{"queue full", 0, time.Minute},
		{"wait expires", 1, 30 * time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			demo, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
			slow, _ := bcrypt.GenerateFromPassword([]byte("slowpw"), bcrypt.MinCost)
			accts, err := newAccounts([]Account{{Username: "demo", Password: string(demo)}, {Username: "slow", Password: string(slow)}})
			if err != nil {
				t.Fatal(err)
			}
			a := newLoginApp()
			a.accounts, a.log = accts, zap.NewNop()
			a.hashes = newHashWork(1, c.maxWaiting, c.maxWait)
			login := func(user, pass, from string) (*Account, *outcome) {
				return a.login(context.Background(), enrollInput{op: wire.OpRequest, clientIP: from,
					req: &wire.Request{Operation: wire.OpRequest, Username: user, Password: pass}})
			}
			if _, o := login("demo", "pw", "192.0.2.1"); o != nil {
				t.Fatalf("demo's first login refused: %+v", o.resp)
			}

			orig := compareHash
			defer func() { compareHash = orig }()
			started, unblock := make(chan struct{}), make(chan struct{})
			compareHash = func(hash, password []byte) error {
				if string(password) == "slowpw" {
					close(started)
					<-unblock
				}
				return orig(hash, password)
			}
			done := make(chan *outcome)
			go func() {
				_, o := login("slow", "slowpw", "192.0.2.2")
				done <- o
			}()
			<-started

			_, o := login("guess", "whatever", "198.51.100.3")
			if o == nil || o.resp.Status != wire.StatusRateLimited {
				t.Errorf("a login needing a hash while the only slot is taken: %+v, want status %d", o, wire.StatusRateLimited)
			}
			if acct, o := login("demo", "pw", "192.0.2.1"); o != nil || acct == nil || acct.Username != "demo" {
				t.Errorf("a cached valid login waited on the hash slot: %+v", o)
			}
			close(unblock)
			if o := <-done; o != nil {
				t.Errorf("the login holding the slot: %+v, want success", o.resp)
			}
			// the refused attempt was given back, and the slot is free again
			if _, o := login("guess", "whatever", "198.51.100.3"); o == nil || o.resp.Status != wire.StatusBadCredentials {
				t.Errorf("the refused login again, slot free: %+v, want status %d", o, wire.StatusBadCredentials)
			}
		})
	}
}

// The name of a failure record that is no longer cached (a flood of
// usernames empties the cache) is derived at the next attempt's read of
// the record under a slot too: with none free the read waits for a later
// attempt instead of hashing.
func TestSharedReadNameUnderHashBound(t *testing.T) {
	st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	a := newLoginAppOn(t, st)
	a.hashes = newHashWork(1, 0, time.Minute)
	now := time.Now()
	tryLogin(a, "ops", "203.0.113.5", false, now)
	for _, free := range []bool{false, true} {
		a.state.failureNames.mu.Lock()
		a.state.failureNames.names = nil // emptied, as when full
		a.state.failureNames.mu.Unlock()
		held, _ := a.hashes.acquire(context.Background())
		if free {
			held()
		}
		a.adoptSharedLockout(context.Background(), a.limiter, "user:ops", now)
		if !free {
			held()
		}
		if got := a.state.nameCached("user:ops"); got != free {
			t.Errorf("slot free %v: the record's name derived %v", free, got)
		}
	}
}

// A login whose account's failure record must be read (this instance saw
// it fail: another may have locked it out since) but whose name, dropped
// from the cache, finds no hash slot to be derived is refused as shed,
// with nothing reserved: it used to go on to the password check without
// the lockout another instance recorded, which a slot freed meanwhile
// let it make.
func TestSharedLockoutUnreadIsShed(t *testing.T) {
	st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	a, b := newLoginAppOn(t, st), newLoginAppOn(t, st)
	for _, app := range []*App{a, b} {
		app.limiter = newLimiter(5, time.Hour, 2*time.Hour)
	}
	a.hashes = newHashWork(1, 0, time.Minute)
	now := time.Now()
	tryLogin(a, "ops", "203.0.113.5", false, now) // a has seen it fail
	for i := range 4 {                            // b locks it out: 5 failures in all
		tryLogin(b, "ops", fmt.Sprintf("198.51.100.%d", i+1), false, now)
	}
	if tryLogin(b, "ops", "198.51.100.9", true, now) {
		t.Fatal("b: the account is not locked out")
	}

	a.state.failureNames.mu.Lock()
	a.state.failureNames.names = nil // emptied, as when full
	a.state.failureNames.mu.Unlock()
	held, _ := a.hashes.acquire(context.Background())
	lg, ok := a.beginLogin(noWait, "ops", "192.0.2.7", func() time.Time { return now })
	held()
	if ok || !lg.shed {
		t.Fatalf("record unread for want of a slot: reserved %v, shed %v; want refused as shed", ok, lg.shed)
	}
	a.limiter.mu.Lock()
	inflight := a.limiter.m["user:ops"].inflight
	a.limiter.mu.Unlock()
	if inflight != 0 {
		t.Errorf("the shed login left %d attempts in flight", inflight)
	}
	// with a slot free the record is read: b's lockout refuses it
	if lg, ok := a.beginLogin(noWait, "ops", "192.0.2.7", func() time.Time { return now }); ok || lg.shed {
		t.Errorf("slot free: reserved %v, shed %v; want refused by b's lockout", ok, lg.shed)
	}
}

// saltPanics is a storage whose read of the failure records' salt panics
// once armed (a storage module's bug).
type saltPanics struct {
	certmagic.Storage
	armed bool
}

func (s *saltPanics) Load(ctx context.Context, key string) ([]byte, error) {
	if s.armed && key == failuresSaltKey() {
		panic("storage module bug")
	}
	return s.Storage.Load(ctx, key)
}

// A panic while a failure record's name is derived under a hash slot (the
// read of a lockout recorded elsewhere) gives the slot back: it kept it
// for the life of the process.
func TestHashSlotReleasedOnPanic(t *testing.T) {
	st := &saltPanics{Storage: localLocks{&certmagic.FileStorage{Path: t.TempDir()}}}
	a := newLoginAppOn(t, st)
	a.hashes = newHashWork(1, 0, time.Minute)
	now := time.Now()
	tryLogin(a, "ops", "203.0.113.5", false, now) // a has seen it fail
	a.state.failureNames.mu.Lock()
	a.state.failureNames.names, a.state.failureNames.salt = nil, nil // the salt read again
	a.state.failureNames.mu.Unlock()
	st.armed = true
	func() {
		defer func() { _ = recover() }()
		a.adoptSharedLockout(context.Background(), a.limiter, "user:ops", now)
		t.Fatal("the storage did not panic")
	}()
	if n := len(a.hashes.slots); n != 0 {
		t.Errorf("%d slots kept after the panic, want 0", n)
	}
}

// The name of an account's record of known addresses, dropped from the
// cache, is derived under a hash slot too when a login that the lockout
// refuses looks its address up there: with none free the attempt stays
// refused, nothing is derived, and the next attempt reads the record. A
// guesser cycling refused attempts through more locked-out accounts than
// the cache holds made a PBKDF2 outside the bound at each.
func TestKnownRecordNameUnderHashBound(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	const site, guesser = "192.0.2.10", "203.0.113.3"
	st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	a, b := newLoginAppOn(t, st), newLoginAppOn(t, st)
	b.limiter = newLimiter(5, time.Hour, 48*time.Hour) // locked out throughout
	// the site is known in storage
	if !tryLogin(a, "ops", site, true, t0) {
		t.Fatal("the device refused on a")
	}
	for range 5 {
		tryLogin(b, "ops", guesser, false, t0)
	}
	b.hashes = newHashWork(1, 0, time.Minute)
	b.state.failureNames.mu.Lock()
	b.state.failureNames.names = nil // emptied, as when full
	b.state.failureNames.mu.Unlock()

	held, _ := b.hashes.acquire(context.Background())
	ok := tryLogin(b, "ops", site, true, t0)
	held()
	if ok {
		t.Fatal("no slot: the device's address was found, its record named outside the bound")
	}
	if b.state.nameCached("user:ops") {
		t.Error("no slot: the record's name was derived")
	}
	// the same interval, a slot free: the record is read now
	if !tryLogin(b, "ops", site, true, t0) {
		t.Error("slot free: the device's address known in storage was not found")
	}
	assertNothingInFlight(t, b)
}
