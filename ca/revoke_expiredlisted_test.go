package ca

import (
	"context"
	"crypto/x509"
	"slices"
	"testing"
	"time"
)

// A certificate revoked less than a day after it expired is listed by the
// next CRL even when that CRL is signed more than a day after the expiry
// (no CRL signed after the revocation listed it yet), and dropped by the
// one after it, by the rule that drops every expired entry.
func TestRevokedWithinADayListedThenDropped(t *testing.T) {
	ctx := context.Background()
	now := testNow
	c, _ := openCA(t, NewMemStore(), Config{Now: func() time.Time { return now }, Validity: 10 * day, CRLValidity: 2 * time.Hour}, "")
	old := issueN(t, c, "device1.itsp.com", 1)[0]
	listed := func() bool {
		return slices.ContainsFunc(crlOf(t, c.CRL).RevokedCertificateEntries, func(e x509.RevocationListEntry) bool {
			return e.SerialNumber.Text(16) == old.Serial
		})
	}
	now = old.NotAfter.Add(time.Hour)
	if listed() {
		t.Fatal("listed before its revocation")
	}
	now = old.NotAfter.Add(day - time.Minute)
	got, err := c.RevokeDeviceIssuedBefore(ctx, "device1.itsp.com", ReasonCessationOfOperation, time.Time{})
	if err != nil || !slices.Contains(got, old.Serial) {
		t.Fatalf("revoked %v, %v; want its serial", got, err)
	}
	now = old.NotAfter.Add(day + 10*time.Minute)
	if !listed() {
		t.Fatal("the first CRL after the revocation, signed more than a day after the expiry, does not list it")
	}
	now = now.Add(2 * time.Hour) // the CRL is due again
	if listed() {
		t.Fatal("the CRL after the one that listed it still lists it")
	}
}
