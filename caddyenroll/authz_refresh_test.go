package caddyenroll

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// countingStorage counts Loads, and can hold the Loads of device records
// until released.
type countingStorage struct {
	certmagic.Storage

	mu          sync.Mutex
	loads       int
	deviceLoads int
	gate        chan struct{} // non-nil: device record Loads wait for it to close
	gated       chan struct{} // signalled (once) when a Load waits at the gate
}

var devicesPrefix = path.Join(statePrefix, "devices") + "/"

func (s *countingStorage) Load(ctx context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	s.loads++
	isDevice := strings.HasPrefix(key, devicesPrefix)
	if isDevice {
		s.deviceLoads++
	}
	gate, gated := s.gate, s.gated
	if isDevice && gate != nil {
		s.gated = nil
	}
	s.mu.Unlock()
	if isDevice && gate != nil {
		if gated != nil {
			close(gated)
		}
		<-gate
	}
	return s.Storage.Load(ctx, key)
}

// counts returns the Loads so far, and of them those of device records.
func (s *countingStorage) counts() (all, devices int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loads, s.deviceLoads
}

type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// refreshFixture is a minimal App (storage, state, the modern CA and the
// authorization state) and a second CA on the same storage: another
// instance.
type refreshFixture struct {
	t     *testing.T
	ctx   context.Context
	app   *App
	st    *countingStorage
	local *ca.CA // the App's CA
	other *ca.CA // the same CA opened by "another instance"
	clock *testClock
}

func newRefreshFixture(t *testing.T) *refreshFixture {
	t.Helper()
	ctx := context.Background()
	cs := &countingStorage{Storage: &certmagic.FileStorage{Path: t.TempDir()}}
	st := localLocks{cs}
	clock := &testClock{now: time.Now().UTC()}
	local, res, err := ca.Open(ctx, st, ca.Config{Name: "modern", Now: clock.Now}, "")
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := ca.Open(ctx, st, ca.Config{Name: "modern"}, res.CryptoParam)
	if err != nil {
		t.Fatal(err)
	}
	a := &App{
		bg:      new(backgroundWork),
		storage: st,
		cas:     map[string]*ca.CA{profileModern: local},
		state:   &stateStore{st: st},
		authz:   &authz{revocations: new(revocations)},
		clock:   clock.Now,
		log:     zap.NewNop(),
	}
	// the copies of earlier versions' records a full scan starts
	t.Cleanup(func() { a.bg.wg.Wait() })
	return &refreshFixture{t: t, ctx: ctx, app: a, st: cs, local: local, other: other, clock: clock}
}

// issue signs and records a certificate for device with c, and returns its
// serial.
func (f *refreshFixture) issue(c *ca.CA, device string, validity time.Duration) string {
	f.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: device}}, key)
	if err != nil {
		f.t.Fatal(err)
	}
	is, err := c.Issue(f.ctx, csr, device, ca.Policy{Validity: validity})
	if err != nil {
		f.t.Fatal(err)
	}
	return is.Serial
}

// enroll issues a certificate with c and makes it the device's current one.
func (f *refreshFixture) enroll(c *ca.CA, device string) string {
	f.t.Helper()
	serial := f.issue(c, device, 0)
	f.setCurrent(device, serial)
	return serial
}

// cert is the certificate with serial, as the App's CA recorded it.
func (f *refreshFixture) cert(serial string) *x509.Certificate {
	f.t.Helper()
	rec, err := f.local.Lookup(f.ctx, serial)
	if err != nil {
		f.t.Fatal(err)
	}
	c, err := x509.ParseCertificate(rec.DER)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func (f *refreshFixture) setCurrent(device, serial string) {
	f.t.Helper()
	if err := f.app.state.putDevice(f.ctx, &DeviceRecord{Device: device, Profile: profileModern, Serial: serial, Enrolled: time.Now().UTC()}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *refreshFixture) revoke(c *ca.CA, serial string, reason int) {
	f.t.Helper()
	if err := c.Revoke(f.ctx, serial, reason); err != nil {
		f.t.Fatal(err)
	}
}

func (f *refreshFixture) refresh() {
	f.t.Helper()
	if err := f.app.refreshRevoked(f.ctx); err != nil {
		f.t.Fatal(err)
	}
}

// wantEligible checks eligible for each device.
func (f *refreshFixture) wantEligible(want map[string]bool) {
	f.t.Helper()
	for d, w := range want {
		if got := f.app.eligible(d); got != w {
			f.t.Errorf("eligible(%s) = %v, want %v", d, got, w)
		}
	}
}

// fullScanCurrent is authz.current as the full scan computes it from
// storage now.
func (f *refreshFixture) fullScanCurrent() map[string]bool {
	f.t.Helper()
	revoked, err := f.app.readCRLs(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	res, err := f.app.scanAllDevices(f.ctx, revoked)
	if err != nil || !res.complete {
		f.t.Fatal(err, res.complete)
	}
	return res.status
}

// wantSameAsFullScan checks that the incremental state is what a full
// scan finds.
func (f *refreshFixture) wantSameAsFullScan() {
	f.t.Helper()
	want := f.fullScanCurrent()
	f.app.authz.mu.RLock()
	got := make(map[string]bool, len(f.app.authz.current))
	for d := range f.app.authz.current {
		got[d] = true
	}
	f.app.authz.mu.RUnlock()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		f.t.Errorf("current = %v, a full scan finds %v", got, want)
	}
}

// A revocation made by another instance sharing the storage is seen after
// one refresh; then the device re-enrolls there and is eligible again after
// one refresh.
func TestRefreshRevokedElsewhereAndReenrolled(t *testing.T) {
	f := newRefreshFixture(t)
	s1 := f.enroll(f.local, "Dev1.example.net")
	f.enroll(f.local, "dev2.example.net")
	f.refresh() // the first, full
	f.wantEligible(map[string]bool{"dev1.example.net": true, "dev2.example.net": true})

	f.revoke(f.other, s1, ca.ReasonKeyCompromise)
	f.refresh()
	f.wantEligible(map[string]bool{"dev1.example.net": false, "DEV1.example.net": false, "dev2.example.net": true})
	if !f.app.serialRevoked(profileModern, s1) {
		t.Errorf("serial %s not revoked after refresh", s1)
	}
	f.wantSameAsFullScan()

	// the device re-enrolls on the other instance (which supersedes the
	// revoked certificate: a no-op, so the CRLs do not change)
	s2 := f.enroll(f.other, "dev1.example.net")
	f.revoke(f.other, s1, ca.ReasonSuperseded)
	f.refresh()
	f.wantEligible(map[string]bool{"dev1.example.net": true, "dev2.example.net": true})
	if f.app.serialRevoked(profileModern, s2) || !f.app.serialRevoked(profileModern, s1) {
		t.Errorf("serialRevoked: new %v, old %v", f.app.serialRevoked(profileModern, s2), f.app.serialRevoked(profileModern, s1))
	}
	f.wantSameAsFullScan()

	// and its new certificate is revoked there too
	f.revoke(f.other, s2, ca.ReasonPrivilegeWithdrawn)
	f.refresh()
	f.wantEligible(map[string]bool{"dev1.example.net": false, "dev2.example.net": true})
	f.wantSameAsFullScan()
}

// Revoking a certificate that is not the device's current one changes
// nothing for the device.
func TestRefreshRevokedOldCertificate(t *testing.T) {
	f := newRefreshFixture(t)
	old := f.issue(f.local, "dev1.example.net", 0)
	f.enroll(f.local, "dev1.example.net")
	f.refresh()
	f.revoke(f.other, old, ca.ReasonSuperseded)
	f.refresh()
	f.wantEligible(map[string]bool{"dev1.example.net": true})
	if !f.app.serialRevoked(profileModern, old) {
		t.Errorf("serial %s not revoked after refresh", old)
	}
	f.wantSameAsFullScan()
}

// A device in current whose certificate expired out of the CRL leaves
// current, as with a full scan. (It leaves the CRL once a CRL signed after
// its expiry has listed it.)
func TestRefreshSerialLeavesCRL(t *testing.T) {
	f := newRefreshFixture(t)
	s1 := f.issue(f.local, "dev1.example.net", time.Hour)
	f.setCurrent("dev1.example.net", s1)
	f.enroll(f.local, "dev2.example.net")
	f.revoke(f.local, s1, ca.ReasonKeyCompromise)
	f.refresh()
	f.wantEligible(map[string]bool{"dev1.example.net": false, "dev2.example.net": true})

	// expired for more than a day, but no CRL signed since its expiry has
	// listed it yet (RFC 5280, 3.3): still in the CRL
	f.clock.add(3 * 24 * time.Hour)
	f.refresh()
	if !f.app.serialRevoked(profileModern, s1) {
		t.Errorf("serial %s out of the CRL before a CRL signed after its expiry listed it", s1)
	}
	// past half the CRL's validity a new CRL lists it; the next leaves it out
	f.clock.add(4 * 24 * time.Hour)
	f.refresh()
	f.refresh()
	if f.app.serialRevoked(profileModern, s1) {
		t.Errorf("serial %s still revoked once out of the CRL", s1)
	}
	f.wantEligible(map[string]bool{"dev1.example.net": true, "dev2.example.net": true})
	f.wantSameAsFullScan()
}

// A certificate revoked while its issuance is in flight (the CA's record
// written, the device record not yet) is caught once the device record
// names it.
func TestRefreshRevokedDuringIssuance(t *testing.T) {
	f := newRefreshFixture(t)
	f.enroll(f.local, "dev1.example.net")
	f.refresh()

	s2 := f.issue(f.other, "dev1.example.net", 0) // in flight on the other instance
	f.revoke(f.other, s2, ca.ReasonKeyCompromise)
	f.refresh()
	f.wantEligible(map[string]bool{"dev1.example.net": true}) // its record names the good certificate
	f.wantSameAsFullScan()

	f.setCurrent("dev1.example.net", s2) // the issuance completes
	f.refresh()
	f.wantEligible(map[string]bool{"dev1.example.net": false})
	f.wantSameAsFullScan()

	f.app.authz.refreshMu.Lock()
	pending := len(f.app.authz.pending)
	f.app.authz.refreshMu.Unlock()
	if pending != 0 {
		t.Errorf("%d serials still pending once resolved", pending)
	}
}

// Local revocations (noteRevoked) count as seen: they take effect at once,
// and the refresh that follows does not look them up again.
func TestRefreshAfterLocalRevocations(t *testing.T) {
	f := newRefreshFixture(t)
	s1 := f.enroll(f.local, "dev1.example.net")
	f.enroll(f.local, "dev2.example.net")
	f.refresh()

	// local re-enrollment of dev1, as issueLocked does it
	s1b := f.enroll(f.local, "dev1.example.net")
	f.revoke(f.local, s1, ca.ReasonSuperseded)
	f.app.noteRevoked(profileModern, "", []string{s1}, false)
	f.app.noteRevoked(profileModern, "dev1.example.net", nil, false)
	// dev2 disabled, as revokeDisabled does it
	serials, err := f.local.RevokeDevice(f.ctx, "dev2.example.net", ca.ReasonCessationOfOperation, "")
	if err != nil || len(serials) != 1 {
		t.Fatal(serials, err)
	}
	f.app.noteRevoked(profileModern, "dev2.example.net", serials, true)

	f.wantEligible(map[string]bool{"dev1.example.net": true, "dev2.example.net": false})
	if !f.app.serialRevoked(profileModern, s1) || !f.app.serialRevoked(profileModern, serials[0]) || f.app.serialRevoked(profileModern, s1b) {
		t.Error("serialRevoked does not follow noteRevoked")
	}

	all0, dev0 := f.st.counts()
	f.refresh()
	all1, dev1 := f.st.counts()
	// the two touched devices are read again; the noted serials are not
	// looked up (a lookup is one Load of the CA's record, and a device
	// record Load with it)
	if dev1-dev0 != 2 {
		t.Errorf("refresh after local changes loaded %d device records, want 2", dev1-dev0)
	}
	t.Logf("refresh after local changes: %d loads", all1-all0)
	f.wantEligible(map[string]bool{"dev1.example.net": true, "dev2.example.net": false})
	if !f.app.serialRevoked(profileModern, s1) || !f.app.serialRevoked(profileModern, serials[0]) {
		t.Error("noted serials lost by the refresh")
	}
	f.app.authz.mu.RLock()
	noted, touched := len(f.app.authz.noted), len(f.app.authz.touched)
	f.app.authz.mu.RUnlock()
	if noted != 0 || touched != 0 {
		t.Errorf("after refresh: %d noted serials, %d touched devices; want none", noted, touched)
	}
	f.wantSameAsFullScan()

	// nothing changed since: only the device in current is read again
	_, dev0 = f.st.counts()
	f.refresh()
	_, dev1 = f.st.counts()
	if dev1-dev0 != 1 {
		t.Errorf("refresh without changes loaded %d device records, want 1 (the device in current)", dev1-dev0)
	}
}

// A refresh with no changes does not read device records: its Loads do not
// grow with the number of devices.
func TestRefreshLoadsDoNotGrowWithDevices(t *testing.T) {
	f := newRefreshFixture(t)
	addDevices := func(from, n int) {
		for i := from; i < from+n; i++ {
			// records only: their certificates need not exist for this
			f.setCurrent(fmt.Sprintf("dev%d.example.net", i), fmt.Sprintf("%x", 0x100000+i))
		}
	}
	addDevices(0, 200)
	bad := f.enroll(f.local, "revoked.example.net")
	f.revoke(f.local, bad, ca.ReasonKeyCompromise)

	_, dev0 := f.st.counts()
	f.refresh() // full
	_, dev1 := f.st.counts()
	if dev1-dev0 < 201 {
		t.Fatalf("the first refresh loaded %d device records, want all 201", dev1-dev0)
	}
	f.wantEligible(map[string]bool{"revoked.example.net": false, "dev7.example.net": true})

	loadsOfRefresh := func() (all, devices int) {
		a0, d0 := f.st.counts()
		f.refresh()
		a1, d1 := f.st.counts()
		return a1 - a0, d1 - d0
	}
	all200, dev200 := loadsOfRefresh()
	addDevices(200, 200)
	all400, dev400 := loadsOfRefresh()
	t.Logf("refresh without changes: %d loads (%d device records) with 200 devices, %d (%d) with 400",
		all200, dev200, all400, dev400)
	if dev200 != 1 || dev400 != 1 { // the device in current
		t.Errorf("refresh without changes loaded %d and %d device records, want 1", dev200, dev400)
	}
	if all400 != all200 || all200 > 10 {
		t.Errorf("refresh without changes: %d loads with 200 devices, %d with 400; want the same few", all200, all400)
	}
	f.wantEligible(map[string]bool{"revoked.example.net": false, "dev7.example.net": true, "dev300.example.net": true})
}

// Lookups and local notes do not wait for a refresh's storage reads, and a
// local decision made during a refresh is not undone by it.
func TestRefreshDoesNotBlockLookups(t *testing.T) {
	f := newRefreshFixture(t)
	s1 := f.enroll(f.local, "dev1.example.net")
	f.enroll(f.local, "dev2.example.net")
	f.revoke(f.local, s1, ca.ReasonKeyCompromise)

	f.st.mu.Lock()
	gate, gated := make(chan struct{}), make(chan struct{})
	f.st.gate, f.st.gated = gate, gated
	f.st.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- f.app.refreshRevoked(f.ctx) }()
	select {
	case <-gated:
	case err := <-done:
		t.Fatalf("refresh ended without reading device records: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("refresh did not reach the device records")
	}

	// the refresh waits on storage: lookups and notes must not
	serials, err := f.local.RevokeDevice(f.ctx, "dev2.example.net", ca.ReasonCessationOfOperation, "")
	if err != nil || len(serials) != 1 {
		t.Fatal(serials, err)
	}
	answered := make(chan [3]bool, 1)
	go func() {
		f.app.noteRevoked(profileModern, "dev2.example.net", serials, true)
		answered <- [3]bool{f.app.eligible("dev1.example.net"), f.app.eligible("dev2.example.net"), f.app.serialRevoked(profileModern, serials[0])}
	}()
	select {
	case got := <-answered:
		if got != [3]bool{true, false, true} { // dev1: not yet refreshed
			t.Errorf("during the refresh: eligible(dev1), eligible(dev2), serialRevoked = %v", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("lookups wait for the refresh's storage reads")
	}

	f.st.mu.Lock()
	f.st.gate = nil
	f.st.mu.Unlock()
	close(gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// the refresh read the CRL before dev2's revocation: its result for dev2
	// is stale and must not replace the local decision
	f.wantEligible(map[string]bool{"dev1.example.net": false, "dev2.example.net": false})
	if !f.app.serialRevoked(profileModern, serials[0]) {
		t.Error("noted serial lost by a refresh that started before it")
	}
	f.refresh()
	f.wantEligible(map[string]bool{"dev1.example.net": false, "dev2.example.net": false})
	f.wantSameAsFullScan()
}

// Refreshes, local notes and lookups run concurrently (for -race).
func TestRefreshConcurrentWithLookups(t *testing.T) {
	f := newRefreshFixture(t)
	var serials []string
	for i := 0; i < 8; i++ {
		serials = append(serials, f.enroll(f.local, fmt.Sprintf("dev%d.example.net", i)))
	}
	f.refresh()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				f.app.eligible(fmt.Sprintf("dev%d.example.net", i%8))
				f.app.serialRevoked(profileModern, serials[i%8])
			}
		}()
	}
	for i := 0; i < 8; i++ {
		if i%2 == 0 {
			f.revoke(f.other, serials[i], ca.ReasonKeyCompromise)
		} else {
			f.revoke(f.local, serials[i], ca.ReasonKeyCompromise)
			f.app.noteRevoked(profileModern, fmt.Sprintf("dev%d.example.net", i), serials[i:i+1], true)
		}
		if err := f.app.refreshRevoked(f.ctx); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
	for i := 0; i < 8; i++ {
		f.wantEligible(map[string]bool{fmt.Sprintf("dev%d.example.net", i): false})
	}
	f.wantSameAsFullScan()
}

// A device the file spells otherwise than its certificate's normal form
// (2001:DB8:0::1, certified as 2001:db8::1) is seen revoked after a
// revocation by another instance: the refresh keys it as the file does.
func TestRefreshRevokedFileSpelling(t *testing.T) {
	f := newRefreshFixture(t)
	cs, _, _ := testConfigState(t, "group \"\"\ndevice '2001:DB8:0::1' \"\" enabled enrolled\n")
	f.app.cfg = cs
	serial := f.issue(f.local, "2001:DB8:0::1", 0)
	f.setCurrent("2001:DB8:0::1", serial) // enrollment records the file's name
	f.refresh()
	f.wantEligible(map[string]bool{"2001:DB8:0::1": true})
	f.revoke(f.other, serial, ca.ReasonKeyCompromise)
	f.refresh()
	f.wantEligible(map[string]bool{"2001:DB8:0::1": false})
}

// A request an earlier version stored under its old id (the device name
// lower-cased, not normalized: a file line like "GW1.Example.") is still
// found, and its nonce binding honoured: its retrieve is answered pending,
// not 9 (nonce reused) or 11 (not found).
func TestLegacyRequestIDStillFound(t *testing.T) {
	f := newRefreshFixture(t)
	cs, _, _ := testConfigState(t, "group \"\"\ndevice GW1.Example. \"\" enabled\n")
	f.app.cfg = cs
	f.app.log = zap.NewNop()
	f.app.state = newStateStore(f.app.storage, time.Hour)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "gw1.example"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := ca.ParseCSR(der, ca.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	dev := cs.device("gw1.example")
	if !dev.Known || dev.Name != "GW1.Example." {
		t.Fatalf("device: %+v", dev)
	}
	id := requestID(profileModern, dev.Name, csr.PublicKeySHA256)
	legacy := legacyRequestID(profileModern, dev.Name, csr.PublicKeySHA256)
	if legacy == "" || legacy == id {
		t.Fatalf("ids: %s, legacy %q", id, legacy)
	}
	// what an earlier version stored: the request and its nonce's binding
	nonce := []byte("device nonce")
	now := time.Now().UTC()
	if err := f.app.state.putRequest(f.ctx, &Request{ID: legacy, Profile: profileModern, Device: dev.Name, DeviceID: "1", Customer: "2",
		PublicKeySHA256: csr.PublicKeySHA256, CSR: der, ServerNonce: "server-nonce", State: statePending, Known: true,
		Created: now, Updated: now}); err != nil {
		t.Fatal(err)
	}
	if ok, err := f.app.state.bindNonce(f.ctx, nonce, legacy); !ok || err != nil {
		t.Fatal(ok, err)
	}
	in := enrollInput{op: wire.OpRetrieve, profile: profileModern, req: &wire.Request{Operation: wire.OpRetrieve, Nonce: nonce, Device: "1", Customer: "2"}}
	o := f.app.enrollLocked(f.ctx, in, &Account{Username: "u"}, csr, dev.Name, id, f.local, ca.Policy{})
	if o.resp.Status != wire.StatusPending || o.resp.Nonce != "server-nonce" {
		t.Fatalf("retrieve of a request stored under its old id: status %d %s", o.resp.Status, o.resp.Error)
	}
}

// A config being stopped (the old one of a reload) still revokes the
// certificates of the devices it saw disabled: neither the wait for the
// device's lock nor the revocation is cut short by Stop. The new config
// may have read the file after the edit and looked for certificates to
// revoke before an issuance of the old one had completed.
func TestRevokeDisabledOfAStoppedConfig(t *testing.T) {
	initMetrics()
	f := newRefreshFixture(t)
	var devices, serials []string
	for i := range 20 { // a cancelled wait would fail some at random
		d := fmt.Sprintf("gw%d.example", i)
		devices = append(devices, d)
		serials = append(serials, f.enroll(f.local, d))
	}
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	f.app.bgCtx, f.app.log = stopped, zap.NewNop()
	f.app.revokeDisabled(devices, time.Now())
	for i, s := range serials {
		if revoked, err := f.local.IsRevoked(f.ctx, s); err != nil || !revoked {
			t.Errorf("%s: certificate %s not revoked (%v)", devices[i], s, err)
		}
	}
}

// A device disabled, then enabled again before its revocation ran (it
// waits for the device's lock, or was a stopped config's), keeps the
// certificate it enrolled for once enabled again; the one from before the
// disabling is revoked. Disabled a second time, it loses both.
func TestRevokeDisabledThenEnabledAgain(t *testing.T) {
	initMetrics()
	f := newRefreshFixture(t)
	f.app.bgCtx, f.app.log = context.Background(), zap.NewNop()
	conf := func(state string) string { return "group \"\"\ndevice gw1.example \"\" " + state + "\n" }
	cs, path, _ := testConfigState(t, conf("enabled"))
	f.app.cfg = cs
	save := func(state string) {
		t.Helper()
		saveRenamed(t, path, conf(state))
		if changed, err := cs.reload(); err != nil || !changed {
			t.Fatalf("reload of %s: %v %v", state, changed, err)
		}
	}
	f.clock.now = time.Now().UTC()
	before := f.enroll(f.local, "gw1.example")

	save("disabled")
	seen := time.Now()
	save("enabled")
	f.clock.now = time.Now().UTC() // signed after it was seen enabled again
	after := f.enroll(f.local, "gw1.example")

	f.app.revokeDisabled([]string{"gw1.example"}, seen)
	if r, err := f.local.IsRevoked(f.ctx, before); err != nil || !r {
		t.Errorf("certificate from before the disabling: revoked %v (%v), want revoked", r, err)
	}
	if r, err := f.local.IsRevoked(f.ctx, after); err != nil || r {
		t.Errorf("certificate enrolled for once enabled again: revoked %v (%v), want good", r, err)
	}

	// disabled again: the late revocation takes everything
	save("disabled")
	f.app.revokeDisabled([]string{"gw1.example"}, seen)
	if r, err := f.local.IsRevoked(f.ctx, after); err != nil || !r {
		t.Errorf("device disabled again: its certificate revoked %v (%v), want revoked", r, err)
	}
}

// A device a new version of the file lacks has its certificates revoked,
// unless the file on disk has it again once settled: the version taken was
// cut short by a write in progress.
func TestRevokeRemovedRechecksTheFile(t *testing.T) {
	initMetrics()
	f := newRefreshFixture(t)
	f.app.bgCtx, f.app.log = context.Background(), zap.NewNop()
	defer func(g time.Duration) { removedGrace = g }(removedGrace)
	removedGrace = 0
	whole := "group \"\"\ndevice gw1.example \"\" enabled\ndevice gw2.example \"\" enabled\n"
	cs, path, _ := testConfigState(t, whole)
	f.app.cfg = cs
	serial := f.enroll(f.local, "gw2.example")

	f.app.revokeRemoved([]string{"gw2.example"}, time.Now())
	if r, err := f.local.IsRevoked(f.ctx, serial); err != nil || r {
		t.Fatalf("a device the file on disk lists was revoked as removed: %v %v", r, err)
	}
	saveRenamed(t, path, "group \"\"\ndevice gw1.example \"\" enabled\n")
	f.app.revokeRemoved([]string{"gw2.example"}, time.Now())
	if r, err := f.local.IsRevoked(f.ctx, serial); err != nil || !r {
		t.Fatalf("a device removed from the file kept its certificate: %v %v", r, err)
	}
}
