package enrollclient

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

func FuzzParseFingerprint(f *testing.F) {
	f.Add(strings.Repeat("ab", 32))
	f.Add("SHA256:" + strings.Repeat("AB:", 31) + "AB")
	f.Add("e6:2c")
	f.Fuzz(func(t *testing.T, s string) {
		fp, err := ParseFingerprint(s)
		if err != nil {
			return
		}
		if len(fp) != 95 || strings.ToUpper(fp) != fp {
			t.Fatalf("%q -> non-canonical %q", s, fp)
		}
		if again, err := ParseFingerprint(fp); err != nil || again != fp {
			t.Fatalf("canonical form does not round-trip: %q %v", again, err)
		}
	})
}

func FuzzParsePending(f *testing.F) {
	f.Add([]byte(`{"version":1,"device_name":"gw1","key":"","csr":"","ca_cert":""}`))
	f.Add([]byte(`{}`))
	f.Add(validPending(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parsePending(data)
		if err != nil {
			return
		}
		if p.key == nil || p.ca == nil || len(p.csrDER) == 0 || p.DeviceName == "" {
			t.Fatal("accepted an incomplete pending state")
		}
		// what is accepted is saved and read back unchanged
		saved, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		q, err := parsePending(saved)
		if err != nil || q.DeviceName != p.DeviceName || !bytes.Equal(q.csrDER, p.csrDER) || !q.ca.Equal(p.ca) {
			t.Fatalf("a pending state does not survive saving: %v", err)
		}
	})
}

// validPending is a pending state parsePending accepts.
func validPending(t testing.TB) []byte {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "gw1.example"}}, key)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CA"}, IsCA: true,
		BasicConstraintsValid: true, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	ca, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	pemOf := func(typ string, der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	}
	b, _ := json.Marshal(map[string]any{"version": pendingVersion, "device_name": "gw1.example",
		"key": pemOf("PRIVATE KEY", keyDER), "csr": pemOf("CERTIFICATE REQUEST", csr), "ca_cert": pemOf("CERTIFICATE", ca)})
	if _, err := parsePending(b); err != nil {
		t.Fatalf("the valid seed does not parse: %v", err)
	}
	return b
}
