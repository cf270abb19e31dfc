package caddyenroll

import (
	"sync"

	"github.com/caddyserver/caddy/v2"
)

// The valid logins already checked are what lets a device log in without
// a bcrypt check, and so without a hash slot (hashwork.go): while a flood
// of guesses holds every slot, only they get through. They are kept for
// the process in credentialsPool, not per config, so that a `caddy
// reload` does not empty them: with a new cache, every device's next
// login needed a slot again and was refused with status 10 for as long as
// the flood lasted. A key is a SHA-256 of username, password and the
// account's hash (credentialKey), so an entry is valid in any config that
// has the account with the same hash; a changed hash or a removed account
// finds none.

// credentialCache is the set of valid logins checked, bounded by
// maxCachedCredentials (emptied when full).
type credentialCache struct {
	mu sync.RWMutex
	m  map[[32]byte]struct{}
}

func newCredentialCache() *credentialCache {
	return &credentialCache{m: make(map[[32]byte]struct{})}
}

func (c *credentialCache) has(key [32]byte) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	_, ok := c.m[key]
	return ok
}

func (c *credentialCache) add(key [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCachedCredentials {
		clear(c.m)
	}
	c.m[key] = struct{}{}
}

// Destruct lets credentialCache live in a caddy.UsagePool.
func (*credentialCache) Destruct() error { return nil }

// credentialsPool holds the process's cache while a config uses it; the
// last config's Cleanup lets it go.
var credentialsPool = caddy.NewUsagePool()

const credentialsPoolKey = "credentials"

// shareCredentialCache makes a's accounts use the process's cache of
// valid logins; a.Cleanup lets go of it.
func (a *App) shareCredentialCache() error {
	v, _, err := credentialsPool.LoadOrNew(credentialsPoolKey, func() (caddy.Destructor, error) {
		return newCredentialCache(), nil
	})
	if err != nil {
		return err
	}
	a.accounts.cache = v.(*credentialCache)
	a.credentialsHeld = true
	return nil
}
