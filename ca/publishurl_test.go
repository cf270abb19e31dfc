package ca

import (
	"context"
	"crypto/x509"
	"slices"
	"strings"
	"testing"
)

func TestCheckPublishURL(t *testing.T) {
	for _, c := range []struct {
		url, want string // want: "" accepted, else words of the error
	}{
		{"http://enroll.example.com/ca.crl", ""},
		{"https://enroll.example.com:8443/ca.crt", ""},
		{"HTTP://[2001:db8::1]/ca.crl", ""},
		{"ldap://dir.example.com/cn=CA", "want an http"},
		{"/ca.crl", "want an http"},
		{"http:///ca.crl", "names no host"},
		{"http://:80/ca.crl", "names no host"},
		{"http://user:pw@enroll.example.com/ca.crl", "no user"},
		{"http://enroll.example.com/ca.crl?x=1", "no user, query"},
		{"http://enroll.example.com/ca.crl#a", "no user, query"},
		{"http://enroll.example.com/c a.crl", "printable ASCII"},
		{"http://énroll.example.com/ca.crl", "printable ASCII"},
		{"http://enroll.example.com/%zz", "invalid URL escape"},
	} {
		err := CheckPublishURL(c.url)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%q: %v, want %q", c.url, err, c.want)
		}
	}
	if _, _, err := Open(context.Background(), NewMemStore(), Config{IssuerURLs: []string{"ftp://x.example/ca.crt"}}, ""); err == nil {
		t.Error("Open accepted an ftp:// caIssuers URL")
	}
}

// Device certificates of both profiles name where the CRL and the CA's
// certificate are published, when the CA is told (relying parties had to
// be told the paths out of band); without URLs they carry neither
// extension, as before.
func TestCertificatesNamePublishedURLs(t *testing.T) {
	crl := []string{"http://enroll.example.com/ca.crl", "http://backup.example.com/ca.crl"}
	issuer := []string{"http://enroll.example.com/ca.crt"}
	for _, profile := range []Profile{ProfileModern, ProfileLegacy} {
		t.Run(string(profile), func(t *testing.T) {
			with, _ := openCA(t, NewMemStore(), Config{Profile: profile, CRLURLs: crl, IssuerURLs: issuer}, "")
			without := sharedCA(t, Config{Profile: profile})
			for _, c := range []struct {
				ca          *CA
				crl, issuer []string
			}{{with, crl, issuer}, {without, nil, nil}} {
				key := testKey(t, "rsa2048")
				is, err := c.ca.Issue(context.Background(), makeCSR(t, key, csrOpts{}), "gw1.example.com", Policy{Legacy: profile == ProfileLegacy})
				if err != nil {
					t.Fatal(err)
				}
				cert, err := x509.ParseCertificate(is.DER)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(cert.CRLDistributionPoints, c.crl) || !slices.Equal(cert.IssuingCertificateURL, c.issuer) {
					t.Errorf("CRL distribution points %q, caIssuers %q; want %q, %q", cert.CRLDistributionPoints, cert.IssuingCertificateURL, c.crl, c.issuer)
				}
			}
		})
	}
}
