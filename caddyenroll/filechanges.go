package caddyenroll

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

// followFileChanges has every new version of the configuration file
// rebuild the route table, revoke the certificates of the devices it
// disables, removes or adds as disabled, and take the state that earlier
// versions keep under the former spelling of a device it respells.
func (a *App) followFileChanges() {
	a.cfg.read(func(f *configfile.File) { a.crypto.file.Store(a.fileCryptoOf(f)) })
	onChange := func(f *configfile.File, disabled []string) {
		a.noteFileCrypto(f)
		if err := a.rebuildRoutes(f); err != nil {
			a.log.Error("rebuilding the route table; keeping the previous one", zap.String("file", a.ConfigFile), zap.Error(err))
		}
		if len(disabled) > 0 {
			// outside the file's lock: it takes the devices' locks
			seen := time.Now()
			var off, gone []string
			for _, d := range disabled {
				if _, ok := f.Device(d); ok {
					off = append(off, d)
				} else {
					gone = append(gone, d)
				}
			}
			if len(off) > 0 {
				a.background(func() { a.revokeDisabled(off, seen) })
			}
			if len(gone) > 0 {
				a.background(func() { a.revokeRemoved(gone, seen) })
			}
		}
	}
	onAddedDisabled := func(devices []string) {
		seen := time.Now()
		a.background(func() { a.revokeDisabled(a.withValidCertificate(devices), seen) })
	}
	// a device spelled otherwise: what instances of earlier versions keep
	// under the old spelling is taken where this one looks
	onRespelled := func(respelled [][2]string) {
		a.background(func() {
			for _, r := range respelled {
				if err := a.state.takeRespelled(a.bgCtx, r[0], r[1]); err != nil {
					a.log.Error("taking the state an earlier version keeps under a device's former spelling",
						zap.String("device", r[1]), zap.String("was", r[0]), zap.Error(err))
				}
			}
		})
	}
	// under the file's lock: an edit by the config a reload replaces may
	// deliver a new version meanwhile
	a.cfg.mu.Lock()
	a.cfg.onChange, a.cfg.onAddedDisabled, a.cfg.onRespelled = onChange, onAddedDisabled, onRespelled
	a.cfg.prepare = a.prepareRoutes // the route table made before the lock is taken
	if base := a.authz.routed; base != a.cfg.file {
		// another config's edit put versions in force here since the
		// route table was made (tellOthers): what they change is taken
		// now, as if they had come with the hooks set (one may hold an
		// operator's save the editing config never took, and that config
		// may be stopped before its watcher takes it)
		var c versionChange
		if base != nil {
			c = a.cfg.compare(base, a.cfg.file)
		}
		onChange(a.cfg.file, c.disabled)
		if len(c.added) > 0 {
			onAddedDisabled(c.added)
		}
		if len(c.respelled) > 0 {
			onRespelled(c.respelled)
		}
	}
	a.cfg.mu.Unlock()
	// an edit made after this config read the file but before it joined
	// the file's configStates was told to the others only: taken now (a
	// config that does not watch the file would keep the version before
	// it until its own next edit); under the edit lock, as tellOthers, so
	// that the edits after it are told here (an error is the watcher's
	// to report)
	a.cfg.edits.Lock()
	_, _ = a.cfg.pollEditsHeld(true)
	a.cfg.edits.Unlock()
}

// revokeDisabled revokes every certificate of devices that were disabled,
// each under its device's lock: an enrollment of the device in progress
// either sees it disabled or has its new certificate revoked here.
//
// It is not cut short by Stop: during a reload the config being stopped
// may be the only one to revoke them (the new one read the file after the
// edit, and looked for certificates to revoke before an issuance of the
// old config's that was in progress had completed).
//
// seen is when the devices were seen disabled: a device enabled again
// since keeps the certificates signed after that (it enrolled for them).
func (a *App) revokeDisabled(devices []string, seen time.Time) {
	for _, d := range devices {
		a.revokeDisabledDevice(d, seen)
	}
}

// removedGrace is how long the revocation of devices a new version of the
// file lacks waits for the file to be whole again.
var removedGrace = 2 * defaultSettle // a variable for tests

// revokeRemoved revokes the certificates of devices that a new version of
// the file lacks, unless the file on disk, once settled, has them again:
// a version cut short by a write in progress (an editor that recreates the
// file, or one writing in place that stalled) lacks the devices after the
// cut. Stop cuts the wait short, not the check.
func (a *App) revokeRemoved(devices []string, seen time.Time) {
	t := time.NewTimer(removedGrace)
	defer t.Stop()
	select {
	case <-t.C:
	case <-a.stop:
	}
	back := a.cfg.enabledOnDisk(devices)
	var due []string
	for _, d := range devices {
		if back[d] {
			a.log.Info("device removed from the configuration file is back in it: certificates not revoked", zap.String("device", d))
			continue
		}
		due = append(due, d)
	}
	a.revokeDisabled(due, seen)
}

// revokeDisabledWait bounds the revocation of one disabled device's
// certificates, its lock's wait included.
const revokeDisabledWait = time.Minute

func (a *App) revokeDisabledDevice(d string, seen time.Time) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(a.bgCtx), revokeDisabledWait)
	defer cancel()
	if failed := a.revokeDisabledLocked(ctx, d, seen); failed {
		// after the lock, which a refresh waiting for another would hold
		a.refreshAfterFailedRevocation(ctx)
	}
}

// revokeDisabledLocked is revokeDisabledDevice under the device's lock;
// failed reports a CA whose revocation failed, perhaps half-way.
func (a *App) revokeDisabledLocked(ctx context.Context, d string, seen time.Time) (failed bool) {
	unlock, err := a.state.lockDevice(ctx, d)
	if err != nil {
		a.log.Error("locking disabled device", zap.String("device", d), zap.Error(err))
		return false
	}
	defer unlock()
	// checked under the lock: an enrollment after the device was enabled
	// again has completed, or sees it enabled
	enabledAgain, again := a.cfg.enabledAgainSince(d, seen)
	if again {
		a.log.Info("device disabled, then enabled again: revoking only the certificates signed before",
			zap.String("device", d), zap.Time("enabled_again", enabledAgain))
	}
	for profile, c := range a.cas {
		// with an error, serials are revoked all the same
		serials, err := c.RevokeDeviceIssuedBefore(ctx, d, reasonCessationOfOperation, enabledAgain)
		if err != nil {
			a.log.Error("revoking certificates of disabled device", zap.String("device", d), zap.String("profile", profile), zap.Error(err))
			failed = true
		}
		if len(serials) > 0 {
			a.noteRevoked(profile, d, serials, true)
			metrics.revoked.Add(float64(len(serials)))
			a.notifyRevoked("disabled", profile, d, serials, reasonCessationOfOperation)
			a.log.Info("device disabled or removed from the configuration file: certificates revoked", zap.String("device", d),
				zap.String("profile", profile), zap.Strings("serials", serials))
		}
	}
	return failed
}

// revokeDisabledAtStart revokes the certificates of devices the file
// disables whose current certificate is not revoked yet: disabled while
// no Caddy watched the file, or in an edit a reload picked up before the
// watcher did. It reads one device record per disabled device.
func (a *App) revokeDisabledAtStart() {
	var disabled []string
	seen := time.Now()
	a.cfg.read(func(f *configfile.File) {
		for _, d := range f.Devices {
			if !d.Enabled {
				disabled = append(disabled, d.Name)
			}
		}
	})
	a.revokeDisabled(a.withValidCertificate(disabled), seen)
}

// withValidCertificate picks the disabled devices whose current
// certificate is not revoked: one device record read each.
func (a *App) withValidCertificate(disabled []string) []string {
	var due []string
	for _, d := range disabled {
		rec, err := a.state.device(a.bgCtx, d)
		if err != nil {
			a.log.Error("loading device record of disabled device", zap.String("device", d), zap.Error(err))
			continue
		}
		if rec != nil && rec.Serial != "" && !a.serialRevoked(rec.Profile, rec.Serial) {
			due = append(due, d)
		}
	}
	return due
}
