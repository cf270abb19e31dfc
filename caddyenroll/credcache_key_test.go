package caddyenroll

import (
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// A cached login is valid for the same username, password and hash only:
// a wrong password as long as the right one (the key's lengths alone
// would match it), another account holding the same hash, or the account
// after its password changed (a new hash), find no entry, and so need a
// bcrypt check.
func TestCredentialCacheKeyBindsAll(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	rehash, _ := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	accts, err := newAccounts([]Account{{Username: "dev", Password: string(hash)}, {Username: "twin", Password: string(hash)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := accts.check("dev", "secret"); !ok {
		t.Fatal("the right password was refused")
	}
	for _, c := range []struct {
		name       string
		user, pass string
		hash       []byte
		want       bool
	}{
		{"the login checked", "dev", "secret", hash, true},
		{"wrong password of the same length", "dev", "sekret", hash, false},
		{"another account with the same hash", "twin", "secret", hash, false},
		{"password changed", "dev", "secret", rehash, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := accts.cache.has(credentialKey(c.user, c.pass, c.hash)); got != c.want {
				t.Errorf("cached: %v, want %v", got, c.want)
			}
		})
	}
}
