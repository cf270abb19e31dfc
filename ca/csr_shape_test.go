package ca

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
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

// rsaKeyWithExponent makes a 2048-bit RSA key with public exponent e
// (rsa.GenerateKey always uses 65537).
func rsaKeyWithExponent(t *testing.T, e int) *rsa.PrivateKey {
	t.Helper()
	one, be := big.NewInt(1), big.NewInt(int64(e))
	prime := func(other *big.Int) *big.Int {
		for {
			p, err := rand.Prime(rand.Reader, 1024)
			if err != nil {
				t.Fatal(err)
			}
			if (other == nil || p.Cmp(other) != 0) && new(big.Int).Mod(new(big.Int).Sub(p, one), be).Sign() != 0 {
				return p
			}
		}
	}
	p := prime(nil)
	q := prime(p)
	phi := new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))
	k := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: new(big.Int).Mul(p, q), E: e},
		D: new(big.Int).ModInverse(be, phi), Primes: []*big.Int{p, q}}
	k.Precompute()
	return k
}

// RSA public exponents below 65537 are refused but by the legacy policy.
func TestRSAPublicExponent(t *testing.T) {
	for _, c := range []struct {
		e      int
		legacy bool
		ok     bool
	}{
		{3, false, false},
		{17, false, false},
		{65537, false, true},
		{3, true, true},
		{17, true, true},
	} {
		der := makeCSR(t, rsaKeyWithExponent(t, c.e), csrOpts{cn: "gw1.example"})
		_, err := ParseCSR(der, Policy{Legacy: c.legacy})
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrKeyPolicy)) {
			t.Errorf("e=%d legacy=%v: %v, want accepted=%v", c.e, c.legacy, err, c.ok)
		}
	}
}

// RSA public exponents that are no exponent at all (even, or below 3) are
// refused by every policy, the legacy one included: crypto/x509 parses any
// positive one, and checkKey sees it before the signature is checked.
func TestRSAInvalidExponent(t *testing.T) {
	n := rsaKeyWithExponent(t, 65537).N
	for _, c := range []struct {
		e      int
		legacy bool
	}{
		{1, true},
		{2, true},
		{4, true},
		{65536, true},
		{65538, false},
		{1<<31 - 2, false},
	} {
		_, err := checkKey(&rsa.PublicKey{N: n, E: c.e}, Policy{Legacy: c.legacy})
		if !errors.Is(err, ErrKeyPolicy) || !strings.Contains(err.Error(), "invalid public exponent") {
			t.Errorf("e=%d legacy=%v: %v, want the key refused for an invalid exponent", c.e, c.legacy, err)
		}
	}
}

// RSA keys are bounded at 8192 bits (a larger modulus costs the server
// its signature check): one bit more is refused, whatever the policy.
func TestRSAKeySizeBound(t *testing.T) {
	for _, c := range []struct {
		bits int
		ok   bool
	}{
		{8192, true},
		{8193, false},
		{16384, false},
	} {
		n := new(big.Int).Lsh(big.NewInt(1), uint(c.bits-1))
		n.SetBit(n, 0, 1)
		_, err := checkKey(&rsa.PublicKey{N: n, E: 65537}, Policy{Legacy: true})
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrKeyPolicy)) {
			t.Errorf("RSA-%d: %v, want accepted=%v", c.bits, err, c.ok)
		}
	}
}
