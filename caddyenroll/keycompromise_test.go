package caddyenroll

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
	"go.uber.org/zap"
)

// A key whose certificate was revoked for key compromise is refused
// (status 8) whoever asks with it: not only the device it was issued to
// (its request id) but any other device of the file, under any approval.
func TestCompromisedKeyRefusedForEveryDevice(t *testing.T) {
	for _, approval := range []string{ApprovalManual, ApprovalAuto} {
		t.Run(approval, func(t *testing.T) {
			initMetrics()
			f := newRefreshFixture(t)
			cs, _, _ := testConfigState(t, "group \"\"\ndevice gw1.example \"\" enabled\ndevice gw2.example \"\" enabled\n")
			f.app.cfg = cs
			f.app.log, f.app.bgCtx = zap.NewNop(), f.ctx
			f.app.Approval = approval
			f.app.state = newStateStore(f.app.storage, time.Hour)
			f.app.crypto = new(cryptoRecords)
			f.app.marks = &markBatcher{apply: f.app.applyMarks}
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			csrFor := func(device string) *ca.CSR {
				der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: device}}, key)
				if err != nil {
					t.Fatal(err)
				}
				csr, err := ca.ParseCSR(der, ca.Policy{})
				if err != nil {
					t.Fatal(err)
				}
				return csr
			}
			is, err := f.local.Issue(f.ctx, csrFor("gw1.example").Raw, "gw1.example", ca.Policy{})
			if err != nil {
				t.Fatal(err)
			}
			f.revoke(f.local, is.Serial, ca.ReasonKeyCompromise)

			csr := csrFor("gw2.example")
			dev := cs.device("gw2.example")
			id := requestID(profileModern, dev.Name, csr.PublicKeySHA256)
			in := enrollInput{op: wire.OpRequest, profile: profileModern, req: &wire.Request{Operation: wire.OpRequest, Nonce: []byte("n1"), Device: "1", Customer: "2"}}
			o := f.app.enrollLocked(f.ctx, in, &Account{Username: "u"}, csr, dev.Name, id, f.local, ca.Policy{})
			if o.resp.Status != wire.StatusRejected {
				t.Fatalf("gw2.example with gw1.example's compromised key: status %d %s (serial %s), want %d",
					o.resp.Status, o.resp.Error, o.serial, wire.StatusRejected)
			}
			recs, err := f.local.Records(f.ctx, "gw2.example")
			if err != nil || len(recs) != 0 {
				t.Fatalf("gw2.example certificates: %d, %v", len(recs), err)
			}
		})
	}
}
