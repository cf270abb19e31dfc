package caddyenroll_test

import (
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// The README's CA renewal, on a running server: the operator empties the
// crypto item and reloads. The new CA is served and named in the file,
// the enrolled marks are cleared, the CRL is the new CA's, a request
// pending from before is issued by the new CA on approval, and a device
// enrolls again with its key.
func TestCARenewalByReload(t *testing.T) {
	if testing.Short() {
		t.Skip("reloads a real Caddy")
	}
	for _, tc := range []struct{ name, line string }{
		{"crypto line deleted", ""},
		{"crypto emptied", "crypto ''"},
	} {
		t.Run(tc.name, func(t *testing.T) { testCARenewalByReload(t, tc.line) })
	}
}

// testCARenewalByReload replaces the crypto line with line ("": none).
func testCARenewalByReload(t *testing.T, line string) {
	s := startServer(t, serverOpts{})
	oldCA := s.getCACert()
	waitFor(t, "the crypto item recorded", func() bool { return strings.HasPrefix(s.confFile().Crypto, "modern:") })
	key4, csr4 := p256CSR(t, "device4.com")
	if a := s.do(enrollReq(wire.OpRequest, t, csr4)); a.Status != wire.StatusOK {
		t.Fatalf("enrollment: status %d %s", a.Status, a.Error)
	}
	waitFor(t, "device4.com marked enrolled", func() bool { d, _ := s.confFile().Device("device4.com"); return d.Enrolled })
	keyNew, csrNew := p256CSR(t, "newgw.example.net") // unknown: pending
	if a := s.do(enrollReq(wire.OpRequest, t, csrNew)); a.Status != wire.StatusPending {
		t.Fatalf("unknown device: status %d %s", a.Status, a.Error)
	}

	replaceCryptoLine(t, s.conf, line)
	caddyfile, err := os.ReadFile(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	if code, body := s.reload(string(caddyfile)); code != http.StatusOK {
		t.Fatalf("reload: HTTP %d %s", code, body)
	}

	newCA := s.getCACert()
	if newCA.Equal(oldCA) {
		t.Fatal("the CA did not change")
	}
	fp := ca.FingerprintHex(newCA.Raw)
	waitFor(t, "the file naming the new CA", func() bool { return strings.HasSuffix(s.confFile().Crypto, fp) })
	if d, _ := s.confFile().Device("device4.com"); d.Enrolled {
		t.Fatal("device4.com is still marked enrolled")
	}
	if crl := s.fetchCRL(newCA); len(crl.RevokedCertificateEntries) != 0 {
		t.Fatalf("the new CA's CRL lists %v", crl.RevokedCertificateEntries)
	}
	if code, body := s.Admin("GET", "/enroll/ca", ""); code != 200 || !strings.Contains(body, fp) {
		t.Fatalf("GET /enroll/ca: %d %s", code, body)
	}

	p := s.pending()
	if len(p) != 1 || p[0].Device != "newgw.example.net" {
		t.Fatalf("pending after the renewal: %+v", p)
	}
	if code, body := s.Admin("POST", "/enroll/approve/"+p[0].ID, ""); code != 200 {
		t.Fatalf("approve: %d %s", code, body)
	}
	if a := s.do(enrollReq(wire.OpRetrieve, t, csrNew)); a.Status != wire.StatusOK {
		t.Fatalf("retrieve of the approved request: status %d %s", a.Status, a.Error)
	} else {
		checkIssued(t, a.Certificate, newCA, "newgw.example.net", keyNew)
	}
	a := s.do(enrollReq(wire.OpRequest, t, csr4))
	if a.Status != wire.StatusOK {
		t.Fatalf("device4.com again: status %d %s", a.Status, a.Error)
	}
	checkIssued(t, a.Certificate, newCA, "device4.com", key4)
	waitFor(t, "device4.com marked enrolled again", func() bool { d, _ := s.confFile().Device("device4.com"); return d.Enrolled })
}

// replaceCryptoLine replaces the file's crypto line by line ("": removes
// it), saving by rename as editors do.
func replaceCryptoLine(t *testing.T, path, line string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "crypto ") {
			kept = append(kept, l)
		} else if line != "" {
			kept = append(kept, line)
		}
	}
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(strings.Join(kept, "\n")), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
