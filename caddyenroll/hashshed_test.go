package caddyenroll

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"

	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// A login shed for want of a hash slot gives back the attempts it took in
// both limiters: kept, every shed login of a flood naming an account (or
// coming from an address) would hold one of its attempts in flight for
// good, and once they were the failures allowed, the account's own device
// waited for them and was refused after the slots were free again.
func TestShedLoginsReserveNothing(t *testing.T) {
	demo, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	accts, err := newAccounts([]Account{{Username: "demo", Password: string(demo)}})
	if err != nil {
		t.Fatal(err)
	}
	a := newLoginApp()
	a.accounts, a.log = accts, zap.NewNop()
	a.hashes = newHashWork(1, 0, time.Minute)
	login := func(ctx context.Context, pass string) *outcome {
		_, o := a.login(ctx, enrollInput{op: wire.OpRequest, clientIP: "192.0.2.1",
			req: &wire.Request{Operation: wire.OpRequest, Username: "demo", Password: pass}})
		return o
	}
	held, ok := a.hashes.acquire(context.Background())
	if !ok {
		t.Fatal("the free slot was refused")
	}
	for i := range 2 * 5 * 4 { // beyond the account's and the address's attempts
		ctx, cancel := context.WithTimeout(context.Background(), time.Second) // not waiting for attempts in flight
		o := login(ctx, "pw")
		cancel()
		if o == nil || o.resp.Status != wire.StatusRateLimited {
			t.Fatalf("login %d with every slot taken: %+v, want status %d", i, o, wire.StatusRateLimited)
		}
	}
	for name, l := range map[string]*limiter{"account": a.limiter, "address": a.addrLimiter} {
		l.mu.Lock()
		for key, st := range l.m {
			if st.inflight != 0 || st.failures != 0 {
				t.Errorf("%s limiter, %s: %d attempts in flight, %d failures after shed logins, want none", name, key, st.inflight, st.failures)
			}
		}
		l.mu.Unlock()
	}
	held()
	ctx, cancel := context.WithTimeout(context.Background(), maxAttemptWait/2)
	defer cancel()
	if o := login(ctx, "pw"); o != nil {
		t.Errorf("the device's login once a slot is free: %+v, want logged in", o.resp)
	}
}

// A login refused because its account's failure record could not be
// read for want of a hash slot is answered and counted as shed (status
// 10, "too many logins being checked", logins_shed), as a login whose own
// check found no slot is, not as a lockout: the operator sees the server
// overloaded, not the account locked out.
func TestLoginShedAtRecordReadCounted(t *testing.T) {
	st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	a := newLoginAppOn(t, st)
	a.log = zap.NewNop()
	a.hashes = newHashWork(1, 0, time.Minute)
	now := time.Now()
	for i := range 2 { // failures here: the record is read at the next login
		tryLogin(a, "ops", fmt.Sprintf("203.0.113.%d", i+1), false, now)
	}
	a.state.failureNames.mu.Lock()
	a.state.failureNames.names = nil // emptied, as when full
	a.state.failureNames.mu.Unlock()
	a.limiter.mu.Lock()
	a.limiter.m["user:ops"].checked = time.Time{} // due for a read
	a.limiter.mu.Unlock()
	held, _ := a.hashes.acquire(context.Background())
	defer held()
	initMetrics()
	before := promtest.ToFloat64(metrics.loginsShed)
	_, o := a.login(context.Background(), enrollInput{op: wire.OpRequest, clientIP: "192.0.2.7",
		req: &wire.Request{Operation: wire.OpRequest, Username: "ops", Password: "right"}})
	if o == nil || o.resp.Status != wire.StatusRateLimited || !strings.Contains(o.resp.Error, "logins being checked") {
		t.Fatalf("login whose record could not be read: %+v, want refused as shed", o)
	}
	if n := promtest.ToFloat64(metrics.loginsShed) - before; n != 1 {
		t.Errorf("%v shed logins counted, want 1", n)
	}
}

// The record of an account at a known address is named by a PBKDF2 as
// the account's is: with the cache of names emptied and no hash slot
// free, its read is shed too, not derived outside the bound.
func TestKnownAddressRecordNameUnderHashBound(t *testing.T) {
	st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	a := newLoginAppOn(t, st)
	a.hashes = newHashWork(1, 0, time.Minute)
	now := time.Now()
	key := knownKey("ops", addressKey("192.0.2.1"))
	a.limiter.fail(key, now) // a failure here: its record is read
	a.state.failureNames.mu.Lock()
	a.state.failureNames.names = nil // emptied, as when full
	a.state.failureNames.mu.Unlock()
	held, _ := a.hashes.acquire(context.Background())
	defer held()
	if shed := a.adoptSharedLockout(context.Background(), a.limiter, key, now); !shed {
		t.Error("the record of the account at a known address was read with no hash slot free; want shed")
	}
	if a.state.nameCached(key) {
		t.Error("its name was derived with no hash slot free")
	}
}

// The record name of a failed login (a PBKDF2, as costly as the bcrypt
// check) is derived by checkHash while it holds its hash slot, not after
// it by loginFailed, outside the bound on hash work.
func TestFailedLoginNamedUnderHashSlot(t *testing.T) {
	st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	a := newLoginAppOn(t, st)
	accts, err := newAccounts(nil)
	if err != nil {
		t.Fatal(err)
	}
	a.accounts = accts
	a.hashes = newHashWork(1, 0, time.Minute)
	lg, ok := a.beginLogin(context.Background(), "guess", "192.0.2.7", time.Now)
	if !ok {
		t.Fatal("the attempt was refused")
	}
	defer a.limiter.cancel(lg.user)
	defer a.addrLimiter.cancel(lg.addr)
	if _, ok, refused := a.checkHash(context.Background(), lg, "guess", "wrong"); ok || refused != nil {
		t.Fatalf("check of an unknown username: ok %v, refused %+v", ok, refused)
	}
	if !a.state.nameCached(lg.user) {
		t.Error("the failed login's record name was not derived under its hash slot")
	}
}
