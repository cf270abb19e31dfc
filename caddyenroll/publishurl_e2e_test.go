package caddyenroll_test

import (
	"bytes"
	"crypto/x509"
	"io"
	"net/http"
	"testing"

	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// A relying party finds the CRL and the CA certificate where a device
// certificate says (crl_url, issuer_url), over plain HTTP as RFC 5280
// wants, from a real Caddy whose file says `ssl enabled`
// (plain_getcacert lets /ca.crl and /ca.crt through): the CRL there
// lists a superseded certificate, the certificate there is the issuer.
func TestPublishedURLsServeTheCRLAndCA(t *testing.T) {
	s := startServer(t, serverOpts{
		extra:   "ca modern {\n\t\t\tcrl_url http://HTTP_ADDR/ca.crl\n\t\t\tissuer_url http://HTTP_ADDR/ca.crt\n\t\t}",
		handler: "plain_getcacert",
	})
	caCert := s.getCACert()
	key, csr := p256CSR(t, "device4.carrier.com")
	ans := s.do(enrollReq(wire.OpRequest, t, csr))
	if ans.Status != wire.StatusOK {
		t.Fatalf("request: status %d %q", ans.Status, ans.Error)
	}
	first := checkIssued(t, ans.Certificate, caCert, "device4.carrier.com", key)
	if len(first.CRLDistributionPoints) != 1 || len(first.IssuingCertificateURL) != 1 {
		t.Fatalf("certificate names CRL %q, issuer %q", first.CRLDistributionPoints, first.IssuingCertificateURL)
	}
	_, csr2 := p256CSR(t, "device4.carrier.com")
	if ans := s.do(enrollReq(wire.OpRequest, t, csr2)); ans.Status != wire.StatusOK {
		t.Fatalf("re-enrollment: status %d %q", ans.Status, ans.Error)
	}

	get := func(url string) []byte {
		t.Helper()
		resp, err := http.Get(url) // a relying party: no client set up for the server
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
		}
		return b
	}
	if der := get(first.IssuingCertificateURL[0]); !bytes.Equal(der, caCert.Raw) {
		t.Fatal("the caIssuers URL does not serve the issuing CA's certificate")
	}
	crl, err := x509.ParseRevocationList(get(first.CRLDistributionPoints[0]))
	if err != nil {
		t.Fatal(err)
	}
	if err := crl.CheckSignatureFrom(caCert); err != nil {
		t.Fatal("CRL signature:", err)
	}
	listed := false
	for _, e := range crl.RevokedCertificateEntries {
		listed = listed || e.SerialNumber.Cmp(first.SerialNumber) == 0
	}
	if !listed {
		t.Fatal("the CRL at the distribution point does not list the superseded certificate")
	}
}
