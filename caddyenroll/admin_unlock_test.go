package caddyenroll

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// slowLockouts gives apps lockouts of a minute at least, that last past
// sharedRecheckInterval: the others of a cluster drop theirs once it
// passed after the unlock.
func slowLockouts(apps ...*App) {
	for _, app := range apps {
		app.limiter, app.addrLimiter = newLimiter(5, time.Minute, time.Hour), newLimiter(4*5, time.Minute, time.Hour)
	}
}

// failingLoadsUnlockApp is an app with slowLockouts and no accounts in
// its configuration, on a storage whose loads fail as fl.failLoads says,
// and its admin API: for the unlocks that storage errors cut short.
func failingLoadsUnlockApp(t *testing.T) (a *App, ad *adminAPI, fl *failingLoads) {
	t.Helper()
	fl = &failingLoads{Storage: &certmagic.FileStorage{Path: t.TempDir()}}
	a = newLoginAppOn(t, localLocks{fl})
	slowLockouts(a)
	a.accounts = &accounts{byName: map[string]*Account{}}
	return a, &adminAPI{app: a, log: zap.NewNop()}, fl
}

// POST /enroll/unlock clears an account's lockout (also at its known
// addresses) and an address's, on the instance asked and, through the
// storage, on the others of the cluster; it refuses what names nothing.
func TestAdminUnlock(t *testing.T) {
	a, b, _ := newSharedLoginApps(t)
	slowLockouts(a, b)
	a.accounts = &accounts{byName: map[string]*Account{}}
	ad := &adminAPI{app: a, log: zap.NewNop()}
	now := time.Now()
	const guesser, site = "203.0.113.5", "192.0.2.8"
	attempt := func(app *App, user, addr string, good bool) bool { return tryLogin(app, user, addr, good, now) }
	attempt(a, "ops", site, true) // site is known to ops on a
	for range 3 {
		attempt(a, "ops", guesser, false)
		attempt(b, "ops", guesser, false)
	}
	for range 5 { // the known address's own allowance
		attempt(a, "ops", site, false)
	}
	if attempt(a, "ops", "198.51.100.1", true) || attempt(b, "ops", "198.51.100.1", true) || attempt(a, "ops", site, true) {
		t.Fatal("not locked out before the unlock")
	}

	unlock := func(body string) (account, address string) {
		t.Helper()
		code, answer, _ := adminDoBody(t, ad, "POST", "/enroll/unlock", body)
		var ans unlockAnswer
		if err := json.Unmarshal([]byte(answer), &ans); code != 200 || err != nil {
			t.Fatalf("unlock %s: %d %s", body, code, answer)
		}
		show := func(b *bool) string {
			if b == nil {
				return "absent"
			}
			return strconv.FormatBool(*b)
		}
		return show(ans.Account), show(ans.Address)
	}
	if account, address := unlock(`{"username": "ops"}`); account != "true" || address != "absent" {
		t.Fatalf("unlock: account had failures %s, address %s", account, address)
	}
	if attempt(b, "ops", "198.51.100.1", true) {
		t.Fatal("b dropped its lockout at once: it reads the record once per interval")
	}
	now = now.Add(sharedRecheckInterval)
	for _, c := range []struct {
		app  *App
		name string
		addr string
	}{{a, "a", "198.51.100.1"}, {b, "b", "198.51.100.1"}, {a, "a, at the known address", site}} {
		if !attempt(c.app, "ops", c.addr, true) {
			t.Errorf("%s: still locked out after the unlock", c.name)
		}
	}
	if account, _ := unlock(`{"username": "ops"}`); account != "false" {
		t.Errorf("second unlock: account had failures %s", account)
	}

	// an address
	for i := range 25 {
		attempt(b, "user"+string(rune('a'+i)), "203.0.113.77", false)
	}
	if attempt(a, "fresh", "203.0.113.77", false) && attempt(b, "fresh", "203.0.113.77", true) {
		t.Fatal("the address is not locked out before the unlock")
	}
	if account, address := unlock(`{"address": "203.0.113.77"}`); account != "absent" || address != "true" {
		t.Fatalf("unlock of the address: account %s, address %s", account, address)
	}
	now = now.Add(sharedRecheckInterval)
	if !attempt(b, "fresh", "203.0.113.77", true) {
		t.Error("b: the address is still locked out after the unlock")
	}

	for _, c := range []struct{ method, body, want string }{
		{"POST", ``, `give "username", "address" or both`},
		{"POST", `{}`, `give "username", "address" or both`},
		{"POST", `{"address": "203.0.113"}`, "not an IP address"},
		{"POST", `{"address": "` + strings.Repeat("9", 200) + `"}`, "not an IP address"},
		{"POST", `{"username": "a\u0000b"}`, "control characters"},
		{"POST", `{"username": "` + strings.Repeat("u", 300) + `"}`, "at most 256 bytes"},
		{"POST", `{"user": "ops"}`, "unknown field"},
		{"GET", ``, "method"},
	} {
		code, msg, _ := adminDoBody(t, ad, c.method, "/enroll/unlock", c.body)
		if code < 400 || !strings.Contains(msg, c.want) || len(msg) > 300 {
			t.Errorf("%s %q: %d %q, want an error saying %q", c.method, c.body, code, msg, c.want)
		}
	}
}

// An unlock naming an account also clears the account at the addresses
// of its record of known addresses, and at the address it names, on the
// instances where it is known there: the instance asked may not know it
// (each instance learns its own). Without the record (a storage that
// failed to write it) only the address named reaches it.
func TestAdminUnlockKnownElsewhere(t *testing.T) {
	const site = "192.0.2.8"
	for _, c := range []struct {
		body       string
		dropRecord bool // the record of ops's known addresses
		unlocked   bool
	}{
		{`{"username": "ops"}`, false, true},
		{`{"username": "ops", "address": "` + site + `"}`, true, true},
		{`{"username": "ops"}`, true, false}, // a knows no address of ops
	} {
		t.Run(fmt.Sprintf("%s without record %v", c.body, c.dropRecord), func(t *testing.T) {
			a, b, st := newSharedLoginApps(t)
			slowLockouts(a, b)
			a.accounts = &accounts{byName: map[string]*Account{}}
			ad := &adminAPI{app: a, log: zap.NewNop()}
			now := time.Now()
			attempt := func(app *App, good bool) bool { return tryLogin(app, "ops", site, good, now) }
			attempt(b, true) // site is known to ops on b
			for range 5 {    // a device there retries a stale password
				attempt(b, false)
			}
			if attempt(b, true) {
				t.Fatal("not locked out at the known address before the unlock")
			}
			if c.dropRecord {
				key, err := a.state.knownRecordKey(context.Background(), "ops")
				if err != nil {
					t.Fatal(err)
				}
				if err := st.Delete(context.Background(), key); err != nil {
					t.Fatal(err)
				}
			}
			if code, answer, _ := adminDoBody(t, ad, "POST", "/enroll/unlock", c.body); code != 200 {
				t.Fatalf("unlock %s: %d %s", c.body, code, answer)
			}
			now = now.Add(sharedRecheckInterval)
			if got := attempt(b, true); got != c.unlocked {
				t.Fatalf("after unlock %s through a: b lets the device in = %v, want %v", c.body, got, c.unlocked)
			}
		})
	}
}

// An unlock whose read of the account's record of known addresses fails,
// after the account's own failures were cleared, answers 200 with what
// it cleared and a warning (a 500 would read as nothing done), and the
// account logs in again; once the storage reads again, another unlock
// finds nothing left.
func TestUnlockPartial(t *testing.T) {
	a, ad, fl := failingLoadsUnlockApp(t)
	now := time.Now()
	for range 5 {
		tryLogin(a, "ops", "203.0.113.5", false, now)
	}
	if tryLogin(a, "ops", "198.51.100.1", true, now) {
		t.Fatal("not locked out before the unlock")
	}
	for _, c := range []struct {
		name     string
		failing  string
		had      bool
		warning  string
		unlocked bool
	}{
		{"known addresses unreadable", "/known/", true, "unlock again", true},
		{"storage readable again", "", false, "", true},
	} {
		fl.failLoads(c.failing)
		code, body, _ := adminDoBody(t, ad, "POST", "/enroll/unlock", `{"username": "ops"}`)
		var ans unlockAnswer
		if err := json.Unmarshal([]byte(body), &ans); code != 200 || err != nil || ans.Account == nil {
			t.Fatalf("%s: %d %s, want 200 with account_had_failures", c.name, code, body)
		}
		if *ans.Account != c.had || (c.warning == "") != (ans.Warning == "") || !strings.Contains(ans.Warning, c.warning) {
			t.Errorf("%s: %s, want account_had_failures %v and a warning with %q", c.name, body, c.had, c.warning)
		}
		if c.unlocked && !tryLogin(a, "ops", "198.51.100.1", true, now) {
			t.Errorf("%s: still locked out after the unlock", c.name)
		}
	}
}

// An unlock whose clearing of the account at one of its known addresses
// fails, after the account's own failures were cleared, answers 200 with
// what it cleared and a warning naming the address (it answered 500,
// which reads as nothing done); the other addresses are still cleared,
// and an unlock once the storage works again clears what was left. A
// failure on the account's own record, before anything is cleared in
// storage, is still a server error.
func TestUnlockKnownAddressFails(t *testing.T) {
	ctx := context.Background()
	a, ad, fl := failingLoadsUnlockApp(t)
	now := time.Now()
	const site, other, guesser = "192.0.2.8", "192.0.2.9", "203.0.113.5"
	for _, addr := range []string{site, other} {
		tryLogin(a, "ops", addr, true, now) // known to ops
		for range 5 {                       // a device there retries a stale password
			tryLogin(a, "ops", addr, false, now)
		}
	}
	for range 5 {
		tryLogin(a, "ops", guesser, false, now)
	}
	recordOf := func(limiterKey string) string {
		key, err := a.state.failuresKey(ctx, limiterKey)
		if err != nil {
			t.Fatal(err)
		}
		if _, found, err := a.state.loadFailures(ctx, limiterKey); err != nil || !found {
			t.Fatalf("no failures of %s in storage: %v", limiterKey, err)
		}
		return path.Base(key)
	}
	account, atSite := recordOf("user:ops"), recordOf(knownKey("ops", addressKey(site)))
	otherKey := knownKey("ops", addressKey(other))
	recordOf(otherKey)

	for _, c := range []struct {
		name    string
		failing string // the storage fails to read the key with this
		code    int
		had     bool
		warning string
	}{
		{"the account's own record unreadable", account, 500, false, ""},
		{"a known address's record unreadable", atSite, 200, true, site},
		{"storage readable again", "", 200, true, ""}, // site's record was left
		{"nothing left", "", 200, false, ""},
	} {
		fl.failLoads(c.failing)
		code, body, _ := adminDoBody(t, ad, "POST", "/enroll/unlock", `{"username": "ops"}`)
		if code != c.code {
			t.Fatalf("%s: %d %s, want %d", c.name, code, body, c.code)
		}
		if code != 200 {
			continue
		}
		var ans unlockAnswer
		if err := json.Unmarshal([]byte(body), &ans); err != nil || ans.Account == nil {
			t.Fatalf("%s: %s, want account_had_failures", c.name, body)
		}
		if *ans.Account != c.had || (c.warning == "") != (ans.Warning == "") || !strings.Contains(ans.Warning, c.warning) ||
			c.warning != "" && !strings.Contains(ans.Warning, "unlock again") {
			t.Errorf("%s: %s, want account_had_failures %v and a warning with %q", c.name, body, c.had, c.warning)
		}
		if c.warning != "" {
			// the address after the one that failed was cleared too
			if _, found, err := a.state.loadFailures(ctx, otherKey); err != nil || found {
				t.Errorf("%s: the other known address's failures remain in storage (%v)", c.name, err)
			}
		}
	}
	for _, addr := range []string{site, other, "198.51.100.1"} {
		if !tryLogin(a, "ops", addr, true, now) {
			t.Errorf("still locked out at %s after the unlocks", addr)
		}
	}
}

// An unlock naming an account and an address whose clearing of the
// address fails, after the account was unlocked, answers 200 with the
// account's result and a warning (it answered 500, which reads as
// nothing done, the account unlocked all the same); an unlock of the
// address alone that fails is still a server error.
func TestUnlockAddressFailsAfterAccount(t *testing.T) {
	ctx := context.Background()
	a, ad, fl := failingLoadsUnlockApp(t)
	now := time.Now()
	const guesser = "203.0.113.5"
	for range 20 {
		tryLogin(a, "ops", guesser, false, now)
	}
	key, err := a.state.failuresKey(ctx, addressKey(guesser))
	if err != nil {
		t.Fatal(err)
	}
	both := `{"username": "ops", "address": "` + guesser + `"}`
	for _, c := range []struct {
		name, body, failing string
		code                int
		account, address    string // "true", "false", "" absent
		warning             string
	}{
		{"the address's record unreadable", both, path.Base(key), 200, "true", "", "client address"},
		{"the address alone, unreadable", `{"address": "` + guesser + `"}`, path.Base(key), 500, "", "", ""},
		{"storage readable again", both, "", 200, "false", "true", ""},
	} {
		fl.failLoads(c.failing)
		code, body, _ := adminDoBody(t, ad, "POST", "/enroll/unlock", c.body)
		if code != c.code {
			t.Fatalf("%s: %d %s, want %d", c.name, code, body, c.code)
		}
		if code != 200 {
			continue
		}
		var ans unlockAnswer
		if err := json.Unmarshal([]byte(body), &ans); err != nil {
			t.Fatalf("%s: %s: %v", c.name, body, err)
		}
		show := func(b *bool) string {
			if b == nil {
				return ""
			}
			return strconv.FormatBool(*b)
		}
		if show(ans.Account) != c.account || show(ans.Address) != c.address ||
			(c.warning == "") != (ans.Warning == "") || !strings.Contains(ans.Warning, c.warning) {
			t.Errorf("%s: %s, want account %q, address %q and a warning with %q", c.name, body, c.account, c.address, c.warning)
		}
	}
}
