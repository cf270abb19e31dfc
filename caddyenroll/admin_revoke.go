package caddyenroll

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

type revokeBody struct {
	Serial string `json:"serial,omitempty"`
	Device string `json:"device,omitempty"`
	Reason *int   `json:"reason,omitempty"`
	// ForgetIDs (with Device) also forgets the device and customer ids
	// the device first enrolled with, so that its next enrollment records
	// new ones: a device another account enrolled first (trust on first
	// use), or one whose ids changed.
	ForgetIDs bool `json:"forget_ids,omitempty"`
}

// revoke answers POST /enroll/revoke: it revokes the certificate of a
// serial, or every certificate of a device (and clears its enrolled flag),
// under the device's lock; with forget_ids it forgets the device's ids, and
// with reason key compromise it revokes every other certificate of the
// keys. It goes on if the client hangs up: once begun, it is done.
func (ad *adminAPI) revoke(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return notAllowed(w, r, http.MethodPost)
	}
	body, reason, err := readRevokeBody(r)
	if err != nil {
		return err
	}
	ctx := context.WithoutCancel(r.Context()) // once begun, done
	device, hits, err := ad.revokeTarget(ctx, body)
	if err != nil {
		return err
	}
	if body.Device != "" {
		// by the name its certificates and lock have: the file is
		// searched with it too ("[gw1.example]" names no device there)
		body.Device = device
	}
	// under the device's lock, as issuance: a certificate issued meanwhile
	// is either revoked here or issued after
	unlock, err := ad.app.state.lockDevice(ctx, device)
	if err != nil {
		return apiErr(http.StatusInternalServerError, err)
	}
	revoked, newly, deferred, err := ad.revokeLocked(ctx, body, hits, reason)
	if err == nil {
		ad.app.noteCurrent(ctx, device) // at once, here and in the configs sharing its CAs
	}
	forgot := false
	if err == nil && body.ForgetIDs {
		// by the file's spelling, as enrollment reads the record: one not
		// in normal form has a copy where earlier versions keep it
		if forgot, err = ad.app.state.forgetIDs(ctx, ad.app.fileName(device)); err != nil {
			err = apiErr(http.StatusInternalServerError, fmt.Errorf("certificates of %s revoked (%s), but its ids are not forgotten: %w",
				device, strings.Join(revoked, ", "), err))
		} else if forgot {
			ad.log.Info("device ids forgotten", zap.String("device", device))
		}
	}
	unlock() // not held through the refresh and the answer
	if err != nil {
		// a revocation that failed half-way (the disk filled up) may have
		// stored the revoked list, which the CRL is made from, before the
		// certificate's record: read now, not at the next refresh, so
		// that enrollment and OSP refuse what the CRL lists
		ad.app.refreshAfterFailedRevocation(ctx)
		// what was revoked before the failure is stored: counted, and its
		// event emitted
		metrics.revoked.Add(float64(newly))
		ad.app.notifyRevoked("admin", "", device, revoked, reason)
		return err
	}
	if reason == ca.ReasonKeyCompromise {
		// the key is leaked whichever device holds a certificate of it
		byName := ""
		if body.Device != "" {
			byName = device
		}
		more, n, err := ad.revokeSameKeys(ctx, byName, revoked)
		revoked, newly = append(revoked, more...), newly+n
		if err != nil {
			metrics.revoked.Add(float64(newly))
			// the same key's other certificates may be revoked half-way
			ad.app.refreshAfterFailedRevocation(ctx)
			ad.app.notifyRevoked("admin", "", device, revoked, reason)
			return apiErr(http.StatusInternalServerError, fmt.Errorf("certificates %s revoked, but not every other certificate of their keys: %w",
				strings.Join(revoked, ", "), err))
		}
	}
	metrics.revoked.Add(float64(newly))
	ad.app.notifyRevoked("admin", "", device, revoked, reason)
	// done even if the client hangs up: the revocation is stored already
	if err := ad.app.refreshRevoked(ctx); err != nil {
		ad.log.Error("refreshing revocations", zap.Error(err))
	}
	if revoked == nil {
		revoked = []string{}
	}
	answer := map[string]any{"revoked": revoked}
	if body.ForgetIDs {
		answer["ids_forgotten"] = forgot
	}
	if deferred != nil {
		answer["note"] = ad.waitNote(body.Device, "marked not enrolled", deferred)
	}
	return writeJSON(w, answer)
}

// revokeTarget finds what a revoke names: by serial, its issuance records
// (hits) and their device; by device, the device's name in normal form (the
// name issuance locks). A device of the file that no certificate can name
// ('GW 1', identified by its source_address) keeps its name: it has only
// its flag to clear. The error is the API's answer.
func (ad *adminAPI) revokeTarget(ctx context.Context, body revokeBody) (device string, hits []revocationHit, err error) {
	if body.Serial != "" {
		if hits, err = ad.lookupSerial(ctx, body.Serial); err != nil {
			return "", nil, err
		}
		return hits[0].rec.Device, hits, nil
	}
	name, _, err := ca.NormalizeDevice(body.Device)
	switch {
	case err == nil:
		return name, nil, nil
	case !ad.app.cfg.device(body.Device).Known:
		return "", nil, apiErr(http.StatusBadRequest, err)
	}
	return body.Device, nil, nil
}

// readRevokeBody reads and checks a revoke's body, and returns it with its
// reason (0, unspecified, when it gives none). The error is the API's
// answer.
func readRevokeBody(r *http.Request) (body revokeBody, reason int, err error) {
	if err := readBody(r, &body); err != nil {
		return body, 0, err
	}
	if (body.Serial == "") == (body.Device == "") {
		return body, 0, apiErr(http.StatusBadRequest, errors.New("give exactly one of serial or device"))
	}
	if body.ForgetIDs && body.Device == "" {
		return body, 0, apiErr(http.StatusBadRequest, errors.New("forget_ids needs device"))
	}
	if body.Reason != nil {
		reason = *body.Reason
		if _, err := ca.ParseReason(strconv.Itoa(reason)); err != nil {
			return body, 0, apiErr(http.StatusBadRequest, err)
		}
	}
	return body, reason, nil
}

// revokeSameKeys revokes for key compromise the certificates of other
// devices (cloned gateways) with the public key of one of serials, just
// revoked for key compromise: its marker keeps the key from enrolling
// again, but a certificate already issued for it would still identify its
// device to whoever stole the key (OSP, the client certificate verifier).
// Each is revoked under its device's lock, as issuance revokes. It reads
// every issuance record of every CA: key compromise is rare. A device
// revoked by name (device, else "") counts with the keys of its
// certificates revoked for key compromise before, which serials leaves out
// (RevokeDevice returns none of them): revoked so by an earlier version, or
// by a revocation whose revocation of the other certificates failed, which
// the operator repeats. It returns the serials revoked (those revoked
// before for another reason included, as revokeLocked lists them) and how
// many were not revoked before.
func (ad *adminAPI) revokeSameKeys(ctx context.Context, device string, serials []string) (revoked []string, newly int, err error) {
	keys := make(map[string]bool)
	for _, c := range ad.app.cas {
		for _, s := range serials {
			if rec, err := c.Lookup(ctx, s); err == nil {
				keys[rec.PublicKeySHA256] = true
			} else if !errors.Is(err, ca.ErrNotFound) {
				return nil, 0, fmt.Errorf("looking up serial %s: %w", s, err)
			}
		}
	}
	all := make(map[string][]ca.Record, len(ad.app.cas))
	for profile, c := range ad.app.cas {
		recs, err := c.Records(ctx, "")
		if err != nil {
			return revoked, newly, fmt.Errorf("certificates of the %s CA: %w", profile, err)
		}
		all[profile] = recs
		for _, r := range recs {
			if device != "" && r.Revoked && r.Reason == ca.ReasonKeyCompromise && r.PublicKeySHA256 != "" &&
				configfile.DeviceKey(r.Device) == configfile.DeviceKey(device) {
				keys[r.PublicKeySHA256] = true
			}
		}
	}
	for profile, recs := range all {
		c := ad.app.cas[profile]
		for _, r := range recs {
			if !keys[r.PublicKeySHA256] || slices.Contains(serials, r.Serial) || r.Revoked && r.Reason == ca.ReasonKeyCompromise {
				continue
			}
			unlock, err := ad.app.state.lockDevice(ctx, r.Device)
			if err != nil {
				return revoked, newly, err // it names the device
			}
			// r was read before the lock: a revocation racing this one
			// (another operator's, an issuance's check of the key) may
			// have revoked it since, and counted it; RevokeSerial tells
			// fresh with an error: revoked, what failed came after
			fresh, err := c.RevokeSerial(ctx, r.Serial, ca.ReasonKeyCompromise)
			if err == nil || fresh {
				ad.app.noteRevoked(profile, "", []string{r.Serial}, false)
				ad.app.noteCurrent(ctx, r.Device)
				revoked = append(revoked, r.Serial)
			}
			if fresh {
				newly++
			}
			unlock()
			if err != nil {
				return revoked, newly, fmt.Errorf("revoking %s of %s: %w", r.Serial, r.Device, err)
			}
			ad.log.Info("certificate of a compromised key revoked", zap.String("serial", r.Serial),
				zap.String("device", r.Device), zap.String("profile", profile))
		}
	}
	return revoked, newly, nil
}

// revocationHit is a certificate a revoke by serial found, by profile.
type revocationHit struct {
	profile string
	rec     *ca.Record
}

// lookupSerial finds the issuance records of serial, by profile (in
// profile order). An invalid serial is 400 and one no CA issued 404; a
// record that storage fails to read, or that does not decode, is 500: the
// certificate may well exist.
func (ad *adminAPI) lookupSerial(ctx context.Context, serial string) ([]revocationHit, error) {
	if _, err := ca.NormalizeSerial(serial); err != nil {
		return nil, apiErr(http.StatusBadRequest, err)
	}
	var hits []revocationHit
	for profile, c := range ad.app.cas {
		rec, err := c.Lookup(ctx, serial)
		switch {
		case errors.Is(err, ca.ErrNotFound):
		case err != nil:
			return nil, apiErr(http.StatusInternalServerError, fmt.Errorf("looking up serial %s (%s CA): %v", serial, profile, err))
		case rec != nil:
			hits = append(hits, revocationHit{profile, rec})
		}
	}
	if len(hits) == 0 {
		return nil, apiErr(http.StatusNotFound, fmt.Errorf("no certificate with serial %s", serial))
	}
	sort.Slice(hits, func(i, j int) bool { return hits[i].profile < hits[j].profile })
	return hits, nil
}

// revokeFailed is the answer to a revocation that failed after revoking
// some certificates (the CRL lists them): the operator must not take the
// whole request as failed.
func revokeFailed(revoked []string, err error) error {
	if len(revoked) == 0 {
		return apiErr(http.StatusInternalServerError, err)
	}
	return apiErr(http.StatusInternalServerError, fmt.Errorf("certificates %s revoked, but: %w", strings.Join(revoked, ", "), err))
}

// revokeLocked revokes what body names, under the device's lock, and
// unmarks a device revoked by name. A name that is neither a device of
// the file nor has any certificate is refused (404): a typo. It returns the
// serials revoked, how many of them were not revoked before and, when the
// unmark waits in storage for the file (deferMark), why (else nil); with
// an error, those revoked before it (stored: their event is emitted).
func (ad *adminAPI) revokeLocked(ctx context.Context, body revokeBody, hits []revocationHit, reason int) (revoked []string, newly int, deferred error, err error) {
	for _, h := range hits {
		// h.rec was read before the device's lock: another revocation of
		// it meanwhile counted it already
		// fresh with an error: revoked, what failed came after
		fresh, err := ad.app.cas[h.profile].RevokeSerial(ctx, body.Serial, reason)
		if err == nil || fresh {
			ad.app.noteRevoked(h.profile, "", []string{h.rec.Serial}, false)
			revoked = append(revoked, h.rec.Serial)
		}
		if fresh {
			newly++
		}
		if err != nil {
			return revoked, newly, nil, revokeFailed(revoked, err)
		}
		ad.log.Info("certificate revoked", zap.String("serial", h.rec.Serial), zap.String("profile", h.profile))
	}
	if body.Device == "" {
		return revoked, newly, nil, nil
	}
	// the device's records, by profile: read once, when needed to tell a
	// mistyped name (neither in the file nor issued a certificate: 404) or
	// the revoked certificates whose reason key compromise changes
	d := ad.app.cfg.device(body.Device)
	_, _, badName := ca.NormalizeDevice(body.Device) // no CA has certified it (revoke refused it unless d.Known)
	var recs map[string][]ca.Record
	if badName == nil && (!d.Known || reason == ca.ReasonKeyCompromise) {
		recs = make(map[string][]ca.Record, len(ad.app.cas))
		issued := false
		for profile, c := range ad.app.cas {
			r, err := c.Records(ctx, body.Device)
			if err != nil {
				return nil, 0, nil, apiErr(http.StatusInternalServerError, fmt.Errorf("certificates of %s (%s CA): %v", body.Device, profile, err))
			}
			recs[profile] = r
			issued = issued || len(r) > 0
		}
		if !d.Known && !issued {
			return nil, 0, nil, apiErr(http.StatusNotFound, fmt.Errorf("no device %s: it is not in the configuration file %s and no certificate was issued to it",
				body.Device, ad.app.ConfigFile))
		}
	}
	cas := ad.app.cas
	if badName != nil {
		cas = nil // a name no CA certifies: no certificate to revoke
	}
	for profile, c := range cas {
		// for key compromise, revoked certificates change their reason:
		// listed in the answer (as a revoke by serial lists them), not
		// counted as newly revoked
		var rereasoned []string
		if reason == ca.ReasonKeyCompromise {
			for _, r := range recs[profile] {
				if r.Revoked && r.Reason != ca.ReasonKeyCompromise {
					rereasoned = append(rereasoned, r.Serial)
				}
			}
		}
		// with an error, serials are revoked all the same
		serials, err := c.RevokeDevice(ctx, body.Device, reason, "")
		if len(serials) > 0 {
			ad.app.noteRevoked(profile, "", serials, false)
			revoked = append(revoked, serials...)
			newly += len(serials)
		}
		if err != nil {
			return revoked, newly, nil, revokeFailed(revoked, err)
		}
		revoked = append(revoked, rereasoned...)
	}
	deferred, err = ad.unmarkRevoked(ctx, body.Device, d)
	if err != nil {
		// the revocation stands: say so, lest the operator take the
		// whole request as failed
		return revoked, newly, nil, apiErr(http.StatusInternalServerError, fmt.Errorf("certificates of %s revoked (%s), but its enrolled flag is still set: %w",
			body.Device, strings.Join(revoked, ", "), err))
	}
	ad.log.Info("device certificates revoked", zap.String("device", body.Device), zap.Strings("serials", revoked))
	return revoked, newly, deferred, nil
}

// unmarkRevoked clears the enrolled flag of a device whose certificates
// were revoked by name (d is the device as the version in force has it): a
// device without a valid certificate is not enrolled any more. While the
// file cannot be edited the flag is cleared once it can (the revocation
// keeps the device out of routes meanwhile): deferred is then why. The flag
// is read in the version the edit parses, not the one in force: another
// instance sharing the file may have marked the device (or added it,
// approved) since this one last reloaded it.
func (ad *adminAPI) unmarkRevoked(ctx context.Context, device string, d deviceInfo) (deferred, err error) {
	if ad.app.flagAsWanted(ctx, device, false) {
		return nil, nil
	}
	name := d.Name
	err = ad.app.cfg.editSettled(ctx, func(f *configfile.File) error {
		if fd, ok := f.Device(device); ok {
			name = fd.Name
		}
		outcome, err := markIn(f, mark{Device: device, Unmark: true})
		if err == nil && outcome != markWritten {
			return errNothingToWrite
		}
		return err
	})
	switch {
	case errors.Is(err, errNothingToWrite):
		return nil, nil
	case errors.Is(err, errFileUnavailable):
		return err, ad.app.deferMark(ctx, mark{Device: name, Unmark: true}, err)
	}
	return nil, err
}
