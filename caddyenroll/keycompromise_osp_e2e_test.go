package caddyenroll_test

import (
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"

	"github.com/clearinghouse-dev/caddy-clearinghouse/osp"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// A key revoked for key compromise is leaked whoever holds a certificate of
// it: two devices enrolled with one key (a cloned gateway image), the
// revocation of one's certificate for key compromise also revokes the
// other's, so that the thief of the key cannot act as the other device.
func TestKeyCompromiseRevokesEveryCertificateOfTheKey(t *testing.T) {
	s := startOSPServer(t)
	key, csr1 := p256CSR(t, "device1.itsp.com")
	enroll := func(name string, csr []byte) *x509.Certificate {
		t.Helper()
		ans := s.do(enrollReq(wire.OpRequest, t, csr))
		if ans.Status != wire.StatusOK {
			t.Fatalf("enrolling %s: status %d %s", name, ans.Status, ans.Error)
		}
		cert, err := x509.ParseCertificate(ans.Certificate)
		if err != nil {
			t.Fatal(err)
		}
		return cert
	}
	enroll("device1.itsp.com", csr1)
	cert2 := enroll("device2.itsp.com", csrFor(t, key, "device2.itsp.com"))
	dev2 := s.clientWith(tls.Certificate{Certificate: [][]byte{cert2.Raw}, PrivateKey: key, Leaf: cert2})
	if rsp := s.authorize(dev2, "14045551234"); rsp.Status != osp.StatusOK {
		t.Fatalf("device2 before the revocation: OSP status %d", rsp.Status.Code)
	}

	code, body := s.Admin("POST", "/enroll/revoke", `{"device": "device1.itsp.com", "reason": 1}`)
	if code != 200 {
		t.Fatalf("revoke: HTTP %d %s", code, body)
	}
	if !strings.Contains(body, cert2.SerialNumber.Text(16)) {
		t.Errorf("the revocation for key compromise does not list device2's certificate of the same key: %s", body)
	}
	if rsp := s.authorize(dev2, "14045551234"); rsp.Status != osp.StatusUnauthorized {
		t.Errorf("device2's certificate of the compromised key: OSP status %d, want 401", rsp.Status.Code)
	}
}
