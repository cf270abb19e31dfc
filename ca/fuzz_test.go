package ca

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

// fuzzSeeds are the inputs the fuzz targets start from; they are also
// committed under testdata/fuzz/<target>/ (regenerate with
// CA_WRITE_FUZZ_CORPUS=1 go test -run TestWriteFuzzCorpus ./ca/).
func fuzzSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, f := range []string{"openssl-rsa1024-md5", "openssl-rsa512-md5", "openssl-rsa1024-sha1"} {
		b, err := os.ReadFile(filepath.Join("testdata", f+".csr.pem"))
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
		blk, _ := pem.Decode(b)
		seeds = append(seeds, blk.Bytes)
	}
	der := seeds[1]
	std := base64.StdEncoding.EncodeToString(der)
	seeds = append(seeds,
		[]byte(std),
		[]byte(strings.ReplaceAll(std, "+", " ")),
		[]byte(base64.RawURLEncoding.EncodeToString(der)),
		[]byte(strings.NewReplacer("+", "%2B", "/", "%2F", "=", "%3D").Replace(std)),
		[]byte("junk\n-----BEGIN CERTIFICATE REQUEST-----\n"+std[:40]+"\n -----END CERTIFICATE REQUEST-----"),
		[]byte("-----BEGIN NEW CERTIFICATE REQUEST-----\n"),
		[]byte{0x30, 0x80, 0x00, 0x00},
		[]byte{0x30, 0x84, 0xff, 0xff, 0xff, 0xff},
		[]byte("%zz%2"),
		[]byte("===="),
		[]byte(""),
	)
	return seeds
}

func FuzzDecodeCSR(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		der, err := DecodeCSR(in)
		if err != nil {
			if !errors.Is(err, ErrMalformedCSR) {
				t.Fatalf("error of unexpected kind: %v", err)
			}
			return
		}
		if len(der) == 0 || len(der) > MaxCSRSize || !isDERSequence(der) {
			t.Fatalf("DecodeCSR returned %d bytes that are not one DER SEQUENCE", len(der))
		}
		// Decoding is idempotent on its own output.
		again, err := DecodeCSR(der)
		if err != nil || !bytes.Equal(again, der) {
			t.Fatalf("not idempotent: %v", err)
		}
	})
}

func FuzzParseCSR(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, in []byte, legacy bool) {
		p := Policy{Legacy: legacy, AllowRSA1024: legacy, AllowP521: true}
		csr, err := ParseCSR(in, p)
		if err != nil {
			for _, k := range []error{ErrMalformedCSR, ErrBadSignature, ErrKeyPolicy, ErrLegacyAlgorithm, ErrUnsupportedAlgorithm} {
				if errors.Is(err, k) {
					return
				}
			}
			t.Fatalf("error of unexpected kind: %v", err)
		}
		if csr.PublicKey == nil || len(csr.PublicKeySHA256) != 64 || csr.SignatureAlgorithm == "" {
			t.Fatalf("accepted request without key or algorithm: %+v", csr)
		}
		if csr.Legacy && !legacy {
			t.Fatal("legacy signature accepted without the policy")
		}
		_, _ = Describe(in)
	})
}

// TestWriteFuzzCorpus (re)writes the committed seed corpus.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("CA_WRITE_FUZZ_CORPUS") == "" {
		t.Skip("set CA_WRITE_FUZZ_CORPUS=1 to rewrite testdata/fuzz")
	}
	write := func(target string, vals ...string) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		body := "go test fuzz v1\n" + strings.Join(vals, "\n") + "\n"
		sum := sha256.Sum256([]byte(body))
		if err := os.WriteFile(filepath.Join(dir, "seed-"+hex.EncodeToString(sum[:8])), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range fuzzSeeds(t) {
		write("FuzzDecodeCSR", fmt.Sprintf("[]byte(%q)", s))
		write("FuzzParseCSR", fmt.Sprintf("[]byte(%q)", s), "bool(true)")
	}
}

// FuzzNormalizeDevice: a name is accepted only in a form a certificate can
// carry (an IP address, or a DNS name of letter-digit-hyphen labels whose
// last label is not all digits), its normal form is normal already, and it
// is the key the configuration file finds the device by.
func FuzzNormalizeDevice(f *testing.F) {
	for _, s := range []string{"device1.itsp.com", " Device1.ITSP.com.", "[2001:DB8::1]", "::ffff:192.0.2.1", "192.0.2.10.",
		"127.1", "134217728", "gw.example.42", "1a.example.1b", "fe80::1%eth0", "a..b", "-a.com", "a_b.com", "", "."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, device string) {
		name, ip, err := NormalizeDevice(device)
		if err != nil {
			if !errors.Is(err, ErrBadDeviceName) {
				t.Fatalf("%q: error %v is not ErrBadDeviceName", device, err)
			}
			return
		}
		again, ip2, err := NormalizeDevice(name)
		if err != nil || again != name || !ip.Equal(ip2) {
			t.Fatalf("%q: normal form %q is not normal: %q %v %v", device, name, again, ip2, err)
		}
		if key := configfile.DeviceKey(device); key != strings.ToLower(name) {
			t.Fatalf("%q: the file's key %q is not the CA's name %q", device, key, name)
		}
		if ip != nil {
			if name != ip.String() {
				t.Fatalf("%q: address %v named %q", device, ip, name)
			}
			return
		}
		labels := strings.Split(name, ".")
		if len(name) > 253 || strings.Trim(labels[len(labels)-1], "0123456789") == "" {
			t.Fatalf("%q: accepted as %q", device, name)
		}
		for _, l := range labels {
			if l == "" || len(l) > 63 || strings.Trim(l, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != "" || l[0] == '-' || l[len(l)-1] == '-' {
				t.Fatalf("%q: accepted as %q, label %q", device, name, l)
			}
		}
	})
}

// FuzzCheckPublishURL: a URL accepted for a certificate's CRL distribution
// points or caIssuers is printable ASCII, an absolute http(s) URL with a
// host and nothing after the path, and x509 writes it into a certificate
// that parses back with the same URL.
func FuzzCheckPublishURL(f *testing.F) {
	for _, s := range []string{"http://enroll.example.com/ca.crl", "https://[2001:db8::1]:8443/ca.crt", "HTTP://a.example",
		"http://a.example/%41", "ldap://a.example/x", "http://u@a.example/", "http://a.example/?", "http://a.example/#", "http://:80/",
		"http://a.example/ c", "http://é.example/", "//a.example/ca.crl", ""} {
		f.Add(s)
	}
	c := sharedCA(f, Config{})
	f.Fuzz(func(t *testing.T, u string) {
		if CheckPublishURL(u) != nil {
			return
		}
		p, err := url.Parse(u)
		if err != nil || p.Host == "" || p.User != nil || p.RawQuery != "" || p.Fragment != "" || strings.ContainsAny(u, " \t\r\n") ||
			(!strings.EqualFold(p.Scheme, "http") && !strings.EqualFold(p.Scheme, "https")) {
			t.Fatalf("%q accepted: %+v %v", u, p, err)
		}
		for i := 0; i < len(u); i++ {
			if u[i] < 0x21 || u[i] > 0x7e {
				t.Fatalf("%q accepted with byte %#x", u, u[i])
			}
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: testNow, NotAfter: testNow.Add(time.Hour),
			CRLDistributionPoints: []string{u}, IssuingCertificateURL: []string{u}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, c.issuer, c.signer.Public(), c.signer)
		if err != nil {
			t.Fatalf("%q: %v", u, err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil || len(cert.CRLDistributionPoints) != 1 || cert.CRLDistributionPoints[0] != u || cert.IssuingCertificateURL[0] != u {
			t.Fatalf("%q: parsed back %v %v", u, cert, err)
		}
	})
}
