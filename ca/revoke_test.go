package ca

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"math/big"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

func issueN(t testing.TB, c *CA, device string, n int) []*Issued {
	t.Helper()
	var out []*Issued
	csr := makeCSR(t, testKey(t, "p256"), csrOpts{})
	for i := 0; i < n; i++ {
		is, err := c.Issue(context.Background(), csr, device, Policy{})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, is)
	}
	return out
}

func TestRevocation(t *testing.T) {
	ctx := context.Background()
	c, _ := openCA(t, NewMemStore(), Config{}, "")
	d1 := issueN(t, c, "device1.itsp.com", 3)
	d2 := issueN(t, c, "device2.itsp.com", 1)

	if ok, err := c.IsRevoked(ctx, d1[0].Serial); err != nil || ok {
		t.Fatal(ok, err)
	}
	if err := c.Revoke(ctx, d2[0].Serial, ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	if err := c.Revoke(ctx, d2[0].Serial, ReasonSuperseded); err != nil { // no-op
		t.Fatal(err)
	}
	rec, _ := c.Lookup(ctx, d2[0].Serial)
	if !rec.Revoked || rec.Reason != ReasonKeyCompromise || !rec.RevokedAt.Equal(testNow) {
		t.Fatalf("record %+v", rec)
	}
	if err := c.Revoke(ctx, "123456789", ReasonSuperseded); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	for _, r := range []int{ReasonCACompromise, ReasonCertificateHold, ReasonRemoveFromCRL, 7, 11, -1} {
		if err := c.Revoke(ctx, d1[0].Serial, r); err == nil {
			t.Errorf("reason %d accepted", r)
		}
	}

	// Re-enrollment: everything of device1 but the newest is superseded.
	revoked, err := c.RevokeDevice(ctx, "DEVICE1.itsp.com", ReasonSuperseded, d1[2].Serial)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{d1[0].Serial, d1[1].Serial}
	sort.Strings(want)
	if len(revoked) != 2 || revoked[0] != want[0] || revoked[1] != want[1] {
		t.Fatalf("RevokeDevice %v, want %v", revoked, want)
	}
	if again, _ := c.RevokeDevice(ctx, "device1.itsp.com", ReasonSuperseded, d1[2].Serial); len(again) != 0 {
		t.Fatal("revoked twice", again)
	}
	for _, is := range []*Issued{d1[0], d1[1], d2[0]} {
		if ok, _ := c.IsRevoked(ctx, is.Serial); !ok {
			t.Fatal("not revoked", is.Serial)
		}
	}
	if ok, _ := c.IsRevoked(ctx, d1[2].Serial); ok {
		t.Fatal("excepted serial revoked")
	}
	recs, _ := c.Records(ctx, "device1.itsp.com")
	if len(recs) != 3 {
		t.Fatal(len(recs))
	}
	all, _ := c.Records(ctx, "")
	if len(all) != 4 {
		t.Fatal(len(all))
	}

	// CRL.
	der, err := c.CRL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := crl.CheckSignatureFrom(c.Issuer()); err != nil {
		t.Fatal(err)
	}
	// revoked at testNow: thisUpdate is not backdated before the revocations
	// numbered by the signing time in nanoseconds (nextCRLNumber)
	if crl.Number.Int64() != testNow.UnixNano() || !crl.ThisUpdate.Equal(testNow) || !crl.NextUpdate.Equal(testNow.Add(7*24*time.Hour)) {
		t.Fatalf("CRL number %v this %v next %v", crl.Number, crl.ThisUpdate, crl.NextUpdate)
	}
	if !bytes.Equal(crl.AuthorityKeyId, c.Issuer().SubjectKeyId) {
		t.Fatal("CRL AKI")
	}
	reasons := map[string]int{}
	for _, e := range crl.RevokedCertificateEntries {
		reasons[e.SerialNumber.Text(16)] = e.ReasonCode
	}
	if len(reasons) != 3 || reasons[d2[0].Serial] != ReasonKeyCompromise || reasons[d1[0].Serial] != ReasonSuperseded {
		t.Fatalf("CRL entries %v", reasons)
	}
	// Unchanged state: the same CRL; a change: a higher number.
	if der2, _ := c.CRL(ctx); !bytes.Equal(der, der2) {
		t.Fatal("CRL re-signed without change")
	}
	if err := c.Revoke(ctx, d1[2].Serial, ReasonCessationOfOperation); err != nil {
		t.Fatal(err)
	}
	crl3 := crlOf(t, c.CRL)
	if crl3.Number.Int64() != testNow.UnixNano()+1 || len(crl3.RevokedCertificateEntries) != 4 { // same clock: the next number
		t.Fatalf("CRL after change: number %v, %d entries", crl3.Number, len(crl3.RevokedCertificateEntries))
	}
}

func TestCRLValidityAndRefresh(t *testing.T) {
	ctx := context.Background()
	now := testNow
	clock := func() time.Time { return now }
	c, _, err := Open(ctx, NewMemStore(), Config{CRLValidity: 48 * time.Hour, Now: clock}, "")
	if err != nil {
		t.Fatal(err)
	}
	crl1 := crlOf(t, c.CRL)
	if crl1.NextUpdate.Sub(crl1.ThisUpdate) != 48*time.Hour+Backdate || len(crl1.RevokedCertificateEntries) != 0 {
		t.Fatal("empty CRL", crl1.NextUpdate)
	}
	now = now.Add(25 * time.Hour) // past half the validity: re-signed
	crl2 := crlOf(t, c.CRL)
	if crl2.Number.Int64() != now.UnixNano() || !crl2.ThisUpdate.Equal(now.Add(-Backdate)) {
		t.Fatal("CRL not refreshed", crl2.Number)
	}
}

// Two CA instances (two Caddy processes) sharing one storage see each
// other's revocations, and concurrent revocations are not lost.
func TestRevocationAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	for name, mk := range map[string]func(dir string) Store{
		"file":      func(dir string) Store { return NewFileStore(dir) },
		"certmagic": func(dir string) Store { return &certmagic.FileStorage{Path: dir} },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			a, _ := openCA(t, mk(dir), Config{}, "")
			b, res := openCA(t, mk(dir), Config{}, a.CryptoParam())
			if res.Created {
				t.Fatal("second process created a CA")
			}
			issued := issueN(t, a, "device1.itsp.com", 12)
			var wg sync.WaitGroup
			for i, is := range issued {
				c := a
				if i%2 == 1 {
					c = b
				}
				wg.Add(1)
				go func(c *CA, serial string) {
					defer wg.Done()
					if err := c.Revoke(ctx, serial, ReasonSuperseded); err != nil {
						t.Error(err)
					}
				}(c, is.Serial)
			}
			wg.Wait()
			for _, c := range []*CA{a, b} {
				for _, is := range issued {
					if ok, err := c.IsRevoked(ctx, is.Serial); err != nil || !ok {
						t.Fatalf("serial %s lost: %v", is.Serial, err)
					}
				}
			}
			// CRL numbers increase across both processes.
			seen := map[int64]bool{}
			for i := 0; i < 4; i++ {
				c := []*CA{a, b}[i%2]
				is := issueN(t, c, "device2.itsp.com", 1)[0]
				if err := c.Revoke(ctx, is.Serial, ReasonKeyCompromise); err != nil {
					t.Fatal(err)
				}
				der, err := c.CRL(ctx)
				if err != nil {
					t.Fatal(err)
				}
				crl, _ := x509.ParseRevocationList(der)
				if seen[crl.Number.Int64()] {
					t.Fatalf("CRL number %v reused", crl.Number)
				}
				seen[crl.Number.Int64()] = true
				if len(crl.RevokedCertificateEntries) != 12+i+1 {
					t.Fatalf("CRL has %d entries", len(crl.RevokedCertificateEntries))
				}
			}
		})
	}
}

func TestReasonsAndSerials(t *testing.T) {
	for s, want := range map[string]int{"superseded": 4, "Key-Compromise": 1, "cessationOfOperation": 5, "5": 5, "unspecified": 0} {
		if got, err := ParseReason(s); err != nil || got != want {
			t.Errorf("ParseReason(%q) = %d, %v", s, got, err)
		}
	}
	if _, err := ParseReason("cACompromise"); err == nil {
		t.Error("CA compromise accepted for a device")
	}
	// a sign is not a separator in a number: -1 is not keyCompromise
	for _, s := range []string{"-1", "-4", "2", "6", "+-1", "1_0", "256"} {
		if got, err := ParseReason(s); err == nil {
			t.Errorf("ParseReason(%q) = %d, want refused", s, got)
		}
	}
	for s, want := range map[string]string{"0x00AB": "ab", "AB:CD": "abcd", "0001": "1"} {
		if got, err := NormalizeSerial(s); err != nil || got != want {
			t.Errorf("NormalizeSerial(%q) = %q, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "0", "zz", "-1"} {
		if _, err := NormalizeSerial(s); err == nil {
			t.Errorf("NormalizeSerial(%q) accepted", s)
		}
	}
	_ = asn1.NullRawValue
}

// A revocation half done — the list written but the record not yet marked
// (a crash between the two writes), or the other way round (the order of
// earlier versions) — still counts as revoked and is completed, with its
// first time and reason, by the next Revoke or RevokeDevice.
func TestRevocationHalfDone(t *testing.T) {
	ctx := context.Background()
	unmark := func(t *testing.T, c *CA, serial string) {
		rec, err := c.Lookup(ctx, serial)
		if err != nil {
			t.Fatal(err)
		}
		rec.Revoked, rec.RevokedAt, rec.Reason = false, time.Time{}, 0
		if err := c.storeJSON(ctx, c.issuedKey(serial), rec); err != nil {
			t.Fatal(err)
		}
	}
	unlist := func(t *testing.T, c *CA, serial string) {
		rf, err := c.loadRevoked(ctx)
		if err != nil {
			t.Fatal(err)
		}
		delete(rf.Entries, serial)
		if err := c.storeJSON(ctx, c.key(keyRevoked), rf); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name      string
		breakIt   func(*testing.T, *CA, string)
		listedNow bool // what IsRevoked says before the repair
		repair    func(*CA, string) error
	}{
		{"record not marked, Revoke", unmark, true, func(c *CA, s string) error { return c.Revoke(ctx, s, ReasonSuperseded) }},
		{"record not marked, RevokeDevice", unmark, true, func(c *CA, _ string) error {
			_, err := c.RevokeDevice(ctx, "device1.itsp.com", ReasonSuperseded, "")
			return err
		}},
		{"not listed, Revoke", unlist, false, func(c *CA, s string) error { return c.Revoke(ctx, s, ReasonSuperseded) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := openCA(t, NewMemStore(), Config{}, "")
			s := issueN(t, c, "device1.itsp.com", 1)[0].Serial
			if err := c.Revoke(ctx, s, ReasonKeyCompromise); err != nil {
				t.Fatal(err)
			}
			tc.breakIt(t, c, s)
			if ok, err := c.IsRevoked(ctx, s); err != nil || ok != tc.listedNow {
				t.Fatalf("before the repair IsRevoked = %v, %v; want %v", ok, err, tc.listedNow)
			}
			if err := tc.repair(c, s); err != nil {
				t.Fatal(err)
			}
			rec, err := c.Lookup(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			if ok, _ := c.IsRevoked(ctx, s); !ok || !rec.Revoked || rec.Reason != ReasonKeyCompromise {
				t.Fatalf("after the repair: listed %v, record %+v; want both revoked for keyCompromise", ok, rec)
			}
			rf, _ := c.loadRevoked(ctx)
			if e := rf.Entries[s]; e.Reason != ReasonKeyCompromise || !e.At.Equal(rec.RevokedAt) {
				t.Fatalf("list entry %+v, record revoked at %v", e, rec.RevokedAt)
			}
		})
	}
}

// lockCounter counts the Locks of a Store.
type lockCounter struct {
	countedStore
	mu    sync.Mutex
	locks int
}

func (s *lockCounter) Lock(ctx context.Context, name string) error {
	s.mu.Lock()
	s.locks++
	s.mu.Unlock()
	return s.countedStore.Lock(ctx, name)
}

type countedStore = Store

func (s *lockCounter) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.locks
}

// A current stored CRL is served without the CA's lock (anyone may fetch
// it: fetches must not contend with revocations); a new revocation makes
// the next fetch sign a new one under the lock.
func TestCRLReadWithoutLock(t *testing.T) {
	ctx := context.Background()
	st := &lockCounter{countedStore: NewMemStore()}
	c, _ := openCA(t, st, Config{}, "")
	is := issueN(t, c, "device1.itsp.com", 1)[0]
	first, err := c.CRL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := st.count()
	again, err := c.CRL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, again) || st.count() != before {
		t.Fatalf("a current CRL: same bytes %v, locks taken %d", bytes.Equal(first, again), st.count()-before)
	}
	if err := c.Revoke(ctx, is.Serial, ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	before = st.count()
	der, err := c.CRL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	if len(crl.RevokedCertificateEntries) != 1 || st.count() != before+1 {
		t.Fatalf("after a revocation: %d entries, %d locks; want 1 and 1", len(crl.RevokedCertificateEntries), st.count()-before)
	}
	// a CRL that is not the one the metadata names is not served unlocked
	if err := st.countedStore.Store(ctx, c.key(keyCRL), first); err != nil {
		t.Fatal(err)
	}
	before = st.count()
	der, err = c.CRL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(der, first) || st.count() != before+1 {
		t.Fatalf("a CRL that does not match its metadata was served (locks %d)", st.count()-before)
	}
}

// Superseding the other certificates of a device that has none (its first
// enrollment) takes no lock; one whose others are all revoked writes
// nothing; one with an unrevoked other revokes it.
func TestRevokeDeviceOnlyWhatIsLeft(t *testing.T) {
	ctx := context.Background()
	st := &lockCounter{countedStore: NewMemStore()}
	c, _ := openCA(t, st, Config{}, "")
	first := issueN(t, c, "device1.itsp.com", 1)[0]
	before := st.count()
	if got, err := c.RevokeDevice(ctx, "device1.itsp.com", ReasonSuperseded, first.Serial); err != nil || len(got) != 0 {
		t.Fatalf("nothing to supersede: revoked %v, %v", got, err)
	}
	if st.count() != before {
		t.Fatal("superseding nothing took the CA's lock")
	}
	second := issueN(t, c, "device1.itsp.com", 1)[0]
	got, err := c.RevokeDevice(ctx, "device1.itsp.com", ReasonSuperseded, second.Serial)
	if err != nil || len(got) != 1 || got[0] != first.Serial {
		t.Fatalf("superseding the first: revoked %v, %v", got, err)
	}
	crl, err := c.CRL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stores := &storeCounter{countedStore: st}
	c.st = stores
	if got, err := c.RevokeDevice(ctx, "device1.itsp.com", ReasonSuperseded, second.Serial); err != nil || len(got) != 0 {
		t.Fatalf("again: revoked %v, %v", got, err)
	}
	if stores.n.Load() != 0 {
		t.Fatalf("superseding nothing new made %d storage writes", stores.n.Load())
	}
	if again, err := c.CRL(ctx); err != nil || !bytes.Equal(again, crl) {
		t.Fatalf("superseding nothing new changed the CRL (%v)", err)
	}
	if revoked, err := c.IsRevoked(ctx, second.Serial); err != nil || revoked {
		t.Fatalf("the current certificate revoked: %v %v", revoked, err)
	}
	// the device's keys leak: the current one is newly revoked, the
	// superseded one only changes its reason (not counted twice)
	c.st = st
	got, err = c.RevokeDevice(ctx, "device1.itsp.com", ReasonKeyCompromise, "")
	if err != nil || len(got) != 1 || got[0] != second.Serial {
		t.Fatalf("revoking for key compromise: %v, %v; want only %s", got, err, second.Serial)
	}
	if rec, err := c.Lookup(ctx, first.Serial); err != nil || rec.Reason != ReasonKeyCompromise {
		t.Fatalf("the superseded certificate's reason: %+v %v, want key compromise", rec, err)
	}
}

// storeCounter counts Store calls.
type storeCounter struct {
	countedStore
	n atomic.Int64
}

func (s *storeCounter) Store(ctx context.Context, key string, value []byte) error {
	s.n.Add(1)
	return s.countedStore.Store(ctx, key, value)
}

// CachedCRL serves the CRL served moments ago again without reading
// storage; a revocation by this CA shows at once, one by another instance
// sharing the storage once maxCRLCacheAge has passed (CRL always reads it).
func TestCRLServedFromMemory(t *testing.T) {
	ctx := context.Background()
	now := fixedNow()
	clock := func() time.Time { return now }
	st := &loadCounter{countedStore: NewMemStore()}
	c, _ := openCA(t, st, Config{Now: clock}, "")
	other, _ := openCA(t, st, Config{Now: clock}, c.CryptoParam())
	issued := issueN(t, c, "device1.itsp.com", 2)
	if _, err := c.CachedCRL(ctx); err != nil {
		t.Fatal(err)
	}
	loads := st.n.Load()
	for range 100 {
		if _, err := c.CachedCRL(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if st.n.Load() != loads {
		t.Fatalf("100 fetches of a current CRL read storage %d times", st.n.Load()-loads)
	}
	entries := func() int { return len(crlOf(t, c.CachedCRL).RevokedCertificateEntries) }
	if err := c.Revoke(ctx, issued[0].Serial, ReasonSuperseded); err != nil {
		t.Fatal(err)
	}
	if n := entries(); n != 1 {
		t.Fatalf("after this CA's revocation: %d entries, want 1", n)
	}
	if err := other.Revoke(ctx, issued[1].Serial, ReasonSuperseded); err != nil {
		t.Fatal(err)
	}
	if n := entries(); n != 1 {
		t.Fatalf("moments after another instance's revocation: %d entries, want the served CRL's 1", n)
	}
	now = now.Add(maxCRLCacheAge)
	if n := entries(); n != 2 {
		t.Fatalf("%v after another instance's revocation: %d entries, want 2", maxCRLCacheAge, n)
	}
	// a superseded certificate whose key leaks is revoked again, for key
	// compromise
	if err := c.Revoke(ctx, issued[0].Serial, ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	crl := crlOf(t, c.CRL)
	compromised, _ := new(big.Int).SetString(issued[0].Serial, 16)
	for _, e := range crl.RevokedCertificateEntries {
		if want := map[bool]int{true: ReasonKeyCompromise, false: ReasonSuperseded}[e.SerialNumber.Cmp(compromised) == 0]; e.ReasonCode != want {
			t.Errorf("serial %x: reason %d, want %d", e.SerialNumber, e.ReasonCode, want)
		}
	}
}

// loadCounter counts Load calls.
type loadCounter struct {
	countedStore
	n atomic.Int64
}

func (s *loadCounter) Load(ctx context.Context, key string) ([]byte, error) {
	s.n.Add(1)
	return s.countedStore.Load(ctx, key)
}

// RevokeDeviceIssuedBefore leaves the certificates signed at or after the
// cutoff (a device enabled again enrolled for them) and revokes the older
// ones, including records of earlier versions that carry no signing time.
func TestRevokeDeviceIssuedBefore(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	now := testNow
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	step := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	c, _ := openCA(t, NewMemStore(), Config{Now: clock}, "")

	old := issueN(t, c, "device1.itsp.com", 1)[0]
	// a record as earlier versions wrote it: no issued_at
	rec, err := c.Lookup(ctx, old.Serial)
	if err != nil {
		t.Fatal(err)
	}
	rec.IssuedAt = time.Time{}
	if err := c.storeJSON(ctx, c.issuedKey(old.Serial), rec); err != nil {
		t.Fatal(err)
	}
	step(400 * time.Millisecond)
	before := issueN(t, c, "device1.itsp.com", 1)[0]
	step(400 * time.Millisecond) // same second as before: the cutoff is not truncated
	cutoff := clock()
	at := issueN(t, c, "device1.itsp.com", 1)[0]
	step(time.Second)
	after := issueN(t, c, "device1.itsp.com", 1)[0]
	if !before.IssuedAt.Before(cutoff) || at.IssuedAt.Before(cutoff) {
		t.Fatalf("issuance times %v %v around cutoff %v", before.IssuedAt, at.IssuedAt, cutoff)
	}

	got, err := c.RevokeDeviceIssuedBefore(ctx, "device1.itsp.com", ReasonCessationOfOperation, cutoff)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{old.Serial, before.Serial}
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("revoked %v, want %v (the old record and the one signed before the cutoff)", got, want)
	}
	for _, is := range []*Issued{at, after} {
		if r, err := c.IsRevoked(ctx, is.Serial); err != nil || r {
			t.Fatalf("certificate signed %v (cutoff %v) revoked: %v %v", is.IssuedAt, cutoff, r, err)
		}
	}
	// a zero cutoff is RevokeDevice: everything left
	got, err = c.RevokeDeviceIssuedBefore(ctx, "device1.itsp.com", ReasonCessationOfOperation, time.Time{})
	want = []string{at.Serial, after.Serial}
	sort.Strings(want)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("zero cutoff revoked %v, %v; want %v", got, err, want)
	}
}

// RFC 5280 section 3.3: a revoked certificate's entry stays on the CRL
// until it has appeared on a CRL issued after the certificate expired.
// (Dropping it a day after expiry lost it from the first CRL signed after
// expiry when the one before was signed while the certificate was valid.)
// Once such a CRL has listed it, the entry is dropped.
func TestCRLKeepsEntryUntilListedAfterExpiry(t *testing.T) {
	ctx := context.Background()
	now := testNow
	clock := func() time.Time { return now }
	c, _ := openCA(t, NewMemStore(), Config{Now: clock, Validity: 10 * day, CRLValidity: 7 * day}, "")
	is := issueN(t, c, "device1.itsp.com", 1)[0]
	serial, _ := new(big.Int).SetString(is.Serial, 16)
	listed := func(crl *x509.RevocationList) bool {
		return slices.ContainsFunc(crl.RevokedCertificateEntries, func(e x509.RevocationListEntry) bool {
			return e.SerialNumber.Cmp(serial) == 0
		})
	}

	now = is.NotAfter.Add(-time.Hour)
	if err := c.Revoke(ctx, is.Serial, ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	if crl := crlOf(t, c.CRL); !listed(crl) || !crl.ThisUpdate.Before(is.NotAfter) {
		t.Fatalf("CRL at %v: listed %v", crl.ThisUpdate, listed(crl))
	}
	var after []*x509.RevocationList // CRLs signed after the certificate expired
	last := crlOf(t, c.CRL).Number.Int64()
	for _, d := range []time.Duration{2 * day, 3 * day, 4 * day, 5 * day, 9 * day, 20 * day} {
		now = is.NotAfter.Add(d)
		crl := crlOf(t, c.CRL)
		if n := crl.Number.Int64(); n != last {
			last = n
			after = append(after, crl)
		}
	}
	if len(after) == 0 {
		t.Fatal("no CRL signed after expiry")
	}
	if !listed(after[0]) || !after[0].ThisUpdate.After(is.NotAfter) {
		t.Fatalf("the first CRL signed after the certificate expired (at %v, %v after) does not list it",
			after[0].ThisUpdate, after[0].ThisUpdate.Sub(is.NotAfter))
	}
	if final := after[len(after)-1]; listed(final) {
		t.Fatalf("CRL at %v still lists a certificate expired %v before", final.ThisUpdate, final.ThisUpdate.Sub(is.NotAfter))
	}
	// and the revoked list, which every revocation rewrites, forgets it:
	// it does not grow with the CA's history
	rf, err := c.loadRevoked(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rf.Entries[is.Serial]; ok || len(rf.Entries) != 0 {
		t.Fatalf("revoked list still holds %d entries (%v) after the CRLs dropped the expired one", len(rf.Entries), ok)
	}
	if rec, err := c.Lookup(ctx, is.Serial); err != nil || !rec.Revoked || rec.Reason != ReasonKeyCompromise {
		t.Fatalf("the record of the expired certificate: %+v, %v; want it still marked revoked", rec, err)
	}
	// revoking it again, by serial or with its device (a supersession
	// walks all the device's certificates), does not bring the entry back
	if err := c.Revoke(ctx, is.Serial, ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	cur := issueN(t, c, "device1.itsp.com", 1)[0]
	if _, err := c.RevokeDevice(ctx, "device1.itsp.com", ReasonSuperseded, cur.Serial); err != nil {
		t.Fatal(err)
	}
	if rf, err := c.loadRevoked(ctx); err != nil || len(rf.Entries) != 0 {
		t.Fatalf("revoked list after revoking the dropped certificate again: %v, %v; want it empty", rf, err)
	}
}

// KeyCompromised finds a key by any certificate of it revoked for key
// compromise, whatever the device and CA, including revocations stored
// by earlier versions (no marker); other reasons do not count.
func TestKeyCompromised(t *testing.T) {
	ctx := context.Background()
	c, _ := openCA(t, NewMemStore(), Config{}, "")
	a := issueN(t, c, "device1.itsp.com", 2)
	other, err := c.Issue(ctx, makeCSR(t, testKey(t, "p384"), csrOpts{}), "device2.itsp.com", Policy{})
	if err != nil {
		t.Fatal(err)
	}
	key := a[0].PublicKeySHA256
	check := func(want bool) {
		t.Helper()
		for k, w := range map[string]bool{key: want, other.PublicKeySHA256: false} {
			if got, err := c.KeyCompromised(ctx, k); err != nil || got != w {
				t.Fatalf("KeyCompromised(%s) = %v, %v; want %v", k[:8], got, err, w)
			}
		}
	}
	check(false)
	if err := c.Revoke(ctx, a[0].Serial, ReasonSuperseded); err != nil {
		t.Fatal(err)
	}
	check(false)
	if err := c.Revoke(ctx, other.Serial, ReasonCessationOfOperation); err != nil {
		t.Fatal(err)
	}
	if err := c.Revoke(ctx, a[0].Serial, ReasonKeyCompromise); err != nil { // the key leaked since
		t.Fatal(err)
	}
	check(true)
	// a key revoked by an earlier version, which kept no marker: found
	// once the CA is opened again, by any CA of the storage
	st := c.st
	if err := st.Delete(ctx, c.compromisedKey(key)); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, c.key(keyCompromisedIndexed)); err != nil {
		t.Fatal(err)
	}
	check(false)
	c, _ = openCA(t, st, Config{}, c.CryptoParam())
	check(true)
	legacy, _ := openCA(t, st, Config{Name: "legacy", Profile: ProfileLegacy}, "")
	if got, err := legacy.KeyCompromised(ctx, key); err != nil || !got {
		t.Errorf("another CA of the storage: KeyCompromised = %v, %v", got, err)
	}
	// not a key hash: an error, never a storage key outside the markers
	if _, err := c.KeyCompromised(ctx, "../../revoked.json"); err == nil {
		t.Error("KeyCompromised took a path for a key hash")
	}
}

// A CRL's thisUpdate is backdated as certificates are, so that a verifier
// whose clock is a little behind the server's does not find a CRL signed
// just now "not yet valid", but never before a revocation it lists
// (zlint's e_crl_revocation_time_after_this_update). Whether a CRL was issued after a certificate
// expired (RFC 5280 section 3.3) is judged by that thisUpdate: a CRL signed
// a minute after the expiry, whose thisUpdate is before it, does not count.
func TestCRLThisUpdateBackdated(t *testing.T) {
	ctx := context.Background()
	now := testNow
	c, _ := openCA(t, NewMemStore(), Config{Now: func() time.Time { return now }, Validity: 10 * day, CRLValidity: 7 * day}, "")
	if crl := crlOf(t, c.CRL); !crl.ThisUpdate.Equal(now.Add(-Backdate)) {
		t.Fatalf("thisUpdate %v, want %v (now less %v)", crl.ThisUpdate, now.Add(-Backdate), Backdate)
	}
	issued := issueN(t, c, "device1.itsp.com", 2)
	expiring, other := issued[0], issued[1]
	serial, _ := new(big.Int).SetString(expiring.Serial, 16)
	listed := func(crl *x509.RevocationList) bool {
		return slices.ContainsFunc(crl.RevokedCertificateEntries, func(e x509.RevocationListEntry) bool {
			return e.SerialNumber.Cmp(serial) == 0
		})
	}
	now = expiring.NotAfter.Add(-time.Hour)
	if err := c.Revoke(ctx, expiring.Serial, ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	revokedAt := now
	now = now.Add(time.Second)
	if crl := crlOf(t, c.CRL); !crl.ThisUpdate.Equal(revokedAt) {
		t.Fatalf("thisUpdate %v, want the revocation's time %v", crl.ThisUpdate, revokedAt)
	}
	// a CRL signed a minute after the expiry (the other certificate's
	// revocation 10 minutes before is not new): its thisUpdate is before it
	now = expiring.NotAfter.Add(-10 * time.Minute)
	if err := c.Revoke(ctx, other.Serial, ReasonCessationOfOperation); err != nil {
		t.Fatal(err)
	}
	now = expiring.NotAfter.Add(time.Minute)
	if crl := crlOf(t, c.CRL); !listed(crl) || !crl.ThisUpdate.Equal(now.Add(-Backdate)) {
		t.Fatalf("CRL at %v: listed %v", crl.ThisUpdate, listed(crl))
	}
	now = expiring.NotAfter.Add(2 * day)
	if crl := crlOf(t, c.CRL); !listed(crl) {
		t.Fatalf("CRL at %v (%v after the expiry) dropped the entry: no CRL whose thisUpdate is after the expiry listed it",
			crl.ThisUpdate, crl.ThisUpdate.Sub(expiring.NotAfter))
	}
}

// hookedStore calls onStore after each Store.
type hookedStore struct {
	countedStore
	onStore func(key string)
}

func (s *hookedStore) Store(ctx context.Context, key string, value []byte) error {
	err := s.countedStore.Store(ctx, key, value)
	if err == nil && s.onStore != nil {
		s.onStore(key)
	}
	return err
}

// Once a certificate's record says revoked, the CRL served lists it: the
// cached CRL is dropped when the revoked list is written, not only after
// the records.
func TestCachedCRLListsWhatRecordsSay(t *testing.T) {
	ctx := context.Background()
	st := &hookedStore{countedStore: NewMemStore()}
	c, _ := openCA(t, st, Config{Now: fixedNow}, "")
	is := issueN(t, c, "device1.itsp.com", 1)[0]
	if _, err := c.CachedCRL(ctx); err != nil { // cached, listing nothing
		t.Fatal(err)
	}
	checked := false
	st.onStore = func(key string) {
		if key != c.issuedKey(is.Serial) {
			return
		}
		checked = true
		// what CachedCRL would serve now, without waiting for the lock
		// Revoke holds
		if der := c.crl.get(c.cfg.Now(), c.crlCacheAge()); der != nil {
			crl, err := x509.ParseRevocationList(der)
			if err != nil {
				t.Error(err)
				return
			}
			if !slices.ContainsFunc(crl.RevokedCertificateEntries, func(e x509.RevocationListEntry) bool { return e.SerialNumber.Text(16) == is.Serial }) {
				t.Error("the record says revoked while the CRL served does not list the certificate")
			}
		}
	}
	if err := c.Revoke(ctx, is.Serial, ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	if !checked {
		t.Fatal("the record was not written")
	}
}

// Superseding the certificates of a device leaves one that expired
// unrevoked more than a day ago alone: no CRL would list it, and the
// revoked list (rewritten by every revocation) must not grow with such
// entries. A compromised key is still marked, expired or not.
func TestRevokeDeviceSkipsExpired(t *testing.T) {
	ctx := context.Background()
	now := testNow
	c, _ := openCA(t, NewMemStore(), Config{Now: func() time.Time { return now }, Validity: 10 * day}, "")
	old := issueN(t, c, "device1.itsp.com", 1)[0]
	now = old.NotAfter.Add(day + time.Hour)
	cur := issueN(t, c, "device1.itsp.com", 1)[0]
	got, err := c.RevokeDevice(ctx, "device1.itsp.com", ReasonSuperseded, cur.Serial)
	if err != nil || len(got) != 0 {
		t.Fatalf("RevokeDevice = %v, %v; want nothing revoked", got, err)
	}
	if rf, err := c.loadRevoked(ctx); err != nil || len(rf.Entries) != 0 {
		t.Fatalf("revoked list %v, %v; want empty", rf, err)
	}
	if _, err := c.RevokeDevice(ctx, "device1.itsp.com", ReasonKeyCompromise, cur.Serial); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.KeyCompromised(ctx, old.PublicKeySHA256); err != nil || !ok {
		t.Fatalf("KeyCompromised of the expired certificate's key = %v, %v", ok, err)
	}
}

// A device's revocation revokes, and the CRL then lists, a certificate
// that expired less than a day ago by the CA's clock, as long as the CRLs
// list an expired one's entry: another instance's clock may be behind
// (within the skew allowed, Backdate), and this one may have been stepped
// forward (here, by up to a day), so that others still take it as valid.
// One expired longer is left alone.
func TestRevokeDeviceExpiredWithinADay(t *testing.T) {
	for _, c := range []struct {
		expired time.Duration // by the CA's clock, at the revocation
		want    bool
	}{
		{-time.Minute, true},
		{30 * time.Second, true},
		{Backdate + time.Second, true},
		{time.Hour, true}, // a clock stepped an hour forward
		{day - time.Second, true},
		{day + time.Second, false},
	} {
		t.Run(c.expired.String(), func(t *testing.T) {
			ctx := context.Background()
			now := testNow
			ca, _ := openCA(t, NewMemStore(), Config{Now: func() time.Time { return now }, Validity: 10 * day}, "")
			old := issueN(t, ca, "device1.itsp.com", 1)[0]
			now = old.NotAfter.Add(c.expired)
			got, err := ca.RevokeDeviceIssuedBefore(ctx, "device1.itsp.com", ReasonCessationOfOperation, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if revoked := slices.Contains(got, old.Serial); revoked != c.want {
				t.Fatalf("expired %v by the CA's clock: revoked %v, want %v", c.expired, revoked, c.want)
			}
			listed := slices.ContainsFunc(crlOf(t, ca.CRL).RevokedCertificateEntries, func(e x509.RevocationListEntry) bool {
				return e.SerialNumber.Text(16) == old.Serial
			})
			if listed != c.want {
				t.Fatalf("expired %v: the CRL lists it %v, want %v (as revoked)", c.expired, listed, c.want)
			}
		})
	}
}

// A device's index forgets certificates that expired before the cutoff;
// their records are still found by serial.
func TestPruneDeviceIndex(t *testing.T) {
	ctx := context.Background()
	now := testNow
	c, _ := openCA(t, NewMemStore(), Config{Now: func() time.Time { return now }, Validity: 10 * day}, "")
	old := issueN(t, c, "device1.itsp.com", 2)
	now = now.Add(20 * day)
	cur := issueN(t, c, "device1.itsp.com", 1)[0]
	other := issueN(t, c, "device2.itsp.com", 1)[0]
	n, err := c.PruneDeviceIndex(ctx, now.Add(-5*day))
	if err != nil || n != 2 {
		t.Fatalf("PruneDeviceIndex = %d, %v; want the 2 expired", n, err)
	}
	for dev, want := range map[string][]string{"device1.itsp.com": {cur.Serial}, "device2.itsp.com": {other.Serial}} {
		recs, err := c.Records(ctx, dev)
		if err != nil || len(recs) != len(want) || recs[0].Serial != want[0] {
			t.Fatalf("Records(%s) = %v, %v; want %v", dev, recs, err, want)
		}
	}
	if rec, err := c.Lookup(ctx, old[0].Serial); err != nil || rec.Serial != old[0].Serial {
		t.Fatalf("Lookup of a pruned certificate: %v, %v", rec, err)
	}
	if n, err := c.PruneDeviceIndex(ctx, now.Add(-5*day)); err != nil || n != 0 {
		t.Fatalf("second PruneDeviceIndex = %d, %v", n, err)
	}
}

// Two CAs on one storage (two instances): each reads what the other wrote,
// whatever either keeps of the list it read or wrote last.
func TestRevokedListSharedAcrossInstances(t *testing.T) {
	ctx := context.Background()
	st := NewMemStore()
	a, res := openCA(t, st, Config{}, "")
	b, _ := openCA(t, st, Config{}, res.CryptoParam)
	certs := issueN(t, a, "device1.itsp.com", 3)
	for i, by := range []*CA{a, b, a} {
		if err := by.Revoke(ctx, certs[i].Serial, ReasonCessationOfOperation); err != nil {
			t.Fatal(err)
		}
		for _, c := range []*CA{a, b} {
			for _, is := range certs[:i+1] {
				if ok, err := c.IsRevoked(ctx, is.Serial); err != nil || !ok {
					t.Fatalf("after %d revocations, %s not revoked for one instance (%v)", i+1, is.Serial, err)
				}
			}
			if rf, err := c.loadRevoked(ctx); err != nil || len(rf.Entries) != i+1 {
				t.Fatalf("after %d revocations an instance reads %d entries (%v)", i+1, len(rf.Entries), err)
			}
		}
	}
	// what a reader changes in the list it got is not kept
	rf, _ := a.loadRevoked(ctx)
	clear(rf.Entries)
	if rf, _ := a.loadRevoked(ctx); len(rf.Entries) != 3 {
		t.Fatalf("the cached list was changed through a copy: %d entries", len(rf.Entries))
	}
}

// RevokeSerial reports a certificate as revoked by the call that revoked
// it, and by no later one (another reason, keyCompromise replacing one
// included); of revocations of one certificate racing each other, one
// reports it.
func TestRevokeSerialNewly(t *testing.T) {
	ctx := context.Background()
	c, _ := openCA(t, NewMemStore(), Config{}, "")
	is := issueN(t, c, "device1.itsp.com", 2)
	for i, step := range []struct {
		reason int
		newly  bool
	}{{ReasonSuperseded, true}, {ReasonSuperseded, false}, {ReasonKeyCompromise, false}, {ReasonKeyCompromise, false}} {
		newly, err := c.RevokeSerial(ctx, is[0].Serial, step.reason)
		if err != nil || newly != step.newly {
			t.Errorf("revocation %d (reason %d): newly %v, %v; want %v", i, step.reason, newly, err, step.newly)
		}
	}
	if rec, _ := c.Lookup(ctx, is[0].Serial); !rec.Revoked || rec.Reason != ReasonKeyCompromise {
		t.Errorf("record %+v: want revoked for key compromise", rec)
	}
	if _, err := c.RevokeSerial(ctx, "123456789", ReasonSuperseded); !errors.Is(err, ErrNotFound) {
		t.Errorf("an unknown serial: %v", err)
	}
	var wg sync.WaitGroup
	var n atomic.Int32
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			newly, err := c.RevokeSerial(ctx, is[1].Serial, ReasonKeyCompromise)
			if err != nil {
				t.Error(err)
			}
			if newly {
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	if n.Load() != 1 {
		t.Errorf("%d of 8 racing revocations reported the certificate revoked by them, want 1", n.Load())
	}
}
