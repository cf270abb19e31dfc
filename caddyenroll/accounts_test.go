package caddyenroll

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

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
	// a customer no request can send (digits, at most 20) would refuse
	// every request of the account
	for _, c := range []struct{ customer, err string }{
		{"1000", ""},
		{" 1000 ", ""},
		{"01234567890123456789", ""},
		{"ACME", `account "x": customer must be decimal digits, at most 20, not "ACME"`},
		{"-1", `not "-1"`},
		{"012345678901234567890", `at most 20, not "012345678901234567890"`},
	} {
		_, err := newAccounts([]Account{{Username: "x", Password: string(h), Customer: c.customer}})
		wantErr(t, err, c.err)
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
// The test sees the hash each check compares against and its cost, not
// the time it takes.
func TestUnknownUserCostsAsMuchAsWrongPassword(t *testing.T) {
	cheap, _ := bcrypt.GenerateFromPassword([]byte("four"), bcrypt.MinCost)
	dear, _ := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost+2)
	a, err := newAccounts([]Account{{Username: "cheap", Password: string(cheap)}, {Username: "op", Password: string(dear)}})
	if err != nil {
		t.Fatal(err)
	}
	var costs []int
	orig := compareHash
	compareHash = func(hash, password []byte) error {
		c, err := bcrypt.Cost(hash)
		if err != nil {
			t.Fatalf("compared against %q, not a bcrypt hash", hash)
		}
		costs = append(costs, c)
		return orig(hash, password)
	}
	defer func() { compareHash = orig }()
	for _, c := range []struct {
		user, pass string
		ok         bool
		cost       int
	}{
		{"op", "wrong", false, bcrypt.MinCost + 2},
		{"nobody", "wrong", false, bcrypt.MinCost + 2}, // the dearest account's cost
		{"nobody", "s3cret", false, bcrypt.MinCost + 2},
		{"cheap", "wrong", false, bcrypt.MinCost},
		{"op", "s3cret", true, bcrypt.MinCost + 2},
		{"nobody", "wrong", false, bcrypt.MinCost + 2}, // never from the cache
	} {
		costs = nil
		if _, ok := a.check(c.user, c.pass); ok != c.ok || len(costs) != 1 || costs[0] != c.cost {
			t.Errorf("check(%q, %q): ok %v with bcrypt checks at costs %v, want ok %v and one check at cost %d", c.user, c.pass, ok, costs, c.ok, c.cost)
		}
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
