package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	ctx509 "github.com/google/certificate-transparency-go/x509"
	ctpkix "github.com/google/certificate-transparency-go/x509/pkix"
)

// testNow is the fixed clock of most tests.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return testNow }

// Device key cache: RSA generation is slow, and many tests need one key of a
// kind.
var (
	keyMu    sync.Mutex
	keyCache = map[string]crypto.Signer{}
)

func testKey(t testing.TB, kind string) crypto.Signer {
	t.Helper()
	keyMu.Lock()
	defer keyMu.Unlock()
	if k, ok := keyCache[kind]; ok {
		return k
	}
	var k crypto.Signer
	var err error
	switch kind {
	case "p256":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "p384":
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "p521":
		k, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "p224":
		k, err = ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	case "ed25519":
		_, k, err = ed25519.GenerateKey(rand.Reader)
	case "rsa1024":
		k, err = rsa.GenerateKey(rand.Reader, 1024)
	case "rsa2048":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case "rsa3072":
		k, err = rsa.GenerateKey(rand.Reader, 3072)
	case "rsa4096":
		k, err = rsa.GenerateKey(rand.Reader, 4096)
	default:
		t.Fatalf("unknown key kind %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	keyCache[kind] = k
	return k
}

type csrOpts struct {
	cn     string
	dns    []string
	ips    []net.IP
	emails []string
	sigAlg x509.SignatureAlgorithm
	extra  []pkix.Extension
	org    string
}

func makeCSR(t testing.TB, key crypto.Signer, o csrOpts) []byte {
	t.Helper()
	tmpl := &x509.CertificateRequest{
		Subject:            pkix.Name{CommonName: o.cn},
		DNSNames:           o.dns,
		IPAddresses:        o.ips,
		EmailAddresses:     o.emails,
		SignatureAlgorithm: o.sigAlg,
		ExtraExtensions:    o.extra,
	}
	if o.org != "" {
		tmpl.Subject.Organization = []string{o.org}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// makeLegacyCSR signs a request with MD5-RSA or SHA1-RSA through
// certificate-transparency-go (crypto/x509 refuses MD5).
func makeLegacyCSR(t testing.TB, key *rsa.PrivateKey, cn string, alg ctx509.SignatureAlgorithm) []byte {
	t.Helper()
	tmpl := &ctx509.CertificateRequest{
		Subject:            ctpkix.Name{CommonName: cn, Country: []string{"US"}, Province: []string{"Georgia"}, Organization: []string{"TransNexus, LLC"}},
		SignatureAlgorithm: alg,
	}
	der, err := ctx509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := splitSigned(der); err != nil {
		t.Fatal(err)
	}
	return der
}

// readPEMFile returns the first PEM block of a testdata file.
func readPEMFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", name)
	}
	return blk.Bytes
}

func openCA(t testing.TB, st Store, cfg Config, param string) (*CA, OpenResult) {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = fixedNow
	}
	c, res, err := Open(context.Background(), st, cfg, param)
	if err != nil {
		t.Fatalf("Open(%+v, %q): %v", cfg, param, err)
	}
	return c, res
}

// caCache shares CAs between tests that only sign (RSA-4096 generation is slow).
var (
	caMu    sync.Mutex
	caCache = map[string]*CA{}
)

func sharedCA(t testing.TB, cfg Config) *CA {
	t.Helper()
	k := string(cfg.Profile) + "/" + string(cfg.Algorithm)
	if cfg.Intermediate {
		k += "/int"
	}
	caMu.Lock()
	defer caMu.Unlock()
	if c, ok := caCache[k]; ok {
		return c
	}
	c, _ := openCA(t, NewMemStore(), cfg, "")
	caCache[k] = c
	return c
}

// verifyClientAuth verifies a leaf against the CA chain for clientAuth at the
// test clock.
func verifyClientAuth(t testing.TB, c *CA, leaf *x509.Certificate, at time.Time) {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(c.Root())
	inter := x509.NewCertPool()
	for _, ce := range c.Chain()[:len(c.Chain())-1] {
		inter.AddCert(ce)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   at,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if len(chains) == 0 || len(chains[0]) != len(c.Chain())+1 {
		t.Fatalf("unexpected chain %v", chains)
	}
}

// rewriteSigAlg replaces the signature AlgorithmIdentifier of a signed
// structure (the signature stays, so it no longer matches).
func rewriteSigAlg(t testing.TB, der []byte, oid asn1.ObjectIdentifier, nullParams bool) []byte {
	t.Helper()
	var raw struct {
		TBS    asn1.RawValue
		Alg    pkix.AlgorithmIdentifier
		SigVal asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &raw); err != nil {
		t.Fatal(err)
	}
	raw.Alg = pkix.AlgorithmIdentifier{Algorithm: oid}
	if nullParams {
		raw.Alg.Parameters = asn1.NullRawValue
	}
	out, err := asn1.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// flipSignature corrupts the last byte of the signature.
func flipSignature(der []byte) []byte {
	out := append([]byte(nil), der...)
	out[len(out)-1] ^= 0x01
	return out
}

// replaceAndFixLengths swaps the SubjectPublicKeyInfo of a
// CertificationRequestInfo and re-encodes it (old is only sanity-checked).
func replaceAndFixLengths(t testing.TB, tbs, old, newSPKI []byte) []byte {
	t.Helper()
	var info struct {
		Version int
		Subject asn1.RawValue
		SPKI    asn1.RawValue
		Attrs   asn1.RawValue
	}
	if _, err := asn1.Unmarshal(tbs, &info); err != nil {
		t.Fatal(err)
	}
	if string(info.SPKI.FullBytes) != string(old) {
		t.Fatal("unexpected SPKI")
	}
	info.SPKI = asn1.RawValue{FullBytes: newSPKI}
	out, err := asn1.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// signTBSMD5 wraps a CertificationRequestInfo into a request signed with
// MD5-RSA.
func signTBSMD5(t testing.TB, tbs []byte, k *rsa.PrivateKey) []byte {
	t.Helper()
	h := md5.Sum(tbs)
	sig, err := rsa.SignPKCS1v15(nil, k, crypto.MD5, h[:])
	if err != nil {
		t.Fatal(err)
	}
	out, err := asn1.Marshal(struct {
		TBS asn1.RawValue
		Alg pkix.AlgorithmIdentifier
		Sig asn1.BitString
	}{asn1.RawValue{FullBytes: tbs}, pkix.AlgorithmIdentifier{Algorithm: oidSigMD5RSA, Parameters: asn1.NullRawValue}, asn1.BitString{Bytes: sig, BitLength: len(sig) * 8}})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// crlOf gets a CRL with get (CA.CRL or CA.CachedCRL) and parses it.
func crlOf(t testing.TB, get func(context.Context) ([]byte, error)) *x509.RevocationList {
	t.Helper()
	der, err := get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	return crl
}
