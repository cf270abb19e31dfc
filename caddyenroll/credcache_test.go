package caddyenroll

import (
	"context"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"

	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// A config that replaces another (a `caddy reload`) keeps the valid logins
// the other checked: with every hash slot taken by a flood of guesses, a
// device that logged in before the reload still gets in, while a login
// with another hash of the account, or a wrong password, needs a slot and
// is refused. Each config lets go of them at its Cleanup.
func TestReloadKeepsCheckedLogins(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	rehash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost) // a new salt
	provision := func(t *testing.T, hash []byte) *App {
		t.Helper()
		// a lockout no other test provisions: its own limiters in the pool
		a := &App{FailuresAllowed: 5, LockoutBase: caddy.Duration(time.Second), LockoutMax: caddy.Duration(89 * time.Second),
			Accounts: []Account{{Username: "dev", Password: string(hash)}}, log: zap.NewNop()}
		if err := a.provisionLogins(); err != nil {
			t.Fatal(err)
		}
		return a
	}
	login := func(a *App, pass string) *outcome {
		_, o := a.login(context.Background(), enrollInput{op: wire.OpRetrieve, clientIP: "192.0.2.7",
			req: &wire.Request{Operation: wire.OpRetrieve, Username: "dev", Password: pass}})
		return o
	}
	// no slot is ever free: only a login in the cache gets in
	flooded := newHashWork(1, 0, time.Minute)
	if _, ok := flooded.acquire(context.Background()); !ok {
		t.Fatal("the free slot was refused")
	}

	before, _ := credentialsPool.References(credentialsPoolKey) // other tests' configs
	old := provision(t, hash)
	if o := login(old, "pw"); o != nil {
		t.Fatalf("first login before the flood: %+v", o.resp)
	}
	for _, c := range []struct {
		name   string
		hash   []byte
		pass   string
		status int // 0: logged in
	}{
		{"same account", hash, "pw", 0},
		{"wrong password", hash, "guess", wire.StatusRateLimited},
		{"account's hash changed", rehash, "pw", wire.StatusRateLimited},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := provision(t, c.hash)
			defer func() { _ = a.Cleanup() }()
			a.hashes = flooded
			o := login(a, c.pass)
			switch {
			case c.status == 0 && o != nil:
				t.Errorf("after the reload, during the flood: status %d (%s), want logged in", o.resp.Status, o.resp.Error)
			case c.status != 0 && (o == nil || o.resp.Status != c.status):
				t.Errorf("after the reload, during the flood: %+v, want status %d", o, c.status)
			}
		})
	}
	if err := old.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if n, _ := credentialsPool.References(credentialsPoolKey); n != before {
		t.Errorf("the valid logins are held by %d configs after these let go, want %d", n, before)
	}
}
