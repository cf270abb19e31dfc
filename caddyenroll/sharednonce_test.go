package caddyenroll

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"net/url"
	"testing"

	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// A nonce binds within its device alone: devices enrolling in the same
// second with the OSP Toolkit send the same one (rand_r seeded with the
// time), and each is answered; the same device reusing it with another
// key is still a replay (status 9).
func TestNonceSharedByDevices(t *testing.T) {
	h := fileApp(t, ApprovalManual, "enroll enabled\ngroup \"\"\ndevice gw1.example \"\" enabled\ndevice gw2.example \"\" enabled\n")
	nonce := base64.StdEncoding.EncodeToString([]byte("toolkit nonce of one second"))
	for _, c := range []struct {
		device string
		status int
	}{
		{"gw1.example", wire.StatusPending},
		{"gw2.example", wire.StatusPending},
		{"new.example", wire.StatusPending}, // a device the file lacks
		{"gw1.example", wire.StatusNonceReused},
	} {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: c.device}}, key)
		if err != nil {
			t.Fatal(err)
		}
		ans := postForm(t, h, "192.0.2.1", url.Values{"operation": {wire.OpRequest}, "nonce": {nonce},
			"username": {"ops"}, "password": {"right"}, "device": {"1"}, "customer": {"0"},
			"request": {base64.StdEncoding.EncodeToString(csr)}})
		if ans.Status != c.status {
			t.Errorf("%s with a new key and the shared nonce: status %d %s, want %d", c.device, ans.Status, ans.Error, c.status)
		}
	}
}
