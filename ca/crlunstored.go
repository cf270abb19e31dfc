package ca

import (
	"context"
	"fmt"
	"math"
	"time"
)

// A CRL that cannot be stored is still signed and served from memory when
// the stored one must not be: it lacks a revocation (made before the disk
// filled up, whose CRL was not written yet), or has reached its
// nextUpdate. Storage is only the CRL's cache; the CA key signs it, and
// the revocation state it lists is read from storage. Serving the stored
// CRL would hide the revocation from every relying party, and serving
// none (the server's start read its CRLs and failed) would leave them
// with an older one that hides it as well.
//
// The CRL number cannot be stored either. RFC 5280 (5.2.3) wants a new,
// greater number for each CRL: a CRL signed here takes the number after
// both the stored one's and any this process signed without storage, and
// at least its signing time in nanoseconds since 1970 (nextCRLNumber, as
// Let's Encrypt numbers its CRLs), so that a process started anew, or
// another instance sharing the storage, which do not know the numbers of
// CRLs signed without storage, still number theirs above while their
// clocks move forward. Only a clock stepped back by more than the time
// between the two, or another instance's clock behind by more than that
// (instances may differ by 5 minutes), could give a lower number, or the
// same, to a CRL that lists the same revocations (none can be made while
// the storage cannot be written) unless one was made in between. Persisting the number is what cannot be
// done; serving no CRL, or the stored one, would hide the revocation from
// everyone instead.

// nextCRLNumber is the number of a CRL signed at now after one numbered
// last: above it, and at least now in nanoseconds since 1970 (an int64
// holds them until 2262; the 20 octets RFC 5280 allows hold 8). After the
// greatest int64 (a crl.json written by hand, or a clock set centuries
// ahead) there is none: last+1 would wrap to a number below every other.
func nextCRLNumber(last int64, now time.Time) (int64, error) {
	if last == math.MaxInt64 {
		return 0, fmt.Errorf("ca: no CRL number after %d, the greatest this CA stores", last)
	}
	return max(last+1, now.UnixNano()), nil
}

// unstoredCRL is a CRL signed while storage failed.
type unstoredCRL struct {
	der    []byte
	number int64
	digest string    // of the revoked set it lists (crlInputs)
	issuer string    // SHA-256 of the certificate that signed it
	signed time.Time // when (the CRL's thisUpdate is backdated)
}

// numbered runs store, which signs and stores a CRL's number, with the
// number after stored (the stored CRL's) and after any CRL this process
// signed without storing it (nextCRLNumber at now). It holds their lock
// throughout: a CRL signed meanwhile without storage (a lock or write of
// another caller failed) would read the stored number before store writes
// it, and take the same number for another CRL.
func (m *CRLCache) numbered(stored int64, now time.Time, store func(number int64) error) error {
	m.unstoredMu.Lock()
	defer m.unstoredMu.Unlock()
	number, err := nextCRLNumber(max(stored, m.unstoredMax), now)
	if err != nil {
		return err
	}
	return store(number)
}

// unstoredCRL returns a CRL listing the revoked set of now, signed in
// memory: the one signed last while storage failed, while it lists the
// same set, is numbered above the stored CRL and is younger than half
// its validity (as a stored one is renewed), else a new one; nil when
// the revoked set cannot be read or the CRL cannot be signed.
func (c *CA) unstoredCRL(ctx context.Context) []byte {
	if ctx.Err() != nil {
		return nil
	}
	m := c.crl
	m.unstoredMu.Lock()
	defer m.unstoredMu.Unlock()
	now := c.cfg.Now().UTC().Truncate(time.Second)
	rf, serials, digest, meta, err := c.crlInputs(ctx, now)
	if err != nil {
		return nil
	}
	if u := m.unstored; u != nil && u.digest == digest && u.issuer == c.issuerFP && u.number > meta.Number &&
		!now.Before(u.signed) && now.Before(u.signed.Add(c.cfg.CRLValidity/2)) {
		return u.der
	}
	number, err := nextCRLNumber(max(meta.Number, m.unstoredMax), c.cfg.Now())
	if err != nil {
		return nil
	}
	der, _, err := c.signCRL(rf, serials, now, number)
	if err != nil {
		return nil
	}
	m.unstored = &unstoredCRL{der: der, number: number, digest: digest, issuer: c.issuerFP, signed: now}
	m.unstoredMax = number
	return der
}
