package caddyenroll

import (
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
	fastest := func(user, pass string) time.Duration {
		best := time.Duration(1 << 62)
		for range 3 {
			start := time.Now()
			if _, ok := a.check(user, pass); ok {
				t.Fatalf("check(%q, %q) accepted", user, pass)
			}
			best = min(best, time.Since(start))
		}
		return best
	}
	wrong := fastest("op", "wrong")
	unknown := fastest("nobody", "wrong")
	if unknown < wrong/2 {
		t.Fatalf("an unknown username is refused in %v, a wrong password in %v: the name's existence shows", unknown, wrong)
	}
}
