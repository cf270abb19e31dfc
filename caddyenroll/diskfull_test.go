package caddyenroll

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// fullStorage is a storage whose disk is full: reads work, every write
// and every lock (a lock file to create) fails with ENOSPC, as Caddy's
// file storage then does.
type fullStorage struct{ certmagic.Storage }

func errFull(key string) error {
	return &fs.PathError{Op: "write", Path: key, Err: syscall.ENOSPC}
}

func (s fullStorage) Store(_ context.Context, key string, _ []byte) error { return errFull(key) }
func (s fullStorage) Lock(_ context.Context, name string) error {
	return errFull("locks/" + name + ".lock")
}

// A token signer already in storage is read without a lock: a restart on
// a full disk served no site with an osp handler (its provisioning failed
// at creating the token signer's lock file, to read what was there).
func TestTokenSignerReadOnFullDisk(t *testing.T) {
	f := newRefreshFixture(t)
	made, err := f.app.tokenSigner(f.ctx, profileModern)
	if err != nil {
		t.Fatal(err)
	}
	f.app.authz.signers = nil // a restart
	f.app.storage = fullStorage{f.app.storage}
	got, err := f.app.tokenSigner(f.ctx, profileModern)
	if err != nil {
		t.Fatalf("token signer on a full disk: %v", err)
	}
	if !got.Cert.Equal(made.Cert) {
		t.Fatal("token signer on a full disk is not the stored one")
	}
	// none in storage: a new one needs the lock, and its error is told
	f.app.authz.signers = nil
	f.app.storage = fullStorage{localLocks{&certmagic.FileStorage{Path: t.TempDir()}}}
	if _, err := f.app.tokenSigner(f.ctx, profileModern); err == nil || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("new token signer on a full disk: %v, want ENOSPC", err)
	}
}

// fillableStorage is a storage whose disk fills up on demand (as
// fullStorage, while full is set).
type fillableStorage struct {
	certmagic.Storage
	full *atomic.Bool
}

func (s fillableStorage) Store(ctx context.Context, key string, value []byte) error {
	if s.full.Load() {
		return errFull(key)
	}
	return s.Storage.Store(ctx, key, value)
}

func (s fillableStorage) Lock(ctx context.Context, name string) error {
	if s.full.Load() {
		return errFull("locks/" + name + ".lock")
	}
	return s.Storage.Lock(ctx, name)
}

// A CRL due for renewal while the disk is full is the stored one, which
// lists every revocation: the revocation state is read (a start, which
// reads it, failed with "loading revocations" once half the CRL's
// validity had passed: the whole server stayed down), and GET /ca.crl
// serves it (it answered 500).
func TestCRLDueOnFullDisk(t *testing.T) {
	ctx := context.Background()
	f, full := crlFullDiskFixture(t)
	a, c, clock := f.app, f.local, f.clock
	serial := f.issue(c, "gw1.example.com", 0)
	if err := c.Revoke(ctx, serial, ca.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	stored, err := c.CRL(ctx)
	if err != nil {
		t.Fatal(err)
	}

	full.Store(true)
	clock.add(40 * time.Minute)            // past half the validity
	a.authz.revocations = new(revocations) // a restart
	if err := a.refreshRevoked(ctx); err != nil {
		t.Fatalf("reading the revocations on a full disk: %v", err)
	}
	if !a.authz.revoked[profileModern+"/"+serial] {
		t.Fatal("the revoked certificate is not known revoked")
	}
	h := &Handler{app: a, log: zap.NewNop()}
	h.Profile = profileModern
	w := httptest.NewRecorder()
	if err := h.serveCRL(w, httptest.NewRequest(http.MethodGet, "/ca.crl", nil)); err != nil || !bytes.Equal(w.Body.Bytes(), stored) {
		t.Fatalf("GET /ca.crl on a full disk: %v (the stored CRL: %v)", err, bytes.Equal(w.Body.Bytes(), stored))
	}
}

// crlFullDiskFixture is an app with a CA (CRLs valid an hour) on a
// storage whose disk fills up when full is set.
func crlFullDiskFixture(t *testing.T) (*refreshFixture, *atomic.Bool) {
	ctx := context.Background()
	full := new(atomic.Bool)
	st := localLocks{fillableStorage{Storage: &certmagic.FileStorage{Path: t.TempDir()}, full: full}}
	clock := &testClock{now: time.Now().UTC()}
	c, _, err := ca.Open(ctx, st, ca.Config{Name: "modern", Now: clock.Now, CRLValidity: time.Hour}, "")
	if err != nil {
		t.Fatal(err)
	}
	a := &App{
		bg:      new(backgroundWork),
		storage: st,
		cas:     map[string]*ca.CA{profileModern: c},
		state:   &stateStore{st: st},
		authz:   &authz{revocations: new(revocations)},
		clock:   clock.Now,
		log:     zap.NewNop(),
	}
	t.Cleanup(func() { a.bg.wg.Wait() })
	return &refreshFixture{t: t, ctx: ctx, app: a, local: c, clock: clock}, full
}

// A stored CRL that lacks a revocation (made before the disk filled up)
// is neither served nor read on a full disk: a CRL listing it is signed
// in memory, for the revocation state (the start failed with "CRL of
// modern CA": the whole server stayed down) and for GET /ca.crl (it
// answered 500).
func TestCRLLackingRevocationOnFullDisk(t *testing.T) {
	ctx := context.Background()
	f, full := crlFullDiskFixture(t)
	a, c := f.app, f.local
	first, second := f.issue(c, "gw1.example.com", 0), f.issue(c, "gw2.example.com", 0)
	if err := c.Revoke(ctx, first, ca.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	stored, err := c.CRL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Revoke(ctx, second, ca.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}

	full.Store(true)
	a.authz.revocations = new(revocations) // a restart
	core, logs := observer.New(zapcore.WarnLevel)
	a.log = zap.New(core)
	if err := a.refreshRevoked(ctx); err != nil {
		t.Fatalf("reading the revocations on a full disk: %v", err)
	}
	for _, s := range []string{first, second} {
		if !a.authz.revoked[profileModern+"/"+s] {
			t.Fatalf("%s is not known revoked", s)
		}
	}
	h := &Handler{app: a, log: a.log}
	h.Profile = profileModern
	w := httptest.NewRecorder()
	if err := h.serveCRL(w, httptest.NewRequest(http.MethodGet, "/ca.crl", nil)); err != nil {
		t.Fatalf("GET /ca.crl on a full disk: %v", err)
	}
	crl, err := x509.ParseRevocationList(w.Body.Bytes())
	if err != nil || bytes.Equal(w.Body.Bytes(), stored) || len(crl.RevokedCertificateEntries) != 2 || crl.CheckSignatureFrom(c.Issuer()) != nil {
		t.Fatalf("GET /ca.crl on a full disk: %v; want a CRL the CA signed listing both revocations", err)
	}
	if n := logs.FilterLevelExact(zapcore.ErrorLevel).FilterMessageSnippet("CRL not stored").Len(); n != 1 {
		t.Fatalf("%d errors saying the CRL is not stored, want 1 (the refresh's; the fetch served what it read)", n)
	}
}

// A mark kept because the file could not be written (its file system is
// full) says that it waits for the file to be editable: it said "once it
// parses again" of a file that parses.
func TestDeferredMarkOnFullDiskSaysWhy(t *testing.T) {
	a, _, logs := markTestApp(t, "group \"\"\ndevice gw1.example \"\" enabled\n")
	cause := fmt.Errorf("%w: writing clearinghouse.conf: %w", errFileUnavailable, errFull(".clearinghouse.conf.tmp-1"))
	if err := a.deferMark(context.Background(), mark{Device: "gw1.example"}, cause); err != nil {
		t.Fatal(err)
	}
	warned := logs.FilterMessageSnippet("device will be marked enrolled").All()
	if len(warned) != 1 || strings.Contains(warned[0].Message, "parses") || !strings.Contains(warned[0].Message, "can be edited") {
		t.Fatalf("logged %v; want one warning that the mark waits for the file to be editable", warned)
	}
}

// A certificate already issued is served again while the disk is full
// (the device's lock, a file to create, cannot be taken): a retrieve with
// a fresh nonce or a request repeating its own got status 14. The answer
// is read from storage only when nothing is to be written: a new key or
// an issuance whose enrolled mark is missing still get 14; a nonce bound
// to another key and a superseded key are refused as ever (pending and
// rejected requests: TestPendingAndRejectedOnFullDisk).
func TestIssuedServedOnFullDisk(t *testing.T) {
	h, full, logs := fullDiskApp(t, &testClock{now: time.Now()})
	old, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if ans := enrollNonce(t, h, wire.OpRequest, old, "b2xk"); ans.Status != wire.StatusOK {
		t.Fatalf("issuance: %+v", ans)
	}
	issued, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // supersedes old's
	first := enrollNonce(t, h, wire.OpRequest, issued, "bm9uY2Ux")
	if first.Status != wire.StatusOK {
		t.Fatalf("issuance: %+v", first)
	}
	if d := h.app.cfg.device("gw1.example"); !d.Enrolled {
		t.Fatal("the device is not marked enrolled")
	}
	h.app.Approval = ApprovalManual // a new key waits: a pending request
	waiting, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if ans := enrollNonce(t, h, wire.OpRequest, waiting, "bm9uY2Uy"); ans.Status != wire.StatusPending {
		t.Fatalf("pending request: %+v", ans)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	full.Store(true)
	checkStoredAnswers(t, h, "on a full disk", first, "", []storedAnswerCase{
		{"retrieve with a fresh nonce", wire.OpRetrieve, issued, "ZnJlc2gx", wire.StatusOK},
		{"request again with its nonce", wire.OpRequest, issued, "bm9uY2Ux", wire.StatusOK},
		{"request again with a fresh nonce", wire.OpRequest, issued, "ZnJlc2gy", wire.StatusOK},
		{"the nonce of another key", wire.OpRetrieve, issued, "bm9uY2Uy", wire.StatusNonceReused},
		{"a superseded key", wire.OpRetrieve, old, "ZnJlc2g3", wire.StatusRejected},
		{"a pending request", wire.OpRetrieve, waiting, "ZnJlc2gz", wire.StatusPending},
		{"a new key", wire.OpRequest, other, "ZnJlc2g0", wire.StatusServerError},
	})
	if n := logs.FilterMessage("device lock unavailable: answered from storage").Len(); n != 6 {
		t.Errorf("%d warnings of answers without the lock, want 6", n)
	}

	// the enrolled mark gone (the operator cleared it): the locked path
	// must write it again, so the full disk answers 14, and space back 0
	saveRenamed(t, h.app.cfg.path, "enroll enabled\ngroup \"\"\ndevice gw1.example \"\" enabled\n")
	if _, err := h.app.cfg.reload(); err != nil {
		t.Fatal(err)
	}
	if ans := enrollNonce(t, h, wire.OpRetrieve, issued, "ZnJlc2g1"); ans.Status != wire.StatusServerError {
		t.Fatalf("retrieve of an unmarked device on a full disk: %+v, want status 14", ans)
	}
	full.Store(false)
	if ans := enrollNonce(t, h, wire.OpRetrieve, issued, "ZnJlc2g2"); ans.Status != wire.StatusOK || !bytes.Equal(ans.Certificate, first.Certificate) {
		t.Fatalf("retrieve once space is back: %+v", ans)
	}
	if d := h.app.cfg.device("gw1.example"); !d.Enrolled {
		t.Fatal("the device is not marked enrolled again")
	}
}

// fullDiskApp is boundsApp (automatic approval, bounds 100) on a file
// storage whose disk fills up while full is set, the process's pending
// count kept: the app of the tests answering without the device's lock.
func fullDiskApp(t *testing.T, clock *testClock) (*Handler, *atomic.Bool, *observer.ObservedLogs) {
	t.Helper()
	keepPendingCount(t)
	full := new(atomic.Bool)
	st := fillableStorage{Storage: localLocks{&certmagic.FileStorage{Path: t.TempDir()}}, full: full}
	h, logs := boundsApp(t, st, clock, ApprovalAuto, 100, 100)
	return h, full, logs
}

// A pending or rejected request is answered from storage while the disk
// is full, as the locked path answers it (status 1 with the request's
// nonce, status 8): a retrieve got status 14 although it writes nothing.
// A held request that the lock's holder would issue now still gets 14,
// as does a new key; a nonce bound to another key is refused.
func TestPendingAndRejectedOnFullDisk(t *testing.T) {
	ctx := context.Background()
	clock := &testClock{now: time.Now()}
	h, full, _ := fullDiskApp(t, clock)
	a := h.app
	a.MaxIssuedPerDevice = 1
	newKey := func() *ecdsa.PrivateKey {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		return k
	}
	issued, held, waiting, refused, other := newKey(), newKey(), newKey(), newKey(), newKey()
	if ans := enrollNonce(t, h, wire.OpRequest, issued, "aXNzdWVk"); ans.Status != wire.StatusOK {
		t.Fatalf("issuance: %+v", ans)
	}
	if ans := enrollNonce(t, h, wire.OpRequest, held, "aGVsZA"); ans.Status != wire.StatusPending || ans.Nonce == "" {
		t.Fatalf("held request (max_issued_per_device 1): %+v", ans)
	}
	a.Approval = ApprovalManual
	if ans := enrollNonce(t, h, wire.OpRequest, waiting, "d2FpdGluZw"); ans.Status != wire.StatusPending || ans.Nonce == "" {
		t.Fatalf("pending request: %+v", ans)
	}
	if ans := enrollNonce(t, h, wire.OpRequest, refused, "cmVmdXNlZA"); ans.Status != wire.StatusPending {
		t.Fatalf("pending request: %+v", ans)
	}
	spki, _ := x509.MarshalPKIXPublicKey(refused.Public())
	if _, err := a.reject(ctx, requestID(profileModern, "gw1.example", ca.FingerprintHex(spki)), "no"); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name     string
		approval string
		later    time.Duration // the clock moved on before
		op       string
		key      crypto.Signer
		nonce    string
		status   int // on the full disk; unless 14, the locked path's answer
	}{
		{"retrieve of a pending request", ApprovalManual, 0, wire.OpRetrieve, waiting, "ZnJlc2gx", wire.StatusPending},
		{"request again of a pending request", ApprovalManual, 0, wire.OpRequest, waiting, "d2FpdGluZw", wire.StatusPending},
		{"retrieve of a rejected request", ApprovalManual, 0, wire.OpRetrieve, refused, "ZnJlc2gy", wire.StatusRejected},
		{"retrieve of a held request, manual approval", ApprovalManual, 0, wire.OpRetrieve, held, "ZnJlc2gz", wire.StatusPending},
		{"retrieve of a held request, still held", ApprovalAuto, 0, wire.OpRetrieve, held, "ZnJlc2g0", wire.StatusPending},
		{"a pending request with the nonce of another key", ApprovalManual, 0, wire.OpRetrieve, waiting, "cmVmdXNlZA", wire.StatusNonceReused},
		{"retrieve of a key without a request", ApprovalManual, 0, wire.OpRetrieve, other, "ZnJlc2g3", wire.StatusNotFound},
		{"a new key", ApprovalManual, 0, wire.OpRequest, other, "ZnJlc2g1", wire.StatusServerError},
		{"retrieve of a held request the lock's holder issues", ApprovalAuto, defaultIssuanceWindow + time.Minute, wire.OpRetrieve, held, "ZnJlc2g2", wire.StatusServerError},
	} {
		a.Approval = tc.approval
		clock.add(tc.later)
		full.Store(true)
		got := enrollNonce(t, h, tc.op, tc.key, tc.nonce)
		full.Store(false)
		if got.Status != tc.status {
			t.Errorf("%s on a full disk: %+v, want status %d", tc.name, got, tc.status)
			continue
		}
		if tc.status == wire.StatusServerError {
			continue
		}
		// the same message with space back: the locked path's answer
		if locked := enrollNonce(t, h, tc.op, tc.key, tc.nonce); got.Status != locked.Status || got.Nonce != locked.Nonce || got.Error != locked.Error {
			t.Errorf("%s on a full disk: %+v; the locked path answers %+v", tc.name, got, locked)
		}
	}
}

// A nonce the device bound to another key is refused on a full disk as
// the locked path refuses it, wherever that path looks: in the buckets of
// a nonce_retention another instance began using since this one last read
// the record of sizes, and in those of the clock since start after a step
// of the wall clock (the read path looked in the buckets of the wall
// clock and of the sizes last learned only: it served the certificate).
func TestNonceOfOthersRefusedOnFullDisk(t *testing.T) {
	ctx := context.Background()
	clock := &testClock{now: time.Now()}
	h, full, _ := fullDiskApp(t, clock)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if ans := enrollNonce(t, h, wire.OpRequest, key, "aXNzdWVk"); ans.Status != wire.StatusOK {
		t.Fatalf("issuance: %+v", ans)
	}
	stepped := func() time.Time { return clock.Now().Add(-3 * time.Hour) } // the wall clock stepped 3 h ahead
	for _, tc := range []struct {
		name       string
		retention  time.Duration // the other instance's
		otherNow   func() time.Time
		sinceStart func() time.Time // this one's
		nonce      string
	}{
		{"bound with another nonce_retention", 3 * time.Hour, clock.Now, nil, "cmV0ZW50aW9u"},
		{"bound in the bucket of the clock since start", time.Hour, stepped, stepped, "c2luY2VzdGFydA"},
	} {
		h.app.state.sinceStart = tc.sinceStart
		other := newStateStore(h.app.storage, tc.retention)
		other.now = tc.otherNow
		if ok, err := other.bindNonceTo(ctx, deviceNonce("gw1.example", []byte(tc.nonce)), nonceBinding("another request", "1", "0")); err != nil || !ok {
			t.Fatalf("%s: binding: %v %v", tc.name, ok, err)
		}
		full.Store(true)
		got := enrollNonce(t, h, wire.OpRetrieve, key, tc.nonce)
		full.Store(false)
		if got.Status != wire.StatusNonceReused {
			t.Errorf("%s, on a full disk: status %d %q, want %d", tc.name, got.Status, got.Error, wire.StatusNonceReused)
		}
		if locked := enrollNonce(t, h, wire.OpRetrieve, key, tc.nonce); locked.Status != wire.StatusNonceReused {
			t.Errorf("%s, the locked path: status %d %q, want %d", tc.name, locked.Status, locked.Error, wire.StatusNonceReused)
		}
	}
}

// lockRoomStorage is a disk with room for a lock file but not for the
// nonce written after it, while full is set: Store fails with ENOSPC,
// Lock works (tmpfs with one page free: the lock file takes it).
type lockRoomStorage struct {
	certmagic.Storage
	full *atomic.Bool
}

func (s lockRoomStorage) Store(ctx context.Context, key string, value []byte) error {
	if s.full.Load() {
		return errFull(key)
	}
	return s.Storage.Store(ctx, key, value)
}

// An answer decided already is read from storage when the device's lock
// is taken but the nonce cannot be stored, as when the lock cannot be
// taken: an issued certificate fetched again, a pending and a rejected
// request got status 14 on a disk with room for the lock file alone (seen
// with a real Caddy on a 4 MB tmpfs). A new key still gets 14, a nonce of
// another key 9.
func TestAnsweredFromStorageWhenNonceNotStored(t *testing.T) {
	keepPendingCount(t)
	ctx := context.Background()
	full := new(atomic.Bool)
	st := lockRoomStorage{Storage: localLocks{&certmagic.FileStorage{Path: t.TempDir()}}, full: full}
	h, logs := boundsApp(t, st, &testClock{now: time.Now()}, ApprovalAuto, 100, 100)
	a := h.app
	newKey := func() *ecdsa.PrivateKey {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		return k
	}
	issued, waiting, refused, other := newKey(), newKey(), newKey(), newKey()
	first := enrollNonce(t, h, wire.OpRequest, issued, "aXNzdWVk")
	if first.Status != wire.StatusOK {
		t.Fatalf("issuance: %+v", first)
	}
	a.Approval = ApprovalManual
	pending := enrollNonce(t, h, wire.OpRequest, waiting, "d2FpdGluZw")
	if pending.Status != wire.StatusPending || pending.Nonce == "" {
		t.Fatalf("pending request: %+v", pending)
	}
	if ans := enrollNonce(t, h, wire.OpRequest, refused, "cmVmdXNlZA"); ans.Status != wire.StatusPending {
		t.Fatalf("pending request: %+v", ans)
	}
	spki, _ := x509.MarshalPKIXPublicKey(refused.Public())
	if _, err := a.reject(ctx, requestID(profileModern, "gw1.example", ca.FingerprintHex(spki)), "no"); err != nil {
		t.Fatal(err)
	}

	full.Store(true)
	checkStoredAnswers(t, h, "the nonce not storable", first, pending.Nonce, []storedAnswerCase{
		{"retrieve of an issued certificate", wire.OpRetrieve, issued, "ZnJlc2gx", wire.StatusOK},
		{"request again of an issued certificate", wire.OpRequest, issued, "ZnJlc2gy", wire.StatusOK},
		{"retrieve of a pending request", wire.OpRetrieve, waiting, "ZnJlc2gz", wire.StatusPending},
		{"retrieve of a rejected request", wire.OpRetrieve, refused, "ZnJlc2g0", wire.StatusRejected},
		{"the nonce of another key", wire.OpRetrieve, issued, "d2FpdGluZw", wire.StatusNonceReused},
		{"a new key", wire.OpRequest, other, "ZnJlc2g1", wire.StatusServerError},
	})
	if n := logs.FilterMessage("nonce not stored: answered from storage").Len(); n != 4 {
		t.Errorf("%d warnings of answers read with the nonce not stored, want 4", n)
	}
}

// storedAnswerCase is an operation of key with nonce and the status it
// must get when the answer is read from storage.
type storedAnswerCase struct {
	name   string
	op     string
	key    crypto.Signer
	nonce  string
	status int
}

// checkStoredAnswers sends h each case and checks its status, that an
// issued certificate is first's, and (pendingNonce given) that a pending
// answer carries the request's server nonce; what says in what state.
func checkStoredAnswers(t *testing.T, h *Handler, what string, first *wire.Response, pendingNonce string, cases []storedAnswerCase) {
	t.Helper()
	for _, tc := range cases {
		got := enrollNonce(t, h, tc.op, tc.key, tc.nonce)
		switch {
		case got.Status != tc.status:
			t.Errorf("%s, %s: %+v, want status %d", tc.name, what, got, tc.status)
		case tc.status == wire.StatusOK && !bytes.Equal(got.Certificate, first.Certificate):
			t.Errorf("%s, %s: another certificate", tc.name, what)
		case tc.status == wire.StatusPending && pendingNonce != "" && got.Nonce != pendingNonce:
			t.Errorf("%s, %s: server nonce %q, want the request's %q", tc.name, what, got.Nonce, pendingNonce)
		}
	}
}

// recordFailStorage fails, while fail is set, the stores of the keys
// holding part: of certificate records ("/issued/": a revocation whose
// revoked list was stored and its record not, the disk filled up in
// between), of device records ("/devices/": after a revocation's writes).
type recordFailStorage struct {
	certmagic.Storage
	fail *atomic.Bool
	part string
}

func (s recordFailStorage) Store(ctx context.Context, key string, value []byte) error {
	if s.fail.Load() && strings.Contains(key, s.part) {
		return errFull(key)
	}
	return s.Storage.Store(ctx, key, value)
}

// A revocation that fails half-way, its revoked list (the CRL's source)
// stored but not the certificate's record, is known to enrollment at
// once: a retrieve of the certificate got it again (status 0) until the
// next refresh of the revocations, 30 s later, while the CRL listed it
// (seen with a real Caddy on a 4 MB tmpfs, the admin API answering 500).
func TestRevokeFailedHalfWayKnownAtOnce(t *testing.T) {
	keepPendingCount(t)
	fail := new(atomic.Bool)
	st := recordFailStorage{Storage: localLocks{&certmagic.FileStorage{Path: t.TempDir()}}, fail: fail, part: "/issued/"}
	h, _ := boundsApp(t, st, &testClock{now: time.Now()}, ApprovalAuto, 100, 100)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	first := enrollNonce(t, h, wire.OpRequest, key, "aXNzdWVk")
	if first.Status != wire.StatusOK {
		t.Fatalf("issuance: %+v", first)
	}
	cert, err := x509.ParseCertificate(first.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	serial := cert.SerialNumber.Text(16)
	ad := &adminAPI{app: h.app, log: zap.NewNop()}
	fail.Store(true)
	if code, body, _ := adminDoBody(t, ad, "POST", "/enroll/revoke", `{"serial": "`+serial+`"}`); code != http.StatusInternalServerError {
		t.Fatalf("revoke with the record not storable: %d %s, want 500", code, body)
	}
	if revoked, err := h.app.cas[profileModern].IsRevoked(context.Background(), serial); err != nil || !revoked {
		t.Fatalf("the revoked list does not hold %s (%v): the failure is not half-way", serial, err)
	}
	if got := enrollNonce(t, h, wire.OpRetrieve, key, "ZnJlc2gx"); got.Status != wire.StatusRejected {
		t.Fatalf("retrieve of the certificate the CRL lists: status %d %q, want 8", got.Status, got.Error)
	}
}

// serialRecordFailStorage fails, while serial is set, the stores of that
// certificate's record (issued/<serial>.json) only: a supersession whose
// new certificate is recorded, and whose revocation of the previous one
// stores the revoked list but not that record (the disk filled up in
// between).
type serialRecordFailStorage struct {
	certmagic.Storage
	serial *atomic.Pointer[string]
}

func (s serialRecordFailStorage) Store(ctx context.Context, key string, value []byte) error {
	if p := s.serial.Load(); p != nil && strings.Contains(key, "/issued/") && strings.Contains(strings.ToLower(key), *p) {
		return errFull(key)
	}
	return s.Storage.Store(ctx, key, value)
}

// Revocations that fail half-way other than an administrator's, their
// revoked list (the CRL's source) stored but not the certificate's
// record, are known to OSP at once too: a device disabled in the
// configuration file, and a supersession by a new enrollment. OSP took
// the certificate the CRL listed (its record unmarked) until the next
// refresh of the revocations, 30 s later.
func TestRevokeFailedHalfWayOtherPathsKnownAtOnce(t *testing.T) {
	for _, path := range []string{"disabled", "superseded"} {
		t.Run(path, func(t *testing.T) {
			keepPendingCount(t)
			failSerial := new(atomic.Pointer[string])
			st := serialRecordFailStorage{Storage: localLocks{&certmagic.FileStorage{Path: t.TempDir()}}, serial: failSerial}
			h, _ := boundsApp(t, st, &testClock{now: time.Now()}, ApprovalAuto, 100, 100)
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			first := enrollAs(t, h, wire.OpRequest, "ops", "gw1.example", key)
			if first.Status != wire.StatusOK {
				t.Fatalf("issuance: %+v", first)
			}
			cert, err := x509.ParseCertificate(first.Certificate)
			if err != nil {
				t.Fatal(err)
			}
			serial := strings.ToLower(cert.SerialNumber.Text(16))
			failSerial.Store(&serial)
			switch path {
			case "disabled":
				saveRenamed(t, h.app.cfg.path, "enroll enabled\ngroup \"\"\ndevice gw1.example \"\" disabled\n")
				if _, err := h.app.cfg.reload(); err != nil {
					t.Fatal(err)
				}
				h.app.revokeDisabled([]string{"gw1.example"}, time.Now())
			case "superseded":
				other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				if got := enrollAs(t, h, wire.OpRequest, "ops", "gw1.example", other); got.Status != wire.StatusServerError {
					t.Fatalf("enrollment whose supersession fails: status %d %q, want %d", got.Status, got.Error, wire.StatusServerError)
				}
			}
			if revoked, err := h.app.cas[profileModern].IsRevoked(context.Background(), serial); err != nil || !revoked {
				t.Fatalf("the revoked list does not hold %s (%v): the failure is not half-way", serial, err)
			}
			if rec, err := h.app.cas[profileModern].Lookup(context.Background(), serial); err != nil || rec.Revoked {
				t.Fatalf("the record of %s is marked revoked (%v): the failure is not half-way", serial, err)
			}
			if dev, _, err := h.app.identifyByCertificate(context.Background(), cert); err == nil {
				t.Errorf("OSP took the certificate the CRL lists, as %s's", dev)
			}
			if path == "disabled" && h.app.eligible("gw1.example") {
				t.Error("the disabled device whose certificate the CRL lists is eligible for calls")
			}
		})
	}
}

// A revocation for key compromise whose revocation of the key's other
// certificates fails half-way (a cloned gateway's certificate on the
// revoked list, its record not stored) is known to OSP at once, as the
// other half-way revocations are: it took the certificate the CRL lists
// until the next refresh.
func TestRevokeSameKeysFailedHalfWayKnownAtOnce(t *testing.T) {
	keepPendingCount(t)
	failSerial := new(atomic.Pointer[string])
	st := serialRecordFailStorage{Storage: localLocks{&certmagic.FileStorage{Path: t.TempDir()}}, serial: failSerial}
	h, _ := boundsApp(t, st, &testClock{now: time.Now()}, ApprovalAuto, 100, 100)
	saveRenamed(t, h.app.cfg.path, "enroll enabled\ngroup \"\"\ndevice gw1.example \"\" enabled\ndevice gw2.example \"\" enabled\n")
	if _, err := h.app.cfg.reload(); err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // a cloned gateway image
	certs := map[string]*x509.Certificate{}
	for _, d := range []string{"gw1.example", "gw2.example"} {
		ans := enrollAs(t, h, wire.OpRequest, "ops", d, key)
		if ans.Status != wire.StatusOK {
			t.Fatalf("enrolling %s: %+v", d, ans)
		}
		cert, err := x509.ParseCertificate(ans.Certificate)
		if err != nil {
			t.Fatal(err)
		}
		certs[d] = cert
	}
	clone := strings.ToLower(certs["gw2.example"].SerialNumber.Text(16))
	failSerial.Store(&clone)
	ad := &adminAPI{app: h.app, log: zap.NewNop()}
	// the answer names the clone's certificate revoked: the CRL lists it
	if code, body, _ := adminDoBody(t, ad, "POST", "/enroll/revoke", `{"device": "gw1.example", "reason": 1}`); code != http.StatusInternalServerError ||
		!strings.Contains(body, clone) {
		t.Fatalf("revoke for key compromise with the clone's record not storable: %d %s, want 500 naming %s revoked", code, body, clone)
	}
	c := h.app.cas[profileModern]
	if revoked, err := c.IsRevoked(context.Background(), clone); err != nil || !revoked {
		t.Fatalf("the revoked list does not hold the clone's %s (%v): the failure is not half-way", clone, err)
	}
	if rec, err := c.Lookup(context.Background(), clone); err != nil || rec.Revoked {
		t.Fatalf("the record of %s is marked revoked (%v): the failure is not half-way", clone, err)
	}
	if dev, _, err := h.app.identifyByCertificate(context.Background(), certs["gw2.example"]); err == nil {
		t.Errorf("OSP took the clone's certificate the CRL lists, as %s's", dev)
	}
}

// The answer's log line of a request refused because the device's lock
// could not be taken (status 14) names the device, as the other answers'
// lines do (only the ERROR line before it did).
func TestLockFailureAnswerLogNamesDevice(t *testing.T) {
	h, full, logs := fullDiskApp(t, &testClock{now: time.Now()})
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	full.Store(true)
	if ans := enrollNonce(t, h, wire.OpRequest, key, "bG9ja2VkIG91dA"); ans.Status != wire.StatusServerError {
		t.Fatalf("a new key on a full disk: %+v, want status 14", ans)
	}
	lines := logs.FilterMessage("enrollment refused").All()
	if len(lines) == 0 {
		t.Fatal("no 'enrollment refused' line for the status 14 answer")
	}
	if got := lines[len(lines)-1].ContextMap()["device"]; got != "gw1.example" {
		t.Errorf("the answer's log line names device %v, want gw1.example", got)
	}
}
