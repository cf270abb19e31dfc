package caddyenroll

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

// panickingKnownLoads panics in one read of a record of known addresses,
// once armed, when release is closed (a storage module's bug).
type panickingKnownLoads struct {
	certmagic.Storage
	armed            atomic.Bool
	waiting, release chan struct{}
}

func (s *panickingKnownLoads) Load(ctx context.Context, key string) ([]byte, error) {
	if strings.HasPrefix(key, knownDir()+"/") && s.armed.CompareAndSwap(true, false) {
		s.waiting <- struct{}{}
		<-s.release
		panic("storage module bug")
	}
	return s.Storage.Load(ctx, key)
}

// A login that claimed the read of an account's record of known addresses
// and panicked in it (Caddy recovers the handler, the process lives on)
// releases the logins waiting for that read at once, and the next login
// reads the record again: they used to wait out their bound, and every
// login of the rest of the interval with them.
func TestKnownRecordReadPanicReleasesWaiters(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	const site, guesser = "192.0.2.10", "203.0.113.3"
	st := &panickingKnownLoads{Storage: localLocks{&certmagic.FileStorage{Path: t.TempDir()}},
		waiting: make(chan struct{}), release: make(chan struct{})}
	a, b := newLoginAppOn(t, st), newLoginAppOn(t, st)
	b.limiter = newLimiter(5, time.Hour, 48*time.Hour) // locked out throughout
	if !tryLogin(a, "ops", site, true, t0) {
		t.Fatal("the device refused on a")
	}
	for range 5 {
		tryLogin(b, "ops", guesser, false, t0)
	}
	at := t0.Add(time.Second)
	st.armed.Store(true)
	panicked := make(chan any)
	go func() {
		defer func() { panicked <- recover() }()
		tryLogin(b, "ops", guesser, false, at)
	}()
	<-st.waiting // the guess claimed the read and is in it
	waiter := make(chan time.Time)
	go func() {
		tryLogin(b, "ops", site, true, at) // waits for the guess's read
		waiter <- time.Now()
	}()
	time.Sleep(100 * time.Millisecond) // the device's login waits meanwhile
	close(st.release)
	if p := <-panicked; p == nil {
		t.Fatal("the read did not panic")
	}
	released := time.Now()
	select {
	case returned := <-waiter:
		if d := returned.Sub(released); d > sharedFailuresTimeout/2 {
			t.Errorf("the waiting login returned %v after the panic, want at once (its bound is %v)", d, sharedFailuresTimeout)
		}
	case <-time.After(time.Minute):
		t.Fatal("the waiting login never returned")
	}
	// the same interval: the record is read again, the address found
	start := time.Now()
	if !tryLogin(b, "ops", site, true, at) {
		t.Error("after the panic the device's address known in storage was not found")
	}
	if d := time.Since(start); d > sharedFailuresTimeout/2 {
		t.Errorf("the next login took %v: it waited for the panicked read", d)
	}
	assertNothingInFlight(t, b)
}
