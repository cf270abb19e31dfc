package osp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"
)

// testNow is the time of the captures.
var testNow = time.Date(2026, 11, 25, 3, 12, 44, 0, time.UTC)

// earliest is the earlier of testNow and the clock: certificates must be
// valid at both.
func earliest() time.Time {
	if now := time.Now(); now.Before(testNow) {
		return now
	}
	return testNow
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pki is a test operational CA and a token signing certificate it issued.
type pki struct {
	ca     *x509.Certificate
	caKey  crypto.Signer
	signer *TokenSigner
	roots  *x509.CertPool
	caPEM  []byte
}

var (
	pkiOnce sync.Once
	pkiVal  *pki
)

// testPKI returns a shared P-256 CA and token signer (valid around testNow
// and around the real clock).
func testPKI(t testing.TB) *pki {
	t.Helper()
	pkiOnce.Do(func() {
		caKey := mustKey(t)
		ca := mustCert(t, &x509.Certificate{
			Subject:               pkix.Name{CommonName: "Test Operational CA"},
			NotBefore:             earliest().AddDate(-1, 0, 0),
			NotAfter:              time.Now().AddDate(5, 0, 0),
			IsCA:                  true,
			BasicConstraintsValid: true,
			MaxPathLen:            0,
			MaxPathLenZero:        true,
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		}, nil, caKey, caKey)
		key := mustKey(t)
		cert := mustCert(t, tokenCertTemplate("token signer"), ca, caKey, key)
		roots := x509.NewCertPool()
		roots.AddCert(ca)
		pkiVal = &pki{
			ca: ca, caKey: caKey, roots: roots,
			signer: &TokenSigner{Cert: cert, Key: key},
			caPEM:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}),
		}
	})
	return pkiVal
}

func tokenCertTemplate(cn string) *x509.Certificate {
	return &x509.Certificate{
		Subject:   pkix.Name{CommonName: cn},
		NotBefore: earliest().AddDate(0, -1, 0),
		NotAfter:  time.Now().AddDate(1, 0, 0),
		KeyUsage:  x509.KeyUsageDigitalSignature,
	}
}

func mustKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustRSAKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var serial int64 = 1000

// mustCert signs tmpl with parent/parentKey (self-signed when parent is nil).
func mustCert(t testing.TB, tmpl, parent *x509.Certificate, parentKey crypto.Signer, key crypto.Signer) *x509.Certificate {
	t.Helper()
	serial++
	tmpl.SerialNumber = big.NewInt(serial)
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// normalize replaces the values that differ between two runs (ids, random
// attributes, times, transaction ids, token contents) with placeholders.
var volatile = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`messageId="[^"]*"`), `messageId="ID"`},
	{regexp.MustCompile(`componentId="[^"]*"`), `componentId="ID"`},
	{regexp.MustCompile(`random="[^"]*"`), `random="R"`},
	{regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`), `TIME`},
	{regexp.MustCompile(`<TransactionId>\d+</TransactionId>`), `<TransactionId>TX</TransactionId>`},
	{regexp.MustCompile(`<Token encoding="base64">[^<]*</Token>`), `<Token encoding="base64">TOKEN</Token>`},
}

func normalize(b []byte) string {
	s := string(b)
	for _, v := range volatile {
		s = v.re.ReplaceAllString(s, v.repl)
	}
	return s
}

// authRequest is the captured AuthorizationRequest, parsed.
func authRequest(t testing.TB) *AuthorizationRequest {
	t.Helper()
	r, err := ParseAuthorizationRequest(readTestdata(t, "authorization-request.xml"))
	if err != nil {
		t.Fatal(err)
	}
	return r
}
