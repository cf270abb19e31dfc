package caddyenroll

import (
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
	if !sameCustomer(" 1000", "1000") || sameCustomer("1000", "100") {
		t.Error("sameCustomer")
	}
}
