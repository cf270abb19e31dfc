package caddyenroll

import (
	"encoding/binary"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// The cache of valid logins: a login checked valid is found there (and
// then needs no hash slot); an unknown username is never taken as cached,
// whatever the cache holds under the dummy hash its check uses; and the
// cache stays within maxCachedCredentials.
func TestCredentialCacheEdges(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	accts, err := newAccounts([]Account{{Username: "dev", Password: string(hash)}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name       string
		setup      func()
		user, pass string
		want       bool
	}{
		{"not checked yet", func() {}, "dev", "pw", false},
		{"checked valid", func() { accts.check("dev", "pw") }, "dev", "pw", true},
		{"checked invalid", func() { accts.check("dev", "guess") }, "dev", "guess", false},
		{"unknown username under the dummy hash", func() { accts.cache.add(credentialKey("nobody", "pw", accts.dummy)) }, "nobody", "pw", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.setup()
			if acct, ok := accts.cached(c.user, c.pass); ok != c.want || (ok && acct.Username != c.user) {
				t.Errorf("cached(%q): %v, %v; want %v", c.user, acct, ok, c.want)
			}
		})
	}

	cache := newCredentialCache()
	for i := range maxCachedCredentials + 1 {
		var k [32]byte
		binary.BigEndian.PutUint32(k[:], uint32(i))
		cache.add(k)
		if n := len(cache.m); n > maxCachedCredentials {
			t.Fatalf("%d logins cached, want at most %d", n, maxCachedCredentials)
		}
	}
}
