package caddyenroll

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

// Marking devices enrolled in the configuration file. Every first
// enrollment of a device rewrites the file; when many devices enroll at
// once (a fleet rollout), the marks that queue up while one write runs go
// into the next write together, so a storm of N enrollments costs a few
// rewrites, not N. While the file cannot be written (an operator's edit
// that does not parse, a full disk) the certificate is still delivered: the
// mark is kept in storage and applied once the file parses again.

// markBatcher coalesces marks: one caller at a time writes every mark
// queued so far, its own among them; the others wait for the write that
// carries theirs. After its write the writer hands over to the next waiter,
// so no caller writes for others for long.
type markBatcher struct {
	apply func(batch []mark) []error

	mu    sync.Mutex
	queue []markWaiter
	busy  bool
}

// marksDeferred tells that marks may be kept in storage (the configuration
// file was unavailable). It is the process's, not a config's: a mark the
// previous config defers after a reload is the new config's to apply.
var marksDeferred atomic.Bool

// applyingDeferredMarks counts the applications of kept marks under way
// (applyDeferredMarks) in the process.
var applyingDeferredMarks atomic.Int32

// marksMayWait tells that a kept mark may be written to the file at any
// moment: then the shortcuts that skip an edit because the version in
// force already has the device's flag as wanted (markEnrolled,
// unmarkRevoked) must not be taken. A kept unmark, read while the
// device's certificate was revoked, would clear the flag after an
// issuance had found it set and skipped its mark (and a kept mark set it
// after a revocation had found it clear): the device held a valid
// certificate and was not marked enrolled. Edits serialize on the file's
// lock, and a batch re-checks each mark there (applyMarkBatch). Another
// instance's kept marks are looked for in storage (flagAsWanted).
func marksMayWait() bool { return marksDeferred.Load() || applyingDeferredMarks.Load() > 0 }

// mark is one device to mark enrolled. Add is set for an approved device
// that the file did not list: it is added to Group. A listed device that
// is gone from the file by the time of the write (the operator removed it)
// is not brought back.
//
// Unmark clears the flag instead: a device whose certificates an
// administrator revoked while the file did not parse (only kept marks
// carry it).
type mark struct {
	Device string `json:"device"`
	Group  string `json:"group,omitempty"`
	Add    bool   `json:"add,omitempty"`
	Unmark bool   `json:"unmark,omitempty"`
	// the profile of the certificate an enrolled mark is for ("": any, as
	// earlier versions kept them)
	Profile string `json:"profile,omitempty"`
}

type markWaiter struct {
	mark
	done chan error
}

// errLead tells a waiting caller that it writes next.
var errLead = errors.New("write the queued marks")

// do queues m and returns once a write carrying it is done.
func (b *markBatcher) do(m mark) error {
	done := make(chan error, 1)
	b.mu.Lock()
	b.queue = append(b.queue, markWaiter{m, done})
	if b.busy {
		b.mu.Unlock()
		if err := <-done; err != errLead {
			return err
		}
		b.mu.Lock() // this caller writes now; busy stays set
	}
	b.busy = true
	batch := b.queue
	b.queue = nil
	b.mu.Unlock()

	marks := make([]mark, len(batch))
	for i, w := range batch {
		marks[i] = w.mark
	}
	errs := b.apply(marks)
	for i, w := range batch {
		w.done <- errs[i] // this caller's own too: its channel is empty again
	}

	b.mu.Lock()
	if len(b.queue) > 0 {
		b.queue[0].done <- errLead
	} else {
		b.busy = false
	}
	b.mu.Unlock()
	return <-done
}

// applyMarks writes a batch of marks in one edit of the file. A mark that
// fails on its own (an invalid name) does not hold back the others; when
// the file itself is unavailable every mark gets that error.
func (a *App) applyMarks(batch []mark) []error {
	_, errs := a.applyMarkBatch(batch)
	return errs
}

// applyMarkBatch is applyMarks, which also tells what each mark without an
// error did to the file.
func (a *App) applyMarkBatch(batch []mark) ([]markOutcome, []error) {
	outcomes := make([]markOutcome, len(batch))
	errs := make([]error, len(batch))
	// not cut short by Stop: during a reload the old config's last
	// enrollments still mark their devices
	ctx, cancel := context.WithTimeout(context.WithoutCancel(a.bgCtx), markLockWait)
	defer cancel()
	err := a.cfg.editSettled(ctx, func(f *configfile.File) error {
		changed := false
		fc := a.fileCryptoOf(f)
		for i, m := range batch {
			if !a.markHolds(ctx, m) {
				// the device's certificate was revoked (or, for an
				// unmark, it enrolled again) since the mark was made,
				// and the edit that did it may have found the flag
				// already as it wanted and skipped
				outcomes[i] = markMoot
				continue
			}
			if !m.Unmark && (fc.other[m.Profile] || m.Profile == "" && len(fc.other) > 0) {
				// a certificate of a CA the file no longer names: its device
				// is not enrolled with the file's (a cluster renewing its CA)
				a.log.Warn("device not marked enrolled: the configuration file names another CA than the one this server issued its certificate with; reload the server",
					zap.String("device", m.Device), zap.String("profile", m.Profile))
				outcomes[i] = markOtherCA
				if _, in := f.Device(m.Device); m.Add && !in {
					errs[i] = addDevice(f, m, false)
					changed = changed || errs[i] == nil
				}
				continue
			}
			outcomes[i], errs[i] = markIn(f, m)
			changed = changed || outcomes[i] == markWritten
		}
		if !changed {
			return errNothingToWrite
		}
		return nil
	})
	if err != nil && !errors.Is(err, errNothingToWrite) {
		for i := range errs {
			errs[i] = err
		}
	}
	return outcomes, errs
}

var errNothingToWrite = errors.New("no change")

// markLockWait bounds the wait for the file's storage lock of a batch of
// marks; past it the marks are deferred (kept in storage).
const markLockWait = time.Minute

// markOutcome is what a mark did to a version of the file.
type markOutcome int

const (
	markAsWanted markOutcome = iota // nothing: the device's flag was already as the mark wants it
	markWritten                     // the flag set or cleared, or the device added
	markNoDevice                    // nothing: the device is not in the file (and is not to be added)
	markOtherCA                     // not marked enrolled (an approved device added): the file names another CA
	markMoot                        // nothing: the mark no longer holds (the device's certificate revoked, or for an unmark the device enrolled again)
)

// markIn marks one device in f and reports what it did (f changed with
// markWritten only). The device is found as configState.device finds it:
// a line that spells its name otherwise is marked, not added again.
func markIn(f *configfile.File, m mark) (markOutcome, error) {
	if d, ok := f.Device(m.Device); ok {
		if d.Enrolled != m.Unmark {
			return markAsWanted, nil
		}
		if err := f.SetEnrolled(d.Name, !m.Unmark); err != nil {
			return markAsWanted, err
		}
		return markWritten, nil
	}
	if !m.Add || m.Unmark {
		return markNoDevice, nil
	}
	if err := addDevice(f, m, true); err != nil {
		return markAsWanted, err
	}
	return markWritten, nil
}

// addDevice adds an approved device to f, enabled, in its group (or the
// default group, if the file no longer has it).
func addDevice(f *configfile.File, m mark, enrolled bool) error {
	group := m.Group
	if _, ok := f.Group(group); !ok {
		group = configfile.DefaultGroup
	}
	return f.AddDevice(m.Device, group, true, enrolled)
}

// markEnrolled sets the device's enrolled flag; add (an approved device
// the file did not list) adds it, enabled, to group. When the file is
// unavailable the mark is deferred (kept in storage) and nil returned: the
// certificate is issued and recorded either way.
func (a *App) markEnrolled(ctx context.Context, device, group, profile string, add bool) error {
	// nothing to write, unless the file changed since it was parsed (an
	// operator may have removed the flag): the edit reads that version
	if a.flagAsWanted(ctx, device, true) {
		return nil
	}
	m := mark{Device: device, Group: group, Add: add, Profile: profile}
	err := a.marks.do(m)
	if !errors.Is(err, errFileUnavailable) {
		return err
	}
	return a.deferMark(ctx, m, err)
}

// flagAsWanted reports whether an edit setting the device's enrolled flag
// to enrolled can be skipped: the version in force has it so, that version
// is the one on disk, and no kept mark may be written over it meanwhile.
//
// marksMayWait knows this process's kept marks only: another instance
// sharing the storage and the file may be applying one, having checked
// the device's record (markHolds, under the file's lock) before this
// instance changed it, and its write would land after this check. Storage
// is asked, only when the shortcut would be taken: one Exists (two for a
// spelling earlier versions kept elsewhere) per issuance to a device the
// file marks already, or revocation by name of one it does not mark. It
// is asked before the version on disk is: an instance applying a kept
// mark deletes it after its write, which the version check then sees.
func (a *App) flagAsWanted(ctx context.Context, device string, enrolled bool) bool {
	asWanted := func() bool {
		d := a.cfg.device(device)
		return d.Enrolled == enrolled && (d.Known || !enrolled)
	}
	if !asWanted() || marksMayWait() || a.keptMarkMayExist(ctx, device) {
		return false
	}
	// the version in force read again after the check of the disk: a
	// reload between the two only brings a newer one
	return a.cfg.current() && asWanted()
}

// keptMarkMayExist reports whether storage may hold a kept mark of the
// device (any instance's).
func (a *App) keptMarkMayExist(ctx context.Context, device string) bool {
	for _, k := range []string{deferredMarkKey(device), legacyDeferredMarkKey(device)} {
		if k != "" && a.storage.Exists(ctx, k) {
			return true
		}
	}
	return false
}

// deferMark keeps m in storage, to be applied once the file can be edited again
// (cause is why it cannot be now). A device has one kept mark: the
// latest, made under the device's lock, replaces an earlier one.
func (a *App) deferMark(ctx context.Context, m mark, cause error) error {
	if err := a.state.storeJSON(ctx, deferredMarkKey(m.Device), m); err != nil {
		return fmt.Errorf("%v; keeping the mark for later: %v", cause, err)
	}
	if old := legacyDeferredMarkKey(m.Device); old != "" {
		_ = a.storage.Delete(ctx, old) // an earlier version's, replaced by this one
	}
	marksDeferred.Store(true)
	what := "marked enrolled"
	if m.Unmark {
		what = "marked not enrolled"
	}
	// kept all the same (another instance may have cleared the flag in a
	// version this one has not read), but not worth a warning: a device
	// asking again for its issued certificate while the file is invalid
	level := zap.WarnLevel
	if d := a.cfg.device(m.Device); d.Known && d.Enrolled != m.Unmark {
		level = zap.DebugLevel
	}
	if ce := a.log.Check(level, "configuration file unavailable: device will be "+what+" once the file can be edited again"); ce != nil {
		ce.Write(zap.String("device", m.Device), zap.Error(cause))
	}
	return nil
}

// deferredMarkKey is where the mark of a device is kept, whatever the
// spelling of its name: the latest replaces an earlier one.
func deferredMarkKey(device string) string {
	return path.Join(statePrefix, "unmarked", hashKey("device", configfile.DeviceKey(device))+".json")
}

// legacyDeferredMarkKey is where earlier versions kept it (the name
// lower-cased), when it differs.
func legacyDeferredMarkKey(device string) string {
	if l := legacySpelling(device); l != "" {
		return path.Join(statePrefix, "unmarked", hashKey("device", l)+".json")
	}
	return ""
}

// applyDeferredMarks applies the marks kept while the file was unavailable.
// It reports whether none is left.
func (a *App) applyDeferredMarks(ctx context.Context) bool {
	applyingDeferredMarks.Add(1) // before the marks are read (marksMayWait)
	defer applyingDeferredMarks.Add(-1)
	keys, err := a.state.list(ctx, path.Join(statePrefix, "unmarked"))
	if err != nil || len(keys) == 0 {
		return err == nil
	}
	batch, from, loaded, left := a.loadDeferredMarks(ctx, keys)
	if len(batch) == 0 {
		return left == 0
	}
	outcomes, errs := a.applyMarkBatch(batch)
	for i, err := range errs {
		m := batch[i]
		switch {
		case errors.Is(err, errFileUnavailable):
			left++
			continue
		case err != nil:
			a.log.Error("applying a deferred mark failed; set the device's enrolled flag in the configuration file by hand",
				zap.String("device", m.Device), zap.Bool("enrolled", !m.Unmark), zap.Error(err))
		case outcomes[i] == markNoDevice:
			a.log.Info("deferred mark dropped: the device is not in the configuration file (any more)",
				zap.String("device", m.Device), zap.Bool("unmark", m.Unmark))
		case outcomes[i] == markOtherCA: // logged at WARN
		case outcomes[i] == markMoot:
			a.log.Info("deferred mark dropped: "+mootWhy(m), zap.String("device", m.Device), zap.Bool("unmark", m.Unmark))
		case outcomes[i] == markAsWanted:
			what := "enrolled"
			if m.Unmark {
				what = "not enrolled"
			}
			a.log.Info("deferred mark not needed: the configuration file already marks the device "+what,
				zap.String("device", m.Device), zap.Bool("unmark", m.Unmark))
		default:
			a.log.Info("device marked (deferred)", zap.String("device", m.Device), zap.Bool("enrolled", !m.Unmark))
		}
		if !a.deleteIfUnchanged(ctx, from[i], loaded[i]) {
			left++
		}
	}
	return left == 0
}

// deleteIfUnchanged deletes the kept mark at key if it is still the one
// read (b): a mark kept since (the device revoked, or enrolled, while the
// file was unavailable again) replaced it there, and is left for the next
// application. It reports whether the key is gone.
func (a *App) deleteIfUnchanged(ctx context.Context, key string, b []byte) bool {
	now, err := a.storage.Load(ctx, key)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return true
	case err != nil || !bytes.Equal(now, b):
		return false
	}
	return a.storage.Delete(ctx, key) == nil
}

// markHolds reports whether m still holds: an enrolled mark while the
// device's current certificate is not revoked; an unmark while the device
// has no current certificate that is not revoked (it did not enroll again
// since; a device of the file with no certificate, imported enrolled, is
// unmarked too). A device record storage cannot read leaves the unmark
// to the revocation state in memory.
//
// Both ask storage too: a kept mark is applied by any instance sharing the
// storage (the one that kept it, or one starting), and another instance may
// have revoked the device meanwhile, which this one's memory learns only at
// its next refresh (30 s). An enrolled mark applied then marked a revoked
// device enrolled (that instance's revocation found the flag clear, the
// mark still kept, and left it so); an unmark of the device that instance
// revoked by name was dropped, as if the device had enrolled again.
func (a *App) markHolds(ctx context.Context, m mark) bool {
	if !m.Unmark {
		return a.eligible(m.Device) && !a.currentRevokedInStorage(ctx, m.Device)
	}
	rec, err := a.readDeviceRecord(ctx, a.fileName(m.Device))
	if err != nil {
		return !a.eligible(m.Device)
	}
	return rec == nil || rec.Serial == "" || a.serialRevoked(rec.Profile, rec.Serial) || a.revokedInStorage(ctx, rec)
}

// currentRevokedInStorage reports whether storage has the device's current
// certificate revoked. Storage that cannot be read says no: the state in
// memory decides then (so does an app without CAs, which revokes nothing).
func (a *App) currentRevokedInStorage(ctx context.Context, device string) bool {
	if len(a.cas) == 0 {
		return false
	}
	rec, err := a.readDeviceRecord(ctx, a.fileName(device))
	return err == nil && rec != nil && a.revokedInStorage(ctx, rec)
}

// revokedInStorage reports whether storage has the certificate that rec
// names revoked (no when it cannot tell).
func (a *App) revokedInStorage(ctx context.Context, rec *DeviceRecord) bool {
	c := a.cas[rec.Profile]
	if rec.Serial == "" || c == nil {
		return false
	}
	revoked, err := c.IsRevoked(ctx, rec.Serial)
	return err == nil && revoked
}

// mootWhy says why a kept mark no longer holds.
func mootWhy(m mark) string {
	if m.Unmark {
		return "the device enrolled again meanwhile"
	}
	return "the device's certificate was revoked meanwhile"
}

// loadDeferredMarks reads the kept marks at keys: the batch to apply, the
// key and bytes of each, and how many storage failed to read (left for
// later). Those that no longer apply (markHolds: the device's certificate
// revoked, or the device enrolled again, since) and those that do not
// decode are deleted.
func (a *App) loadDeferredMarks(ctx context.Context, keys []string) (batch []mark, from []string, loaded [][]byte, left int) {
	for _, k := range keys {
		if !strings.HasSuffix(k, ".json") {
			continue // the temporary file of a mark being stored (deleting it would fail that store)
		}
		b, err := a.storage.Load(ctx, k)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			left++ // try again later
			continue
		}
		var m mark
		if json.Unmarshal(b, &m) != nil || m.Device == "" {
			a.log.Error("dropping an unreadable deferred mark", zap.String("key", k))
			_ = a.storage.Delete(ctx, k)
			continue
		}
		if !a.markHolds(ctx, m) {
			a.log.Info("deferred mark dropped: "+mootWhy(m), zap.String("device", m.Device), zap.Bool("unmark", m.Unmark))
			a.deleteIfUnchanged(ctx, k, b)
			continue
		}
		batch, from, loaded = append(batch, m), append(from, k), append(loaded, b)
	}
	return batch, from, loaded, left
}
