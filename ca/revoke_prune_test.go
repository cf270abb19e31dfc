package ca

import (
	"context"
	"errors"
	"testing"
	"time"
)

type reviewInnerStore = Store

// reviewCrashStore fails the Store of one key (a kill -9 just before it).
type reviewCrashStore struct {
	reviewInnerStore
	failKey string
}

func (s *reviewCrashStore) Store(ctx context.Context, key string, value []byte) error {
	if key == s.failKey {
		return errors.New("killed")
	}
	return s.reviewInnerStore.Store(ctx, key, value)
}

// Revoke writes the revoked list before it marks the record: a crash in
// between leaves the list to complete the revocation (the next Revoke, or
// a supersession, marks the record). Pruning the list (a day after
// expiry) marks such a record first, with the revocation's first time and
// reason, so that it is never forgotten or revoked anew.
func TestCrashBeforeRecordMarkedSurvivesListPruning(t *testing.T) {
	ctx := context.Background()
	now := testNow
	st := &reviewCrashStore{reviewInnerStore: NewMemStore()}
	c, _ := openCA(t, st, Config{Now: func() time.Time { return now }, Validity: 10 * day}, "")
	is := issueN(t, c, "device1.itsp.com", 1)[0]
	now = is.NotAfter.Add(-time.Hour)
	revokedAt := now.UTC().Truncate(time.Second)
	st.failKey = c.issuedKey(is.Serial)
	if err := c.Revoke(ctx, is.Serial, ReasonCessationOfOperation); err == nil {
		t.Fatal("the record's write did not fail")
	}
	st.failKey = ""
	if ok, err := c.IsRevoked(ctx, is.Serial); err != nil || !ok {
		t.Fatalf("after the crash the certificate is not revoked: %v, %v", ok, err)
	}
	// CRLs go on being signed: one after the expiry lists it, the next drops it
	now = is.NotAfter.Add(time.Hour)
	crlOf(t, c.CRL)
	now = is.NotAfter.Add(2 * day)
	crlOf(t, c.CRL)
	// the device re-enrolls (a supersession walks its certificates), and
	// the operator revokes the certificate again
	cur := issueN(t, c, "device1.itsp.com", 1)[0]
	if _, err := c.RevokeDevice(ctx, "device1.itsp.com", ReasonSuperseded, cur.Serial); err != nil {
		t.Fatal(err)
	}
	if err := c.Revoke(ctx, is.Serial, ReasonCessationOfOperation); err != nil {
		t.Fatal(err)
	}
	rec, err := c.Lookup(ctx, is.Serial)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Revoked || !rec.RevokedAt.Equal(revokedAt) {
		t.Errorf("record after the crash, the pruning and two revocations: revoked=%v at %v; want revoked at %v (its first time)",
			rec.Revoked, rec.RevokedAt, revokedAt)
	}
}

// A supersession leaves alone certificates expired beyond the clock skew
// allowed between instances (Backdate), not those expired by its own
// clock only: an instance whose clock is a little behind still takes such
// a certificate for valid, so it must be revoked.
func TestSupersessionRevokesWithinSkewMargin(t *testing.T) {
	ctx := context.Background()
	st := NewMemStore()
	nowB := testNow
	nowA := func() time.Time { return nowB.Add(time.Minute) } // instance A's clock a minute ahead
	a, res := openCA(t, st, Config{Now: nowA, Validity: 10 * day}, "")
	b, _ := openCA(t, st, Config{Now: func() time.Time { return nowB }}, res.CryptoParam)
	old := issueN(t, a, "device1.itsp.com", 1)[0]
	nowB = old.NotAfter.Add(-30 * time.Second) // B: valid 30 s more; A: expired 30 s ago
	cur := issueN(t, b, "device1.itsp.com", 1)[0]
	if _, err := a.RevokeDevice(ctx, "device1.itsp.com", ReasonSuperseded, cur.Serial); err != nil {
		t.Fatal(err)
	}
	if nowB.After(old.NotAfter) {
		t.Fatal("test setup: the certificate has expired for B")
	}
	if ok, err := b.IsRevoked(ctx, old.Serial); err != nil || !ok {
		t.Errorf("superseded certificate still valid by B's clock: revoked=%v (%v); want revoked", ok, err)
	}
}
