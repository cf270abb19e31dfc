package caddyenroll

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// An account with a customer enrolls only for that customer (status 13
// otherwise), spaces around the account's ignored: for a device that never
// enrolled there are no recorded ids to differ from, so the account's
// customer is the only check.
func TestAccountCustomerMustMatch(t *testing.T) {
	h := fileApp(t, ApprovalAuto, "enroll enabled\ngroup \"\"\n"+
		"device gw1.example \"\" enabled\ndevice gw2.example \"\" enabled\ndevice gw3.example \"\" enabled\ndevice gw4.example \"\" enabled\n")
	hash, _ := bcrypt.GenerateFromPassword([]byte("right"), bcrypt.MinCost)
	accts, err := newAccounts([]Account{{Username: "cust", Password: string(hash), Customer: " 1000"}, {Username: "ops", Password: string(hash)}})
	if err != nil {
		t.Fatal(err)
	}
	h.app.accounts = accts
	for _, c := range []struct {
		account, device, customer string
		status                    int
	}{
		{"cust", "gw1.example", "999", wire.StatusCustomerMismatch},
		{"cust", "gw2.example", "10000", wire.StatusCustomerMismatch},
		{"cust", "gw3.example", "1000", wire.StatusOK},
		{"ops", "gw4.example", "999", wire.StatusOK}, // an account without customer takes any
	} {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if ans := enrollWithIDs(t, h, wire.OpRequest, c.account, c.device, "1", c.customer, key); ans.Status != c.status {
			t.Errorf("%s enrolling %s for customer %s: status %d %s, want %d", c.account, c.device, c.customer, ans.Status, ans.Error, c.status)
		}
	}
}
