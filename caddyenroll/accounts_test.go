package caddyenroll

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func TestAccounts(t *testing.T) {
	h, _ := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	a, err := newAccounts([]Account{{Username: "op", Password: string(h), Customer: "1000"}})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		user, pass string
		ok         bool
	}{
		{"op", "s3cret", true},
		{"op", "s3cret", true}, // cached
		{"op", "S3cret", false},
		{"op", "", false},
		{"nobody", "s3cret", false},
		{"", "", false},
	}
	for _, c := range cases {
		acct, ok := a.check(c.user, c.pass)
		if ok != c.ok || (ok && acct.Customer != "1000") {
			t.Errorf("check(%q, %q) = %v, want %v", c.user, c.pass, ok, c.ok)
		}
	}
	for _, bad := range [][]Account{
		{{Username: "x", Password: "plain-text"}},
		{{Username: "", Password: string(h)}},
		{{Username: "x", Password: string(h)}, {Username: "x", Password: string(h)}},
	} {
		if _, err := newAccounts(bad); err == nil {
			t.Errorf("newAccounts(%+v) accepted", bad)
		} else if strings.Contains(err.Error(), "plain-text") {
			t.Errorf("error echoes the password: %v", err)
		}
	}
	if !sameCustomer(" 1000", "1000") || sameCustomer("1000", "100") {
		t.Error("sameCustomer")
	}
}

// Unknown users are checked against the hash of the highest cost, whatever
// its prefix ("$2y$04$" sorts after "$2a$06$"), and accounts of a lower
// cost are named.
func TestAccountsDummyHasMaxCost(t *testing.T) {
	h4, _ := bcrypt.GenerateFromPassword([]byte("four"), 4)
	h6, _ := bcrypt.GenerateFromPassword([]byte("six"), 6)
	y4 := "$2y$" + strings.TrimPrefix(string(h4), "$2a$")
	a, err := newAccounts([]Account{{Username: "cheap", Password: y4}, {Username: "dear", Password: string(h6)}})
	if err != nil {
		t.Fatal(err)
	}
	if cost, err := bcrypt.Cost(a.dummy); err != nil || cost != 6 {
		t.Errorf("dummy hash cost %d (%v), want 6", cost, err)
	}
	if len(a.cheaper) != 1 || a.cheaper[0] != "cheap" {
		t.Errorf("accounts of a lower cost: %v, want [cheap]", a.cheaper)
	}
	if _, ok := a.check("cheap", "four"); !ok {
		t.Error("the $2y$ account's password is refused")
	}
	if _, ok := a.check("nobody", "six"); ok {
		t.Error("an unknown user with the dummy hash's password is accepted")
	}
}

// An unknown username costs a bcrypt check at the highest cost, as much as
// a wrong password for the most expensive account (README, "Password
// guessing"): otherwise the answer's speed tells which names are accounts.
// At cost 10 a check takes tens of milliseconds; a refusal without one,
// microseconds.
func TestUnknownUserCostsAsMuchAsWrongPassword(t *testing.T) {
	h, _ := bcrypt.GenerateFromPassword([]byte("s3cret"), 10)
	a, err := newAccounts([]Account{{Username: "op", Password: string(h)}})
	if err != nil {
		t.Fatal(err)
	}
	// interleaved, the fastest of five each: a loaded machine slows both
	timed := func(user, pass string) time.Duration {
		start := time.Now()
		if _, ok := a.check(user, pass); ok {
			t.Fatalf("check(%q, %q) accepted", user, pass)
		}
		return time.Since(start)
	}
	wrong, unknown := time.Duration(1<<62), time.Duration(1<<62)
	for range 5 {
		wrong = min(wrong, timed("op", "wrong"))
		unknown = min(unknown, timed("nobody", "wrong"))
	}
	// a check at a cost 4 lower, or none, is 16 times faster or more
	if unknown < wrong/8 {
		t.Fatalf("an unknown username is refused in %v, a wrong password in %v: the name's existence shows", unknown, wrong)
	}
}

// An unknown username is logged as the first 12 hex digits of an HMAC under
// a key made at start, never as sent nor as a plain hash of it (README,
// logging: "nobody can test guesses against it"): the hash is not one
// anyone can compute from a guess, and another key gives another hash.
func TestUsernameHashIsKeyed(t *testing.T) {
	a, err := newAccounts(nil)
	if err != nil {
		t.Fatal(err)
	}
	const name = "Tr0ub4dor&3"
	f := a.logField(name)
	if f.Key != "username_hash" || len(f.String) != 12 || strings.Contains(f.String, name) {
		t.Fatalf("unknown username logged as %s=%q", f.Key, f.String)
	}
	for what, sum := range map[string][]byte{
		"SHA-256":               sha256Sum([]byte(name)),
		"HMAC under a zero key": hmacSum(make([]byte, 32), name),
		"HMAC under no key":     hmacSum(nil, name),
	} {
		if f.String == hex.EncodeToString(sum)[:12] {
			t.Errorf("username_hash is the %s of the name: anyone can test guesses against it", what)
		}
	}
	if f.String != hex.EncodeToString(hmacSum(logKey, name))[:12] {
		t.Errorf("username_hash %s is not the HMAC under the process's key", f.String)
	}
	if len(logKey) < 32 || bytes.Count(logKey, []byte{0}) == len(logKey) {
		t.Errorf("log key %x is not 32 random bytes", logKey)
	}
	if a.logField(name).String != f.String {
		t.Error("the same name hashes differently within one process")
	}
}

func sha256Sum(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

func hmacSum(key []byte, s string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return m.Sum(nil)
}
