package caddyenroll

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// Answered without the device's lock (a full disk), a request or retrieve
// gets the refusals the locked path gives before it reads the request's
// state: device or customer ids other than the device's enrollment (13,
// not its certificate), and a key revoked for key compromise on another
// device (8, not "still pending"); a certificate revoked since is not
// served again.
func TestUnlockedAnswerRefusals(t *testing.T) {
	h, full, _ := fullDiskApp(t, &testClock{now: time.Now()})
	send := func(op, name string, key crypto.Signer, nonce, customer string) *wire.Response {
		t.Helper()
		return postEnrollment(t, h, op, "ops", name, "1", customer, nonce, key)
	}
	stolen, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if ans := send(wire.OpRequest, "gw9.example", stolen, "bm9uY2Ux", "0"); ans.Status != wire.StatusPending {
		t.Fatalf("an unknown device's request: %+v, want pending", ans)
	}
	ans := send(wire.OpRequest, "gw1.example", stolen, "bm9uY2Uy", "0")
	if ans.Status != wire.StatusOK {
		t.Fatalf("issuance: %+v", ans)
	}
	cert, err := x509.ParseCertificate(ans.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.app.cas[profileModern].Revoke(context.Background(), cert.SerialNumber.Text(16), ca.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	current := send(wire.OpRequest, "gw1.example", good, "bm9uY2Uz", "0")
	if current.Status != wire.StatusOK {
		t.Fatalf("issuance of a new key: %+v", current)
	}

	full.Store(true)
	for _, c := range []struct {
		name     string
		device   string
		key      crypto.Signer
		customer string
		status   int
	}{
		{"the device's certificate", "gw1.example", good, "0", wire.StatusOK},
		{"another customer id", "gw1.example", good, "7", wire.StatusCustomerMismatch},
		{"pending, its key compromised", "gw9.example", stolen, "0", wire.StatusRejected},
	} {
		t.Run(c.name, func(t *testing.T) {
			if ans := send(wire.OpRetrieve, c.device, c.key, base64.StdEncoding.EncodeToString([]byte(c.name)), c.customer); ans.Status != c.status {
				t.Errorf("retrieve on a full disk: status %d (%s), want %d", ans.Status, ans.Error, c.status)
			}
		})
	}

	// its certificate revoked by an operator (no key compromise): the key
	// enrolls afresh, so a retrieve finds no request (11), as the locked
	// path answers; it is not served again (status 0 with a revoked
	// certificate)
	cert, err = x509.ParseCertificate(current.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	full.Store(false)
	if err := h.app.cas[profileModern].Revoke(context.Background(), cert.SerialNumber.Text(16), ca.ReasonCessationOfOperation); err != nil {
		t.Fatal(err)
	}
	full.Store(true)
	if ans := send(wire.OpRetrieve, "gw1.example", good, "cmV2b2tlZA", "0"); ans.Status != wire.StatusNotFound {
		t.Errorf("retrieve of a revoked certificate on a full disk: status %d (%s), want %d", ans.Status, ans.Error, wire.StatusNotFound)
	}
	full.Store(false)
	if ans := send(wire.OpRetrieve, "gw1.example", good, "cmV2b2tlZA", "0"); ans.Status != wire.StatusNotFound {
		t.Errorf("retrieve of a revoked certificate with space: status %d (%s), want %d as on the full disk", ans.Status, ans.Error, wire.StatusNotFound)
	}
	full.Store(true) // a request of the key is a new request: written
	if ans := send(wire.OpRequest, "gw1.example", good, "YWZyZXNo", "0"); ans.Status != wire.StatusServerError {
		t.Errorf("request of the key of a revoked certificate on a full disk: status %d (%s), want %d", ans.Status, ans.Error, wire.StatusServerError)
	}
}

// staysPending answers "still pending" without the lock only when the
// locked path would write nothing: a request that issueHeld would issue
// now (an unknown device's, its device since in the file), or hold anew
// (not held yet), or whose reason it would rewrite, is left to the lock.
func TestStaysPendingOnlyWithoutWrites(t *testing.T) {
	clock := &testClock{now: time.Now()}
	h, _ := boundsApp(t, localLocks{&certmagic.FileStorage{Path: t.TempDir()}}, clock, ApprovalAuto, 100, 100)
	a := h.app
	a.MaxIssuedPerDevice = 1
	issued := &DeviceRecord{Issued: []Issuance{{Serial: "01", At: clock.now.Add(-time.Minute)}}}
	reason := a.issuanceHeld(issued, clock.now)
	if reason == "" {
		t.Fatal("a device at its max_issued_per_device is not held")
	}
	for _, c := range []struct {
		name string
		req  Request
		rec  *DeviceRecord
		want bool
	}{
		{"known device, not held", Request{Device: "gw1.example", Known: true}, nil, true},
		{"unknown device since in the file: issued now", Request{Device: "gw1.example"}, nil, false},
		{"unknown device still not in the file", Request{Device: "gw9.example"}, nil, true},
		{"held for the reason it records", Request{Device: "gw1.example", Held: true, Reason: reason}, issued, true},
		{"held for another reason: rewritten", Request{Device: "gw1.example", Held: true, Reason: "an older reason"}, issued, false},
		{"held, no longer: issued now", Request{Device: "gw1.example", Held: true, Reason: reason}, &DeviceRecord{}, false},
		{"not held yet, to be held", Request{Device: "gw1.example"}, issued, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := a.staysPending(&c.req, c.rec); got != c.want {
				t.Errorf("staysPending: %v, want %v", got, c.want)
			}
		})
	}
}
