package caddyenroll

import (
	"crypto/tls"
	"crypto/x509"
	"net/http/httptest"
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
	current := f.enroll(f.local, "dev1.example.net")
	unnamed := f.issue(f.local, "dev1.example.net", 0) // never the record's
	f.refresh()
	f.revoke(f.other, current, ca.ReasonKeyCompromise)
	f.refresh()
	f.wantEligible(map[string]bool{"dev1.example.net": false})

	d, _, err := f.app.identifyByCertificate(f.ctx, f.cert(unnamed))
	if err != nil || d != "dev1.example.net" {
		t.Fatalf("the unnamed certificate: %q, %v", d, err)
	}
	f.wantEligible(map[string]bool{"dev1.example.net": false})

	// the device enrolls again elsewhere: its new certificate, which the
	// record names, is good here at once
	renewed := f.enroll(f.other, "dev1.example.net")
	if d, _, err := f.app.identifyByCertificate(f.ctx, f.cert(renewed)); err != nil || d != "dev1.example.net" {
		t.Fatalf("the renewed certificate: %q, %v", d, err)
	}
	f.wantEligible(map[string]bool{"dev1.example.net": true})
}

// A device identified by its certificate is named as the file writes it,
// not as the certificate's record does: its usage records' reporter and
// transaction source are the file's names. (Only source addresses were
// checked.)
func TestIdentifyByCertificateAsTheFileWritesIt(t *testing.T) {
	f := newRefreshFixture(t)
	f.app.cfg, _, _ = testConfigState(t, "group \"\"\ndevice GW7.Example \"\" enabled enrolled\n")
	rec, err := f.local.Lookup(f.ctx, f.issue(f.local, "gw7.example", 0))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(rec.DER)
	if err != nil {
		t.Fatal(err)
	}
	h := &OSPHandler{app: f.app}
	for _, cached := range []bool{false, true} {
		r := httptest.NewRequest("POST", "/osp", nil)
		r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}
		if got, why := h.identify(r); got != "GW7.Example" {
			t.Errorf("cached %v: %q (%s), want GW7.Example", cached, got, why)
		}
	}
}
