package caddyenroll

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// enrollInput is a decoded request/retrieve with what the transport adds.
type enrollInput struct {
	op       string
	profile  string
	tls      bool
	clientIP string
	req      *wire.Request
}

// outcome is a protocol answer plus what to log.
type outcome struct {
	resp   wire.Response
	device string
	reqID  string
	serial string
	reason string // for the log; never secrets
	gone   bool   // the client hung up before anything was decided: no answer
}

func fail(status int, reason string) outcome {
	return outcome{resp: wire.Response{Status: status, Error: reason}, reason: reason}
}

// enroll runs the request/retrieve decision of the seed's protocol:
// transport → flags → credentials → CSR → device → nonce → state.
func (a *App) enroll(ctx context.Context, in enrollInput) outcome {
	fl := a.cfg.flags()
	if fl.SSL && !in.tls {
		return fail(wire.StatusSSLRequired, "ssl is enabled: use HTTPS")
	}
	if !fl.Enroll {
		return fail(wire.StatusEnrollmentDisabled, "enrollment is disabled")
	}
	r := in.req
	acct, refused := a.login(ctx, in)
	if refused != nil {
		return *refused
	}
	if acct.Customer != "" && !sameCustomer(acct.Customer, r.Customer) {
		return fail(wire.StatusCustomerMismatch, "customer does not match the account")
	}
	if len(r.Nonce) == 0 {
		return fail(wire.StatusBadRequest, "nonce is required")
	}
	if len(r.CSR) == 0 {
		return fail(wire.StatusBadRequest, "certificate request is required (request= or certreq=)")
	}

	authority, err := a.authority(in.profile)
	if err != nil {
		return fail(wire.StatusServerError, "server error")
	}
	// nothing it could answer is usable (its certificates ended with it),
	// and a request left pending could never be approved
	if why := a.caExpired(authority); why != "" {
		return fail(wire.StatusServerError, why)
	}
	if why := a.caNotNamed(in.profile); why != "" {
		return fail(wire.StatusServerError, why) // until a reload: the device asks again
	}
	policy := a.Authorities[in.profile].policy(in.profile)
	csr, err := ca.ParseCSR(r.CSR, policy)
	if errors.Is(err, ca.ErrMalformedCSR) {
		return fail(wire.StatusBadRequest, err.Error()) // not a certificate request at all
	}
	if err != nil {
		return fail(wire.StatusBadCSR, err.Error())
	}
	name, err := csrDeviceName(csr)
	if err != nil {
		return fail(wire.StatusBadCSR, err.Error())
	}
	dev := a.cfg.device(name)
	if dev.Known {
		name = dev.Name
	} else {
		name = strings.ToLower(name)
		if a.UnknownDevices == UnknownRefuse {
			o := fail(wire.StatusUnknownDevice, "device is not configured")
			o.device = name
			return o
		}
	}
	if dev.Known && !dev.Enabled {
		o := fail(wire.StatusDeviceDisabled, "device is disabled")
		o.device = name
		return o
	}
	// the names SignCSR will check, refused now as a bad CSR (and before an
	// unknown device's request waits for an approval that could never issue)
	if err := ca.CheckNames(csr, name); err != nil {
		return fail(wire.StatusBadCSR, err.Error())
	}
	if err := authority.CheckConstraints(name); err != nil {
		return fail(wire.StatusBadCSR, err.Error())
	}

	id := requestID(in.profile, name, csr.PublicKeySHA256)
	unlock, err := a.state.lockDevice(ctx, name)
	if err != nil {
		if ctx.Err() != nil { // hung up while waiting for the device
			return outcome{gone: true, device: name}
		}
		a.log.Error("locking device state", zap.String("device", name), zap.Error(err))
		return fail(wire.StatusServerError, "server error")
	}
	defer unlock()

	// holding the lock, the request is decided and stored whole whether the
	// device waits for the answer or not: a hang-up must not leave half a
	// decision, nor read as a server error
	o := a.enrollLocked(context.WithoutCancel(ctx), in, acct, csr, name, id, authority, policy)
	o.device, o.reqID = name, id
	return o
}

// enrollLocked decides a request or retrieve under the device's lock: the
// nonce's binding, the device's ids, then the request for this device and
// key if there is one (issued: its certificate again; pending: still
// pending, unless issueHeld issues it now), else a new request, issued at
// once under approval auto or stored pending. name is the device as the
// file spells it (or, unknown, lower-cased) and id the request's id.
// login checks the request's username and password under the login
// limiters and returns the account, or the answer that refuses it: rate
// limited, bad credentials, or the client gone (it hung up while waiting
// for an attempt in flight). A lockout that a failure begins is logged.
func (a *App) login(ctx context.Context, in enrollInput) (*Account, *outcome) {
	r := in.req
	lg, ok := a.beginLogin(ctx, r.Username, in.clientIP, time.Now)
	if !ok {
		if ctx.Err() != nil { // hung up while waiting for an attempt in flight
			return nil, &outcome{gone: true}
		}
		o := fail(wire.StatusRateLimited, "too many failed attempts; try again later")
		return nil, &o
	}
	now := time.Now() // after any wait in begin: lockouts count from the failure
	acct, ok := a.accounts.check(r.Username, r.Password)
	if !ok {
		// the attempts a lockout refuses are logged at debug: this is
		// the line that tells an operator about it
		account, address := a.loginFailed(ctx, lg, now)
		addr := zap.String("address", strings.TrimPrefix(lg.addr, "ip:"))
		switch {
		case account > 0 && lg.known:
			a.log.Warn("username locked out at a known address after failed logins", a.accounts.logField(r.Username), addr,
				zap.Duration("lockout", account), zap.String("client", in.clientIP))
		case account > 0:
			a.log.Warn("username locked out after failed logins", a.accounts.logField(r.Username),
				zap.Duration("lockout", account), zap.String("client", in.clientIP))
		}
		if address > 0 {
			a.log.Warn("client address locked out after failed logins", addr,
				zap.Duration("lockout", address), zap.String("client", in.clientIP))
		}
		o := fail(wire.StatusBadCredentials, "bad username or password")
		return nil, &o
	}
	a.loginSucceeded(ctx, lg, now)
	return acct, nil
}

func (a *App) enrollLocked(ctx context.Context, in enrollInput, acct *Account, csr *ca.CSR,
	name, id string, authority *ca.CA, policy ca.Policy) outcome {
	r := in.req
	// a request stored by an earlier version may have another id (its
	// device name lower-cased, not normalized): found and bound by it too
	legacyID := legacyRequestID(in.profile, name, csr.PublicKeySHA256)
	bound, err := a.state.bindNonceTo(ctx, deviceNonce(name, r.Nonce), nonceBinding(id, r.Device, r.Customer), id, legacyID)
	if err != nil {
		a.log.Error("binding the request's nonce", zap.String("device", name), zap.String("request", id), zap.Error(err))
		return fail(wire.StatusServerError, "server error")
	}
	if !bound {
		return fail(wire.StatusNonceReused, "nonce was already used with another request")
	}
	rec, err := a.state.device(ctx, name)
	if err != nil {
		a.log.Error("loading device record", zap.String("device", name), zap.Error(err))
		return fail(wire.StatusServerError, "server error")
	}
	if rec.idsDiffer(r.Device, r.Customer) {
		return fail(wire.StatusCustomerMismatch, "device or customer id differs from the device's enrollment")
	}

	existing, err := a.state.request(ctx, id)
	if err == nil && existing == nil && legacyID != "" {
		existing, err = a.state.request(ctx, legacyID)
	}
	if err != nil {
		a.log.Error("loading request", zap.String("request", id), zap.Error(err))
		return fail(wire.StatusServerError, "server error")
	}
	if existing != nil && existing.State == stateIssued {
		switch fate, err := a.issuedFate(ctx, existing, authority); {
		case err != nil:
			a.log.Error("checking an issued request", zap.String("request", id), zap.Error(err))
			return fail(wire.StatusServerError, "server error")
		case fate == fateRefused:
			return fail(wire.StatusRejected, "the certificate of this key was revoked (key compromise or superseded); enroll with a new key")
		case fate == fateOver:
			existing = nil // expired, or an earlier CA's: the key enrolls afresh
		}
	}
	// a key revoked for key compromise is never certified again, whatever
	// device asks with it (its own request is refused above)
	switch compromised, err := a.keyCompromised(ctx, csr.PublicKeySHA256); {
	case err != nil:
		a.log.Error("checking the key's revocations", zap.String("request", id), zap.Error(err))
		return fail(wire.StatusServerError, "server error")
	case compromised:
		return fail(wire.StatusRejected, "a certificate of this key was revoked for key compromise; enroll with a new key")
	}
	if existing != nil {
		switch existing.State {
		case stateIssued:
			if err := a.resumeIssue(ctx, existing, rec); err != nil {
				a.log.Error("completing an interrupted issuance", zap.String("device", name), zap.String("request", id), zap.Error(err))
				return fail(wire.StatusServerError, "server error")
			}
			return outcome{resp: wire.Response{Status: wire.StatusOK, Certificate: existing.Certificate}, serial: existing.Serial, reason: "already issued"}
		case statePending:
			// held, or made while the file lacked the device, which has not
			// enrolled since (once an administrator approved one of its
			// requests, the others wait for them)
			if existing.Held || !existing.Known && rec == nil {
				if o, decided := a.issueHeld(ctx, existing, rec, authority, policy); decided {
					return o
				}
			}
			return outcome{resp: wire.Response{Status: wire.StatusPending, Nonce: existing.ServerNonce}, reason: "pending"}
		default:
			return fail(wire.StatusRejected, "request was rejected")
		}
	}
	if in.op == wire.OpRetrieve {
		return fail(wire.StatusNotFound, "no request for this device and key")
	}

	return a.newRequest(ctx, in, acct, csr, rec, name, id, authority, policy)
}

// newRequest decides a request for a key the device has no request for
// yet, under the device's lock: issued at once under approval auto (unless
// max_issued_per_device holds it), else stored pending within the bounds
// of pending requests. rec is the device's record (nil: none).
func (a *App) newRequest(ctx context.Context, in enrollInput, acct *Account, csr *ca.CSR, rec *DeviceRecord,
	name, id string, authority *ca.CA, policy ca.Policy) outcome {
	r := in.req
	// the file may have changed since the checks before this lock: a
	// device removed meanwhile (its removal's revocation may have run
	// while this request waited) is an unknown device now
	dev := a.cfg.device(name)
	if !dev.Known && a.UnknownDevices == UnknownRefuse {
		return fail(wire.StatusUnknownDevice, "device is not configured")
	}
	if dev.Known && !dev.Enabled {
		return fail(wire.StatusDeviceDisabled, "device is disabled")
	}
	now := time.Now().UTC()
	req := &Request{
		ID: id, Profile: in.profile, Device: name, DeviceID: r.Device, Customer: r.Customer,
		Username: acct.Username, ClientAddr: in.clientIP, PublicKeySHA256: csr.PublicKeySHA256,
		CSR: csr.Raw, ServerNonce: newServerNonce(), State: statePending, Known: dev.Known,
		Group: dev.Group, Created: now, Updated: now,
	}
	if a.Approval == ApprovalAuto && dev.Known && dev.Enabled {
		held := a.issuanceHeld(rec, a.now())
		if held == "" {
			if err := a.issueLocked(ctx, req, csr, rec, authority, policy); err != nil {
				return a.issueFailed(err, "issuing certificate", name, id)
			}
			return outcome{resp: wire.Response{Status: wire.StatusOK, Certificate: req.Certificate}, serial: req.Serial, reason: "issued"}
		}
		req.Held, req.Reason = true, held
		// at the first and then at most every 5 minutes per device: a device
		// re-enrolling in a loop must not flood the log
		a.warnBound("held:"+name, "enrollment held for approval: the device reached max_issued_per_device", zap.String("device", name),
			zap.String("request", id), a.accounts.logField(acct.Username), zap.Int("max_issued_per_device", a.maxIssued()),
			zap.Duration("issuance_window", a.issuanceWindow()))
	}
	pending, refused := a.admitForDevice(ctx, req)
	if refused != nil {
		return *refused
	}
	done, refused := a.admitPending(ctx, acct.Username, name, dev.Known)
	if refused != nil {
		return *refused
	}
	err := a.state.putRequest(ctx, req)
	done(err == nil)
	if err != nil {
		a.log.Error("storing pending request", zap.String("device", name), zap.Error(err))
		return fail(wire.StatusServerError, "server error")
	}
	_ = a.rejectSuperseded(ctx, beyondOwn(req, maxPendingPerDevice)(append(pending, req)),
		fmt.Sprintf("superseded: the device made newer requests (it keeps at most %d pending)", maxPendingPerDevice))
	return outcome{resp: wire.Response{Status: wire.StatusPending, Nonce: req.ServerNonce}, reason: "pending approval"}
}

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
		fresh, err := authority.RevokeSerial(ctx, is.Serial, ca.ReasonKeyCompromise)
		if err != nil {
			return fmt.Errorf("revoking certificate %s, of a key revoked for key compromise meanwhile: %v", is.Serial, err)
		}
		a.noteRevoked(req.Profile, "", []string{is.Serial}, false)
		if fresh {
			metrics.revoked.Inc()
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
		serials, err := c.RevokeDevice(ctx, req.Device, reasonSuperseded, req.Serial)
		if err != nil {
			return fmt.Errorf("revoking superseded certificates of %s: %v", req.Device, err)
		}
		if len(serials) > 0 {
			a.noteRevoked(req.Profile, "", serials, false)
			metrics.revoked.Add(float64(len(serials)))
			a.log.Info("superseded certificates revoked", zap.String("device", req.Device), zap.Strings("serials", serials))
		}
	}
	// and the previous certificate when the other profile's CA issued it
	if prev != nil && prev.Serial != "" && prev.Serial != req.Serial && prev.Profile != req.Profile {
		if c, ok := a.cas[prev.Profile]; ok {
			switch fresh, err := c.RevokeSerial(ctx, prev.Serial, reasonSuperseded); {
			case errors.Is(err, ca.ErrNotFound):
				// issued by an earlier CA (the crypto item changed): no
				// gateway trusts it any more, and this CA cannot revoke it
			case err != nil:
				return fmt.Errorf("revoking superseded certificate %s: %v", prev.Serial, err)
			default:
				a.noteRevoked(prev.Profile, "", []string{prev.Serial}, false)
				if fresh { // not an operator's revocation, counted then
					metrics.revoked.Inc()
				}
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

// idsDiffer reports whether a device or customer id differs from the ones
// the device enrolled with (recorded at its first enrollment). A nil record
// differs from nothing.
func (d *DeviceRecord) idsDiffer(deviceID, customer string) bool {
	return d != nil && ((d.DeviceID != "" && deviceID != "" && d.DeviceID != deviceID) ||
		(d.Customer != "" && customer != "" && !sameCustomer(d.Customer, customer)))
}

// csrDeviceName is the device a CSR names: its subject common name, else
// its first DNS name, in the CA's normal form (ca.NormalizeDevice), which
// the certificate, the CA's records and OSP identification use: an IP
// address has one spelling ("[192.0.2.10]" and "::ffff:192.0.2.10" are
// 192.0.2.10, "2001:DB8:0::1" is 2001:db8::1) and a DNS name loses its
// trailing dot. Looked up, locked and recorded as the CSR spells it, another
// spelling of a device would be another, unknown device.
func csrDeviceName(csr *ca.CSR) (string, error) {
	name := csr.CommonName
	if name == "" && len(csr.DNSNames) > 0 {
		name = csr.DNSNames[0]
	}
	name = strings.TrimSuffix(strings.TrimSpace(name), ".")
	if name == "" {
		return "", errors.New("the certificate request names no device (set its common name to the device's DNS name)")
	}
	if len(name) > 253 {
		return "", errors.New("the certificate request's device name is too long")
	}
	name, _, err := ca.NormalizeDevice(name)
	if err != nil {
		return "", err
	}
	return name, nil
}

func newServerNonce() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

// decidePending runs decide on a pending request (found by id or unique id
// prefix) under its device's lock, re-read after locking.
func (a *App) decidePending(ctx context.Context, id string, decide func(req *Request) error) (*Request, error) {
	req, err := a.state.findRequest(ctx, id)
	if err != nil {
		return nil, err
	}
	if req == nil {
		return nil, fmt.Errorf("%w: no pending request matches the id or id prefix %q (caddy enroll pending lists them)", errNotFound, id)
	}
	unlock, err := a.state.lockDevice(ctx, req.Device)
	if err != nil {
		return nil, err
	}
	defer unlock()
	found := req.ID
	// a storage error is the server's (500), not "no such request" (404)
	if req, err = a.state.request(ctx, found); err != nil {
		return nil, fmt.Errorf("reading request %s: %w", found, err)
	}
	if req == nil {
		return nil, fmt.Errorf("%w: request %s was deleted meanwhile", errNotFound, found)
	}
	if req.State != statePending {
		return req, fmt.Errorf("%w: request is %s", errConflict, req.State)
	}
	if err := decide(req); err != nil {
		return nil, err
	}
	a.leftPending(ctx, req)
	return req, nil
}

// leftPending counts and unindexes a request that was pending and has just
// been stored decided.
func (a *App) leftPending(ctx context.Context, req *Request) {
	pendingAdd(-1)
	if err := a.state.unindexRequest(ctx, req); err != nil {
		a.log.Warn("removing a decided request from the pending index; the next listing will", zap.String("request", req.ID), zap.Error(err))
	}
}

// storeRejected stores req rejected, for reason.
func (a *App) storeRejected(ctx context.Context, req *Request, reason string) error {
	req.State = stateRejected
	req.Reason, req.Held = reason, false
	req.Updated = time.Now().UTC()
	return a.state.putRequest(ctx, req)
}

// approve issues a pending request (admin API). group places an approved
// unknown device; "" is the default group.
func (a *App) approve(ctx context.Context, id, group string) (*Request, error) {
	req, err := a.decidePending(ctx, id, func(req *Request) error {
		authority, err := a.authority(req.Profile)
		if err != nil {
			// the request's profile is no longer configured: its
			// conflict with the configuration, not a server error
			return fmt.Errorf("%w: %v; or reject the request", errConflict, err)
		}
		dev := a.cfg.device(req.Device)
		// a request is locked and recorded under its device's name: one made
		// under another spelling than the file's (before the file listed the
		// device, or by a version that did not normalize names) would skip
		// the device's record, its customer and its current certificate
		if dev.Known && !strings.EqualFold(dev.Name, req.Device) {
			return fmt.Errorf("%w: the configuration file lists %s as %s; reject this request (the device enrolls again under the file's name)",
				errConflict, req.Device, dev.Name)
		}
		if dev.Known && !dev.Enabled {
			return fmt.Errorf("%w: device %s is disabled in the configuration file", errConflict, req.Device)
		}
		if why := a.caExpired(authority); why != "" {
			return fmt.Errorf("%w: %s (README: Renewing the operational CA)", errConflict, why)
		}
		req.Known = dev.Known
		if group != "" {
			// checked for a device the file has too (a typo is said), where
			// it is not applied: the admin answer's note says so
			known := false
			a.cfg.read(func(f *configfile.File) { _, known = f.Group(group) })
			if !known {
				return fmt.Errorf("%w: group %q is not in the configuration file", errBadRequest, group)
			}
			if !dev.Known {
				req.Group = group
			}
		}
		prev, err := a.state.device(ctx, req.Device)
		if err != nil {
			return fmt.Errorf("loading device record: %v", err)
		}
		// the device may have enrolled with other ids since this request came
		if prev.idsDiffer(req.DeviceID, req.Customer) {
			return fmt.Errorf("%w: the request's device or customer id differs from those %s enrolled with; reject it",
				errConflict, req.Device)
		}
		return a.issueLocked(ctx, req, nil, prev, authority, a.Authorities[req.Profile].policy(req.Profile))
	})
	if err == nil {
		a.log.Info("enrollment approved", zap.String("request", req.ID), zap.String("device", req.Device), zap.String("serial", req.Serial))
	}
	return req, err
}

// reject refuses a pending request (admin API).
func (a *App) reject(ctx context.Context, id, reason string) (*Request, error) {
	req, err := a.decidePending(ctx, id, func(req *Request) error { return a.storeRejected(ctx, req, reason) })
	if err == nil {
		a.log.Info("enrollment rejected", zap.String("request", req.ID), zap.String("device", req.Device))
	}
	return req, err
}

var (
	errNotFound   = errors.New("not found")
	errConflict   = errors.New("conflict")
	errBadRequest = errors.New("bad request")
)
