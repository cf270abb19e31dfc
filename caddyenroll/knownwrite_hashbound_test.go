package caddyenroll

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

// saltReads counts the reads of the salt of record names: each starts a
// name's derivation once the cache dropped the salt.
type saltReads struct {
	certmagic.Storage
	n atomic.Int32
}

func (s *saltReads) Load(ctx context.Context, key string) ([]byte, error) {
	if key == failuresSaltKey() {
		s.n.Add(1)
	}
	return s.Storage.Load(ctx, key)
}

// The background write of an account's record of known addresses derives
// the names its cache dropped (the record's own, and the account's
// failure record at an address where it failed) under a hash slot, as the
// logins do: while every slot is held it derives nothing and waits, and
// once one is free it writes. It used to derive them outside the bound,
// a PBKDF2 each, beside a flood holding every slot.
func TestKnownWriteNamesUnderHashBound(t *testing.T) {
	const site = "192.0.2.10"
	t0 := time.Unix(1_000_000, 0)
	emptyNames := func(a *App) {
		a.state.failureNames.mu.Lock()
		// emptied, as when full; the salt read again, so that a derivation
		// shows when it starts (its PBKDF2 takes a second under -race)
		a.state.failureNames.names, a.state.failureNames.salt = nil, nil
		a.state.failureNames.mu.Unlock()
	}
	at := knownKey("ops", addressKey(site))
	for _, c := range []struct {
		name  string
		setup func(t *testing.T, a *App) // with the slots free
		// write has the record written with the names dropped from the
		// cache and every slot held
		write func(t *testing.T, a *App)
		keys  []string // the names it derives
	}{
		{"a valid login from a new address", func(*testing.T, *App) {}, func(t *testing.T, a *App) {
			emptyNames(a)
			lg, ok := a.beginLogin(noWait, "ops", site, func() time.Time { return t0 })
			if !ok {
				t.Fatal("the login was refused")
			}
			a.loginSucceeded(noWait, lg, t0)
		}, []string{"user:ops"}},
		{"a failure at a known address", func(t *testing.T, a *App) {
			if !tryLogin(a, "ops", site, true, t0) || !tryLogin(a, "ops", site, false, t0.Add(time.Second)) {
				t.Fatal("a login was refused")
			}
		}, func(t *testing.T, a *App) {
			emptyNames(a)
			a.known.recordFailed("ops", t0) // the write is due again, naming the failure record
			if !a.known.noteFailed("ops", addressKey(site)) {
				t.Fatal("the failure at the known address is not to be named")
			}
			a.scheduleKnownWrite("ops", t0.Add(2*time.Second))
		}, []string{"user:ops", at}},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := &saltReads{Storage: localLocks{&certmagic.FileStorage{Path: t.TempDir()}}}
			a := newLoginAppOn(t, st)
			a.hashes = newHashWork(1, 0, time.Minute)
			c.setup(t, a)
			held, ok := a.hashes.acquire(context.Background())
			if !ok {
				t.Fatal("the free slot was refused")
			}
			func() {
				defer func() {
					if held != nil {
						held()
					}
				}()
				st.n.Store(0)
				c.write(t, a)
				for deadline := time.Now().Add(300 * time.Millisecond); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
					if st.n.Load() > 0 {
						t.Fatal("a record's name was being derived with every hash slot held")
					}
				}
				held()
				held = nil
			}()
			a.waitKnownWrites()
			for _, k := range c.keys {
				if !a.state.nameCached(k) {
					t.Errorf("%s not named once a slot was free", k)
				}
			}
			rec, err := a.state.loadKnown(context.Background(), "ops")
			if err != nil {
				t.Fatal(err)
			}
			h := knownAddressHash("ops", addressKey(site))
			i := slices.IndexFunc(rec.Addresses, func(e knownRecordEntry) bool { return e.Address == h })
			if i < 0 {
				t.Fatalf("the record %+v lacks the address once a slot was free", rec)
			}
			if slices.Contains(c.keys, at) {
				want, _ := a.state.cachedName(at)
				if rec.Addresses[i].Failures != want {
					t.Errorf("the record names the failure record %q, want %q", rec.Addresses[i].Failures, want)
				}
			}
			if n := len(a.hashes.slots); n != 0 {
				t.Errorf("%d slots kept after the write, want 0", n)
			}
		})
	}
}

// A background job's wait for a hash slot lasts as long as its context,
// not a login's hashWaitMax, and is not refused for the logins waiting:
// it ends when a slot is freed, or with the context's error.
func TestHashWorkBackgroundWait(t *testing.T) {
	for _, c := range []struct {
		name   string
		cancel bool // the context ends instead
	}{
		{"slot freed after a login's wait", false},
		{"job stopped", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHashWork(1, 0, time.Millisecond) // no login may wait
			held, ok := h.acquire(context.Background())
			if !ok {
				t.Fatal("the free slot was refused")
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			time.AfterFunc(50*time.Millisecond, func() {
				if c.cancel {
					cancel()
				} else {
					held()
				}
			})
			release, err := h.wait(ctx)
			if c.cancel {
				if err == nil {
					release()
					t.Fatal("took a slot that was never freed")
				}
				held()
			} else if err != nil {
				t.Fatalf("no slot once one was freed: %v", err)
			} else {
				release()
			}
			if n := len(h.slots); n != 0 {
				t.Errorf("%d slots kept, want 0", n)
			}
		})
	}
}
