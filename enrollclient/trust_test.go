package enrollclient

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

var (
	oidSHA256RSA = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b}
	oidMD5RSA    = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04}
	oidSHA1RSA   = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05}
)

// resign turns a SHA256-RSA certificate into an MD5- or SHA1-RSA one, as a
// legacy clearinghouse CA makes them (crypto/x509 cannot create those): the
// OIDs have the same length, and so has the new signature.
func resign(t *testing.T, der []byte, caKey *rsa.PrivateKey, oid []byte, h crypto.Hash) []byte {
	t.Helper()
	out := bytes.ReplaceAll(der, oidSHA256RSA, oid)
	c, err := x509.ParseCertificate(out)
	if err != nil {
		t.Fatal(err)
	}
	var digest []byte
	if h == crypto.MD5 {
		s := md5.Sum(c.RawTBSCertificate)
		digest = s[:]
	} else {
		s := sha1.Sum(c.RawTBSCertificate)
		digest = s[:]
	}
	sig, err := rsa.SignPKCS1v15(rand.Reader, caKey, h, digest)
	if err != nil {
		t.Fatal(err)
	}
	copy(out[len(out)-len(sig):], sig)
	return out
}

func TestVerifyIssuedLegacySignatures(t *testing.T) {
	caKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Legacy CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour * 24 * 365),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	ca, _ := x509.ParseCertificate(caDER)
	devKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "testtep4.transnexus.com"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour * 24 * 365),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	leafDER, _ := x509.CreateCertificate(rand.Reader, leafTmpl, ca, devKey.Public(), caKey)
	for name, tc := range map[string]struct {
		oid []byte
		h   crypto.Hash
	}{"MD5-RSA": {oidMD5RSA, crypto.MD5}, "SHA1-RSA": {oidSHA1RSA, crypto.SHA1}} {
		der := resign(t, leafDER, caKey, tc.oid, tc.h)
		leaf, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		if leaf.SignatureAlgorithm.String() != name {
			t.Fatalf("made %s, want %s", leaf.SignatureAlgorithm, name)
		}
		if err := VerifyIssued(leaf, devKey.Public(), ca, "testtep4.transnexus.com", time.Now()); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		bad := bytes.Clone(der)
		bad[len(bad)-1] ^= 1
		leaf, _ = x509.ParseCertificate(bad)
		if err := VerifyIssued(leaf, devKey.Public(), ca, "", time.Now()); !errors.Is(err, ErrBadCertificate) {
			t.Fatalf("%s: tampered signature accepted: %v", name, err)
		}
	}
}

func TestVerifyIssuedChecks(t *testing.T) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	ca, _ := x509.ParseCertificate(caDER)
	devKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	mk := func(mod func(*x509.Certificate)) *x509.Certificate {
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "gw1.example.com"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
		if mod != nil {
			mod(tmpl)
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, devKey.Public(), caKey)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c
	}
	now := time.Now()
	if err := VerifyIssued(mk(nil), devKey.Public(), ca, "GW1.example.com.", now); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		cert *x509.Certificate
		dev  string
		want string
	}{
		"other name":  {mk(nil), "gw2.example.com", "does not name the device"},
		"server only": {mk(func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} }), "", "client authentication"},
		"SAN name":    {mk(func(c *x509.Certificate) { c.Subject.CommonName = ""; c.DNSNames = []string{"gw3.example.com"} }), "gw3.example.com", ""},
		"SAN IP": {mk(func(c *x509.Certificate) {
			c.Subject.CommonName = ""
			c.IPAddresses = []net.IP{net.ParseIP("192.0.2.1")}
		}), "192.0.2.1", ""},
		"other SAN IP": {mk(func(c *x509.Certificate) {
			c.Subject.CommonName = ""
			c.IPAddresses = []net.IP{net.ParseIP("192.0.2.2")}
		}), "192.0.2.1", "does not name the device"},
	} {
		err := VerifyIssued(tc.cert, devKey.Public(), ca, tc.dev, now)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err := VerifyIssued(mk(nil), other.Public(), ca, "", now); !errors.Is(err, ErrBadCertificate) {
		t.Fatalf("wrong key: %v", err)
	}
	// CheckCA refuses a non-CA certificate even when pinned
	leaf := mk(nil)
	c := &Client{CAFingerprint: Fingerprint(leaf)}
	if err := c.CheckCA(leaf); err == nil || !strings.Contains(err.Error(), "not a CA") {
		t.Fatalf("leaf as CA: %v", err)
	}
}
