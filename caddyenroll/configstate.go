package caddyenroll

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

// configState is the parsed configuration file shared by every handler.
// Readers take the read lock for the few field reads they need (the flags
// are an atomic snapshot, so call authorization never waits for a lock);
// edits change a copy of the parsed file, write it back atomically
// (comments and quoting of untouched lines preserved, backups rotated) and
// take the write lock only to put it in force: readers do not wait while
// a large file is written and synced. Edits from the server and from the operator go through one
// path: whenever the file on disk is newer than the version parsed, it is
// parsed again before anything else happens.
type configState struct {
	path    string
	backups int

	// onChange is called, under the write lock, with every new version of
	// the file (after an edit or a reload) and the devices that a reload
	// found newly disabled or gone.
	onChange func(f *configfile.File, disabled []string)
	// prepare, when set, is called without the file's lock with a version
	// an edit or a reload is about to put in force: what onChange derives
	// from it (the route table) is made there, and onChange only swaps it
	// in. The version may not be put in force after all (another came in
	// between, or an error): discard, when not nil, then drops what was
	// made for it, rather than have it kept until another version is put
	// in force (at a carrier's file, hundreds of megabytes).
	prepare func(f *configfile.File) (discard func())
	// onAddedDisabled, when set, is called like onChange with the devices
	// a new version adds as disabled: one approved while the file lacked
	// it holds a certificate (its mark deferred while the file did not
	// parse, say) that the operator's version disabling it revokes.
	onAddedDisabled func(devices []string)
	// onRespelled, when set, is called like onChange with the devices a new
	// version spells otherwise (the old and the new name of each)
	onRespelled func(respelled [][2]string)
	// afterChange, when set, is called under the write lock after
	// onChange: what is derived from onChange's work (the index of sources
	// by transaction-id tag) starts being made again, off the lock
	afterChange func()

	flagsNow atomic.Pointer[flags]

	// edits is the process-wide lock of the file's edits: during a reload
	// the old and the new config each have a configState on one file
	edits *sync.Mutex
	// lockFile, when set, is the lock of the file's edits across the
	// instances that share it (a storage lock), taken after edits
	lockFile func(ctx context.Context) (unlock func(), err error)

	// enablings is when devices were enabled again, shared by the file's
	// configStates (nil: not kept)
	enablings *enabledLog

	// settle is how long a version written in place (not renamed into
	// place) must have been left alone before it is taken: such an editor
	// leaves the file empty or cut short for a moment, and that version may
	// parse, without the devices after the cut (which would count as
	// removed, and have their certificates revoked)
	settle    time.Duration
	settleMu  sync.Mutex
	sighted   fileVersion // the last unsettled version seen, and when
	sightedAt time.Time

	mu   sync.RWMutex
	file *configfile.File
	ver  fileVersion // the version of file
	own  fileVersion // the last version this configState wrote (whole: renamed into place)
	bad  fileVersion // the last version on disk that did not parse

	reported string // the error reload returned last (only the watcher calls reload)
}

// fileVersion tells versions of the file on disk apart: its time and size,
// and which file it is (every save renames a new file into place, so two
// saves within the clock's resolution are still told apart).
type fileVersion struct {
	mod  time.Time
	size int64
	info os.FileInfo // nil: no version
}

// is reports whether v and o are the same version.
func (v fileVersion) is(o fileVersion) bool {
	if v.info == nil || o.info == nil {
		return v.info == nil && o.info == nil
	}
	return v.mod.Equal(o.mod) && v.size == o.size && os.SameFile(v.info, o.info)
}

func (cs *configState) stat() (fileVersion, error) {
	return statConfigFile(cs.path)
}

func statConfigFile(path string) (fileVersion, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileVersion{}, fmt.Errorf("configuration file: %v", err)
	}
	if fi.IsDir() {
		return fileVersion{}, fmt.Errorf("configuration file: %s is a directory", path)
	}
	return fileVersion{fi.ModTime(), fi.Size(), fi}, nil
}

// editLocks holds the edit lock of each configuration file, by absolute path.
var editLocks sync.Map

func editLock(path string) *sync.Mutex {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	m, _ := editLocks.LoadOrStore(path, new(sync.Mutex))
	return m.(*sync.Mutex)
}

// configFileLock is the storage lock of a configuration file's edits, by
// its absolute path: instances sharing the storage and the file (on one
// host, or on a shared file system) write it one at a time.
func configFileLock(st certmagic.Storage, path string) func(ctx context.Context) (func(), error) {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	name := "clearinghouse_config_" + hashKey("configuration file", path)[:32]
	return func(ctx context.Context) (func(), error) {
		if err := st.Lock(ctx, name); err != nil {
			return nil, err
		}
		return func() { _ = st.Unlock(context.WithoutCancel(ctx), name) }, nil
	}
}

// openStates holds, by absolute path, the configStates of a file that the
// configs of this process use (during a reload the old and the new): an
// edit through one puts its version in force in the others at once, as the
// previous config's last enrollments mark devices the new one must see
// enrolled, whether it watches the file or not.
var openStates sync.Map // absolute path -> *stateSet

type stateSet struct {
	mu sync.Mutex
	m  map[*configState]bool
	// the crypto item of the last version of the file on disk that this
	// process wrote or read whole (see cryptoOnDisk)
	diskVer    fileVersion
	diskCrypto string
}

// noteCrypto remembers the crypto item of version v of the file.
func (s *stateSet) noteCrypto(v fileVersion, crypto string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.diskVer, s.diskCrypto = v, crypto
}

// cryptoOf returns the crypto item of version v, if it is the one noted.
func (s *stateSet) cryptoOf(v fileVersion) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v.info == nil || !v.is(s.diskVer) {
		return "", false
	}
	return s.diskCrypto, true
}

func stateSetOf(path string) *stateSet {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	v, _ := openStates.LoadOrStore(path, &stateSet{m: map[*configState]bool{}})
	return v.(*stateSet)
}

// join makes cs one of the file's open configStates, until leave.
func (cs *configState) join() {
	s := stateSetOf(cs.path)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[cs] = true
}

func (cs *configState) leave() {
	s := stateSetOf(cs.path)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, cs)
}

// tellOthers puts the version cs wrote in force in the file's other open
// configStates (an error is the watcher's to report). The caller holds
// the edit lock: their polls would skip while any edit runs, and a config
// that does not watch the file would keep the version before this edit
// if that edit failed; held, the others also take the versions in the
// order they were written.
func (cs *configState) tellOthers() {
	s := stateSetOf(cs.path)
	s.mu.Lock()
	others := make([]*configState, 0, len(s.m))
	for o := range s.m {
		if o != cs {
			others = append(others, o)
		}
	}
	s.mu.Unlock()
	for _, o := range others {
		_, _ = o.pollEditsHeld(true)
	}
}

func loadConfigState(path string, backups int) (*configState, error) {
	if backups == 0 {
		backups = -1 // configfile: 0 means its default, negative means none
	}
	cs := &configState{path: path, backups: backups, edits: editLock(path), settle: defaultSettle}
	f, v, err := readConfigFile(path)
	if err != nil {
		return nil, err
	}
	cs.file, cs.ver = f, v
	cs.flagsNow.Store(flagsOf(f))
	cs.enablings = enablingsOf(path)
	cs.enablings.observe(f, time.Now())
	return cs, nil
}

// enabledAgainSince returns when device was seen enabled again after
// seenDisabled, if it was and still is.
func (cs *configState) enabledAgainSince(device string, seenDisabled time.Time) (time.Time, bool) {
	if cs == nil || cs.enablings == nil {
		return time.Time{}, false
	}
	return cs.enablings.enabledAgainSince(device, seenDisabled)
}

// read calls fn with the current file under the read lock. fn must not
// keep references to the file's slices past its return.
func (cs *configState) read(fn func(f *configfile.File)) {
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	fn(cs.file)
}

// flags is a snapshot of the file's switches.
type flags struct {
	Enroll, Routing, CDRs, SSL bool
}

func flagsOf(f *configfile.File) *flags {
	return &flags{Enroll: f.Enroll, Routing: f.Routing, CDRs: f.CDRs, SSL: f.SSL}
}

func (cs *configState) flags() flags { return *cs.flagsNow.Load() }

// deviceInfo is a copy of a device line.
type deviceInfo struct {
	Name, Group       string
	Enabled, Enrolled bool
	Known             bool
}

// device finds a device line by any spelling of its name (File.Device
// matches by configfile.DeviceKey); Name is the name as the file writes it
// when the device is known.
func (cs *configState) device(name string) deviceInfo {
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	d, ok := cs.file.Device(name)
	if !ok {
		return deviceInfo{Name: name}
	}
	return deviceInfo{Name: d.Name, Group: d.Group, Enabled: d.Enabled, Enrolled: d.Enrolled, Known: true}
}
