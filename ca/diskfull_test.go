package ca

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"io/fs"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// fullStore is a Store whose disk fills up on demand: reads work, writes
// and locks (a lock file to create) fail with ENOSPC, as Caddy's file
// storage then does.
type fullStore struct {
	countedStore
	full atomic.Bool
}

func (s *fullStore) Store(ctx context.Context, key string, value []byte) error {
	if s.full.Load() {
		return &fs.PathError{Op: "write", Path: key, Err: syscall.ENOSPC}
	}
	return s.countedStore.Store(ctx, key, value)
}

func (s *fullStore) Lock(ctx context.Context, name string) error {
	if s.full.Load() {
		return &fs.PathError{Op: "write", Path: "locks/" + name, Err: syscall.ENOSPC}
	}
	return s.countedStore.Lock(ctx, name)
}

// fullDiskCRLs is a CA on a store whose disk fills up while st.full is
// set, its CRLs valid 48 h by the clock now (testNow to begin with): of
// two certificates issued, the first is revoked (superseded), and the
// CRL listing it is stored.
type fullDiskCRLs struct {
	c      *CA
	st     *fullStore
	now    time.Time
	issued []*Issued
	stored []byte // the CRL's DER
}

func newFullDiskCRLs(t *testing.T) *fullDiskCRLs {
	t.Helper()
	ctx := context.Background()
	f := &fullDiskCRLs{st: &fullStore{countedStore: NewMemStore()}, now: testNow}
	f.c, _ = openCA(t, f.st, Config{CRLValidity: 48 * time.Hour, Now: func() time.Time { return f.now }}, "")
	f.issued = issueN(t, f.c, "device1.itsp.com", 2)
	if err := f.c.Revoke(ctx, f.issued[0].Serial, ReasonSuperseded); err != nil {
		t.Fatal(err)
	}
	var err error
	if f.stored, err = f.c.CRL(ctx); err != nil {
		t.Fatal(err)
	}
	return f
}

// A CRL due for renewal on a full disk is the stored one while it lists
// every revocation and is before its nextUpdate (CRL said only the
// storage's error: /ca.crl answered 500, and the server's start, which
// reads the CRLs, failed, once half the CRL's validity had passed).
// Otherwise — past its nextUpdate, or lacking a revocation — a CRL is
// signed in memory, numbered after the stored one and any signed so, and
// the next stored CRL after those (CRL said only the storage's error).
func TestCRLNotRenewedOnFullDisk(t *testing.T) {
	ctx := context.Background()
	f := newFullDiskCRLs(t)
	c, st, issued, stored := f.c, f.st, f.issued, f.stored

	st.full.Store(true)
	f.now = f.now.Add(25 * time.Hour) // a new one is due
	der, err := c.CRL(ctx)
	if !errors.Is(err, ErrCRLNotRenewed) || !errors.Is(err, syscall.ENOSPC) || !bytes.Equal(der, stored) {
		t.Fatalf("due on a full disk: %v (the stored CRL: %v); want ErrCRLNotRenewed with the cause, and the stored CRL", err, bytes.Equal(der, stored))
	}
	if der, err := c.CachedCRL(ctx); err != nil || !bytes.Equal(der, stored) {
		t.Fatalf("served: %v (the stored CRL: %v)", err, bytes.Equal(der, stored))
	}
	f.now = f.now.Add(24 * time.Hour) // past its nextUpdate: signed in memory
	crl := unstoredCRLOf(t, c, "past its nextUpdate")
	if crl.Number.Int64() != f.now.UnixNano() || len(crl.RevokedCertificateEntries) != 1 || !crl.NextUpdate.After(f.now) {
		t.Fatalf("past its nextUpdate: number %v, %d entries, next update %v", crl.Number, len(crl.RevokedCertificateEntries), crl.NextUpdate)
	}
	if again := unstoredCRLOf(t, c, "asked again"); !bytes.Equal(again.Raw, crl.Raw) {
		t.Fatalf("asked again: number %v; want the same CRL, number %v", again.Number, crl.Number)
	}
	f.now = f.now.Add(25 * time.Hour) // half its validity: signed anew, numbered after it
	renewed := f.now.UnixNano()
	if crl = unstoredCRLOf(t, c, "renewed in memory"); crl.Number.Int64() != renewed {
		t.Fatalf("renewed in memory: number %v, want %d", crl.Number, renewed)
	}
	st.full.Store(false) // stored again, numbered after those served (the clock has not moved)
	if crl = crlOf(t, c.CRL); crl.Number.Int64() != renewed+1 {
		t.Fatalf("stored once the disk was freed: number %v, want %d", crl.Number, renewed+1)
	}

	// a revocation the stored CRL lacks: a CRL listing it, signed in memory
	if err := c.Revoke(ctx, issued[1].Serial, ReasonSuperseded); err != nil {
		t.Fatal(err)
	}
	st.full.Store(true)
	if crl = unstoredCRLOf(t, c, "a revocation not in the stored CRL"); crl.Number.Int64() != renewed+2 || len(crl.RevokedCertificateEntries) != 2 {
		t.Fatalf("a revocation not in the stored CRL: number %v, %d entries; want %d, 2", crl.Number, len(crl.RevokedCertificateEntries), renewed+2)
	}
	if der, err := c.CachedCRL(ctx); err != nil || !bytes.Equal(der, crl.Raw) {
		t.Fatalf("served: %v (the CRL signed in memory: %v)", err, bytes.Equal(der, crl.Raw))
	}
	st.full.Store(false) // space freed: signed again
	if crl := crlOf(t, c.CRL); len(crl.RevokedCertificateEntries) != 2 || crl.Number.Int64() != renewed+3 {
		t.Fatalf("after the disk was freed: number %v, %d entries, want %d, 2", crl.Number, len(crl.RevokedCertificateEntries), renewed+3)
	}
}

// unstoredCRLOf is c's CRL on a full disk: signed in memory, with
// ErrCRLNotStored and the storage's error.
func unstoredCRLOf(t *testing.T, c *CA, what string) *x509.RevocationList {
	t.Helper()
	der, err := c.CRL(context.Background())
	if !errors.Is(err, ErrCRLNotStored) || !errors.Is(err, syscall.ENOSPC) || der == nil {
		t.Fatalf("%s: %d bytes, %v; want a CRL with ErrCRLNotStored and the cause", what, len(der), err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := crl.CheckSignatureFrom(c.Issuer()); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return crl
}

// recordFullStore fails the writes of issuance records only: the disk
// fills up between the device index entry and the record.
type recordFullStore struct{ countedStore }

func (s recordFullStore) Store(ctx context.Context, key string, value []byte) error {
	if strings.Contains(key, "/"+keyIssued+"/") {
		return &fs.PathError{Op: "write", Path: key, Err: syscall.ENOSPC}
	}
	return s.countedStore.Store(ctx, key, value)
}

// An issuance whose record cannot be written leaves no device index
// entry (it left one for good: no record says when it expires, so the
// prune kept it, and every Records of the device looked it up).
func TestRecordFailureLeavesNoIndexEntry(t *testing.T) {
	ctx := context.Background()
	mem := NewMemStore()
	c, _ := openCA(t, mem, Config{}, "")
	full, _ := openCA(t, recordFullStore{mem}, Config{}, c.CryptoParam())
	csr := makeCSR(t, testKey(t, "p256"), csrOpts{})
	if _, err := full.Issue(ctx, csr, "device1.itsp.com", Policy{}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("issuance on a full disk: %v, want ENOSPC", err)
	}
	serials, err := c.deviceSerials(ctx, "device1.itsp.com")
	if err != nil || len(serials) != 0 {
		t.Fatalf("device index after the failed issuance: %v (%v), want empty", serials, err)
	}
}

// metaHookStore runs hook before the first write of a CRL's metadata.
type metaHookStore struct {
	countedStore
	once sync.Once
	hook func()
}

func (s *metaHookStore) Store(ctx context.Context, key string, value []byte) error {
	if strings.HasSuffix(key, keyCRLMeta) && s.hook != nil {
		s.once.Do(s.hook)
	}
	return s.countedStore.Store(ctx, key, value)
}

// A CRL signed in memory while another is being stored (its caller's
// lock or writes failed, this one's did not) is numbered after the one
// stored: it read the stored number before the new one was written, and
// two CRLs of this process had the same number.
func TestCRLNumberUnstoredWhileStoring(t *testing.T) {
	now := testNow
	st := &metaHookStore{countedStore: NewMemStore()}
	c, _ := openCA(t, st, Config{CRLValidity: 48 * time.Hour, Now: func() time.Time { return now }}, "")
	issued := issueN(t, c, "device1.itsp.com", 1)
	if err := c.Revoke(context.Background(), issued[0].Serial, ReasonSuperseded); err != nil {
		t.Fatal(err)
	}
	var unstored []byte
	done := make(chan struct{})
	st.hook = func() {
		go func() {
			defer close(done)
			unstored = c.unstoredCRL(context.Background())
		}()
		select { // it finishes now, unless it waits for this write
		case <-done:
		case <-time.After(300 * time.Millisecond):
		}
	}
	stored := crlOf(t, c.CRL)
	<-done
	if unstored == nil {
		t.Fatal("no CRL signed in memory")
	}
	mem, err := x509.ParseRevocationList(unstored)
	if err != nil {
		t.Fatal(err)
	}
	if mem.Number.Cmp(stored.Number) <= 0 {
		t.Fatalf("signed in memory while one was stored: number %v, the stored one's %v; want a higher one", mem.Number, stored.Number)
	}
}

// A CRL signed in memory on a full disk is numbered below every CRL a
// process started later signs, in memory or stored, which does not know
// its number: CRL numbers are at least the signing time (nextCRLNumber).
// Numbered after the stored CRL only, the restarted process's first CRL
// took the number of the one served before, listing other revocations.
func TestCRLNumberAfterRestartOnFullDisk(t *testing.T) {
	ctx := context.Background()
	f := newFullDiskCRLs(t)
	param := f.c.CryptoParam()
	if err := f.c.MarkNamed(ctx, func() error { return nil }); err != nil { // the file names it, as a server's does
		t.Fatal(err)
	}
	if err := f.c.Revoke(ctx, f.issued[1].Serial, ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	f.st.full.Store(true)
	served := unstoredCRLOf(t, f.c, "before the restart")

	restarted := func(at time.Time) *CA {
		c, _ := openCA(t, f.st, Config{CRLValidity: 48 * time.Hour, Now: func() time.Time { return at }}, param)
		return c
	}
	later := restarted(f.now.Add(time.Second))
	if crl := unstoredCRLOf(t, later, "after the restart"); crl.Number.Cmp(served.Number) <= 0 {
		t.Fatalf("signed in memory after a restart: number %v, the one served before %v; want a higher one", crl.Number, served.Number)
	}
	f.st.full.Store(false)
	crl := crlOf(t, restarted(f.now.Add(2*time.Second)).CRL)
	if crl.Number.Cmp(served.Number) <= 0 || len(crl.RevokedCertificateEntries) != 2 {
		t.Fatalf("stored after a restart: number %v, %d entries; want above %v, 2", crl.Number, len(crl.RevokedCertificateEntries), served.Number)
	}
}

// CRL numbers are above the last one and at least the signing time in
// nanoseconds; after the greatest int64 there is none (it wrapped to the
// signing time, below the last number).
func TestNextCRLNumber(t *testing.T) {
	now := time.Date(2026, 11, 28, 1, 2, 3, 4, time.UTC)
	for _, c := range []struct {
		name string
		last int64
		now  time.Time
		want int64 // 0: refused
	}{
		{"first", 0, now, now.UnixNano()},
		{"after an older one", now.UnixNano() - 1000, now, now.UnixNano()},
		{"same clock", now.UnixNano(), now, now.UnixNano() + 1},
		{"clock behind the last", now.UnixNano() + 5*int64(time.Minute), now, now.UnixNano() + 5*int64(time.Minute) + 1},
		{"clock before 1970", 0, time.Unix(-10, 0), 1},
		{"greatest", math.MaxInt64, now, 0},
	} {
		got, err := nextCRLNumber(c.last, c.now)
		if c.want == 0 && err == nil || c.want != 0 && (err != nil || got != c.want) {
			t.Errorf("%s: nextCRLNumber(%d, %v) = %d, %v; want %d", c.name, c.last, c.now, got, err, c.want)
		}
	}
}
