package ca

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"strings"
	"testing"
)

// A well-formed request whose key crypto/x509 does not support (here a
// P-192 curve) is refused by the key policy (status 7 to devices); bytes
// that are not a request at all are malformed (status 2).
func TestParseCSRUnsupportedKeyVersusMalformed(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "gw1.example"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	p256 := []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}
	p192 := []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x01}
	if bytes.Count(der, p256) != 1 {
		t.Fatal("no P-256 curve OID in the request")
	}
	other := bytes.Replace(der, p256, p192, 1)
	if _, err := ParseCSR(other, Policy{}); !errors.Is(err, ErrKeyPolicy) {
		t.Errorf("a P-192 key: %v, want ErrKeyPolicy", err)
	}
	for name, b := range map[string][]byte{"truncated": der[:len(der)-5], "trailing byte": append(bytes.Clone(der), 0), "not DER": {0, 0, 0}} {
		if _, err := ParseCSR(b, Policy{}); !errors.Is(err, ErrMalformedCSR) {
			t.Errorf("%s: %v, want ErrMalformedCSR", name, err)
		}
	}
}

// A device name longer than a common name holds (64 characters) is refused
// before signing: the certificate would carry an over-long CN.
func TestDeviceNameFitsCommonName(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{strings.Repeat("a", 56) + ".example", true},  // 64
		{strings.Repeat("a", 57) + ".example", false}, // 65
	} {
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: c.name}}, key)
		if err != nil {
			t.Fatal(err)
		}
		csr, err := ParseCSR(der, Policy{})
		if err != nil {
			t.Fatal(err)
		}
		err = CheckNames(csr, c.name)
		if c.ok != (err == nil) || !c.ok && !errors.Is(err, ErrBadDeviceName) {
			t.Errorf("%d characters: %v", len(c.name), err)
		}
	}
}
