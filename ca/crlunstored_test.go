package ca

import (
	"context"
	"testing"
	"time"
)

// A CRL signed in memory is served again only while it lists the revoked
// set of now: a revocation stored while the disk had room for it, but not
// for the CRL, is listed by a new one (the one signed before it was
// served until half its validity, hiding the revocation from every
// relying party).
func TestUnstoredCRLListsLaterRevocation(t *testing.T) {
	ctx := context.Background()
	f := newFullDiskCRLs(t)
	c, st, issued := f.c, f.st, f.issued
	st.full.Store(true)
	f.now = f.now.Add(49 * time.Hour) // past the stored CRL's nextUpdate
	first := unstoredCRLOf(t, c, "past its nextUpdate")
	if len(first.RevokedCertificateEntries) != 1 {
		t.Fatalf("signed in memory: %d entries, want 1", len(first.RevokedCertificateEntries))
	}
	st.full.Store(false) // room for the revocation, not for the CRL
	if err := c.Revoke(ctx, issued[1].Serial, ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	st.full.Store(true)
	f.now = f.now.Add(time.Minute)
	crl := unstoredCRLOf(t, c, "after a revocation")
	if len(crl.RevokedCertificateEntries) != 2 || crl.Number.Cmp(first.Number) <= 0 {
		t.Fatalf("after a revocation: number %v, %d entries; want 2 entries, numbered after %v",
			crl.Number, len(crl.RevokedCertificateEntries), first.Number)
	}
}

// A CRL signed in memory is not served again by a clock stepped back
// before it was signed: its thisUpdate would be ahead of the clock, not
// yet valid to a relying party whose clock agrees; one is signed anew.
func TestUnstoredCRLClockSteppedBack(t *testing.T) {
	now := testNow
	st := &fullStore{countedStore: NewMemStore()}
	c, _ := openCA(t, st, Config{CRLValidity: 48 * time.Hour, Now: func() time.Time { return now }}, "")
	if _, err := c.CRL(context.Background()); err != nil {
		t.Fatal(err)
	}
	st.full.Store(true)
	now = now.Add(49 * time.Hour)
	first := unstoredCRLOf(t, c, "past its nextUpdate")
	now = now.Add(-time.Hour)
	crl := unstoredCRLOf(t, c, "clock stepped back")
	if crl.ThisUpdate.After(now) || crl.Number.Cmp(first.Number) <= 0 {
		t.Fatalf("clock stepped back: number %v, thisUpdate %v (now %v); want a new one, numbered after %v, valid now",
			crl.Number, crl.ThisUpdate, now, first.Number)
	}
}
