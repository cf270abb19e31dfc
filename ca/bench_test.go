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
	"fmt"
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

func baselineOp(b *testing.B, c *CA, csrDER []byte, i int) {
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

func benchBaseline(b *testing.B, c *CA, csrDER []byte) {
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		baselineOp(b, c, csrDER, i)
	}
}

// benchRatio interleaves Sign and the baseline operation by operation
// (alternating which goes first) and reports both times and Sign's
// throughput as a percentage of the baseline's. On a shared machine this is
// far steadier than comparing two separately run benchmarks.
func benchRatio(b *testing.B, sign, base func(i int)) {
	var ts, tb time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			t0 := time.Now()
			sign(i)
			t1 := time.Now()
			base(i)
			ts, tb = ts+t1.Sub(t0), tb+time.Since(t1)
		} else {
			t0 := time.Now()
			base(i)
			t1 := time.Now()
			sign(i)
			tb, ts = tb+t1.Sub(t0), ts+time.Since(t1)
		}
	}
	b.ReportMetric(float64(ts.Nanoseconds())/float64(b.N), "sign-ns/op")
	b.ReportMetric(float64(tb.Nanoseconds())/float64(b.N), "baseline-ns/op")
	b.ReportMetric(100*float64(tb)/float64(ts), "%-of-baseline-ops/s")
}

func BenchmarkRatioP256(b *testing.B) {
	c := benchCA(b, Config{Algorithm: P256})
	csr := makeCSR(b, testKey(b, "p256"), csrOpts{cn: "device1.itsp.com"})
	benchRatio(b, func(int) {
		if _, err := c.Sign(csr, "device1.itsp.com", Policy{}); err != nil {
			b.Fatal(err)
		}
	}, func(i int) { baselineOp(b, c, csr, i) })
}

func BenchmarkRatioRSA2048(b *testing.B) {
	c := benchCA(b, Config{Algorithm: RSA2048})
	csr := makeCSR(b, testKey(b, "rsa2048"), csrOpts{cn: "device1.itsp.com"})
	benchRatio(b, func(int) {
		if _, err := c.Sign(csr, "device1.itsp.com", Policy{}); err != nil {
			b.Fatal(err)
		}
	}, func(i int) { baselineOp(b, c, csr, i) })
}

func BenchmarkRatioLegacyMD5(b *testing.B) {
	c := benchCA(b, Config{Profile: ProfileLegacy})
	csr := readPEMFile(b, "testdata/openssl-rsa2048-md5.csr.pem")
	benchRatio(b, func(int) {
		if _, err := c.Sign(csr, "device1.itsp.com", c.DefaultPolicy()); err != nil {
			b.Fatal(err)
		}
	}, func(i int) { legacyBaselineOp(b, c, csr, i) })
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
		legacyBaselineOp(b, c, csrDER, i)
	}
}

func legacyBaselineOp(b *testing.B, c *CA, csrDER []byte, i int) {
	{
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

// crlBenchCA is a CA whose CRL lists n revoked certificates.
func crlBenchCA(b *testing.B, n int) *CA {
	b.Helper()
	c, _ := openCA(b, NewMemStore(), Config{}, "")
	issueN(b, c, "device1.itsp.com", n)
	if _, err := c.RevokeDevice(context.Background(), "device1.itsp.com", ReasonSuperseded, ""); err != nil {
		b.Fatal(err)
	}
	if _, err := c.CRL(context.Background()); err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkCRLFetch2000 is a GET /ca.crl of a CRL listing 2,000 revoked
// certificates, without and with the CRL kept in memory (what the enroll
// handler serves): without it each fetch reads and hashes the revoked list
// to find the stored CRL current.
func BenchmarkCRLFetch2000(b *testing.B) {
	c := crlBenchCA(b, 2000)
	for _, bc := range []struct {
		name string
		get  func(context.Context) ([]byte, error)
	}{{"stored", c.CRL}, {"cached", c.CachedCRL}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if der, err := bc.get(context.Background()); err != nil || len(der) == 0 {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSupersedeWith2000Revoked is a re-enrollment's revocation step
// (RevokeDevice of the previous certificate) with 2,000 certificates
// revoked and not yet expired: the revoked list is read and written whole
// under the CA's lock, so this is what bounds re-enrollments per second.
func BenchmarkSupersedeWith2000Revoked(b *testing.B) {
	ctx := context.Background()
	c, _ := openCA(b, NewMemStore(), Config{}, "")
	rf := &revokedFile{Entries: make(map[string]revokedEntry, 2000)}
	for i := range 2000 {
		rf.Entries[fmt.Sprintf("%032x", i+1)] = revokedEntry{At: testNow, Reason: ReasonSuperseded, NotAfter: testNow.AddDate(1, 0, 0)}
	}
	if _, err := c.storeRevoked(ctx, rf, nil); err != nil {
		b.Fatal(err)
	}
	current := make([]string, b.N) // each device's second certificate supersedes its first
	for i := range current {
		current[i] = issueN(b, c, fmt.Sprintf("gw%d.example", i), 2)[1].Serial
	}
	b.ResetTimer()
	for i := range b.N {
		if got, err := c.RevokeDevice(ctx, fmt.Sprintf("gw%d.example", i), ReasonSuperseded, current[i]); err != nil || len(got) != 1 {
			b.Fatal(got, err)
		}
	}
}
