package caddyenroll

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"go.uber.org/zap"
)

// An unlock of an account whose only failures were at an address another
// instance knows it at (found through its record of known addresses)
// answers that it had failures: the operator is told the unlock did
// something.
func TestUnlockAnswerHadFailuresElsewhere(t *testing.T) {
	const site = "192.0.2.8"
	a, b, _ := newSharedLoginApps(t)
	slowLockouts(a, b)
	a.accounts = &accounts{byName: map[string]*Account{}}
	ad := &adminAPI{app: a, log: zap.NewNop()}
	now := time.Now()
	tryLogin(b, "ops", site, true, now) // site is known to ops on b
	for range 5 {
		tryLogin(b, "ops", site, false, now)
	}
	if had, _, err := a.unlockAccount(context.Background(), "nobody", ""); err != nil || had {
		t.Fatalf("unlock of an account without failures: had %v, %v", had, err)
	}
	code, body, _ := adminDoBody(t, ad, "POST", "/enroll/unlock", `{"username": "ops"}`)
	var ans unlockAnswer
	if err := json.Unmarshal([]byte(body), &ans); code != 200 || err != nil {
		t.Fatalf("unlock: %d %s (%v)", code, body, err)
	}
	if ans.Account == nil || !*ans.Account {
		t.Errorf("unlock answered %s; want account_had_failures true", body)
	}
}
