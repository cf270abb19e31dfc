package ca

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"net/url"
	"testing"
)

// Every name a request carries must be the device (blanks around it
// aside): for an IP device, an address (in the CN or an IP SAN) must be
// that address; URI SANs are never the device.
func TestCheckNamesOfRequest(t *testing.T) {
	key := testKey(t, "p256")
	csr := func(tmpl *x509.CertificateRequest) *CSR {
		der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
		if err != nil {
			t.Fatal(err)
		}
		c, err := ParseCSR(der, Policy{})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ip := func(s string) []net.IP { return []net.IP{net.ParseIP(s)} }
	sip, _ := url.Parse("sip:gw1@device1.itsp.com")
	for _, tc := range []struct {
		name   string
		tmpl   *x509.CertificateRequest
		device string
		err    error
	}{
		{"IP device, its address as CN and SAN", &x509.CertificateRequest{Subject: pkix.Name{CommonName: "192.0.2.1"}, IPAddresses: ip("192.0.2.1")}, "192.0.2.1", nil},
		{"IP device, CN of another address", &x509.CertificateRequest{Subject: pkix.Name{CommonName: "192.0.2.2"}}, "192.0.2.1", ErrNameMismatch},
		{"IP device, IP SAN of another address", &x509.CertificateRequest{IPAddresses: ip("192.0.2.2")}, "192.0.2.1", ErrNameMismatch},
		{"IP device, CN a host name", &x509.CertificateRequest{Subject: pkix.Name{CommonName: "device1.itsp.com"}}, "192.0.2.1", ErrNameMismatch},
		{"CN with blanks around the device", &x509.CertificateRequest{Subject: pkix.Name{CommonName: " device1.itsp.com "}}, "device1.itsp.com", nil},
		{"URI SAN", &x509.CertificateRequest{Subject: pkix.Name{CommonName: "device1.itsp.com"}, URIs: []*url.URL{sip}}, "device1.itsp.com", ErrNameMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckNames(csr(tc.tmpl), tc.device)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
		})
	}
}
