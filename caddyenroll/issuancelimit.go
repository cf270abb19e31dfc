package caddyenroll

import (
	"fmt"
	"math"
	"slices"
	"time"

	"go.uber.org/zap"
)

// Certificates issued to one device without an administrator are bounded
// (max_issued_per_device within issuance_window), as Let's Encrypt bounds
// duplicate certificates: every new certificate of a device revokes the
// previous one, which stays on the CRL until it expires, so an account
// holder re-enrolling a known device with new keys without end under
// approval auto would grow the CRL without end. Over the bound a new key
// waits for an administrator (status 1, the request marked held); a device
// asking about it again once the window allows gets it issued then, as
// approval auto would have. The count lives in the device record, written
// under the device's storage lock with the issuance, so instances sharing a
// storage count alike.

const (
	defaultMaxIssuedPerDevice = 5
	defaultIssuanceWindow     = 7 * 24 * time.Hour
	minIssuanceWindow         = time.Minute
)

// Issuance is one certificate issued to a device.
type Issuance struct {
	Serial string    `json:"serial"`
	At     time.Time `json:"at"`
}

// renewalsPerWindow is how many certificates a device that renews in the
// last third of their lifetime (as chclient does) gets per issuance window,
// with the shortest validity of the app's CAs; 0 without CAs.
func (a *App) renewalsPerWindow() int {
	var shortest time.Duration
	for _, c := range a.cas {
		if v := c.Validity(); v > 0 && (shortest == 0 || v < shortest) {
			shortest = v
		}
	}
	if shortest == 0 {
		return 0
	}
	return int(math.Ceil(float64(a.issuanceWindow()) / (float64(shortest) * 2 / 3)))
}

// settleIssuanceBound sets the default bound once the CAs are open: 5, or
// room for twice the renewals of short-lived certificates; a bound set
// below those renewals is logged, since under approval auto it would hold
// devices' ordinary renewals until their certificates expire.
func (a *App) settleIssuanceBound() {
	need := a.renewalsPerWindow()
	if a.MaxIssuedPerDevice == 0 {
		a.MaxIssuedPerDevice = max(defaultMaxIssuedPerDevice, 2*need+3)
		return
	}
	if a.Approval == ApprovalAuto && a.MaxIssuedPerDevice < need {
		a.log.Warn("max_issued_per_device holds ordinary renewals: a device renewing in the last third of its certificate's validity needs more per issuance_window",
			zap.Int("max_issued_per_device", a.MaxIssuedPerDevice), zap.Duration("issuance_window", a.issuanceWindow()),
			zap.Int("renewals_per_window", need), zap.Int("suggested", 2*need+3))
	}
}

// maxIssued is the bound (the default for an app not provisioned).
func (a *App) maxIssued() int {
	if a.MaxIssuedPerDevice > 0 {
		return a.MaxIssuedPerDevice
	}
	return defaultMaxIssuedPerDevice
}

// issuanceWindow is the bound's window.
func (a *App) issuanceWindow() time.Duration {
	if a.IssuanceWindow > 0 {
		return time.Duration(a.IssuanceWindow)
	}
	return defaultIssuanceWindow
}

// recentIssued is the device's issuances after since, oldest first. A
// record of an earlier version, without the list, counts its current
// certificate.
func (d *DeviceRecord) recentIssued(since time.Time) []Issuance {
	if d == nil {
		return nil
	}
	all := d.Issued
	if len(all) == 0 && d.Serial != "" {
		all = []Issuance{{Serial: d.Serial, At: d.Enrolled}}
	}
	var out []Issuance
	for _, is := range all {
		if is.At.After(since) {
			out = append(out, is)
		}
	}
	return out
}

// issuanceHeld says why a new certificate for the device (its record rec)
// must wait for an administrator at now, or "" when it need not.
func (a *App) issuanceHeld(rec *DeviceRecord, now time.Time) string {
	window := a.issuanceWindow()
	recent := rec.recentIssued(now.Add(-window))
	if len(recent) < a.maxIssued() {
		return ""
	}
	// the oldest that counts leaves the window first
	free := recent[len(recent)-a.maxIssued()].At.Add(window)
	return fmt.Sprintf("held for approval: %d certificates were issued to the device within %v (max_issued_per_device); approval auto resumes after %s",
		len(recent), window, free.UTC().Format(time.RFC3339))
}

// issuedWith is the list of recent issuances to record after issuing serial
// at `at` to the device whose record was prev: the newest max_issued_per_device
// within the window.
func (a *App) issuedWith(prev *DeviceRecord, serial string, at time.Time) []Issuance {
	recent := prev.recentIssued(at.Add(-a.issuanceWindow()))
	if !slices.ContainsFunc(recent, func(is Issuance) bool { return is.Serial == serial }) {
		recent = append(recent, Issuance{Serial: serial, At: at})
	}
	if n := a.maxIssued(); len(recent) > n {
		recent = recent[len(recent)-n:]
	}
	return recent
}
