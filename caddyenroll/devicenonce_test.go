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
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// A nonce binds within the device whatever the spelling of its name: the
// request's (an unknown device's, lower-cased) or the file's, which the
// operator may add or respell later. Reused with another key of that
// device, it is refused as a replay (status 9), as the device's lock,
// record and request ids find the device under any spelling.
func TestDeviceNonceSpellings(t *testing.T) {
	keepPendingCount(t)
	st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	h, _ := boundsApp(t, st, &testClock{now: time.Now()}, ApprovalManual, 100, 100)
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	send := func(cn string) *wire.Response {
		t.Helper()
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
		if err != nil {
			t.Fatal(err)
		}
		return postForm(t, h, "192.0.2.1", url.Values{"operation": {wire.OpRequest}, "nonce": {base64.StdEncoding.EncodeToString(nonce)},
			"username": {"ops"}, "password": {"right"}, "device": {"1"}, "customer": {"0"},
			"request": {base64.StdEncoding.EncodeToString(csr)}})
	}
	respell := func(line string) {
		t.Helper()
		saveRenamed(t, h.app.cfg.path, "enroll enabled\ngroup \"\"\ndevice gw1.example \"\" enabled\n"+line)
		if _, err := h.app.cfg.reload(); err != nil {
			t.Fatal(err)
		}
	}
	// unknown: the request names it gw9.example
	if a := send("GW9.example"); a.Status != wire.StatusPending {
		t.Fatalf("unknown GW9.example: status %d %s", a.Status, a.Error)
	}
	respell("device GW9.Example \"\" enabled\n") // added, spelled otherwise
	if a := send("gw9.example"); a.Status != wire.StatusNonceReused {
		t.Fatalf("the nonce with another key, the device now listed as GW9.Example: status %d %s, want %d", a.Status, a.Error, wire.StatusNonceReused)
	}
	respell("device gw9.EXAMPLE \"\" enabled\n") // respelled
	if a := send("gw9.example"); a.Status != wire.StatusNonceReused {
		t.Fatalf("the nonce with another key, the device respelled gw9.EXAMPLE: status %d %s, want %d", a.Status, a.Error, wire.StatusNonceReused)
	}
}
