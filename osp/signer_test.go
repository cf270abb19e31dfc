package osp

import (
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"sync"
	"testing"
	"time"
)

// deviceSigner signs with a certificate like the CA's device certificates
// (ca/sign.go: digitalSignature, clientAuth), issued by the test CA.
func deviceSigner(t testing.TB, p *pki) *TokenSigner {
	t.Helper()
	key := mustKey(t)
	tmpl := tokenCertTemplate("device1.itsp.com")
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	return &TokenSigner{Cert: mustCert(t, tmpl, p.ca, p.caKey, key), Key: key}
}

var (
	otherOnce sync.Once
	otherVal  *pki
)

// otherPKI is another CA with its own token signer.
func otherPKI(t testing.TB) *pki {
	t.Helper()
	otherOnce.Do(func() {
		caKey := mustKey(t)
		ca := mustCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "Other CA"}, NotBefore: earliest().AddDate(-1, 0, 0),
			NotAfter: time.Now().AddDate(1, 0, 0), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, nil, caKey, caKey)
		key := mustKey(t)
		roots := x509.NewCertPool()
		roots.AddCert(ca)
		otherVal = &pki{ca: ca, caKey: caKey, roots: roots,
			signer: &TokenSigner{Cert: mustCert(t, tokenCertTemplate("other token signer"), ca, caKey, key), Key: key}}
	})
	return otherVal
}

func fingerprint(c *x509.Certificate) [32]byte { return sha256.Sum256(c.Raw) }

// The Verifier takes only token signers' certificates: the CA that issues
// the token signer issues the devices' certificates too, and a device must
// not sign tokens with its own key.
func TestVerifySignerUsage(t *testing.T) {
	p := testPKI(t)
	key := mustKey(t)
	signer := func(mod func(*x509.Certificate)) *TokenSigner {
		tmpl := tokenCertTemplate("signer")
		mod(tmpl)
		return &TokenSigner{Cert: mustCert(t, tmpl, p.ca, p.caKey, key), Key: key}
	}
	eku := func(u ...x509.ExtKeyUsage) func(*x509.Certificate) {
		return func(c *x509.Certificate) { c.ExtKeyUsage = u }
	}
	smime := signer(eku(x509.ExtKeyUsageEmailProtection))
	pinOurs := [][32]byte{fingerprint(p.signer.Cert)}
	device := deviceSigner(t, p)
	tests := []struct {
		name   string
		signer *TokenSigner
		pin    [][32]byte
		err    error // nil: accepted
		any    bool  // AnySignerUsage
	}{
		{"the token signer (no EKU)", p.signer, nil, nil, false},
		{"emailProtection", smime, nil, nil, false},
		{"anyExtendedKeyUsage", signer(eku(x509.ExtKeyUsageAny)), nil, nil, false},
		{"emailProtection and clientAuth", signer(eku(x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageEmailProtection)), nil, nil, false},
		{"a device's certificate (clientAuth)", device, nil, ErrTokenSignerUsage, false},
		{"clientAuth and serverAuth", signer(eku(x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth)), nil, ErrTokenSignerUsage, false},
		{"serverAuth", signer(eku(x509.ExtKeyUsageServerAuth)), nil, ErrTokenSignerUsage, false},
		{"codeSigning", signer(eku(x509.ExtKeyUsageCodeSigning)), nil, ErrTokenSignerUsage, false},
		{"keyEncipherment only", signer(func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageKeyEncipherment }), nil, ErrTokenSignerUsage, false},
		// KeyUsage is checked only when present; contentCommitment
		// (nonRepudiation) is a signing usage too
		{"no KeyUsage", signer(func(c *x509.Certificate) { c.KeyUsage = 0 }), nil, nil, false},
		{"contentCommitment only", signer(func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageContentCommitment }), nil, nil, false},
		// an ExtKeyUsage of OIDs crypto/x509 does not name is still one
		{"unknown EKU only", signer(func(c *x509.Certificate) {
			c.UnknownExtKeyUsage = []asn1.ObjectIdentifier{{1, 3, 6, 1, 4, 1, 99999, 1}}
		}), nil, ErrTokenSignerUsage, false},
		{"pinned", p.signer, pinOurs, nil, false},
		{"pinned among others", p.signer, [][32]byte{fingerprint(smime.Cert), pinOurs[0]}, nil, false},
		{"not pinned", smime, pinOurs, ErrTokenSignerPin, false},
		{"a device's, pinned anyway", device, [][32]byte{fingerprint(device.Cert)}, ErrTokenSignerUsage, false},
		{"another CA's", otherPKI(t).signer, nil, ErrTokenChain, false},
		// another OSP server's tokens, signed with a TLS certificate
		{"serverAuth, any usage allowed", signer(eku(x509.ExtKeyUsageServerAuth)), nil, nil, true},
		{"another CA's, any usage allowed", otherPKI(t).signer, nil, ErrTokenChain, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rsp, err := Authorize(authRequest(t), []Destination{{SignalAddress: "127.0.0.2:5060"}}, tc.signer, testNow, 0)
			if err != nil {
				t.Fatal(err)
			}
			d := rsp.Destinations[0]
			v := &Verifier{Roots: p.roots, Signers: tc.pin, Now: fixedClock(testNow), AnySignerUsage: tc.any}
			info, err := v.Verify(d.Token, callFor(d))
			if tc.err == nil {
				if err != nil || info.TransactionID != rsp.TransactionID {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			for _, other := range []error{ErrTokenSignature, ErrTokenChain, ErrTokenSignerUsage, ErrTokenSignerPin} {
				if other != tc.err && errors.Is(err, other) {
					t.Errorf("err %v is also %v", err, other)
				}
			}
		})
	}
}
