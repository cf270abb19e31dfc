package ca

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	ctx509 "github.com/google/certificate-transparency-go/x509"
)

func TestSignPerAlgorithm(t *testing.T) {
	caAlgs := []struct {
		alg    Algorithm
		int    bool
		sigAlg x509.SignatureAlgorithm
	}{
		{P256, false, x509.ECDSAWithSHA256},
		{P256, true, x509.ECDSAWithSHA256},
		{P384, false, x509.ECDSAWithSHA384},
		{Ed25519, false, x509.PureEd25519},
		{Ed25519, true, x509.PureEd25519},
		{RSA2048, false, x509.SHA256WithRSA},
		{RSA3072, false, x509.SHA256WithRSA},
		{RSA4096, true, x509.SHA256WithRSA},
	}
	devKeys := []struct {
		kind string
		p    Policy
		ku   x509.KeyUsage
	}{
		{"p256", Policy{}, x509.KeyUsageDigitalSignature},
		{"p384", Policy{}, x509.KeyUsageDigitalSignature},
		{"p521", Policy{AllowP521: true}, x509.KeyUsageDigitalSignature},
		{"ed25519", Policy{}, x509.KeyUsageDigitalSignature},
		{"rsa2048", Policy{}, x509.KeyUsageDigitalSignature},
		{"rsa3072", Policy{}, x509.KeyUsageDigitalSignature},
		{"rsa1024", Policy{AllowRSA1024: true}, x509.KeyUsageDigitalSignature},
	}
	for _, ca := range caAlgs {
		name := string(ca.alg)
		if ca.int {
			name += "+intermediate"
		}
		t.Run(name, func(t *testing.T) {
			c := sharedCA(t, Config{Algorithm: ca.alg, Intermediate: ca.int})
			if got := len(c.Chain()); got != map[bool]int{false: 1, true: 2}[ca.int] {
				t.Fatalf("chain length %d", got)
			}
			checkCACert(t, c.Root(), true, map[bool]int{false: 0, true: 1}[ca.int])
			if ca.int {
				checkCACert(t, c.Issuer(), false, 0)
				if err := c.Issuer().CheckSignatureFrom(c.Root()); err != nil {
					t.Fatal(err)
				}
			}
			for _, dk := range devKeys {
				t.Run(dk.kind, func(t *testing.T) {
					key := testKey(t, dk.kind)
					csr := makeCSR(t, key, csrOpts{cn: "device1.itsp.com"})
					is, err := c.Sign(csr, "device1.itsp.com", dk.p)
					if err != nil {
						t.Fatal(err)
					}
					verifyClientAuth(t, c, is.Cert, testNow)
					checkLeaf(t, c, is, "device1.itsp.com", dk.ku, ca.sigAlg)
					if !publicKeysEqual(key.Public(), is.Cert.PublicKey) {
						t.Fatal("issued certificate does not carry the CSR's key")
					}
				})
			}
		})
	}
}

func checkCACert(t *testing.T, c *x509.Certificate, selfSigned bool, pathLen int) {
	t.Helper()
	if !c.IsCA || !c.BasicConstraintsValid {
		t.Fatal("CA certificate without CA:TRUE")
	}
	if c.MaxPathLen != pathLen || (pathLen == 0 && !c.MaxPathLenZero) {
		t.Fatalf("pathlen %d (zero=%v), want %d", c.MaxPathLen, c.MaxPathLenZero, pathLen)
	}
	if c.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Fatalf("CA key usage %v", c.KeyUsage)
	}
	if len(c.SubjectKeyId) != 20 {
		t.Fatal("CA without 160-bit SKI")
	}
	if selfSigned {
		if err := c.CheckSignatureFrom(c); err != nil && c.SignatureAlgorithm != x509.MD5WithRSA {
			t.Fatalf("root not self-signed: %v", err)
		}
	}
	if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() > 127 || c.SerialNumber.BitLen() < 64 {
		t.Fatalf("CA serial %x", c.SerialNumber)
	}
}

func checkLeaf(t *testing.T, c *CA, is *Issued, device string, ku x509.KeyUsage, sigAlg x509.SignatureAlgorithm) {
	t.Helper()
	cert := is.Cert
	if cert.Subject.CommonName != device {
		t.Errorf("CN %q", cert.Subject.CommonName)
	}
	if ip := net.ParseIP(device); ip != nil {
		if len(cert.IPAddresses) != 1 || !cert.IPAddresses[0].Equal(ip) || len(cert.DNSNames) != 0 {
			t.Errorf("SANs %v %v", cert.DNSNames, cert.IPAddresses)
		}
	} else if len(cert.DNSNames) != 1 || cert.DNSNames[0] != device || len(cert.IPAddresses) != 0 {
		t.Errorf("SANs %v %v", cert.DNSNames, cert.IPAddresses)
	}
	if cert.IsCA || !cert.BasicConstraintsValid {
		t.Error("leaf must carry CA:FALSE")
	}
	if cert.KeyUsage != ku {
		t.Errorf("key usage %v, want %v", cert.KeyUsage, ku)
	}
	if len(cert.ExtKeyUsage) == 0 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Errorf("EKU %v", cert.ExtKeyUsage)
	}
	if len(cert.SubjectKeyId) != 20 || !bytes.Equal(cert.AuthorityKeyId, c.Issuer().SubjectKeyId) {
		t.Errorf("SKI %x AKI %x (issuer SKI %x)", cert.SubjectKeyId, cert.AuthorityKeyId, c.Issuer().SubjectKeyId)
	}
	if cert.SignatureAlgorithm != sigAlg {
		t.Errorf("signature algorithm %v, want %v", cert.SignatureAlgorithm, sigAlg)
	}
	if cert.SerialNumber.Sign() <= 0 || cert.SerialNumber.BitLen() > 127 {
		t.Errorf("serial %x", cert.SerialNumber)
	}
	if is.Serial != cert.SerialNumber.Text(16) {
		t.Errorf("Issued.Serial %s", is.Serial)
	}
	if want := testNow.Add(-Backdate); !cert.NotBefore.Equal(want) && !cert.NotBefore.Equal(c.Issuer().NotBefore) {
		t.Errorf("notBefore %v, want %v", cert.NotBefore, want)
	}
	if cert.NotAfter.After(c.Issuer().NotAfter) {
		t.Error("leaf outlives issuer")
	}
	if !is.NotBefore.Equal(cert.NotBefore) || !is.NotAfter.Equal(cert.NotAfter) {
		t.Error("Issued validity differs from certificate")
	}
	if is.Fingerprint != FingerprintHex(is.DER) || is.Device != device {
		t.Error("Issued fields")
	}
	if !bytes.Equal(cert.RawIssuer, c.Issuer().RawSubject) {
		t.Error("issuer name bytes differ from the CA subject")
	}
}

func TestSignValidity(t *testing.T) {
	c := sharedCA(t, Config{Algorithm: P256})
	csr := makeCSR(t, testKey(t, "p256"), csrOpts{})
	is, err := c.Sign(csr, "device1.itsp.com", Policy{})
	if err != nil {
		t.Fatal(err)
	}
	if got := is.NotAfter.Sub(testNow); got != 365*24*time.Hour {
		t.Errorf("default validity %v", got)
	}
	is, err = c.Sign(csr, "device1.itsp.com", Policy{Validity: 30 * 24 * time.Hour, ServerAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := is.NotAfter.Sub(testNow); got != 30*24*time.Hour {
		t.Errorf("policy validity %v", got)
	}
	if len(is.Cert.ExtKeyUsage) != 2 || is.Cert.ExtKeyUsage[1] != x509.ExtKeyUsageServerAuth {
		t.Errorf("EKU with ServerAuth %v", is.Cert.ExtKeyUsage)
	}
	// RSA keys get keyEncipherment only with serverAuth (TLS key transport).
	rcsr := makeCSR(t, testKey(t, "rsa2048"), csrOpts{})
	for _, sa := range []bool{false, true} {
		is, err := c.Sign(rcsr, "device1.itsp.com", Policy{ServerAuth: sa})
		if err != nil {
			t.Fatal(err)
		}
		want := x509.KeyUsageDigitalSignature
		if sa {
			want |= x509.KeyUsageKeyEncipherment
		}
		if is.Cert.KeyUsage != want {
			t.Errorf("ServerAuth=%v: key usage %v", sa, is.Cert.KeyUsage)
		}
	}
	// Never beyond the issuer.
	is, err = c.Sign(csr, "device1.itsp.com", Policy{Validity: 30 * 365 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if !is.NotAfter.Equal(c.Issuer().NotAfter) {
		t.Errorf("notAfter %v, issuer %v", is.NotAfter, c.Issuer().NotAfter)
	}
	// Expired CA refuses.
	late := *c
	cfg := c.cfg
	cfg.Now = func() time.Time { return c.Issuer().NotAfter.Add(time.Hour) }
	late.cfg = cfg
	if _, err := late.Sign(csr, "device1.itsp.com", Policy{}); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired CA: %v", err)
	}
}

func TestSignIPDevice(t *testing.T) {
	c := sharedCA(t, Config{Algorithm: P256})
	key := testKey(t, "p256")
	for _, dev := range []string{"192.0.2.10", "2001:db8::5"} {
		csr := makeCSR(t, key, csrOpts{cn: dev, ips: []net.IP{net.ParseIP(dev)}})
		is, err := c.Sign(csr, dev, Policy{})
		if err != nil {
			t.Fatal(dev, err)
		}
		checkLeaf(t, c, is, dev, x509.KeyUsageDigitalSignature, x509.ECDSAWithSHA256)
		verifyClientAuth(t, c, is.Cert, testNow)
	}
	// A DNS SAN naming the IP device is a different name.
	csr := makeCSR(t, key, csrOpts{dns: []string{"device1.itsp.com"}})
	if _, err := c.Sign(csr, "192.0.2.10", Policy{}); !errors.Is(err, ErrNameMismatch) {
		t.Fatal(err)
	}
}

func TestSignRefusals(t *testing.T) {
	c := sharedCA(t, Config{Algorithm: P256})
	const dev = "device1.itsp.com"
	good := makeCSR(t, testKey(t, "p256"), csrOpts{cn: dev})
	rsa1024 := makeCSR(t, testKey(t, "rsa1024"), csrOpts{cn: dev})
	rsa512md5 := readPEMFile(t, "testdata/openssl-rsa512-md5.csr.pem")
	rsa512 := readPEMFile(t, "testdata/openssl-rsa512-sha256.csr.pem")

	cases := []struct {
		name    string
		csr     []byte
		device  string
		p       Policy
		kind    error
		message string
	}{
		{"bad signature", flipSignature(good), dev, Policy{}, ErrBadSignature, "CSR signature (ECDSA-SHA256) does not verify"},
		{"bad signature rsa", flipSignature(makeCSR(t, testKey(t, "rsa2048"), csrOpts{})), dev, Policy{}, ErrBadSignature, "does not verify"},
		{"bad signature ed25519", flipSignature(makeCSR(t, testKey(t, "ed25519"), csrOpts{})), dev, Policy{}, ErrBadSignature, "does not verify"},
		{"rsa1024 without option", rsa1024, dev, Policy{}, ErrKeyPolicy, "RSA-1024 key refused: below the 2048-bit minimum (allow RSA-1024 keys in the CA's policy, allow_rsa1024"},
		{"rsa2048 below raised minimum", makeCSR(t, testKey(t, "rsa2048"), csrOpts{}), dev, Policy{MinRSABits: 3072}, ErrKeyPolicy, "RSA-2048 key refused: below the 3072-bit minimum"},
		{"rsa512 always", rsa512, dev, Policy{AllowRSA1024: true, Legacy: true}, ErrKeyPolicy, "RSA-512 key refused: RSA keys shorter than 1024 bits are never accepted"},
		{"rsa512 md5 (toolkit enroll.sh) always", rsa512md5, dev, Policy{AllowRSA1024: true, Legacy: true}, ErrKeyPolicy, "RSA-512 key refused"},
		{"p521 without option", makeCSR(t, testKey(t, "p521"), csrOpts{}), dev, Policy{}, ErrKeyPolicy, "ECDSA P-521 key refused"},
		{"p224", makeCSR(t, testKey(t, "p224"), csrOpts{}), dev, Policy{}, ErrKeyPolicy, "curve P-224 refused"},
		{"ecdsa key, rsa algorithm", rewriteSigAlg(t, good, asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}, true), dev, Policy{}, ErrUnsupportedAlgorithm, "CSR signature algorithm SHA256-RSA does not match its ECDSA-P256 key"},
		{"md2", rewriteSigAlg(t, rsa1024, oidSigMD2RSA, true), dev, Policy{AllowRSA1024: true, Legacy: true}, ErrUnsupportedAlgorithm, "MD2-RSA, which is never accepted"},
		{"unknown algorithm", rewriteSigAlg(t, good, asn1.ObjectIdentifier{1, 2, 3, 4}, false), dev, Policy{}, ErrUnsupportedAlgorithm, "CSR signature algorithm 1.2.3.4 is not supported"},
		{"md5 rsa on ecdsa key", rewriteSigAlg(t, good, oidSigMD5RSA, true), dev, Policy{Legacy: true}, ErrUnsupportedAlgorithm, "CSR signed with MD5-RSA but its key is ECDSA-P256"},
		{"CN of another host", makeCSR(t, testKey(t, "p256"), csrOpts{cn: "evil.example.com"}), dev, Policy{}, ErrNameMismatch, "CSR names evil.example.com, device is device1.itsp.com"},
		{"SAN of another host", makeCSR(t, testKey(t, "p256"), csrOpts{cn: dev, dns: []string{dev, "other.itsp.com"}}), dev, Policy{}, ErrNameMismatch, "CSR names other.itsp.com, device is device1.itsp.com"},
		{"IP SAN on DNS device", makeCSR(t, testKey(t, "p256"), csrOpts{ips: []net.IP{net.ParseIP("192.0.2.1")}}), dev, Policy{}, ErrNameMismatch, "CSR names 192.0.2.1, device is device1.itsp.com"},
		{"email SAN", makeCSR(t, testKey(t, "p256"), csrOpts{emails: []string{"a@b.c"}}), dev, Policy{}, ErrNameMismatch, "CSR names email:a@b.c"},
		{"bad device name", good, "device_1.itsp.com", Policy{}, ErrBadDeviceName, "is not a DNS name or IP address"},
		{"wildcard device", good, "*.itsp.com", Policy{}, ErrBadDeviceName, "is not a DNS name"},
		{"empty device", good, "", Policy{}, ErrBadDeviceName, ""},
		{"garbage", []byte("not a csr"), dev, Policy{}, ErrMalformedCSR, ""},
		{"truncated", good[:len(good)-10], dev, Policy{}, ErrMalformedCSR, ""},
		{"certificate instead of request", c.Root().Raw, dev, Policy{}, ErrMalformedCSR, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Sign(tc.csr, tc.device, tc.p)
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, tc.kind) {
				t.Fatalf("error %v, want kind %v", err, tc.kind)
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("error %q does not say %q", err, tc.message)
			}
		})
	}
}

func TestSignAcceptsMatchingNames(t *testing.T) {
	c := sharedCA(t, Config{Algorithm: P256})
	key := testKey(t, "p256")
	for _, o := range []csrOpts{
		{},
		{cn: "DEVICE1.ITSP.COM"},
		{cn: "device1.itsp.com.", dns: []string{"Device1.itsp.com"}},
		{cn: "device1.itsp.com", org: "ACME ITSP"},
	} {
		if _, err := c.Sign(makeCSR(t, key, o), "device1.itsp.com", Policy{}); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
}

// The device cannot choose its SANs, EKUs, key usage or the CA bit: requested
// extensions are ignored.
func TestSignIgnoresRequestedExtensions(t *testing.T) {
	c := sharedCA(t, Config{Algorithm: P256})
	bc, _ := asn1.Marshal(struct {
		IsCA    bool `asn1:"optional"`
		MaxPath int  `asn1:"optional,default:-1"`
	}{true, 5})
	eku, _ := asn1.Marshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 3}}) // codeSigning
	ku, _ := asn1.Marshal(asn1.BitString{Bytes: []byte{0x06}, BitLength: 7})     // keyCertSign|cRLSign
	csr := makeCSR(t, testKey(t, "p256"), csrOpts{extra: []pkix.Extension{
		{Id: asn1.ObjectIdentifier{2, 5, 29, 19}, Critical: true, Value: bc},
		{Id: asn1.ObjectIdentifier{2, 5, 29, 37}, Value: eku},
		{Id: asn1.ObjectIdentifier{2, 5, 29, 15}, Critical: true, Value: ku},
		{Id: asn1.ObjectIdentifier{1, 2, 3, 4, 5}, Value: []byte{0x05, 0x00}},
	}})
	is, err := c.Sign(csr, "device1.itsp.com", Policy{})
	if err != nil {
		t.Fatal(err)
	}
	checkLeaf(t, c, is, "device1.itsp.com", x509.KeyUsageDigitalSignature, x509.ECDSAWithSHA256)
	for _, e := range is.Cert.Extensions {
		if e.Id.Equal(asn1.ObjectIdentifier{1, 2, 3, 4, 5}) {
			t.Fatal("requested extension copied")
		}
	}
}

func TestLegacyCSRPolicy(t *testing.T) {
	c := sharedCA(t, Config{Algorithm: P256})
	const dev = "device1.itsp.com"
	k1024 := testKey(t, "rsa1024").(*rsa.PrivateKey)
	k2048 := testKey(t, "rsa2048").(*rsa.PrivateKey)
	cases := []struct {
		name string
		csr  []byte
		alg  string
	}{
		{"ct-go md5 rsa1024", makeLegacyCSR(t, k1024, dev, ctx509.MD5WithRSA), "MD5-RSA"},
		{"ct-go sha1 rsa1024", makeLegacyCSR(t, k1024, dev, ctx509.SHA1WithRSA), "SHA1-RSA"},
		{"ct-go md5 rsa2048", makeLegacyCSR(t, k2048, dev, ctx509.MD5WithRSA), "MD5-RSA"},
		{"openssl -md5 rsa1024", readPEMFile(t, "testdata/openssl-rsa1024-md5.csr.pem"), "MD5-RSA"},
		{"openssl -sha1 rsa1024", readPEMFile(t, "testdata/openssl-rsa1024-sha1.csr.pem"), "SHA1-RSA"},
		{"openssl -md5 rsa2048", readPEMFile(t, "testdata/openssl-rsa2048-md5.csr.pem"), "MD5-RSA"},
		{"ecdsa sha1", ecdsaSHA1CSR(t), "ECDSA-SHA1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Off by default, with a reason.
			_, err := c.Sign(tc.csr, dev, Policy{AllowRSA1024: true})
			want := "CSR signed with " + tc.alg + "; enable the legacy policy to accept it"
			if !errors.Is(err, ErrLegacyAlgorithm) || !strings.Contains(err.Error(), want) {
				t.Fatalf("without policy: %v (want %q)", err, want)
			}
			// On: verified, and the certificate is signed with the CA's algorithm.
			p := Policy{Legacy: true, AllowRSA1024: true}
			csr, err := ParseCSR(tc.csr, p)
			if err != nil {
				t.Fatal(err)
			}
			if !csr.Legacy || csr.SignatureAlgorithm != tc.alg {
				t.Fatalf("CSR %+v", csr)
			}
			is, err := c.Sign(tc.csr, dev, p)
			if err != nil {
				t.Fatal(err)
			}
			if is.Cert.SignatureAlgorithm != x509.ECDSAWithSHA256 {
				t.Fatalf("issued with %v", is.Cert.SignatureAlgorithm)
			}
			verifyClientAuth(t, c, is.Cert, testNow)
			// A forged legacy signature is still refused.
			if _, err := c.Sign(flipSignature(tc.csr), dev, p); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("forged: %v", err)
			}
		})
	}
	// Legacy does not imply small keys.
	if _, err := c.Sign(makeLegacyCSR(t, k1024, dev, ctx509.MD5WithRSA), dev, Policy{Legacy: true}); !errors.Is(err, ErrKeyPolicy) {
		t.Fatalf("rsa1024 with Legacy only: %v", err)
	}
}

func ecdsaSHA1CSR(t *testing.T) []byte {
	t.Helper()
	k := testKey(t, "p256").(*ecdsa.PrivateKey)
	der, err := x509.CreateCertificateRequest(nil, &x509.CertificateRequest{SignatureAlgorithm: x509.ECDSAWithSHA1}, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// A request whose RSA AlgorithmIdentifier lacks the NULL parameters is
// refused as malformed, legacy policy or not (crypto/x509 and
// certificate-transparency-go both reject it; OpenSSL never produced it).
func TestCSRWithoutNullParams(t *testing.T) {
	k := testKey(t, "rsa1024").(*rsa.PrivateKey)
	der := makeLegacyCSR(t, k, "device1.itsp.com", ctx509.MD5WithRSA)
	spki, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	var info struct {
		Alg  pkix.AlgorithmIdentifier
		Bits asn1.BitString
	}
	if _, err := asn1.Unmarshal(spki, &info); err != nil {
		t.Fatal(err)
	}
	info.Alg.Parameters = asn1.RawValue{}
	noNull, err := asn1.Marshal(info)
	if err != nil || len(noNull) != len(spki)-2 {
		t.Fatal("could not strip NULL params", err)
	}
	tbs, _, _, err := splitSigned(der)
	if err != nil {
		t.Fatal(err)
	}
	der2 := signTBSMD5(t, replaceAndFixLengths(t, tbs, spki, noNull), k)
	for _, p := range []Policy{{AllowRSA1024: true}, {AllowRSA1024: true, Legacy: true}} {
		if _, err := ParseCSR(der2, p); !errors.Is(err, ErrMalformedCSR) {
			t.Fatalf("%+v: %v", p, err)
		}
	}
}

func TestNormalizeDevice(t *testing.T) {
	for in, want := range map[string]string{
		"device1.itsp.com":  "device1.itsp.com",
		" Device1.ITSP.com": "Device1.ITSP.com",
		"device1.itsp.com.": "device1.itsp.com",
		"[2001:db8::1]":     "2001:db8::1",
		"::ffff:192.0.2.1":  "192.0.2.1",
		"localhost":         "localhost",
		"1a.example.1b":     "1a.example.1b",
		// 253 characters, the longest DNS name
		strings.Repeat("a.", 126) + "a": strings.Repeat("a.", 126) + "a",
	} {
		got, _, err := NormalizeDevice(in)
		if err != nil || got != want {
			t.Errorf("NormalizeDevice(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", ".", "a..b", "-a.com", "a-.com", "a b", "a_b.com", "*.a.com", "134217728", "127.1", "10.0.0.256", "gw.example.42.", strings.Repeat("a", 64) + ".com", strings.Repeat("a.", 127) + "ab", strings.Repeat("a.", 126) + "ab"} {
		if _, _, err := NormalizeDevice(bad); !errors.Is(err, ErrBadDeviceName) {
			t.Errorf("NormalizeDevice(%q): %v", bad, err)
		}
	}
}

func TestIssueRecords(t *testing.T) {
	ctx := context.Background()
	c, _ := openCA(t, NewMemStore(), Config{}, "")
	csr := makeCSR(t, testKey(t, "ed25519"), csrOpts{})
	is, err := c.Issue(ctx, csr, "Device1.itsp.com", Policy{})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := c.Lookup(ctx, strings.ToUpper("00"+is.Serial))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Serial != is.Serial || rec.Device != "Device1.itsp.com" || rec.Fingerprint != is.Fingerprint ||
		rec.PublicKeySHA256 != is.PublicKeySHA256 || !bytes.Equal(rec.DER, is.DER) ||
		!rec.NotBefore.Equal(is.NotBefore) || !rec.NotAfter.Equal(is.NotAfter) || rec.Revoked {
		t.Fatalf("record %+v", rec)
	}
	recs, err := c.Records(ctx, "device1.ITSP.com")
	if err != nil || len(recs) != 1 {
		t.Fatalf("Records: %v %v", recs, err)
	}
	if _, err := c.Lookup(ctx, "abcdef"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	var _ = ed25519.PublicKey(nil)
}

// A device certificate is for TLS clients only unless the policy says
// serverAuth: a device must not be able to pose as a server to peers that
// trust the operational CA.
func TestSignExtKeyUsage(t *testing.T) {
	c := sharedCA(t, Config{Algorithm: P256})
	csr := makeCSR(t, testKey(t, "p256"), csrOpts{})
	for _, c2 := range []struct {
		serverAuth bool
		want       []x509.ExtKeyUsage
	}{
		{false, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		{true, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}},
	} {
		is, err := c.Sign(csr, "device1.itsp.com", Policy{ServerAuth: c2.serverAuth})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(is.Cert.ExtKeyUsage, c2.want) || len(is.Cert.UnknownExtKeyUsage) != 0 {
			t.Errorf("ServerAuth=%v: EKU %v %v, want %v", c2.serverAuth, is.Cert.ExtKeyUsage, is.Cert.UnknownExtKeyUsage, c2.want)
		}
	}
}
