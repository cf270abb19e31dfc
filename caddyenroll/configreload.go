package caddyenroll

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

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
