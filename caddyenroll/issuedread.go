package caddyenroll

import (
	"context"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// issuedUnlocked answers, without the device's lock, a request or
// retrieve of a key whose certificate was issued and whose issuance is
// complete: it serves the lock-free fallback when the lock cannot be
// taken (on a full disk the lock is a file that cannot be created), where
// a device fetching its certificate again got status 14 although nothing
// needs to be written. It reports false, leaving the answer to the locked
// path, whenever enrollLocked would write: a request not issued, a
// certificate over (expired, an earlier CA's), an issuance a crash cut
// short (no device record naming it, or the file's enrolled mark missing).
//
// Reads without the lock see whole records (storage writes are atomic:
// Caddy's file storage renames a complete temporary file), each as it was
// or as a concurrent change left it. A holder of the lock changing the
// device meanwhile (an issuance for a new key, a revocation) revokes the
// old certificate before its device record names the new one, so this
// answer is the one the locked path would have given just before.
//
// A nonce this device bound to another request is refused as there; one
// not yet seen is not recorded (that is a write): the answer, the
// certificate already issued for this key, is the one a replay of the
// message gets anyway, and reusing the nonce with another key later
// takes the account's password, which a fresh nonce needs too.
func (a *App) issuedUnlocked(ctx context.Context, in enrollInput, csr *ca.CSR, name, id string, authority *ca.CA) (outcome, bool) {
	r := in.req
	legacyID := legacyRequestID(in.profile, name, csr.PublicKeySHA256)
	st := a.state
	_, refused, err := st.lookNonce(ctx, deviceNonce(name, r.Nonce), st.readBuckets(st.now()),
		nonceBinding(id, r.Device, r.Customer), []string{id, legacyID})
	if err != nil {
		return outcome{}, false
	}
	if refused {
		return fail(wire.StatusNonceReused, "nonce was already used with another request"), true
	}
	rec, err := st.device(ctx, name)
	if err != nil {
		return outcome{}, false
	}
	if rec.idsDiffer(r.Device, r.Customer) {
		return fail(wire.StatusCustomerMismatch, "device or customer id differs from the device's enrollment"), true
	}
	req, err := st.request(ctx, id)
	if err == nil && req == nil && legacyID != "" {
		req, err = st.request(ctx, legacyID)
	}
	if err != nil || req == nil || req.State != stateIssued {
		return outcome{}, false
	}
	switch fate, err := a.issuedFate(ctx, req, authority); {
	case err != nil || fate == fateOver:
		return outcome{}, false
	case fate == fateRefused:
		return fail(wire.StatusRejected, "the certificate of this key was revoked (key compromise or superseded); enroll with a new key"), true
	}
	switch compromised, err := a.keyCompromised(ctx, csr.PublicKeySHA256); {
	case err != nil:
		return outcome{}, false
	case compromised:
		return fail(wire.StatusRejected, "a certificate of this key was revoked for key compromise; enroll with a new key"), true
	}
	if !a.issuanceComplete(req, rec) {
		return outcome{}, false
	}
	return outcome{resp: wire.Response{Status: wire.StatusOK, Certificate: req.Certificate}, serial: req.Serial,
		reason: "already issued (answered without the device's lock)"}, true
}

// issuanceComplete reports whether resumeIssue has nothing to do for an
// issued request whose certificate is current: the device record names
// its certificate and the file marks the device enrolled, or the device
// enrolled again since the request.
func (a *App) issuanceComplete(req *Request, rec *DeviceRecord) bool {
	switch {
	case rec == nil:
		return false
	case rec.Serial == req.Serial:
		d := a.cfg.device(req.Device)
		return d.Known && d.Enrolled && a.cfg.current()
	}
	return !req.Updated.After(rec.Enrolled)
}
