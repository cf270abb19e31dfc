package caddyenroll

import (
	"fmt"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// The limiters a config provisions allow an account failures_allowed
// failures and a client address addressFailuresFactor (4) times that, the
// devices of a site sharing one address: guesses spread over accounts
// from one address are stopped once the address's allowance is spent.
func TestProvisionedLoginAllowances(t *testing.T) {
	// a lockout no other test provisions: its own limiters in the pool
	a := &App{FailuresAllowed: 2, LockoutBase: caddy.Duration(time.Second), LockoutMax: caddy.Duration(97 * time.Second), log: zap.NewNop()}
	if err := a.provisionLogins(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Cleanup() })
	now := time.Unix(1_000_000, 0)
	for i := range 4 {
		for range 2 {
			if !tryLogin(a, fmt.Sprintf("victim%d", i), "203.0.113.9", false, now) {
				t.Fatalf("guess at victim%d refused before the address's allowance (8) was spent", i)
			}
		}
		if tryLogin(a, fmt.Sprintf("victim%d", i), "198.51.100.1", false, now) {
			t.Errorf("victim%d not locked out after failures_allowed (2) failures", i)
		}
	}
	if tryLogin(a, "victim9", "203.0.113.9", false, now) {
		t.Error("the address spent 4 times failures_allowed across accounts and is not locked out")
	}
}
