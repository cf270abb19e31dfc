package caddyenroll

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"
)

// An expired certificate this clearinghouse issued and never revoked no
// longer identifies its device (with client_auth mode request, as the
// legacy profile needs, TLS checks no dates), whether the identity was
// cached while it was valid or not.
func TestIdentifyRefusesExpiredCertificate(t *testing.T) {
	f := newRefreshFixture(t)
	certOf := func(serial string) *x509.Certificate {
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
	cached := certOf(f.issue(f.local, "gw1.example", time.Second))
	uncached := certOf(f.issue(f.local, "gw2.example", time.Second))
	if d, _, err := f.app.identifyByCertificate(f.ctx, cached); err != nil || d != "gw1.example" {
		t.Fatalf("a valid certificate: %q, %v", d, err)
	}
	time.Sleep(time.Until(cached.NotAfter.Add(10 * time.Millisecond)))
	for name, c := range map[string]*x509.Certificate{"cached": cached, "not cached": uncached} {
		if d, _, err := f.app.identifyByCertificate(f.ctx, c); err == nil || !strings.Contains(err.Error(), "not now") {
			t.Errorf("%s expired certificate: identified as %q (%v)", name, d, err)
		}
	}
}
