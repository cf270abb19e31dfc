package caddyenroll_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/internal/testutil"
	"github.com/clearinghouse-dev/caddy-clearinghouse/osp"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// A server whose operational CA has expired still starts with a signed
// token OSP site (refusing to would take getcacert, the CRL and every
// other site down), answers getcacert and the CRL, refuses enrollment with
// status 14 saying why, refuses authorizations, and logs the CA's end.
func TestExpiredCA(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Expired Operational CA"},
		NotBefore: now.Add(-60 * 24 * time.Hour), NotAfter: now.Add(-time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
	}, &x509.Certificate{Subject: pkix.Name{CommonName: "Expired Operational CA"}}, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	s := startServer(t, serverOpts{
		extra: fmt.Sprintf("ca {\n\t\t\tcert_file %s\n\t\t\tkey_file %s\n\t\t}", certFile, keyFile),
		sites: fmt.Sprintf(`http://%s {
	bind 127.0.0.1
	osp {
		source_address 127.0.0.1 device4.carrier.com
		plain_http
	}
}`, addr),
		waitAddrs: []string{addr},
	})
	caCert := s.getCACert()
	if !bytes.Equal(caCert.Raw, der) {
		t.Fatal("getcacert answers another certificate")
	}
	s.fetchCRL(caCert)
	_, csr := p256CSR(t, "device4.com")
	if a := s.do(enrollReq(wire.OpRequest, t, csr)); a.Status != wire.StatusServerError || !strings.Contains(a.Error, "operational CA expired") {
		t.Fatalf("request: status %d %q, want 14 saying the CA expired", a.Status, a.Error)
	}
	resp, err := http.Post("http://"+addr+"/osp", "text/plain", bytes.NewReader(authRequest("14045551234", 5)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	rsp, err := osp.ParseAuthorisationResponse(body)
	if err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	if rsp.Status.Code != osp.StatusInternalError.Code || len(rsp.Destinations) != 0 {
		t.Fatalf("authorization: status %d with %d destinations, want %d and none", rsp.Status.Code, len(rsp.Destinations), osp.StatusInternalError.Code)
	}
	if logs := s.Logs(); !strings.Contains(logs, "operational CA has expired") {
		t.Fatal("no log line says the CA has expired")
	}
}
