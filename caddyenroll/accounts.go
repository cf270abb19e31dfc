package caddyenroll

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"

	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"

	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// Account is an operator account allowed to enroll devices (the seed's
// `username`, `password` and `customer` variables).
type Account struct {
	// The username devices send.
	Username string `json:"username"`
	// The password as a bcrypt hash, as `caddy hash-password` prints it.
	// Plain passwords are never accepted here.
	Password string `json:"password"`
	// The clearinghouse-assigned customer number of this account: decimal
	// digits, at most 20. When set, a request's `customer` variable must
	// equal it.
	Customer string `json:"customer,omitempty"`
}

// accounts checks credentials. bcrypt at `caddy hash-password`'s cost takes
// tens of milliseconds, so successful checks are cached by a SHA-256 of the
// username, password and hash (as Caddy's basic_auth does), for the
// process across reloads (credcache.go); failures are never cached.
type accounts struct {
	byName map[string]*Account
	dummy  []byte
	// the accounts whose hash has a lower bcrypt cost than the dummy: a
	// wrong password for one of them is answered faster than an unknown
	// username, which tells the name is an account's
	cheaper []string

	cache *credentialCache
}

const maxCachedCredentials = 10000

func newAccounts(list []Account) (*accounts, error) {
	a := &accounts{byName: make(map[string]*Account), cache: newCredentialCache()}
	costs := make([]int, len(list))
	maxCost := -1
	for i := range list {
		acct := &list[i]
		if acct.Username == "" {
			return nil, fmt.Errorf("account %d: username is required", i)
		}
		if _, dup := a.byName[acct.Username]; dup {
			return nil, fmt.Errorf("account %q is defined twice", acct.Username)
		}
		// (spaces around it are ignored, as sameCustomer does)
		if !wire.IsID(strings.TrimSpace(acct.Customer)) {
			// requests carry digits only: no request could match it
			return nil, fmt.Errorf("account %q: customer must be decimal digits, at most %d, not %q", acct.Username, wire.MaxIDLen, acct.Customer)
		}
		cost, err := bcrypt.Cost([]byte(acct.Password))
		if err != nil {
			return nil, fmt.Errorf("account %q: password must be a bcrypt hash (use `caddy hash-password`): %v", acct.Username, err)
		}
		a.byName[acct.Username] = acct
		costs[i] = cost
		// Unknown users are checked against the hash of the highest cost
		// (the result is discarded), so that no account costs more bcrypt
		// work than an unknown user. (The hashes' text does not order them
		// by cost: "$2y$04$" sorts after "$2a$10$".)
		if cost > maxCost {
			maxCost, a.dummy = cost, []byte(acct.Password)
		}
	}
	for i := range list {
		if costs[i] < maxCost {
			a.cheaper = append(a.cheaper, list[i].Username)
		}
	}
	if a.dummy == nil {
		h, err := bcrypt.GenerateFromPassword([]byte("no accounts"), bcrypt.MinCost)
		if err != nil {
			return nil, err
		}
		a.dummy = h
	}
	return a, nil
}

// compareHash checks a password against a bcrypt hash (a variable, so
// that tests can see which hash a check costs).
var compareHash = bcrypt.CompareHashAndPassword

// check returns the account when username and password are right.
func (a *accounts) check(username, password string) (*Account, bool) {
	if acct, ok := a.cached(username, password); ok {
		return acct, true
	}
	return a.verify(username, password)
}

// cached returns the account when username and password are a valid
// login already checked: no hash work.
func (a *accounts) cached(username, password string) (*Account, bool) {
	acct, known := a.byName[username]
	hash := a.dummy // an unknown username does the same work as a known one
	if known {
		hash = []byte(acct.Password)
	}
	hit := a.cache.has(credentialKey(username, password, hash))
	if !hit || !known {
		return nil, false
	}
	return acct, true
}

// verify checks username and password against the hash (an unknown
// username against the dummy), and caches a valid login.
func (a *accounts) verify(username, password string) (*Account, bool) {
	acct, known := a.byName[username]
	hash := a.dummy
	if known {
		hash = []byte(acct.Password)
	}
	err := compareHash(hash, []byte(password))
	if err != nil || !known {
		return nil, false
	}
	a.cache.add(credentialKey(username, password, hash))
	return acct, true
}

// logKey keys the hashes that name unknown usernames in the log. It is
// made once per process, so a hash cannot be checked against guesses by
// anyone who reads the log.
var logKey = func() []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic(err)
	}
	return k
}()

// logField is how the log names a username: as given when it is an
// account's; otherwise as username_hash, the first 12 hex digits of an
// HMAC-SHA-256 of it under logKey (a user who types the password into the
// username field must not put it in the log). The same name has the same
// hash until the process restarts.
func (a *accounts) logField(username string) zap.Field {
	if _, ok := a.byName[username]; ok {
		return zap.String("username", username)
	}
	m := hmac.New(sha256.New, logKey)
	m.Write([]byte(username))
	return zap.String("username_hash", hex.EncodeToString(m.Sum(nil))[:12])
}

func credentialKey(username, password string, hash []byte) [32]byte {
	h := sha256.New()
	fmt.Fprintf(h, "%d:%s:%d:", len(username), username, len(password))
	h.Write([]byte(password))
	h.Write(hash)
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// sameCustomer compares customer ids in constant time.
func sameCustomer(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(a)), []byte(strings.TrimSpace(b))) == 1
}
