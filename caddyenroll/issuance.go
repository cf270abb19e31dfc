package caddyenroll

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// issueLocked signs the request's CSR, records the certificate, supersedes
// the device's previous certificates and marks the device enrolled. The
// device lock is held; parsed is the CSR verified moments ago, or nil to
// parse and verify req.CSR; prev is the device's record as loaded under the
// lock (nil: it has none).
//
// Order matters for crash safety: the CA's issuance record is written
// first, then the request's new state, then the device's older pending
// requests are superseded, and last (completeIssue) the previous
// certificate's revocation, the device record and the configuration file.
// A crash before the request is stored leaves an issued, undelivered
// certificate and no answer (the device asks again); a crash after it is
// repaired when the device asks again (resumeIssue).
func (a *App) issueLocked(ctx context.Context, req *Request, parsed *ca.CSR, prev *DeviceRecord, authority *ca.CA, policy ca.Policy) error {
	// the file names the CA before it issues (Start does it, unless an
	// enrollment arrives first)
	if err := a.recordCrypto(ctx); err != nil {
		return err
	}
	// the file on disk too, when the watcher has not read it yet: another
	// instance renewing the CA may have written it moments ago, and a
	// certificate of the old one would be useless
	if why := cmp.Or(a.caNotNamed(req.Profile), a.caNotNamedOnDisk(req.Profile)); why != "" {
		return caNotNamedError(why)
	}
	var is *ca.Issued
	var err error
	if parsed != nil { // verified moments ago: don't check its signature twice
		is, err = authority.SignCSR(parsed, req.Device, policy)
	} else {
		// a pending request: its key may have been revoked for key
		// compromise since it came (enrollLocked checked the others)
		switch compromised, err := a.keyCompromised(ctx, req.PublicKeySHA256); {
		case err != nil:
			return fmt.Errorf("checking the key's revocations: %v", err)
		case compromised:
			return errKeyCompromisedPending
		}
		is, err = authority.Sign(req.CSR, req.Device, policy)
	}
	if err != nil {
		return fmt.Errorf("signing: %v", err)
	}
	ctx = context.WithoutCancel(ctx) // from here on, a device hanging up does not cut the writes short
	if err := authority.Record(ctx, is); err != nil {
		return fmt.Errorf("recording issuance: %v", err)
	}
	// a revocation for key compromise marks the key, then revokes every
	// certificate recorded for it (revokeSameKeys): one recorded after
	// that look finds the mark here, one recorded before is found there
	switch compromised, err := a.keyCompromised(ctx, is.PublicKeySHA256); {
	case err != nil:
		return fmt.Errorf("checking the key's revocations: %v", err)
	case compromised:
		// the revocation that marked the key may have revoked it first
		// (revokeSameKeys), and counted it
		// (fresh with an error: revoked, what failed came after)
		fresh, err := authority.RevokeSerial(ctx, is.Serial, ca.ReasonKeyCompromise)
		if err == nil || fresh {
			a.noteRevoked(req.Profile, "", []string{is.Serial}, false)
		}
		if fresh {
			metrics.revoked.Inc()
			a.notifyRevoked("key_compromise", req.Profile, req.Device, []string{is.Serial}, ca.ReasonKeyCompromise)
		}
		if err != nil {
			return fmt.Errorf("revoking certificate %s, of a key revoked for key compromise meanwhile: %v", is.Serial, err)
		}
		return errKeyCompromisedMeanwhile
	}
	if is.NotAfter.Equal(authority.Issuer().NotAfter) {
		a.log.Warn("certificate cut to the operational CA's end", zap.String("device", req.Device),
			zap.String("serial", is.Serial), zap.Time("not_after", is.NotAfter))
	}
	req.State = stateIssued
	if req.Held { // no longer: what held it is moot
		req.Held, req.Reason = false, ""
	}
	req.Serial = is.Serial
	req.Certificate = is.DER
	req.NotAfter = is.NotAfter
	req.Updated = time.Now().UTC()
	if err := a.state.putRequest(ctx, req); err != nil {
		return fmt.Errorf("storing request: %v", err)
	}
	metrics.issued.WithLabelValues(req.Profile).Inc()
	a.notifyRequest(eventIssued, req, nil)
	// before the device record names the certificate: a crash or failure
	// in between leaves it to resumeIssue's completion, which supersedes
	// them again
	if err := a.supersedeOlder(ctx, req); err != nil {
		return err
	}
	return a.completeIssue(ctx, req, prev)
}

// supersedeOlder rejects the requests the device made before req, whose
// certificate it enrolled with: they are moot.
func (a *App) supersedeOlder(ctx context.Context, req *Request) error {
	reqs, err := a.state.pendingOf(ctx, req.Device)
	if err != nil {
		return fmt.Errorf("listing the device's pending requests: %v", err)
	}
	return a.rejectSuperseded(ctx, madeBefore(req)(reqs), "superseded: the device enrolled with a newer request (serial "+req.Serial+")")
}

// issueHeld issues a request held by max_issued_per_device, or made while
// the file lacked its device, when the device asks about it again and
// approval auto applies to it now: the device is in the file and enabled
// and the window allows another certificate. decided is false while it
// still waits.
func (a *App) issueHeld(ctx context.Context, req *Request, rec *DeviceRecord, authority *ca.CA, policy ca.Policy) (o outcome, decided bool) {
	if a.Approval != ApprovalAuto {
		return outcome{}, false
	}
	cur := a.cfg.device(req.Device)
	if !cur.Known || !cur.Enabled {
		return outcome{}, false
	}
	reason := "issued (was held)"
	if !req.Known { // the operator has added it since: it is not added again
		req.Known, req.Group = true, cur.Group
		reason = "issued (the file has the device now)"
	}
	if why := a.issuanceHeld(rec, a.now()); why != "" {
		if why != req.Reason || !req.Held { // the window moved on: say until when it now waits
			req.Held, req.Reason = true, why
			// the request alone: its pending markers are in place
			if err := a.state.storeJSON(ctx, requestKey(req.ID), req); err != nil {
				a.log.Warn("updating a held request's reason", zap.String("request", req.ID), zap.Error(err))
			}
		}
		return outcome{}, false
	}
	if err := a.issueLocked(ctx, req, nil, rec, authority, policy); err != nil {
		return a.issueFailed(err, "issuing a held request", req.Device, req.ID), true
	}
	a.leftPending(ctx, req)
	return outcome{resp: wire.Response{Status: wire.StatusOK, Certificate: req.Certificate}, serial: req.Serial, reason: reason}, true
}

// errKeyCompromisedMeanwhile refuses an issuance whose key a revocation
// for key compromise marked while it was signed: the certificate is
// revoked at once, and the device told as if the mark had come first.
var errKeyCompromisedMeanwhile = fmt.Errorf("%w: a certificate of this key was revoked for key compromise; enroll with a new key", errConflict)

// errKeyCompromisedPending refuses the issuance of a pending request whose
// key was revoked for key compromise since it came.
var errKeyCompromisedPending = fmt.Errorf("%w: a certificate of this request's key was revoked for key compromise; reject it", errConflict)

// caNotNamedError refuses an issuance while the file names another CA than
// the one in use (an approval's conflict).
type caNotNamedError string

func (e caNotNamedError) Error() string        { return string(e) }
func (e caNotNamedError) Is(target error) bool { return target == errConflict }

// issueFailed is the answer to a device whose issuance failed: the reason
// when the file names another CA (the device asks again after the
// reload), a refusal when its key was revoked for key compromise
// meanwhile, else a server error, logged.
func (a *App) issueFailed(err error, doing, device, id string) outcome {
	var notNamed caNotNamedError
	if errors.As(err, &notNamed) {
		return fail(wire.StatusServerError, string(notNamed))
	}
	if errors.Is(err, errKeyCompromisedMeanwhile) || errors.Is(err, errKeyCompromisedPending) {
		return fail(wire.StatusRejected, "a certificate of this key was revoked for key compromise; enroll with a new key")
	}
	a.log.Error(doing, zap.String("device", device), zap.String("request", id), zap.Error(err))
	return fail(wire.StatusServerError, "server error")
}

// completeIssue makes an issued request the device's current enrollment:
// the device record names its certificate, the previous certificate
// (prev's) is superseded and the file marks the device enrolled. It runs
// right after an issuance, and again when a device fetches a certificate
// whose issuance a crash interrupted after storing the request.
//
// The previous certificate is revoked before the device record names the
// new one: while the record names it, a failure or crash in between is
// repaired when the device asks again (resumeIssue), which revokes it then.
// Every other certificate the same CA holds for the device is superseded
// too: one issued for a request whose completion a crash or failure cut
// short, which the device record never named.
func (a *App) completeIssue(ctx context.Context, req *Request, prev *DeviceRecord) error {
	ctx = context.WithoutCancel(ctx) // a device hanging up does not cut this short
	if c, ok := a.cas[req.Profile]; ok {
		// with an error, serials are revoked all the same (the failure
		// came after the revoked list was written)
		serials, err := c.RevokeDevice(ctx, req.Device, reasonSuperseded, req.Serial)
		if len(serials) > 0 {
			a.noteRevoked(req.Profile, "", serials, false)
			metrics.revoked.Add(float64(len(serials)))
			a.notifyRevoked("superseded", req.Profile, req.Device, serials, reasonSuperseded)
			a.log.Info("superseded certificates revoked", zap.String("device", req.Device), zap.Strings("serials", serials))
		}
		if err != nil {
			// under the device's lock, which the callers hold to the
			// answer: a refresh takes none
			a.refreshAfterFailedRevocation(ctx)
			return fmt.Errorf("revoking superseded certificates of %s: %v", req.Device, err)
		}
	}
	// and the previous certificate when the other profile's CA issued it
	if prev != nil && prev.Serial != "" && prev.Serial != req.Serial && prev.Profile != req.Profile {
		if c, ok := a.cas[prev.Profile]; ok {
			fresh, err := c.RevokeSerial(ctx, prev.Serial, reasonSuperseded)
			if fresh { // not an operator's revocation, counted then; with an error too (revoked all the same)
				metrics.revoked.Inc()
				a.notifyRevoked("superseded", prev.Profile, req.Device, []string{prev.Serial}, reasonSuperseded)
			}
			switch {
			case errors.Is(err, ca.ErrNotFound):
				// issued by an earlier CA (the crypto item changed): no
				// gateway trusts it any more, and this CA cannot revoke it
			case err != nil:
				a.refreshAfterFailedRevocation(ctx)
				return fmt.Errorf("revoking superseded certificate %s: %v", prev.Serial, err)
			default:
				a.noteRevoked(prev.Profile, "", []string{prev.Serial}, false)
				a.log.Info("superseded certificate revoked", zap.String("device", req.Device), zap.String("serial", prev.Serial))
			}
		}
	}
	if err := a.state.putDevice(ctx, &DeviceRecord{
		Device: req.Device, DeviceID: req.DeviceID, Customer: req.Customer,
		Profile: req.Profile, Serial: req.Serial, Enrolled: req.Updated,
		Issued: a.issuedWith(prev, req.Serial, a.now()),
	}); err != nil {
		return fmt.Errorf("storing device record: %v", err)
	}
	a.noteRevoked(req.Profile, req.Device, nil, false) // its current certificate is good
	return a.markEnrolled(ctx, req.Device, req.Group, req.Profile, !req.Known)
}

// keyCompromised reports whether a certificate of the key (its
// SubjectPublicKeyInfo's SHA-256, hex) was revoked for key compromise by
// any of the CAs (they share one record of such keys: asking one asks all).
func (a *App) keyCompromised(ctx context.Context, publicKeySHA256 string) (bool, error) {
	for _, c := range a.cas {
		return c.KeyCompromised(ctx, publicKeySHA256)
	}
	return false, nil
}

// What an issued request's certificate is to the CA in use now.
type issuedFateKind int

const (
	fateCurrent issuedFateKind = iota // deliver it again
	fateRefused                       // revoked for key compromise or superseded: this key gets none
	fateOver                          // expired, revoked otherwise, or an earlier CA's: enroll afresh
)

// issuedFate decides whether an issued request is answered with its
// certificate again (a device repeating its request or retrieve) or is
// over: a certificate an earlier CA issued (the request id names the
// profile, device and key, not the CA), an expired one, or one revoked for
// another reason than key compromise or supersession (a device disabled,
// then enabled again).
func (a *App) issuedFate(ctx context.Context, req *Request, authority *ca.CA) (issuedFateKind, error) {
	rec, err := authority.Lookup(ctx, req.Serial)
	if errors.Is(err, ca.ErrNotFound) {
		return fateOver, nil
	}
	if err != nil {
		return 0, err
	}
	if rec.Revoked || a.serialRevoked(req.Profile, req.Serial) {
		if rec.Reason == ca.ReasonKeyCompromise || rec.Reason == ca.ReasonSuperseded || !rec.Revoked {
			return fateRefused, nil // (a revocation whose record is not marked yet: its reason is unknown)
		}
		return fateOver, nil
	}
	if !time.Now().Before(req.NotAfter) {
		return fateOver, nil
	}
	return fateCurrent, nil
}

// resumeIssue finishes, for a device fetching its issued certificate again,
// what a crash may have cut short after the request was stored: the device
// record naming the certificate, the file's enrolled mark and the
// superseding of the requests the device made before (left pending, an
// approval of one would revoke the certificate the device enrolled for).
// A request older than the device's record (the device enrolled again
// since) and a revoked or expired certificate are left alone.
func (a *App) resumeIssue(ctx context.Context, req *Request, rec *DeviceRecord) error {
	if a.serialRevoked(req.Profile, req.Serial) || !time.Now().Before(req.NotAfter) {
		return nil
	}
	switch {
	case rec == nil || (rec.Serial != req.Serial && req.Updated.After(rec.Enrolled)):
		a.log.Info("completing an interrupted issuance", zap.String("device", req.Device), zap.String("serial", req.Serial))
		if err := a.supersedeOlder(ctx, req); err != nil {
			return err
		}
		return a.completeIssue(ctx, req, rec)
	case rec.Serial == req.Serial:
		return a.markEnrolled(ctx, req.Device, req.Group, req.Profile, !req.Known)
	}
	return nil
}
