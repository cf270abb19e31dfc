package caddyenroll

import (
	"testing"
	"time"
)

// A login that claimed the read of an account's record of known addresses
// and panicked in it (Caddy recovers the handler, the process lives on)
// releases the logins waiting for that read at once, and the next login
// reads the record again: they used to wait out their bound, and every
// login of the rest of the interval with them.
func TestKnownRecordReadPanicReleasesWaiters(t *testing.T) {
	st, _, b, at := lockedOutAccount(t, true)
	st.armed.Store(true)
	panicked := make(chan any)
	go func() {
		defer func() { panicked <- recover() }()
		tryLogin(b, "ops", knownGuesser, false, at)
	}()
	<-st.waiting // the guess claimed the read and is in it
	waiter := make(chan time.Time)
	go func() {
		tryLogin(b, "ops", knownSite, true, at) // waits for the guess's read
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
	if !tryLogin(b, "ops", knownSite, true, at) {
		t.Error("after the panic the device's address known in storage was not found")
	}
	if d := time.Since(start); d > sharedFailuresTimeout/2 {
		t.Errorf("the next login took %v: it waited for the panicked read", d)
	}
	assertNothingInFlight(t, b)
}
