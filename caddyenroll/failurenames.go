package caddyenroll

import (
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"sync"
)

// The failure record of a limiter key that holds a username (an account,
// an account at a known address) is named by PBKDF2-SHA-256 of the key
// under a salt the storage keeps (enroll/failures-salt, made once per
// storage): a username may be a password typed in the wrong field, and
// whoever can list the storage must not check guesses of it at the speed
// of a plain hash, nor with a table made once for every deployment. An
// address's record is named by a plain hash. Names are cached, so that a
// key pays the derivation once per process (its first failure). An
// account's record of known addresses (knownrecords.go) has the name of
// its failure record, under enroll/known/.

// failureNameIterations makes a derivation cost about as much as a bcrypt
// check at cost 9 (17 ms on the machines of the benchmarks).
const failureNameIterations = 100000

// maxFailureNames bounds the cache of record names; when full it is
// emptied.
const maxFailureNames = 10000

func failuresSaltKey() string { return path.Join(statePrefix, "failures-salt") }

// failureNames names failure records (stateStore.failuresKey).
type failureNames struct {
	mu    sync.Mutex
	salt  []byte
	names map[string]string // base names, by limiter key
}

// failuresKey is where limiterKey's record is.
func (s *stateStore) failuresKey(ctx context.Context, limiterKey string) (string, error) {
	if !strings.HasPrefix(limiterKey, "user:") && !strings.HasPrefix(limiterKey, "known:") {
		return path.Join(failuresDir(), hashKey("login failures", limiterKey)), nil
	}
	name, err := s.saltedName(ctx, limiterKey)
	if err != nil {
		return "", err
	}
	return path.Join(failuresDir(), name), nil
}

// nameCached reports whether limiterKey's record is named without a
// derivation: an address's, or one named since the cache was emptied.
func (s *stateStore) nameCached(limiterKey string) bool {
	if !strings.HasPrefix(limiterKey, "user:") && !strings.HasPrefix(limiterKey, "known:") {
		return true
	}
	n := &s.failureNames
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.names[limiterKey]
	return ok
}

// cachedName is limiterKey's salted name if the cache holds it: whoever
// must not derive it (outside a hash slot, hashwork.go) looks here first.
func (s *stateStore) cachedName(limiterKey string) (string, bool) {
	n := &s.failureNames
	n.mu.Lock()
	defer n.mu.Unlock()
	name, ok := n.names[limiterKey]
	return name, ok
}

// saltedName is the base name of the records of a limiter key that holds
// a username: its failures, and an account's known addresses
// (knownrecords.go) under the name of "user:" and its username.
func (s *stateStore) saltedName(ctx context.Context, limiterKey string) (string, error) {
	n := &s.failureNames
	n.mu.Lock()
	name, ok := n.names[limiterKey]
	salt := n.salt
	n.mu.Unlock()
	if ok {
		return name, nil
	}
	if salt == nil {
		var err error
		if salt, err = s.failuresSalt(ctx); err != nil {
			return "", err
		}
	}
	dk, err := pbkdf2.Key(sha256.New, limiterKey, salt, failureNameIterations, 32)
	if err != nil {
		return "", fmt.Errorf("naming a failure record: %w", err)
	}
	name = "u" + hex.EncodeToString(dk)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.names == nil || len(n.names) >= maxFailureNames {
		n.names = make(map[string]string)
	}
	n.salt, n.names[limiterKey] = salt, name
	return name, nil
}

// isSaltedName reports whether name is one saltedName makes: "u" and 64
// hex digits (a record of known addresses that names another, such as
// "..", must not have an unlock delete it).
func isSaltedName(name string) bool {
	if len(name) != 1+2*32 || name[0] != 'u' {
		return false
	}
	_, err := hex.DecodeString(name[1:])
	return err == nil
}

// failuresSalt reads the storage's salt of record names, making it (under
// a storage lock: every instance must name a key alike) if there is none.
func (s *stateStore) failuresSalt(ctx context.Context) ([]byte, error) {
	load := func() ([]byte, error) {
		b, err := s.st.Load(ctx, failuresSaltKey())
		if err != nil {
			return nil, err
		}
		if salt, err := hex.DecodeString(strings.TrimSpace(string(b))); err == nil && len(salt) >= 16 {
			return salt, nil
		}
		return nil, errors.New("the salt of failure records does not decode (delete it to make another)")
	}
	salt, err := load()
	if !errors.Is(err, fs.ErrNotExist) {
		return salt, err
	}
	const lock = "clearinghouse_enroll_failures_salt"
	if err := s.st.Lock(ctx, lock); err != nil {
		return nil, fmt.Errorf("locking the salt of failure records: %w", err)
	}
	defer func() { _ = s.st.Unlock(context.WithoutCancel(ctx), lock) }()
	if salt, err = load(); !errors.Is(err, fs.ErrNotExist) {
		return salt, err
	}
	salt = make([]byte, 32)
	rand.Read(salt)
	if err := s.st.Store(ctx, failuresSaltKey(), []byte(hex.EncodeToString(salt))); err != nil {
		return nil, fmt.Errorf("storing the salt of failure records: %w", err)
	}
	return salt, nil
}
