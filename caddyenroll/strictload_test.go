package caddyenroll

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"os"
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// The enroll app loaded in-process on the strict storage module (and its
// variants): requests wait for approval, are listed once, approved or
// rejected; a new key supersedes the certificate; a device is revoked and
// the CRL lists it, and a device whose name starts like another's keeps
// its certificate.
func TestStrictStorageLoaded(t *testing.T) {
	t.Cleanup(func() { _ = caddy.Stop() })
	for variant := range strictVariants() {
		t.Run(variant, func(t *testing.T) {
			ctx := context.Background()
			conf := filepath.Join(t.TempDir(), "clearinghouse.conf")
			if err := os.WriteFile(conf, []byte("enroll enabled\ngroup \"\"\ndevice gw1.example \"\" enabled\ndevice gw1.example.org \"\" enabled\n"), 0o640); err != nil {
				t.Fatal(err)
			}
			a := loadInProcess(t, map[string]any{"module": "enroll_test_strict", "name": t.Name(), "variant": variant},
				map[string]any{"enroll": map[string]any{"config_file": conf, "approval": ApprovalManual}})
			c := a.cas[profileModern]
			request := func(device, nonce string) string {
				t.Helper()
				key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: device}}, key)
				csr, err := ca.ParseCSR(der, ca.Policy{})
				if err != nil {
					t.Fatal(err)
				}
				dev := a.cfg.device(device)
				id := requestID(profileModern, dev.Name, csr.PublicKeySHA256)
				in := enrollInput{op: wire.OpRequest, profile: profileModern, req: &wire.Request{Operation: wire.OpRequest, Nonce: []byte(nonce)}}
				o := a.enrollLocked(ctx, in, &Account{Username: "u"}, csr, dev.Name, id, c, ca.Policy{})
				if o.resp.Status != wire.StatusPending {
					t.Fatalf("%s: status %d %s, want pending", device, o.resp.Status, o.resp.Error)
				}
				return id
			}
			o1, o2 := request("gw1.example", "n1"), request("gw1.example.org", "n2")
			if page, more, err := a.state.requestPage(ctx, statePending, "", 10); err != nil || more || len(page) != 2 {
				t.Fatalf("pending page: %d more=%v %v", len(page), more, err)
			}
			if n, err := a.state.pendingMarkers(ctx); err != nil || n != 2 {
				t.Fatalf("pending markers %d %v", n, err)
			}
			for _, id := range []string{o1, o2} {
				if r, err := a.approve(ctx, id, ""); err != nil || r.State != stateIssued {
					t.Fatalf("approve %s: %+v %v", id, r, err)
				}
			}
			// a new key: approved, it supersedes the first certificate
			o3 := request("gw1.example", "n3")
			if _, err := a.approve(ctx, o3[:8], ""); err != nil {
				t.Fatal(err)
			}
			o4 := request("gw1.example", "n4")
			if _, err := a.reject(ctx, o4, "no"); err != nil {
				t.Fatal(err)
			}
			if page, _, err := a.state.requestPage(ctx, statePending, "", 10); err != nil || len(page) != 0 {
				t.Fatalf("pending after the decisions: %d %v", len(page), err)
			}
			recs, err := c.Records(ctx, "gw1.example")
			if err != nil || len(recs) != 2 {
				t.Fatalf("certificates of gw1.example: %d %v", len(recs), err)
			}
			revoked, err := c.RevokeDevice(ctx, "gw1.example", ca.ReasonCessationOfOperation, "")
			if err != nil || len(revoked) != 1 {
				t.Fatalf("revoked %v %v; want the current one (the first was superseded)", revoked, err)
			}
			der, err := c.CRL(ctx)
			if err != nil {
				t.Fatal(err)
			}
			crl, err := x509.ParseRevocationList(der)
			if err != nil || len(crl.RevokedCertificateEntries) != 2 {
				t.Fatalf("CRL entries %v %v, want gw1.example's 2", crl, err)
			}
			if other, err := c.Records(ctx, "gw1.example.org"); err != nil || len(other) != 1 || other[0].Revoked {
				t.Fatalf("gw1.example.org: %+v %v", other, err)
			}
		})
	}
}
