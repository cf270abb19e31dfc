package caddyenroll

import (
	"crypto/x509"
	"testing"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
)

// A device whose current certificate is revoked is made eligible again at
// once only by the certificate its record names (followReenrollment: it
// enrolled again through another instance). Presenting another good
// certificate of ours — one a re-enrollment cut short issued and the
// record never named — identifies the device but leaves it revoked until
// the record says otherwise. (Dropping the serial check made any such
// certificate lift the revocation.)
func TestIdentifyFollowsReenrollmentOnlyByTheRecordsCertificate(t *testing.T) {
	f := newRefreshFixture(t)
	certOf := func(serial string) *x509.Certificate {
		t.Helper()
		rec, err := f.local.Lookup(f.ctx, serial)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(rec.DER)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	current := f.enroll(f.local, "dev1.example.net")
	unnamed := f.issue(f.local, "dev1.example.net", 0) // never the record's
	f.refresh()
	f.revoke(f.other, current, ca.ReasonKeyCompromise)
	f.refresh()
	f.wantEligible(map[string]bool{"dev1.example.net": false})

	d, _, err := f.app.identifyByCertificate(f.ctx, certOf(unnamed))
	if err != nil || d != "dev1.example.net" {
		t.Fatalf("the unnamed certificate: %q, %v", d, err)
	}
	f.wantEligible(map[string]bool{"dev1.example.net": false})

	// the device enrolls again elsewhere: its new certificate, which the
	// record names, is good here at once
	renewed := f.enroll(f.other, "dev1.example.net")
	if d, _, err := f.app.identifyByCertificate(f.ctx, certOf(renewed)); err != nil || d != "dev1.example.net" {
		t.Fatalf("the renewed certificate: %q, %v", d, err)
	}
	f.wantEligible(map[string]bool{"dev1.example.net": true})
}
