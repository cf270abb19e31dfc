package caddyenroll

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// An issuance whose key a revocation for key compromise marks while it
// signs (after enrollment's check of the mark, before its record is
// there for the revocation's look at every certificate of the key) finds
// the mark once recorded: the certificate is revoked and the device
// refused, so that a cloned gateway enrolling in that instant keeps no
// valid certificate of the stolen key.
func TestIssuanceAfterKeyCompromiseMark(t *testing.T) {
	ctx := context.Background()
	h := fileApp(t, ApprovalAuto, "enroll enabled\ngroup \"\"\ndevice gw1.example \"\" enabled\ndevice gw2.example \"\" enabled\n")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ans := enrollAs(t, h, wire.OpRequest, "ops", "gw1.example", key)
	if ans.Status != wire.StatusOK {
		t.Fatalf("gw1: status %d %s", ans.Status, ans.Error)
	}
	first, err := x509.ParseCertificate(ans.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	authority := h.app.cas[profileModern]
	policy := h.app.Authorities[profileModern].policy(profileModern)
	// gw2's enrollment with the same key has passed its check of the mark
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "gw2.example"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := ca.ParseCSR(der, policy)
	if err != nil {
		t.Fatal(err)
	}
	// now the operator revokes gw1's certificate for key compromise
	if err := authority.Revoke(ctx, first.SerialNumber.Text(16), ca.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	req := &Request{ID: requestID(profileModern, "gw2.example", csr.PublicKeySHA256), Profile: profileModern, Device: "gw2.example",
		DeviceID: "1", Customer: "0", PublicKeySHA256: csr.PublicKeySHA256, CSR: der, State: statePending, Known: true, Created: time.Now()}
	err = h.app.issueLocked(ctx, req, csr, nil, authority, policy)
	if !errors.Is(err, errKeyCompromisedMeanwhile) {
		t.Fatalf("issuance after the mark: %v, want errKeyCompromisedMeanwhile", err)
	}
	if out := h.app.issueFailed(err, "issuing", "gw2.example", req.ID); out.resp.Status != wire.StatusRejected {
		t.Fatalf("answer: status %d %s, want %d", out.resp.Status, out.resp.Error, wire.StatusRejected)
	}
	recs, err := authority.Records(ctx, "gw2.example")
	if err != nil || len(recs) != 1 {
		t.Fatalf("gw2's records: %v %v, want the one just signed", recs, err)
	}
	if !recs[0].Revoked || recs[0].Reason != ca.ReasonKeyCompromise {
		t.Fatalf("gw2's certificate %s: revoked %v reason %d, want revoked for key compromise", recs[0].Serial, recs[0].Revoked, recs[0].Reason)
	}
}

// A held request whose key was revoked for key compromise since it came is
// refused as the device's first request would be (status 8), not with a
// server error; an approval of it is a conflict (409) saying to reject it.
func TestPendingKeyCompromisedAnswers(t *testing.T) {
	h := fileApp(t, ApprovalAuto, "enroll enabled\ngroup \"\"\ndevice gw1.example \"\" enabled\n")
	if out := h.app.issueFailed(errKeyCompromisedPending, "issuing a held request", "gw1.example", "id"); out.resp.Status != wire.StatusRejected {
		t.Fatalf("held request: status %d %s, want %d", out.resp.Status, out.resp.Error, wire.StatusRejected)
	}
	if err := actionErr(errKeyCompromisedPending); !strings.Contains(err.Error(), "reject it") || !errors.Is(errKeyCompromisedPending, errConflict) {
		t.Fatalf("approval: %v, want a conflict saying to reject it", err)
	}
}
