package caddyenroll

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// The answer without the device's lock (a full disk) reads a nonce in the
// buckets of both nonce clocks, as a bind does: after a step of the wall
// clock by more than a bucket, a nonce the device bound to another key
// before it is refused there as on the locked path (it read the wall
// clock's buckets alone, and served the certificate).
func TestIssuedUnlockedNonceClockStep(t *testing.T) {
	keepPendingCount(t)
	full := new(atomic.Bool)
	st := fillableStorage{Storage: localLocks{&certmagic.FileStorage{Path: t.TempDir()}}, full: full}
	h, _ := boundsApp(t, st, &testClock{now: time.Now()}, ApprovalAuto, 100, 100)
	send := func(op string, key crypto.Signer, nonce string) *wire.Response {
		t.Helper()
		csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "gw1.example"}}, key)
		if err != nil {
			t.Fatal(err)
		}
		return postForm(t, h, "192.0.2.1", url.Values{"operation": {op}, "nonce": {nonce},
			"username": {"ops"}, "password": {"right"}, "device": {"1"}, "customer": {"0"},
			"request": {base64.StdEncoding.EncodeToString(csr)}})
	}
	issued, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if ans := send(wire.OpRequest, issued, "bm9uY2Ux"); ans.Status != wire.StatusOK {
		t.Fatalf("issuance: %+v", ans)
	}
	h.app.Approval = ApprovalManual
	waiting, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if ans := send(wire.OpRequest, waiting, "bm9uY2Uy"); ans.Status != wire.StatusPending {
		t.Fatalf("pending request: %+v", ans)
	}
	// the wall clock steps 3 hours (3 buckets) forward
	start := h.app.state.now()
	h.app.state.sinceStart = func() time.Time { return start }
	h.app.state.now = func() time.Time { return start.Add(3 * time.Hour) }
	if ans := send(wire.OpRetrieve, issued, "bm9uY2Uy"); ans.Status != wire.StatusNonceReused {
		t.Fatalf("the nonce of another key, after the step: status %d, want %d", ans.Status, wire.StatusNonceReused)
	}
	full.Store(true)
	if ans := send(wire.OpRetrieve, issued, "bm9uY2Uy"); ans.Status != wire.StatusNonceReused {
		t.Fatalf("the nonce of another key, after the step, on a full disk: status %d, want %d", ans.Status, wire.StatusNonceReused)
	}
}
