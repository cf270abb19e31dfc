package enrolltest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// SelfSignedTLS serves HTTPS on loopback with a certificate self-signed from
// tmpl (a P-256 key), answering every request with an empty 200, until the
// test ends: for what a client makes of the server's certificate (its
// names, its validity, its issuer). It returns the port and the
// certificate's PEM, the root to trust it with.
func SelfSignedTLS(t testing.TB, tmpl *x509.Certificate) (port string, rootPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	_, port, _ = net.SplitHostPort(ts.Listener.Addr().String())
	return port, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
