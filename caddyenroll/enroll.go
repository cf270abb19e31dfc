package caddyenroll

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
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
		// an answer decided already (a certificate issued, a request
		// pending or rejected) is read, not written: served without the
		// lock (a full disk, where the lock is a file to create)
		if o, ok := a.answerUnlocked(ctx, in, csr, name, id, authority); ok {
			a.log.Warn("device lock unavailable: answered from storage", zap.String("device", name),
				zap.String("request", id), zap.Int("status", o.resp.Status), zap.Error(err))
			o.device, o.reqID = name, id
			return o
		}
		a.log.Error("locking device state", zap.String("device", name), zap.Error(err))
		o := fail(wire.StatusServerError, "server error")
		o.device, o.reqID = name, id // for the answer's log line
		return o
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
// limited (a lockout, or no slot for its hash check), bad credentials, or
// the client gone (it hung up while waiting for an attempt in flight or a
// slot). A lockout that a failure begins is logged.
func (a *App) login(ctx context.Context, in enrollInput) (*Account, *outcome) {
	r := in.req
	lg, ok := a.beginLogin(ctx, r.Username, in.clientIP, time.Now)
	if !ok {
		if ctx.Err() != nil { // hung up while waiting for an attempt in flight
			return nil, &outcome{gone: true}
		}
		if lg.shed {
			return nil, a.shedLogin()
		}
		o := fail(wire.StatusRateLimited, "too many failed attempts; try again later")
		return nil, &o
	}
	acct, ok := a.accounts.cached(r.Username, r.Password)
	if !ok {
		var refused *outcome
		if acct, ok, refused = a.checkHash(ctx, lg, r.Username, r.Password); refused != nil {
			return nil, refused
		}
	}
	now := time.Now() // after any wait: lockouts count from the failure
	if !ok {
		// the attempts a lockout refuses are logged at debug: this is
		// the line that tells an operator about it
		account, address := a.loginFailed(ctx, lg, now)
		addr := zap.String("address", strings.TrimPrefix(lg.addr, "ip:"))
		switch {
		case account > 0 && lg.known:
			a.log.Warn("username locked out at a known address after failed logins", a.accounts.logField(r.Username), addr,
				zap.Duration("lockout", account), zap.String("client", in.clientIP))
			a.notifyLockout("account_at_known_address", r.Username, addr.String, in.clientIP, account)
		case account > 0:
			a.log.Warn("username locked out after failed logins", a.accounts.logField(r.Username),
				zap.Duration("lockout", account), zap.String("client", in.clientIP))
			a.notifyLockout("account", r.Username, "", in.clientIP, account)
		}
		if address > 0 {
			a.log.Warn("client address locked out after failed logins", addr,
				zap.Duration("lockout", address), zap.String("client", in.clientIP))
			a.notifyLockout("address", "", addr.String, in.clientIP, address)
		}
		o := fail(wire.StatusBadCredentials, "bad username or password")
		return nil, &o
	}
	a.loginSucceeded(ctx, lg, now)
	return acct, nil
}

// checkHash checks a login not in the accounts' cache under the process's
// bound on hash work (hashwork.go), and derives the name of a failure's
// record there too (its PBKDF2 costs as much). A login that gets no slot
// is refused as rate limited, its attempts given back to the limiters
// (it was not made).
func (a *App) checkHash(ctx context.Context, lg login, username, password string) (*Account, bool, *outcome) {
	release, ok := a.hashGate().acquire(ctx)
	if !ok {
		a.limiter.cancel(lg.user)
		a.addrLimiter.cancel(lg.addr)
		if ctx.Err() != nil {
			return nil, false, &outcome{gone: true}
		}
		return nil, false, a.shedLogin()
	}
	defer release()
	// a login that waited may find the cache filled meanwhile
	if acct, ok := a.accounts.cached(username, password); ok {
		return acct, true, nil
	}
	acct, ok := a.accounts.verify(username, password)
	if !ok && a.state != nil {
		// named once per process and cached; loginFailed's errors are its own
		sctx, cancel := sharedCtx(ctx)
		_, _ = a.state.failuresKey(sctx, lg.user)
		cancel()
	}
	return acct, ok, nil
}

// shedLogin is the answer of a login refused for want of a hash slot.
func (a *App) shedLogin() *outcome {
	initMetrics()
	metrics.loginsShed.Inc()
	o := fail(wire.StatusRateLimited, "too many logins being checked; try again later")
	return &o
}

func (a *App) enrollLocked(ctx context.Context, in enrollInput, acct *Account, csr *ca.CSR,
	name, id string, authority *ca.CA, policy ca.Policy) outcome {
	r := in.req
	// a request stored by an earlier version may have another id (its
	// device name lower-cased, not normalized): found and bound by it too
	legacyID := legacyRequestID(in.profile, name, csr.PublicKeySHA256)
	bound, err := a.state.bindNonceTo(ctx, deviceNonce(name, r.Nonce), nonceBinding(id, r.Device, r.Customer), id, legacyID)
	if err != nil {
		// the lock taken but the nonce not stored (a disk with room for
		// the lock file but not for the nonce, or read-only past the
		// lock): an answer decided already is read, as without the lock
		if o, ok := a.answerUnlocked(ctx, in, csr, name, id, authority); ok {
			a.log.Warn("nonce not stored: answered from storage", zap.String("device", name),
				zap.String("request", id), zap.Int("status", o.resp.Status), zap.Error(err))
			return o
		}
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

	existing, refused, err := a.existingRequest(ctx, id, legacyID, authority)
	switch {
	case err != nil:
		a.log.Error("loading request", zap.String("request", id), zap.Error(err))
		return fail(wire.StatusServerError, "server error")
	case refused:
		return fail(wire.StatusRejected, "the certificate of this key was revoked (key compromise or superseded); enroll with a new key")
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

// existingRequest is the request of the device and key (by id, or the
// legacy profile's id) that decides the answer: nil when there is none or
// its certificate is over (expired, or an earlier CA's: the key enrolls
// afresh); refused when its certificate was revoked for key compromise or
// superseded.
func (a *App) existingRequest(ctx context.Context, id, legacyID string, authority *ca.CA) (req *Request, refused bool, err error) {
	req, err = a.state.request(ctx, id)
	if err == nil && req == nil && legacyID != "" {
		req, err = a.state.request(ctx, legacyID)
	}
	if err != nil || req == nil || req.State != stateIssued {
		return req, false, err
	}
	switch fate, err := a.issuedFate(ctx, req, authority); {
	case err != nil:
		return nil, false, fmt.Errorf("checking an issued request: %w", err)
	case fate == fateRefused:
		return nil, true, nil
	case fate == fateOver:
		return nil, false, nil
	}
	return req, false, nil
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
	a.notifyRequest(eventPending, req, map[string]any{"client": in.clientIP, "reason": a.pendingReason(req)})
	_ = a.rejectSuperseded(ctx, beyondOwn(req, maxPendingPerDevice)(append(pending, req)),
		fmt.Sprintf("superseded: the device made newer requests (it keeps at most %d pending)", maxPendingPerDevice))
	return outcome{resp: wire.Response{Status: wire.StatusPending, Nonce: req.ServerNonce}, reason: "pending approval"}
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
