package caddyenroll

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"net/url"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap/zapcore"

	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// malleatedRSACSR is a request for cn signed by key whose
// SubjectPublicKeyInfo carries a trailing byte pair after the RSAPublicKey
// SEQUENCE inside its BIT STRING: crypto/x509 parses it as the same key.
func malleatedRSACSR(t *testing.T, key *rsa.PrivateKey, cn string) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
	if err != nil {
		t.Fatal(err)
	}
	var outer struct {
		TBS asn1.RawValue
		Alg pkix.AlgorithmIdentifier
		Sig asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &outer); err != nil {
		t.Fatal(err)
	}
	var tbs struct {
		Version int
		Subject asn1.RawValue
		SPKI    asn1.RawValue
		Attrs   asn1.RawValue
	}
	if _, err := asn1.Unmarshal(outer.TBS.FullBytes, &tbs); err != nil {
		t.Fatal(err)
	}
	var spki struct {
		Alg pkix.AlgorithmIdentifier
		Key asn1.BitString
	}
	if _, err := asn1.Unmarshal(tbs.SPKI.FullBytes, &spki); err != nil {
		t.Fatal(err)
	}
	spki.Key.Bytes = append(append([]byte(nil), spki.Key.Bytes...), 0x05, 0x00)
	spki.Key.BitLength = 8 * len(spki.Key.Bytes)
	b, err := asn1.Marshal(spki)
	if err != nil {
		t.Fatal(err)
	}
	tbs.SPKI = asn1.RawValue{FullBytes: b}
	tbsDER, err := asn1.Marshal(tbs)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(tbsDER)
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, h[:])
	if err != nil {
		t.Fatal(err)
	}
	outer.TBS = asn1.RawValue{FullBytes: tbsDER}
	outer.Sig = asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}
	out, err := asn1.Marshal(outer)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := x509.ParseCertificateRequest(out); err != nil || r.CheckSignature() != nil || !r.PublicKey.(*rsa.PublicKey).Equal(&key.PublicKey) {
		t.Fatalf("malleated request does not parse as the same key: %v", err)
	}
	return out
}

// A request whose RSA SubjectPublicKeyInfo has bytes after the key (the
// same key to crypto/x509, another SubjectPublicKeyInfo hash) is a bad
// request (status 2, a bad CSR encoding), not a server error logged at
// ERROR (any account holder could send it), nor a pending request under
// approval manual that no approval could ever issue.
func TestMalleatedSPKIIsBadRequest(t *testing.T) {
	keepPendingCount(t)
	for _, approval := range []string{ApprovalAuto, ApprovalManual} {
		t.Run(approval, func(t *testing.T) {
			st := &certmagic.FileStorage{Path: t.TempDir()}
			h, logs := boundsApp(t, st, &testClock{now: time.Now()}, approval, 100, 100)
			key, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				t.Fatal(err)
			}
			csr := malleatedRSACSR(t, key, "gw1.example")
			ans := postForm(t, h, "192.0.2.1", url.Values{"operation": {"request"}, "nonce": {"n-" + approval},
				"username": {"ops"}, "password": {"right"}, "device": {"1"}, "customer": {"0"},
				"request": {base64.StdEncoding.EncodeToString(csr)}})
			errors := logs.FilterLevelExact(zapcore.ErrorLevel).Len()
			if ans.Status != wire.StatusBadRequest || errors > 0 {
				t.Errorf("request with a malleated RSA SubjectPublicKeyInfo: status %d (%q), %d ERROR log lines; want %d and none",
					ans.Status, ans.Error, errors, wire.StatusBadRequest)
			}
		})
	}
}
