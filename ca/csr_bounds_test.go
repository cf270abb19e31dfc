package ca

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"strings"
	"testing"

	ctx509 "github.com/google/certificate-transparency-go/x509"
)

// RSA keys below 1024 bits are refused whatever the policy, a lowered
// MinRSABits included; public exponents from 65537 up are taken without
// the legacy policy, those just below it only with it.
func TestCheckKeyRSABoundaries(t *testing.T) {
	modulus := func(bits int) *big.Int {
		n := new(big.Int).Lsh(big.NewInt(1), uint(bits-1))
		return n.SetBit(n, 0, 1)
	}
	lax := Policy{MinRSABits: 512, AllowRSA1024: true, Legacy: true}
	for _, c := range []struct {
		name string
		bits int
		e    int
		p    Policy
		ok   bool
	}{
		{"1023 bits, minimum lowered", 1023, 65537, lax, false},
		{"1024 bits, minimum lowered", 1024, 65537, lax, true},
		{"e=65535 without legacy", 2048, 65535, Policy{}, false},
		{"e=65535 legacy", 2048, 65535, Policy{Legacy: true}, true},
		{"e=65537 without legacy", 2048, 65537, Policy{}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := checkKey(&rsa.PublicKey{N: modulus(c.bits), E: c.e}, c.p)
			if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrKeyPolicy)) {
				t.Fatalf("err %v, want accepted=%v", err, c.ok)
			}
		})
	}
}

// A signature algorithm of another key type than the request's key is
// an unsupported algorithm, not a bad signature, for the legacy SHA-1
// algorithms as for the others.
func TestCSRAlgorithmOfAnotherKeyType(t *testing.T) {
	var (
		oidSHA1RSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 5}
		oidECDSASHA1 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 1}
		oidSHA256RSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	)
	for _, c := range []struct {
		name string
		csr  []byte
	}{
		{"ecdsa key, SHA1-RSA", rewriteSigAlg(t, makeCSR(t, testKey(t, "p256"), csrOpts{}), oidSHA1RSA, true)},
		{"rsa key, ECDSA-SHA1", rewriteSigAlg(t, makeCSR(t, testKey(t, "rsa2048"), csrOpts{}), oidECDSASHA1, false)},
		{"ed25519 key, SHA256-RSA", rewriteSigAlg(t, makeCSR(t, testKey(t, "ed25519"), csrOpts{}), oidSHA256RSA, true)},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := ParseCSR(c.csr, Policy{Legacy: true}); !errors.Is(err, ErrUnsupportedAlgorithm) {
				t.Fatalf("err %v, want %v", err, ErrUnsupportedAlgorithm)
			}
		})
	}
}

// An RSA key whose BIT STRING carries bytes after the key is refused:
// crypto/x509 reads the key and ignores them, so one key would have many
// encodings (and hashes), and the certificate could not repeat it.
func TestCSRNonCanonicalRSAKey(t *testing.T) {
	k := testKey(t, "rsa1024").(*rsa.PrivateKey)
	der := makeLegacyCSR(t, k, "device1.itsp.com", ctx509.MD5WithRSA)
	spki, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Alg  pkix.AlgorithmIdentifier
		Bits asn1.BitString
	}
	if _, err := asn1.Unmarshal(spki, &info); err != nil {
		t.Fatal(err)
	}
	info.Bits.Bytes = append(bytes.Clone(info.Bits.Bytes), 0, 0)
	info.Bits.BitLength += 16
	padded, err := asn1.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	tbs, _, _, err := splitSigned(der)
	if err != nil {
		t.Fatal(err)
	}
	p := Policy{AllowRSA1024: true, Legacy: true}
	// the original request passes: the refusal is the padding's
	if _, err := ParseCSR(signTBSMD5(t, tbs, k), p); err != nil {
		t.Fatalf("canonical key: %v", err)
	}
	req, err := x509.ParseCertificateRequest(signTBSMD5(t, replaceAndFixLengths(t, tbs, spki, padded), k))
	if err != nil || !req.PublicKey.(*rsa.PublicKey).Equal(&k.PublicKey) {
		t.Fatalf("crypto/x509 no longer reads the padded key as the key (%v): the test proves nothing", err)
	}
	if _, err := ParseCSR(req.Raw, p); !errors.Is(err, ErrMalformedCSR) || !strings.Contains(err.Error(), "DER encoding") {
		t.Fatalf("padded key: %v, want %v", err, ErrMalformedCSR)
	}
}

// DecodeCSR and ParseCSR take requests of up to MaxCSRSize bytes, not one
// more, however well-formed.
func TestCSRSizeBound(t *testing.T) {
	// an Ed25519 request (fixed-size signature) padded by an extension to
	// exactly size bytes
	csrOfSize := func(size int) []byte {
		key := testKey(t, "ed25519").(ed25519.PrivateKey)
		ext := func(n int) csrOpts {
			return csrOpts{extra: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, Value: make([]byte, n)}}}
		}
		n := size - len(makeCSR(t, key, ext(0)))
		for range 4 { // length octets grow with the extension
			der := makeCSR(t, key, ext(n))
			if len(der) == size {
				return der
			}
			n += size - len(der)
		}
		t.Fatalf("no request of %d bytes", size)
		return nil
	}
	for _, c := range []struct {
		name string
		size int
		ok   bool
	}{
		{"at the bound", MaxCSRSize, true},
		{"one byte over", MaxCSRSize + 1, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			der := csrOfSize(c.size)
			if _, err := DecodeCSR(der); (err == nil) != c.ok {
				t.Errorf("DecodeCSR: %v, want accepted=%v", err, c.ok)
			}
			if _, err := ParseCSR(der, Policy{}); (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrMalformedCSR)) {
				t.Errorf("ParseCSR: %v, want accepted=%v", err, c.ok)
			}
		})
	}
}
