package caddyenroll

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

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
