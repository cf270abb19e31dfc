package caddyenroll

import (
	"context"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// answerUnlocked answers, without the device's lock, a request or
// retrieve that enrollLocked would answer by reads alone: it serves the
// lock-free fallback when the lock cannot be taken (on a full disk the
// lock is a file that cannot be created), where a device fetching its
// certificate again, or asking after a request waiting for approval or
// rejected, got status 14 although nothing needs to be written; and,
// under the lock, when the nonce cannot be stored (a disk with room for
// the lock file but not for the nonce). Answered:
// a key whose issuance is complete (its certificate), a pending request
// that stays pending (status 1 with the request's own nonce: none is
// made), a rejected one (8) and a retrieve of a key without a request
// (11), with the refusals enrollLocked gives
// before them. It reports false, leaving the answer to the locked path,
// whenever enrollLocked would write: a request of a key without one or
// whose certificate is over (expired, an earlier CA's; a retrieve of
// such a key is answered 11, as there), an issuance a crash cut short (no device
// record naming it, or the file's enrolled mark missing), a held request
// that issueHeld would issue or whose reason it would rewrite.
//
// Reads without the lock see whole records (storage writes are atomic:
// Caddy's file storage renames a complete temporary file), each as it was
// or as a concurrent change left it. A holder of the lock changing the
// device meanwhile (an issuance for a new key, a revocation) revokes the
// old certificate before its device record names the new one, so this
// answer is the one the locked path would have given just before.
//
// A nonce this device bound to another request is refused as there
// (nonceRefusedUnlocked); one not yet seen is not recorded (that is a write): the answer, the one
// already decided for this key, is the one a replay of the message gets
// anyway, and reusing the nonce with another key later takes the
// account's password, which a fresh nonce needs too. A pending answer
// carries the server nonce stored with the request, as the locked path's
// does: none is made.
func (a *App) answerUnlocked(ctx context.Context, in enrollInput, csr *ca.CSR, name, id string, authority *ca.CA) (outcome, bool) {
	r := in.req
	legacyID := legacyRequestID(in.profile, name, csr.PublicKeySHA256)
	st := a.state
	switch refused, err := st.nonceRefusedUnlocked(ctx, deviceNonce(name, r.Nonce),
		nonceBinding(id, r.Device, r.Customer), id, legacyID); {
	case err != nil:
		return outcome{}, false
	case refused:
		return fail(wire.StatusNonceReused, "nonce was already used with another request"), true
	}
	rec, err := st.device(ctx, name)
	if err != nil {
		return outcome{}, false
	}
	if rec.idsDiffer(r.Device, r.Customer) {
		return fail(wire.StatusCustomerMismatch, "device or customer id differs from the device's enrollment"), true
	}
	req, refused, err := a.existingRequest(ctx, id, legacyID, authority)
	switch {
	case err != nil:
		return outcome{}, false
	case refused:
		return fail(wire.StatusRejected, "the certificate of this key was revoked (key compromise or superseded); enroll with a new key"), true
	}
	if req == nil && in.op != wire.OpRetrieve {
		return outcome{}, false // a new request: written
	}
	switch compromised, err := a.keyCompromised(ctx, csr.PublicKeySHA256); {
	case err != nil:
		return outcome{}, false
	case compromised:
		return fail(wire.StatusRejected, "a certificate of this key was revoked for key compromise; enroll with a new key"), true
	}
	if req == nil {
		return fail(wire.StatusNotFound, "no request for this device and key"), true
	}
	switch req.State {
	case stateIssued:
		if !a.issuanceComplete(req, rec) {
			return outcome{}, false
		}
		return outcome{resp: wire.Response{Status: wire.StatusOK, Certificate: req.Certificate}, serial: req.Serial,
			reason: "already issued (answered from storage, nothing written)"}, true
	case statePending:
		if !a.staysPending(req, rec) {
			return outcome{}, false
		}
		return outcome{resp: wire.Response{Status: wire.StatusPending, Nonce: req.ServerNonce},
			reason: "pending (answered from storage, nothing written)"}, true
	default:
		return fail(wire.StatusRejected, "request was rejected"), true
	}
}

// nonceRefusedUnlocked is bindNonceTo's check without its writes: the
// nonce is looked up in the buckets of each of nonceClocks and, not found
// there, in those of the sizes the other instances began using since this
// one last read their record (refreshOtherSizes, a read), so that a nonce
// an instance with another nonce_retention bound is refused here as the
// locked path refuses it. Reading the buckets of one clock and the sizes
// last learned, it was accepted. This instance's own size is not recorded
// (recordOwnSize): nothing is bound.
func (s *stateStore) nonceRefusedUnlocked(ctx context.Context, nonce []byte, binding string, also ...string) (bool, error) {
	clocks := s.nonceClocks()
	read := s.readBuckets(clocks...)
	seen, refused, _, err := s.lookNonce(ctx, nonce, read, binding, also)
	if err != nil || refused || seen {
		return refused, err
	}
	more, err := s.refreshOtherSizes(ctx, clocks, read)
	if err != nil {
		return false, err
	}
	_, refused, _, err = s.lookNonce(ctx, nonce, more, binding, also)
	return refused, err
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

// staysPending reports whether enrollLocked answers a pending request
// "still pending" without writing: issueHeld is not asked (the request is
// not held, and is known or its device has a record), or it gives no
// answer without a write (approval manual, the device not in the file or
// disabled, or still held for the reason the request records). It mirrors
// enrollLocked's and issueHeld's conditions: a held request that issueHeld
// would issue, or whose reason it would rewrite, is left to the lock.
func (a *App) staysPending(req *Request, rec *DeviceRecord) bool {
	if !req.Held && (req.Known || rec != nil) {
		return true
	}
	if a.Approval != ApprovalAuto {
		return true
	}
	if cur := a.cfg.device(req.Device); !cur.Known || !cur.Enabled {
		return true
	}
	why := a.issuanceHeld(rec, a.now())
	return why != "" && req.Held && why == req.Reason
}
