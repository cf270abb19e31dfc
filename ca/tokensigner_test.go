package ca

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"testing"
	"time"
)

func TestIssueTokenSigner(t *testing.T) {
	for _, profile := range []Profile{ProfileModern, ProfileLegacy} {
		c, _, err := Open(context.Background(), NewMemStore(), Config{Name: string(profile), Profile: profile}, "")
		if err != nil {
			t.Fatal(err)
		}
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		is, err := c.IssueTokenSigner(key.Public(), "Clearinghouse token signer", time.Hour)
		if err != nil {
			t.Fatalf("%s: %v", profile, err)
		}
		cert := is.Cert
		if cert.KeyUsage != x509.KeyUsageDigitalSignature || len(cert.ExtKeyUsage) != 0 || cert.IsCA {
			t.Errorf("%s: usage %v eku %v ca %v", profile, cert.KeyUsage, cert.ExtKeyUsage, cert.IsCA)
		}
		if cert.SignatureAlgorithm == x509.MD5WithRSA || cert.SignatureAlgorithm == x509.SHA1WithRSA {
			t.Errorf("%s: token signer signed with %v", profile, cert.SignatureAlgorithm)
		}
		// it chains directly to the CA (the signature verifies with the CA's key)
		if err := cert.CheckSignatureFrom(c.Issuer()); err != nil && profile == ProfileModern {
			t.Errorf("%s: %v", profile, err)
		}
		if err := c.Issuer().CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
			t.Errorf("%s: signature: %v", profile, err)
		}
		if !cert.NotAfter.After(time.Now().Add(50 * time.Minute)) {
			t.Errorf("%s: validity", profile)
		}
	}
}

// The token signer certificate passes the same lints as every other
// certificate the package issues.
func TestZlintTokenSigner(t *testing.T) {
	for _, profile := range []Profile{ProfileModern, ProfileLegacy} {
		c, _, err := Open(context.Background(), NewMemStore(), Config{Name: string(profile), Profile: profile}, "")
		if err != nil {
			t.Fatal(err)
		}
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		is, err := c.IssueTokenSigner(key.Public(), "Clearinghouse token signer", 90*24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		lintCert(t, "token signer "+string(profile), is.DER)
	}
}
