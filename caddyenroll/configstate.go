package caddyenroll

import (
	"context"
	"errors"
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

// errFileUnavailable marks edits refused because the file on disk does not
// parse or cannot be written, as opposed to edits that are wrong in
// themselves.
var errFileUnavailable = errors.New("configuration file unavailable")

// edit applies fn and writes the file back when fn succeeds. A version on
// disk that is newer than the parsed one is parsed first (before the
// file's lock is taken: parseAhead), so an operator's edit is never
// overwritten; if it does not parse, the edit is refused
// (errFileUnavailable). An operator's save that lands while the new
// version is being written (the operator takes no lock) is found just
// before the new version would replace it, or (on Linux) just after, by
// the version the new one displaced: fn is applied again to the
// operator's version.
//
// Edits of one file run one at a time in the process, whichever
// configState makes them, and across the instances sharing the file under
// lockFile: each parses the other's write before its own.
func (cs *configState) edit(ctx context.Context, fn func(f *configfile.File) error) error {
	return cs.editFile(ctx, false, fn)
}

// editSettled is edit for the edits an operator's session may overlap
// (marks, an administrator's changes): it also waits until a version
// others saved has been left alone for settle (syncSettledLocked).
// Recording the CA at start does not wait: instances starting together
// on one file would hold each other up.
func (cs *configState) editSettled(ctx context.Context, fn func(f *configfile.File) error) error {
	return cs.editFile(ctx, true, fn)
}

func (cs *configState) editFile(ctx context.Context, settled bool, fn func(f *configfile.File) error) error {
	cs.edits.Lock()
	defer cs.edits.Unlock()
	err := cs.editFileLocked(ctx, settled, fn)
	if err == nil {
		cs.tellOthers()
	}
	return err
}

// editFileLocked is editFile's edit, under the edit lock.
func (cs *configState) editFileLocked(ctx context.Context, settled bool, fn func(f *configfile.File) error) error {
	if cs.lockFile != nil {
		unlock, err := cs.lockFile(ctx)
		if err != nil {
			return fmt.Errorf("%w: locking %s: %v", errFileUnavailable, cs.path, err)
		}
		defer unlock()
	}
	for try := 1; ; try++ {
		work, ver, err := cs.workingCopy(settled, cs.parseAhead())
		if err != nil {
			return fmt.Errorf("%w: %w", errFileUnavailable, err)
		}
		if err := fn(work); err != nil {
			return err
		}
		// written without cs.mu: readers go on with the version in force
		// (a carrier's file takes a good part of a second to write and
		// sync); only an edit (this one: edits is held) or the watcher,
		// which waits for edits (poll), puts another version in force
		mode := os.FileMode(0o640)
		if fi, err := os.Stat(cs.path); err == nil {
			mode = fi.Mode().Perm()
		}
		var written fileVersion
		err = work.Save(cs.path, configfile.SaveOptions{Backups: cs.backups, Mode: mode,
			// an operator's save after the check below is swapped back
			// (where the system can), not written over
			Replaces: ver.info,
			BeforeReplace: func(fi os.FileInfo) error {
				if v, err := cs.stat(); err != nil || !v.is(ver) {
					return errReplacedMeanwhile
				}
				// the version now parsed, even if an operator's save
				// replaces it before Save returns (the watcher then sees it)
				written = fileVersion{fi.ModTime(), fi.Size(), fi}
				stateSetOf(cs.path).noteCrypto(written, work.Crypto)
				return nil
			}})
		if err != nil && written.info != nil {
			stateSetOf(cs.path).noteCrypto(fileVersion{}, "") // not on disk after all
		}
		if err == nil {
			// no other version is put in force while the edit lock is held
			cs.prepareFor(work)
			cs.mu.Lock()
			defer cs.mu.Unlock()
			cs.file, cs.ver, cs.own = work, written, written
			cs.changedLocked(nil)
			return nil
		}
		// not written: the disk holds what was parsed (still in force), or
		// another version. A device that fn added is not a device the
		// disk lost (which a reload takes as disabled).
		if (errors.Is(err, errReplacedMeanwhile) || errors.Is(err, configfile.ErrReplaced)) && try < maxEditTries {
			continue // the operator saved meanwhile: edit that version
		}
		cs.mu.Lock()
		_ = cs.syncLocked() // follow the disk, whatever it holds now (a write in place still settles first)
		cs.mu.Unlock()
		return fmt.Errorf("%w: writing %s: %v", errFileUnavailable, cs.path, err)
	}
}

// workingCopy brings the version in force up to date with the disk (see
// edit) and returns a copy of it for an edit, with its version. The copy
// shares what the edit does not change (configfile.File.Snapshot). ahead,
// when not nil, is the version on disk parsed before the lock was taken
// (parseAhead): put in force if the disk still holds it, else the disk
// is parsed again here.
func (cs *configState) workingCopy(settled bool, ahead *aheadVersion) (*configfile.File, fileVersion, error) {
	f, v, err := cs.syncForEdit(settled, ahead)
	if err != nil {
		return nil, fileVersion{}, err
	}
	// copied without cs.mu (at a carrier's 100,000 devices the copy is
	// megabytes, which lookups would wait for): the version in force is
	// never modified, and only an edit, under the edit lock this one
	// holds, snapshots it (Snapshot notes the sharing in it) or puts
	// another in force
	return snapshotForEdit(f), v, nil
}

// snapshotForEdit copies the version in force for an edit; tests wrap it.
var snapshotForEdit = (*configfile.File).Snapshot

// syncForEdit is workingCopy's part under cs.mu: the version in force,
// up to date with the disk.
func (cs *configState) syncForEdit(settled bool, ahead *aheadVersion) (*configfile.File, fileVersion, error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if ahead != nil && cs.ver.is(ahead.cur) {
		if v, err := cs.stat(); err == nil && v.is(ahead.v) {
			if ahead.err != nil {
				return nil, fileVersion{}, ahead.err // as the sync would find it
			}
			if cs.file == ahead.change.base {
				cs.putInForceLocked(ahead.f, ahead.v, ahead.change)
				ahead = nil
			}
		}
	}
	if ahead != nil {
		ahead.discard() // replaced on disk meanwhile: never put in force
	}
	sync := cs.syncLocked
	if settled {
		sync = cs.syncSettledLocked
	}
	if err := sync(); err != nil {
		return nil, fileVersion{}, err
	}
	return cs.file, cs.ver, nil
}

// aheadVersion is a version on disk (v) other than the one in force
// (cur), parsed and compared with it by an edit before the file's lock is
// taken; or the error that says it is invalid.
type aheadVersion struct {
	v, cur fileVersion
	f      *configfile.File
	change versionChange
	err    error // parseError
	// drops what prepare made for f, if it is not put in force
	discard func()
}

// parseAhead parses the version on disk, when it is not the one in force,
// without the file's lock: an edit that meets an operator's save (before
// the watcher took it) would otherwise parse it, and compare it and make
// its route table, holding the lock (at a carrier's 30 MB, most of a
// second during which enrollments' lookups wait). It also compares it
// with the version in force and has what onChange derives from it made
// (prepare), as a reload does. nil when the disk holds the version in
// force, one known not to parse, one that may still be being written in
// place, or what cannot be read now: the sync under the lock decides, as
// it does when the disk changes again meanwhile. The caller holds the
// edit lock: no other version is put in force meanwhile.
func (cs *configState) parseAhead() *aheadVersion {
	v, err := cs.stat()
	if err != nil {
		return nil
	}
	cs.mu.RLock()
	cur, curFile, bad := cs.ver, cs.file, cs.bad
	cs.mu.RUnlock()
	if v.is(cur) || v.is(bad) || cs.unsettled(v, cur) {
		return nil
	}
	f, err := cs.parse(v)
	if parseError(err) {
		return &aheadVersion{v: v, cur: cur, err: err, discard: func() {}}
	}
	if err != nil {
		return nil
	}
	ahead := &aheadVersion{v: v, cur: cur, f: f, change: cs.compare(curFile, f)}
	ahead.discard = cs.prepareFor(f)
	return ahead
}

// syncSettledLocked is syncLocked for an edit, which writes the version
// it parses back: it also waits (not holding cs.mu) while that version is
// one others made less than settle ago. Editors that move the original
// away and write a new file (vim's and emacs's default) leave a new file
// cut short at the path for a moment, which the watcher may take (a device
// missing from it is revoked only once the file has settled without it);
// written back with an enrolled mark, it would lose the rest for good.
func (cs *configState) syncSettledLocked() error {
	for waited := time.Duration(0); ; waited += cs.settle / 4 {
		if err := cs.syncLocked(); err != nil {
			return err
		}
		if cs.ver.is(cs.own) || !cs.fresh(cs.ver) {
			return nil
		}
		if waited >= 3*cs.settle {
			return cs.beingWritten(cs.ver)
		}
		cs.mu.Unlock()
		time.Sleep(cs.settle / 4)
		cs.mu.Lock()
	}
}

// errReplacedMeanwhile refuses to write the file over a version saved
// since the one parsed.
var errReplacedMeanwhile = errors.New("the file was replaced while the new version was being written")

// maxEditTries bounds how many times an edit starts over from a version an
// operator saved while it was written.
const maxEditTries = 5

// defaultSettle is configState.settle: an in-place write that stalls
// longer than this may be taken cut short.
const defaultSettle = time.Second

// unsettled reports whether v, a version others wrote over cur (the one
// parsed), may still be being written: the same file written in place,
// modified less than settle ago. A version renamed into place (as the
// server, other instances and most editors save) is whole at once. A
// version whose time is in the future (another host's clock, on a shared
// file system) is taken once it has been seen unchanged for settle.
func (cs *configState) unsettled(v, cur fileVersion) bool {
	if v.info == nil || cur.info == nil || !os.SameFile(v.info, cur.info) {
		return false
	}
	return cs.fresh(v)
}

// fresh reports whether v was modified less than settle ago (or, with a
// time in the future, has not been seen unchanged for settle yet).
func (cs *configState) fresh(v fileVersion) bool {
	if cs.settle <= 0 {
		return false
	}
	now := time.Now()
	if age := now.Sub(v.mod); age >= cs.settle {
		return false
	}
	cs.settleMu.Lock()
	defer cs.settleMu.Unlock()
	if v.is(cs.sighted) {
		return now.Sub(cs.sightedAt) < cs.settle
	}
	cs.sighted, cs.sightedAt = v, now
	return true
}

// errEmptied refuses a version of the file that is empty: a write cut
// short, not a configuration (it would disable every device).
var errEmptied = errors.New("the file is empty (a write cut short?), which is never taken")

// syncLocked parses the file again when the disk holds another version
// than the parsed one, once that version has settled (waiting for it up to
// a few settle times); an invalid version is returned as the error and
// leaves the parsed one in force.
func (cs *configState) syncLocked() error {
	return retryChangedWhileRead(cs.syncOnceLocked)
}

// retryChangedWhileRead runs read again while the file changed under it
// (errChangedWhileRead), maxEditTries times in all.
func retryChangedWhileRead(read func() error) error {
	for try := 1; ; try++ {
		err := read()
		if !errors.Is(err, errChangedWhileRead) || try == maxEditTries {
			return err
		}
	}
}

// beingWritten refuses to wait longer for version v to settle.
func (cs *configState) beingWritten(v fileVersion) error {
	return fmt.Errorf("%s is being written (modified %v ago); try again", cs.path, time.Since(v.mod).Round(time.Millisecond))
}

func (cs *configState) syncOnceLocked() error {
	v, err := cs.stat()
	if err != nil {
		return err
	}
	for waited := time.Duration(0); !v.is(cs.ver) && cs.unsettled(v, cs.ver); waited += cs.settle / 4 {
		if waited >= 3*cs.settle {
			return cs.beingWritten(v)
		}
		time.Sleep(cs.settle / 4)
		if v, err = cs.stat(); err != nil {
			return err
		}
	}
	if v.is(cs.ver) {
		return nil
	}
	f, err := cs.parse(v)
	if err != nil {
		return err
	}
	cs.replaceLocked(f, v)
	return nil
}

// parse parses the file on disk, whose version is v; an emptied file is
// refused, and so is what was read if the file is no longer v (an editor
// truncated or replaced it after it was stat'ed: errChangedWhileRead).
func (cs *configState) parse(v fileVersion) (*configfile.File, error) {
	return parseConfigVersion(cs.path, v)
}

func parseConfigVersion(path string, v fileVersion) (*configfile.File, error) {
	if v.size == 0 {
		return nil, fmt.Errorf("%s: %w", path, errEmptied)
	}
	f, err := parseConfigFile(path)
	if now, serr := statConfigFile(path); serr != nil || !now.is(v) {
		return nil, errChangedWhileRead
	}
	return f, err
}

// readConfigFile reads and parses the configuration file at path as the
// server takes it at a start or a reload (and `caddy enroll check` checks
// it): an empty file is refused (errEmptied), and a file that changed
// while it was read is read again.
func readConfigFile(path string) (*configfile.File, fileVersion, error) {
	var f *configfile.File
	var v fileVersion
	err := retryChangedWhileRead(func() (err error) {
		if v, err = statConfigFile(path); err != nil {
			return err
		}
		f, err = parseConfigVersion(path, v)
		return err
	})
	if err != nil {
		return nil, fileVersion{}, err
	}
	return f, v, nil
}

// cryptoOnDisk is the crypto item of the version of the file on disk,
// not the version in force: what another instance sharing the file may
// have recorded since this one read it. The file is parsed only for a
// version neither in force nor written or parsed by this process already:
// an enrollment asks for it whenever the version in force is not the one
// on disk (as while a mark's version is put in force), and parsing a
// carrier's 30 MB file for each held enrollments to a dozen a second.
func (cs *configState) cryptoOnDisk() (string, error) {
	set := stateSetOf(cs.path)
	if v, err := cs.stat(); err == nil {
		cs.mu.RLock()
		inForce, crypto := v.is(cs.ver), cs.file.Crypto
		cs.mu.RUnlock()
		if inForce {
			return crypto, nil
		}
		if crypto, ok := set.cryptoOf(v); ok {
			return crypto, nil
		}
	}
	f, v, err := readConfigFile(cs.path)
	if err != nil {
		return "", err
	}
	set.noteCrypto(v, f.Crypto)
	return f.Crypto, nil
}

// errChangedWhileRead refuses what was read of a file that changed
// meanwhile.
var errChangedWhileRead = errors.New("the file changed while it was read")

// parseError reports whether err says what the file holds is invalid, not
// that it could not be read.
func parseError(err error) bool {
	var el configfile.ErrorList
	return errors.As(err, &el) || errors.Is(err, errEmptied)
}

// parseConfigFile is configfile.ParseFile (a variable for tests).
var parseConfigFile = configfile.ParseFile

// replaceLocked puts a newly parsed version in force.
func (cs *configState) replaceLocked(f *configfile.File, v fileVersion) {
	cs.putInForceLocked(f, v, cs.compare(cs.file, f))
}

// versionChange is what a new version changes against the one in force
// (base): made by compare before the file's lock is taken, as a reload
// does (at a carrier's 100,000 devices, the comparisons take a good part
// of a tenth of a second that enrollments' lookups would wait for).
type versionChange struct {
	base      *configfile.File
	disabled  []string    // devices base enables that the new version disables or lacks
	added     []string    // devices the new version adds as disabled
	respelled [][2]string // devices it spells otherwise: the old and the new name
	enabled   observation // for the file's enablings (nil: not kept)
}

// compare finds what f changes against base, the version in force; it
// only reads both (cs.enablings has its own lock), so a reload runs it
// without cs.mu and the edits' lock.
func (cs *configState) compare(base, f *configfile.File) versionChange {
	c := versionChange{base: base}
	for i := range base.Devices {
		d := &base.Devices[i]
		if !d.Enabled {
			continue
		}
		if nd, ok := f.Device(d.Name); !ok || !nd.Enabled {
			c.disabled = append(c.disabled, d.Name)
		}
	}
	for i := range f.Devices {
		d := &f.Devices[i]
		old, ok := base.Device(d.Name)
		switch {
		case !ok && !d.Enabled:
			c.added = append(c.added, d.Name)
		case ok && old.Name != d.Name:
			c.respelled = append(c.respelled, [2]string{old.Name, d.Name})
		}
	}
	if cs.enablings != nil {
		c.enabled = cs.enablings.prepare(f)
	}
	return c
}

// putInForceLocked puts f, version v, in force with c, compared against
// the version in force (compare).
func (cs *configState) putInForceLocked(f *configfile.File, v fileVersion, c versionChange) {
	if c.base != cs.file {
		c = cs.compare(cs.file, f) // not the version it was compared with: never happens (callers check)
	}
	cs.file, cs.ver = f, v
	if cs.enablings != nil {
		cs.enablings.record(c.enabled, time.Now())
	}
	cs.changedLocked(c.disabled)
	if len(c.added) > 0 && cs.onAddedDisabled != nil {
		cs.onAddedDisabled(c.added)
	}
	if len(c.respelled) > 0 && cs.onRespelled != nil {
		cs.onRespelled(c.respelled)
	}
}

// prepareFor has what onChange derives from f, a version about to be put
// in force, made before the file's lock is taken (prepare). The caller
// calls discard if f is not put in force after all.
func (cs *configState) prepareFor(f *configfile.File) (discard func()) {
	cs.mu.RLock()
	prepare := cs.prepare
	cs.mu.RUnlock()
	if prepare != nil {
		discard = prepare(f)
	}
	if discard == nil {
		discard = func() {}
	}
	return discard
}

func (cs *configState) changedLocked(disabled []string) {
	cs.flagsNow.Store(flagsOf(cs.file))
	if cs.onChange != nil {
		cs.onChange(cs.file, disabled)
	}
	if cs.afterChange != nil {
		cs.afterChange()
	}
}

// reload parses the file again if it changed on disk, and reports whether
// a new version is in force. An error is reported once while it lasts (a
// missing file is not logged at every poll).
func (cs *configState) reload() (bool, error) {
	changed, err := cs.poll()
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if err != nil && msg == cs.reported {
		return changed, nil
	}
	cs.reported = msg
	return changed, err
}

// poll is reload without the reporting. The parse, the comparison with
// the version in force (compare) and what onChange derives from the new
// version (prepare: the route table) run without the lock, so readers go
// on meanwhile: the lock is held to swap the versions and for onChange. A
// version is not put in force while an edit runs (it syncs with the disk
// itself, and the next poll decides), nor once the disk holds another
// (the operator saved again meanwhile: the next poll decides).
func (cs *configState) poll() (bool, error) {
	return cs.pollEditsHeld(false)
}

// pollEditsHeld is poll; held says the caller holds the edit lock
// (tellOthers, which has the version on disk taken: it is polled again
// when the operator saved while it was read, as an edit syncs; the
// watcher's next poll decides otherwise).
func (cs *configState) pollEditsHeld(held bool) (bool, error) {
	for try := 1; ; try++ {
		taken, err := cs.pollOnce(held)
		if !errors.Is(err, errChangedWhileRead) {
			return taken, err
		}
		if !held || try == maxEditTries {
			return false, nil
		}
	}
}

// pollOnce is pollEditsHeld's poll: errChangedWhileRead when the disk
// changed while the version was read or made ready (never put in force
// then: the devices it disables would be revoked).
func (cs *configState) pollOnce(held bool) (taken bool, err error) {
	v, err := cs.stat()
	if err != nil {
		return false, err
	}
	cs.mu.RLock()
	cur, curFile, bad := cs.ver, cs.file, cs.bad
	cs.mu.RUnlock()
	if v.is(cur) || v.is(bad) || cs.unsettled(v, cur) {
		return false, nil // the same, known bad, or maybe being written: the next poll decides
	}
	if !held {
		// an edit in progress syncs with the disk itself, and what is on
		// disk may be its own version, written but not in force yet
		// while its route table is made: not parsed here for nothing
		if !cs.edits.TryLock() {
			return false, nil
		}
		cs.edits.Unlock()
	}
	f, perr := cs.parse(v)
	if errors.Is(perr, errChangedWhileRead) {
		return false, perr
	}
	// compared with the version in force before the lock is taken: only
	// the swap waits for readers, and holds them up
	var change versionChange
	if perr == nil {
		change = cs.compare(curFile, f)
		discard := cs.prepareFor(f)
		defer func() { // once the locks below are let go
			if !taken {
				discard()
			}
		}()
	}
	// an edit in progress syncs with the disk itself: the next poll decides
	if !held {
		if !cs.edits.TryLock() {
			return false, nil
		}
		defer cs.edits.Unlock()
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if !cs.ver.is(cur) || cs.file != curFile {
		return false, nil // an edit came in between; the next poll decides
	}
	if now, err := cs.stat(); err != nil || !now.is(v) {
		// the operator saved again while it was compared and its route
		// table made (a few tenths of a second at a carrier's file)
		return false, errChangedWhileRead
	}
	if perr != nil {
		if parseError(perr) { // one that cannot be read now may be later (its mode put back)
			cs.bad = v
		}
		return false, perr
	}
	cs.putInForceLocked(f, v, change)
	return true, nil
}

// current reports whether the parsed version is the one on disk.
func (cs *configState) current() bool {
	v, err := cs.stat()
	if err != nil {
		return false
	}
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	return v.is(cs.ver)
}

// enabledOnDisk reports which of names the file on disk lists enabled,
// whatever version is in force, once a version that parses has been left
// alone for settle (however it was written: in place or anew). It serves
// the rare checks that must not trust the version in force; nil when no
// such version shows within a few settle times.
func (cs *configState) enabledOnDisk(names []string) map[string]bool {
	var f *configfile.File
	step := max(cs.settle/10, 10*time.Millisecond)
	for deadline := time.Now().Add(5 * max(cs.settle, step)); f == nil; time.Sleep(step) {
		if time.Now().After(deadline) {
			return nil
		}
		v, err := cs.stat()
		if err != nil {
			continue
		}
		cs.mu.RLock()
		if v.is(cs.ver) && v.is(cs.own) { // the server's own write, in force: whole
			f = cs.file
		}
		cs.mu.RUnlock()
		if f != nil {
			break
		}
		if cs.fresh(v) {
			continue
		}
		if f, err = configfile.ParseFile(cs.path); err != nil {
			f = nil // cut mid-line, or an operator's mistake: look again
			continue
		}
		if now, err := cs.stat(); err != nil || !now.is(v) {
			f = nil // replaced while it was read
		}
	}
	out := make(map[string]bool, len(names))
	cs.mu.RLock() // f may be the file in force
	defer cs.mu.RUnlock()
	for _, n := range names {
		if d, ok := f.Device(n); ok && d.Enabled {
			out[n] = true
		}
	}
	return out
}

// editableOnDisk reports whether the version on disk can take an edit now:
// not one known not to parse, and not one being written in place.
func (cs *configState) editableOnDisk() bool {
	v, err := cs.stat()
	if err != nil {
		return false
	}
	cs.mu.RLock()
	cur, bad := cs.ver, cs.bad
	cs.mu.RUnlock()
	return !v.is(bad) && (v.is(cur) || !cs.unsettled(v, cur))
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
