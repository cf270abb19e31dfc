package ca

import (
	"context"
	"crypto"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	ctx509 "github.com/google/certificate-transparency-go/x509"
	ctpkix "github.com/google/certificate-transparency-go/x509/pkix"
)

// Sign is measured against a baseline doing only what any CA must: parse the
// request, check its signature, create the certificate (same keys, same
// extensions). Run: go test -run x -bench . -benchtime 2s -count 3 ./ca/

func benchCA(b *testing.B, cfg Config) *CA {
	b.Helper()
	cfg.Now = time.Now
	c, _, err := Open(context.Background(), NewMemStore(), cfg, "")
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func benchSign(b *testing.B, c *CA, csr []byte, p Policy) {
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Sign(csr, "device1.itsp.com", p); err != nil {
			b.Fatal(err)
		}
	}
}

// baselineTemplate is the certificate Sign produces, built the plain way.
func baselineTemplate(i int, pub crypto.PublicKey) *x509.Certificate {
	now := time.Now()
	return &x509.Certificate{
		SerialNumber:          big.NewInt(int64(i) + 1),
		Subject:               pkix.Name{CommonName: "device1.itsp.com"},
		DNSNames:              []string{"device1.itsp.com"},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		SubjectKeyId:          make([]byte, 20),
	}
}

func benchBaseline(b *testing.B, c *CA, csrDER []byte) {
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req, err := x509.ParseCertificateRequest(csrDER)
		if err != nil {
			b.Fatal(err)
		}
		if err := req.CheckSignature(); err != nil {
			b.Fatal(err)
		}
		if _, err := x509.CreateCertificate(rand.Reader, baselineTemplate(i, req.PublicKey), c.Issuer(), req.PublicKey, c.signer); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignP256(b *testing.B) {
	c := benchCA(b, Config{Algorithm: P256})
	benchSign(b, c, makeCSR(b, testKey(b, "p256"), csrOpts{cn: "device1.itsp.com"}), Policy{})
}

func BenchmarkBaselineP256(b *testing.B) {
	c := benchCA(b, Config{Algorithm: P256})
	benchBaseline(b, c, makeCSR(b, testKey(b, "p256"), csrOpts{cn: "device1.itsp.com"}))
}

func BenchmarkSignRSA2048(b *testing.B) {
	c := benchCA(b, Config{Algorithm: RSA2048})
	benchSign(b, c, makeCSR(b, testKey(b, "rsa2048"), csrOpts{cn: "device1.itsp.com"}), Policy{})
}

func BenchmarkBaselineRSA2048(b *testing.B) {
	c := benchCA(b, Config{Algorithm: RSA2048})
	benchBaseline(b, c, makeCSR(b, testKey(b, "rsa2048"), csrOpts{cn: "device1.itsp.com"}))
}

// Legacy: an MD5-RSA request (the toolkit's openssl -md5, RSA-2048) signed by
// the legacy CA with MD5-RSA through certificate-transparency-go.
func BenchmarkSignLegacyMD5(b *testing.B) {
	c := benchCA(b, Config{Profile: ProfileLegacy})
	benchSign(b, c, readPEMFile(b, "testdata/openssl-rsa2048-md5.csr.pem"), c.DefaultPolicy())
}

// BenchmarkBaselineLegacyMD5: parse, MD5 signature check, ct-go
// CreateCertificate with MD5WithRSA, with the same keys.
func BenchmarkBaselineLegacyMD5(b *testing.B) {
	c := benchCA(b, Config{Profile: ProfileLegacy})
	csrDER := readPEMFile(b, "testdata/openssl-rsa2048-md5.csr.pem")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req, err := x509.ParseCertificateRequest(csrDER)
		if err != nil {
			b.Fatal(err)
		}
		h := md5.Sum(req.RawTBSCertificateRequest)
		if err := rsa.VerifyPKCS1v15(req.PublicKey.(*rsa.PublicKey), crypto.MD5, h[:], req.Signature); err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		tmpl := &ctx509.Certificate{
			SerialNumber:          big.NewInt(int64(i) + 1),
			Subject:               ctpkix.Name{CommonName: "device1.itsp.com"},
			DNSNames:              []string{"device1.itsp.com"},
			NotBefore:             now.Add(-5 * time.Minute),
			NotAfter:              now.Add(90 * 24 * time.Hour),
			KeyUsage:              ctx509.KeyUsageDigitalSignature,
			ExtKeyUsage:           []ctx509.ExtKeyUsage{ctx509.ExtKeyUsageClientAuth},
			BasicConstraintsValid: true,
			SubjectKeyId:          make([]byte, 20),
			SignatureAlgorithm:    ctx509.MD5WithRSA,
		}
		if _, err := ctx509.CreateCertificate(rand.Reader, tmpl, c.ctIssue, req.PublicKey, c.signer); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBareRSA2048Sign is one RSA-2048 PKCS#1 v1.5 signature, the floor
// under every RSA benchmark above.
func BenchmarkBareRSA2048Sign(b *testing.B) {
	k := testKey(b, "rsa2048").(*rsa.PrivateKey)
	h := sha256.Sum256([]byte("tbs"))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := rsa.SignPKCS1v15(nil, k, crypto.SHA256, h[:]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecordFileStore is the separate persistence step (two atomic,
// fsynced file writes).
func BenchmarkRecordFileStore(b *testing.B) {
	c, _, err := Open(context.Background(), NewFileStore(b.TempDir()), Config{}, "")
	if err != nil {
		b.Fatal(err)
	}
	is, err := c.Sign(makeCSR(b, testKey(b, "p256"), csrOpts{}), "device1.itsp.com", Policy{})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cp := *is
		cp.Serial = big.NewInt(int64(i) + 1).Text(16)
		if err := c.Record(context.Background(), &cp); err != nil {
			b.Fatal(err)
		}
	}
}
