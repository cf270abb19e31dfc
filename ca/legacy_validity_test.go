package ca

import (
	"context"
	"crypto"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ctx509 "github.com/google/certificate-transparency-go/x509"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// resignWithValidity replaces a certificate's validity with the given raw
// notBefore/notAfter encodings (tag, content) and signs it again with
// md5WithRSAEncryption.
func resignWithValidity(t *testing.T, der []byte, key *rsa.PrivateKey, nbTag cbasn1.Tag, nb string, naTag cbasn1.Tag, na string) []byte {
	t.Helper()
	tbs, _, _, err := splitSigned(der)
	if err != nil {
		t.Fatal(err)
	}
	in := cryptobyte.String(tbs)
	var body cryptobyte.String
	if !in.ReadASN1(&body, cbasn1.SEQUENCE) {
		t.Fatal("bad tbs")
	}
	var version, serial, sigAlg, issuer cryptobyte.String
	if !body.ReadASN1Element(&version, cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!body.ReadASN1Element(&serial, cbasn1.INTEGER) || !body.ReadASN1Element(&sigAlg, cbasn1.SEQUENCE) ||
		!body.ReadASN1Element(&issuer, cbasn1.SEQUENCE) || !body.SkipASN1(cbasn1.SEQUENCE) {
		t.Fatal("bad tbs fields")
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(version)
		b.AddBytes(serial)
		b.AddBytes(sigAlg)
		b.AddBytes(issuer)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(nbTag, func(b *cryptobyte.Builder) { b.AddBytes([]byte(nb)) })
			b.AddASN1(naTag, func(b *cryptobyte.Builder) { b.AddBytes([]byte(na)) })
		})
		b.AddBytes(body) // subject, SPKI, extensions
	})
	newTBS := b.BytesOrPanic()
	h := md5.Sum(newTBS)
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.MD5, h[:])
	if err != nil {
		t.Fatal(err)
	}
	var c cryptobyte.Builder
	c.AddASN1(cbasn1.SEQUENCE, func(c *cryptobyte.Builder) {
		c.AddBytes(newTBS)
		c.AddBytes(sigAlg)
		c.AddASN1BitString(sig)
	})
	return c.BytesOrPanic()
}

// The toolkit reads validity dates only as 13-character UTCTime
// (YYMMDDHHMMSSZ; ospx509.c: "Date is not 13 characters long"), for the CA
// certificate as for the device's. An operator's legacy CA certificate whose
// dates lie within 1950-2049 but are encoded otherwise (GeneralizedTime, as
// some tools write; UTCTime without seconds) must be refused when the CA
// opens, as a date past 2049 is, rather than failing every device.
func TestOperatorLegacyCAValidityEncoding(t *testing.T) {
	key, dir, keyFile := operatorRSAKey(t)
	now := time.Now().UTC()
	tmpl := &ctx509.Certificate{
		SerialNumber: big.NewInt(7), NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(5, 0, 0),
		BasicConstraintsValid: true, IsCA: true,
		KeyUsage:           ctx509.KeyUsageCertSign | ctx509.KeyUsageCRLSign,
		SignatureAlgorithm: ctx509.MD5WithRSA,
	}
	tmpl.Subject.CommonName = "Legacy CA"
	base, err := ctx509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	nbUTC := tmpl.NotBefore.Format("060102150405Z")
	naUTC := tmpl.NotAfter.Format("060102150405Z")
	for _, c := range []struct {
		name   string
		nbTag  cbasn1.Tag
		nb     string
		naTag  cbasn1.Tag
		na     string
		wantOK bool
	}{
		{"UTCTime", cbasn1.UTCTime, nbUTC, cbasn1.UTCTime, naUTC, true},
		{"GeneralizedTime notAfter", cbasn1.UTCTime, nbUTC, cbasn1.GeneralizedTime, tmpl.NotAfter.Format("20060102150405Z"), false},
		{"GeneralizedTime notBefore", cbasn1.GeneralizedTime, tmpl.NotBefore.Format("20060102150405Z"), cbasn1.UTCTime, naUTC, false},
		{"UTCTime without seconds", cbasn1.UTCTime, tmpl.NotBefore.Format("0601021504Z"), cbasn1.UTCTime, naUTC, false},
	} {
		der := resignWithValidity(t, base, key, c.nbTag, c.nb, c.naTag, c.na)
		certFile := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".pem")
		if err := os.WriteFile(certFile, certPEM(der), 0o644); err != nil {
			t.Fatal(err)
		}
		// What the toolkit itself makes of a device certificate this CA issues.
		if !testing.Short() && toolkitSource() != "" {
			harness, err := buildToolkitHarness(t)
			if err != nil {
				t.Fatal("OSP Toolkit harness:", err)
			}
			ctCA, err := ctx509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			csrDER := readPEMFile(t, "testdata/openssl-rsa2048-md5.csr.pem")
			csr, err := ctx509.ParseCertificateRequest(csrDER)
			if err != nil {
				t.Fatal(err)
			}
			leaf := &ctx509.Certificate{SerialNumber: big.NewInt(8), NotBefore: now.Add(-time.Minute), NotAfter: now.AddDate(1, 0, 0), SignatureAlgorithm: ctx509.MD5WithRSA}
			leaf.Subject.CommonName = "device1.itsp.com"
			leafDER, err := ctx509.CreateCertificate(rand.Reader, leaf, ctCA, csr.PublicKey, key)
			if err != nil {
				t.Fatal(err)
			}
			out, err := runToolkit(t, harness, der, leafDER, csrDER)
			if got := err == nil && out == "ok"; got != c.wantOK {
				t.Fatalf("%s: toolkit: %v %s, want ok=%v", c.name, err, out, c.wantOK)
			}
		}
		_, _, err := Open(context.Background(), NewMemStore(),
			Config{Profile: ProfileLegacy, CertFile: certFile, KeyFile: keyFile, Now: time.Now}, "")
		switch {
		case c.wantOK && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case !c.wantOK && (err == nil || !strings.Contains(err.Error(), "UTCTime")):
			t.Errorf("%s: Open: %v, want the CA certificate refused (the OSP Toolkit reads 13-character UTCTime dates only)", c.name, err)
		}
	}
}
