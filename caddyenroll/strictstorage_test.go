package caddyenroll

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
)

func init() { caddy.RegisterModule(strictStorageModule{}) }

// strictStorage is a certmagic.Storage that promises only what the
// interface documents, for tests: a flat map of keys with no real
// directories. List synthesizes the direct children of a prefix (full
// keys, shuffled), a missing key or prefix is an error wrapping
// fs.ErrNotExist, Delete of a prefix deletes what is below it, locks are
// in memory. Its variants behave as storage modules do where they differ
// from the file storage:
//   - prefixList: List returns every key that starts with the prefix as a
//     string, at any depth and whatever recursive says (a database's
//     `key LIKE 'prefix%'`), and nothing for a missing prefix;
//   - slashDirs: List gives directories a trailing slash (S3's common
//     prefixes);
//   - shallowDelete: Delete removes the exact key only, a "directory"
//     stays with what is below it (caddy-storage-redis, database storages);
//   - noModified: Stat leaves KeyInfo.Modified zero (it is optional).
type strictStorage struct {
	prefixList, slashDirs, shallowDelete, noModified bool

	mu    sync.Mutex
	data  map[string]strictValue
	locks ca.Store // in memory: only its locks are used
}

type strictValue struct {
	v   []byte
	mod time.Time
}

func newStrictStorage() *strictStorage {
	return &strictStorage{data: map[string]strictValue{}, locks: ca.NewMemStore()}
}

func strictMissing(key string) error {
	return fmt.Errorf("strict storage: %q: %w", key, fs.ErrNotExist)
}

func (s *strictStorage) Store(_ context.Context, key string, value []byte) error {
	if key == "" || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") {
		return fmt.Errorf("strict storage: invalid key %q", key)
	}
	s.mu.Lock()
	s.data[key] = strictValue{v: bytes.Clone(value), mod: time.Now()}
	s.mu.Unlock()
	return nil
}

func (s *strictStorage) Load(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.data[key]
	if !ok {
		return nil, strictMissing(key)
	}
	return bytes.Clone(v.v), nil
}

func (s *strictStorage) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.data, key)
	if !s.shallowDelete {
		for k := range s.data {
			if strings.HasPrefix(k, key+"/") {
				delete(s.data, k)
			}
		}
	}
	return nil
}

// isDirLocked reports whether key is the prefix of a stored key.
func (s *strictStorage) isDirLocked(key string) bool {
	for k := range s.data {
		if strings.HasPrefix(k, key+"/") {
			return true
		}
	}
	return false
}

func (s *strictStorage) Exists(_ context.Context, key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.data[key]
	return ok || s.isDirLocked(key)
}

func (s *strictStorage) List(_ context.Context, prefix string, recursive bool) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := map[string]bool{}
	for k := range s.data {
		switch {
		case s.prefixList:
			if strings.HasPrefix(k, prefix) {
				set[k] = true
			}
		case strings.HasPrefix(k, prefix+"/"):
			rest := k[len(prefix)+1:]
			if recursive {
				set[k] = true
			} else if name, _, dir := strings.Cut(rest, "/"); dir && s.slashDirs {
				set[prefix+"/"+name+"/"] = true
			} else {
				set[prefix+"/"+name] = true
			}
		}
	}
	if len(set) == 0 && !s.prefixList {
		return nil, strictMissing(prefix)
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	rand.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	return keys, nil
}

func (s *strictStorage) Stat(_ context.Context, key string) (certmagic.KeyInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.data[key]; ok {
		info := certmagic.KeyInfo{Key: key, Size: int64(len(v.v)), IsTerminal: true}
		if !s.noModified {
			info.Modified = v.mod
		}
		return info, nil
	}
	if s.isDirLocked(key) {
		return certmagic.KeyInfo{Key: key}, nil
	}
	return certmagic.KeyInfo{}, strictMissing(key)
}

func (s *strictStorage) Lock(ctx context.Context, name string) error { return s.locks.Lock(ctx, name) }

func (s *strictStorage) Unlock(ctx context.Context, name string) error {
	return s.locks.Unlock(ctx, name)
}

// keys lists every stored key below prefix, sorted.
func (s *strictStorage) keys(prefix string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.data {
		if strings.HasPrefix(k, prefix+"/") {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// strictVariants are the strict storage and each of its variants, by name.
func strictVariants() map[string]func() *strictStorage {
	return map[string]func() *strictStorage{
		"strict":        newStrictStorage,
		"prefixList":    func() *strictStorage { s := newStrictStorage(); s.prefixList = true; return s },
		"slashDirs":     func() *strictStorage { s := newStrictStorage(); s.slashDirs = true; return s },
		"shallowDelete": func() *strictStorage { s := newStrictStorage(); s.shallowDelete = true; return s },
		"noModified":    func() *strictStorage { s := newStrictStorage(); s.noModified = true; return s },
	}
}

// strictStorageModule is the strict storage as a Caddy storage module,
// for tests that load the enroll app in-process: one storage per name, in
// strictStorages, of the variant named.
type strictStorageModule struct {
	Name    string `json:"name"`
	Variant string `json:"variant,omitempty"`
}

var strictStorages sync.Map // name → *strictStorage

func (strictStorageModule) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "caddy.storage.enroll_test_strict", New: func() caddy.Module { return new(strictStorageModule) }}
}

func (m *strictStorageModule) CertMagicStorage() (certmagic.Storage, error) {
	v := m.Variant
	if v == "" {
		v = "strict"
	}
	mk, ok := strictVariants()[v]
	if !ok {
		return nil, fmt.Errorf("unknown strict storage variant %q", v)
	}
	st, _ := strictStorages.LoadOrStore(m.Name, mk())
	return st.(*strictStorage), nil
}
