package osp

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"
)

// caSigner is the CASigned token signer of p's CA.
func caSigner(p *pki) *TokenSigner {
	return &TokenSigner{Cert: p.ca, Key: p.caKey, CASigned: true}
}

// realisticCA is a CA certificate named as ca.New names a legacy one (its
// default common name, a 12-character serialNumber tag, no organization),
// with a 128-bit random serial as ca's.
func realisticCA(t *testing.T, key crypto.Signer) *x509.Certificate {
	t.Helper()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		t.Fatal(err)
	}
	serial.SetBit(serial, 127, 1) // the longest encoding: 17 bytes
	tmpl := &x509.Certificate{SerialNumber: serial,
		Subject:   pkix.Name{CommonName: "Clearinghouse Operational CA (legacy)", SerialNumber: "0123456789AB"},
		NotBefore: earliest().AddDate(-1, 0, 0), NotAfter: time.Now().AddDate(10, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// caSignedSize is the largest size of a CA-signed token for a call: the
// token made now, plus what the digits of its random attribute (up to 10)
// and transaction id (up to 19) and an ECDSA signature (up to 72 bytes)
// can add. It checks the token embeds no certificate and no signed
// attributes and verifies with the CA as CASigners.
func caSignedSize(t *testing.T, signer *TokenSigner, callID, number, dest, network string) int {
	t.Helper()
	b, err := (&AuthorizationRequest{MessageID: "m", ComponentID: "c", Timestamp: testNow,
		CallIDs:         [][]byte{[]byte(callID)},
		SourceInfo:      []Info{{TypeE164, number}},
		DestinationInfo: []Info{{TypeE164, number}}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	req, err := ParseAuthorizationRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	rsp, err := Authorize(req, []Destination{{SignalAddress: dest, Device: network}}, signer, testNow, 0)
	if err != nil {
		t.Fatal(err)
	}
	d := rsp.Destinations[0]
	if d.NetworkID != network {
		t.Fatalf("network id %q, want %q", d.NetworkID, network)
	}
	tok := d.Token
	p7, err := pkcs7.Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	if len(p7.Certificates) != 0 || len(p7.Signers) != 1 || len(p7.Signers[0].AuthenticatedAttributes) != 0 {
		t.Fatalf("%d certificates, %d signers, signed attributes %v: want none, one, none",
			len(p7.Certificates), len(p7.Signers), p7.Signers[0].AuthenticatedAttributes)
	}
	if _, err := (&Verifier{CASigners: []*x509.Certificate{signer.Cert}, Now: fixedClock(testNow)}).Verify(tok, callFor(d)); err != nil {
		t.Fatal(err)
	}
	digits := func(after string) int {
		i := bytes.Index(tok, []byte(after)) + len(after)
		return bytes.IndexFunc(tok[i:], func(r rune) bool { return r < '0' || r > '9' })
	}
	worst := len(tok) + 10 - digits(`<TokenInfo random="`) + 19 - digits(`<TransactionId>`)
	if _, isEC := signer.Key.Public().(*ecdsa.PublicKey); isEC {
		worst += 72 - len(p7.Signers[0].EncryptedDigest)
	}
	return worst
}

// The OpenSIPS and Kamailio OSP modules base64-encode a token into 2048
// bytes (OSPPBase64Encode wants twice the input): only tokens of 1024
// bytes or less reach the terminating gateway. A CA-signed token (no
// certificate, no signed attributes) of a P-256 CA named as ca.New names
// its CAs stays within that for a call with 15-digit numbers, an
// [IPv6]:port destination, a 64-character network id and a Call-ID of up
// to 48 bytes, and for a typical call (UUID Call-ID, IPv4, short network
// id). Sizes for the RSA-2048 (legacy) CA and the longest Call-ID that
// fits are logged: the README quotes them.
func TestCASignedTokenSize(t *testing.T) {
	const ipv6 = "[2001:db8:1234:5678:9abc:def0:1234:5678]:65535"
	n15, net64 := strings.Repeat("1", 15), strings.Repeat("n", 64)
	calls := []struct {
		name                          string
		callID, number, dest, network string
		fitsP256                      bool
	}{
		{"typical", "f81d4fae-7dec-11d0-a765-00a0c91e6bf6", "14048724799", "[192.0.2.10]:5060", "gw-east-1", true},
		{"long, 48-byte Call-ID", strings.Repeat("c", 48), n15, ipv6, net64, true},
		{"long, 128-byte Call-ID", strings.Repeat("c", 128), n15, ipv6, net64, false},
	}
	for _, tc := range []struct {
		name string
		key  crypto.Signer
	}{{"P-256", mustKey(t)}, {"RSA-2048", mustRSAKey(t)}} {
		signer := &TokenSigner{Cert: realisticCA(t, tc.key), Key: tc.key, CASigned: true}
		for _, c := range calls {
			size := caSignedSize(t, signer, c.callID, c.number, c.dest, c.network)
			t.Logf("%s CA, %s call: up to %d bytes (%d in base64)", tc.name, c.name, size, base64.StdEncoding.EncodedLen(size))
			if tc.name == "P-256" && (size <= 1024) != c.fitsP256 {
				t.Errorf("%s CA, %s call: up to %d bytes; fits in 1024: %v, want %v", tc.name, c.name, size, size <= 1024, c.fitsP256)
			}
		}
		// the longest Call-ID that fits with the long call's other values
		fits := 0
		for n := 1; n <= 128; n++ {
			if caSignedSize(t, signer, strings.Repeat("c", n), n15, ipv6, net64) > 1024 {
				break
			}
			fits = n
		}
		t.Logf("%s CA: a Call-ID of up to %d bytes fits with 15-digit numbers, an IPv6 destination and a 64-character network id", tc.name, fits)
	}
}

// The Verifier takes a CA-signed token only from one of CASigners, valid
// now; every other check (signature, call, window) is as for the embedded
// form, and the embedded form is checked as before when CASigners is set.
func TestVerifyCASigned(t *testing.T) {
	p, o := testPKI(t), otherPKI(t)
	authorize := func(s *TokenSigner) ResponseDestination {
		rsp, err := Authorize(authRequest(t), []Destination{{SignalAddress: "127.0.0.2:5060"}}, s, testNow, 0)
		if err != nil {
			t.Fatal(err)
		}
		return rsp.Destinations[0]
	}
	d := authorize(caSigner(p))
	good, token := callFor(d), d.Token
	flipped := bytes.Clone(token)
	at := bytes.Index(flipped, []byte("<TransactionId>")) + len("<TransactionId>")
	flipped[at] ^= 0x01
	// signed by another key under our CA's name (issuer and serial)
	forged := authorize(&TokenSigner{Cert: p.ca, Key: o.caKey, CASigned: true}).Token
	otherCA := authorize(caSigner(o)).Token
	embedded := authorize(p.signer).Token
	expiredCA := mustCert(t, &x509.Certificate{Subject: p.ca.Subject, NotBefore: testNow.AddDate(-2, 0, 0), NotAfter: testNow.Add(-time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, nil, p.caKey, p.caKey)
	expiredCAToken := authorize(&TokenSigner{Cert: expiredCA, Key: p.caKey, CASigned: true}).Token
	ours := []*x509.Certificate{p.ca}

	for _, tc := range []struct {
		name  string
		v     Verifier
		token []byte
		err   error
	}{
		{"valid", Verifier{CASigners: ours}, token, nil},
		{"valid among several CA signers", Verifier{CASigners: []*x509.Certificate{o.ca, p.ca}}, token, nil},
		{"pins do not apply", Verifier{CASigners: ours, Signers: [][32]byte{fingerprint(p.signer.Cert)}}, token, nil},
		{"embedded form still checked as before", Verifier{Roots: p.roots, CASigners: ours}, embedded, nil},
		{"embedded form without roots", Verifier{CASigners: ours}, embedded, ErrTokenChain},
		{"tampered", Verifier{CASigners: ours}, flipped, ErrTokenSignature},
		{"another key under our CA's name", Verifier{CASigners: ours}, forged, ErrTokenSignature},
		{"another CA", Verifier{Roots: p.roots, CASigners: ours}, otherCA, ErrTokenChain},
		{"no CA signers configured", Verifier{Roots: p.roots}, token, ErrTokenChain},
		{"CA signer expired", Verifier{CASigners: []*x509.Certificate{expiredCA}}, expiredCAToken, ErrTokenChain},
		{"token expired", Verifier{CASigners: ours, Now: fixedClock(d.ValidUntil.Add(time.Second))}, token, ErrTokenExpired},
		{"not yet valid", Verifier{CASigners: ours, Now: fixedClock(d.ValidAfter.Add(-time.Second))}, token, ErrTokenNotYetValid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.v
			if v.Now == nil {
				v.Now = fixedClock(testNow)
			}
			_, err := v.Verify(tc.token, good)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			for _, other := range []error{ErrTokenMalformed, ErrTokenSignature, ErrTokenChain, ErrTokenSignerUsage, ErrTokenSignerPin,
				ErrTokenMismatch, ErrTokenNotYetValid, ErrTokenExpired} {
				if tc.err != nil && other != tc.err && errors.Is(err, other) {
					t.Errorf("err %v is also %v", err, other)
				}
			}
		})
	}

	// reauthorization takes the CA-signed form too
	if _, _, err := (&Verifier{CASigners: ours, Now: fixedClock(testNow)}).open(token, testNow); err != nil {
		t.Errorf("open: %v", err)
	}
	// a CASigned signer with a chain is refused, not half-honoured
	if _, err := (&TokenSigner{Cert: p.ca, Key: p.caKey, CASigned: true, Chain: []*x509.Certificate{p.ca}}).Sign([]byte("<?xml")); err == nil {
		t.Error("CASigned with Chain signed")
	}
	// Check takes the CA's own certificate (certSign, no digitalSignature)
	if err := caSigner(p).Check(p.roots, testNow); err != nil {
		t.Errorf("Check: %v", err)
	}
}

// OpenSSL's PKCS7_verify with PKCS7_NOCHAIN, the toolkit's check, accepts
// a CA-signed token when given the CA certificate as trust anchor and as
// candidate signer (the toolkit passes its authority certificates as
// both): `openssl smime -verify -nochain -CAfile ca -certfile ca`. Not
// without -certfile (the token names its signer only), and not a tampered
// token.
func TestOpenSSLVerifiesCASignedTokens(t *testing.T) {
	p := testPKI(t)
	rsaKey := mustRSAKey(t)
	rsaCA := realisticCA(t, rsaKey)
	for name, s := range map[string]*TokenSigner{"P-256": caSigner(p), "RSA-2048": {Cert: rsaCA, Key: rsaKey, CASigned: true}} {
		t.Run(name, func(t *testing.T) {
			rsp, err := Authorize(authRequest(t), []Destination{{SignalAddress: "127.0.0.2:5060"}}, s, time.Now(), 0)
			if err != nil {
				t.Fatal(err)
			}
			tok := rsp.Destinations[0].Token
			caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Cert.Raw})
			caFile := filepath.Join(t.TempDir(), "ca.pem")
			if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
				t.Fatal(err)
			}
			ok, out := opensslVerify(t, "smime", tok, caPEM, "-certfile", caFile)
			if !ok || !bytes.HasPrefix(out, []byte("<?xml")) {
				t.Fatalf("openssl smime -nochain -certfile ca: %s", out)
			}
			if ok, out := opensslVerify(t, "smime", tok, caPEM); ok {
				t.Errorf("verified without the CA as candidate signer: %s", out)
			}
			bad := bytes.Clone(tok)
			i := bytes.Index(bad, []byte("<DestinationInfo"))
			bad[i+1] ^= 0x20
			if ok, _ := opensslVerify(t, "smime", bad, caPEM, "-certfile", caFile); ok {
				t.Error("tampered token verified")
			}
		})
	}
}
