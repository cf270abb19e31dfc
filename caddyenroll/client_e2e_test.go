package caddyenroll_test

// The device side (enrollclient, as cmd/chclient uses it) against a real
// Caddy with the plugin, over real TLS.

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/enrollclient"
	"github.com/clearinghouse-dev/caddy-clearinghouse/internal/testutil"
)

func (s *server) rootPEM() []byte {
	s.t.Helper()
	return testutil.InternalRootPEM(s.t, filepath.Join(s.Dir, "data"))
}

func (s *server) caFingerprint() string {
	s.t.Helper()
	code, body := s.Admin("GET", "/enroll/ca", "")
	if code != 200 {
		s.t.Fatalf("GET /enroll/ca: %d %s", code, body)
	}
	var info struct {
		Fingerprint string `json:"sha256_fingerprint"`
	}
	if err := json.Unmarshal([]byte(body), &info); err != nil {
		s.t.Fatal(err)
	}
	return info.Fingerprint
}

func (s *server) newClient(device string) *enrollclient.Client {
	return &enrollclient.Client{
		ServerURL: s.https, RootCAPEM: s.rootPEM(), CAFingerprint: s.caFingerprint(),
		DeviceName: device, DeviceID: "134217728", Customer: "0",
		Username: "demo", Password: "demo-password", Dir: s.t.TempDir(),
		InitialBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, MaxWait: 20 * time.Second,
	}
}

// requestsSeen counts request/retrieve messages the server answered, from
// its metrics.
func (s *server) requestsSeen() int {
	_, body := s.Admin("GET", "/metrics", "")
	n := 0
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "caddy_clearinghouse_enroll_requests_total{") &&
			(strings.Contains(line, `operation="request"`) || strings.Contains(line, `operation="retrieve"`)) {
			n++
		}
	}
	return n
}

func TestClientEnrollAuto(t *testing.T) {
	s := startServer(t, serverOpts{})
	c := s.newClient("device6.isp.com")
	res, err := c.Enroll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Certificate.Subject.CommonName != "device6.isp.com" {
		t.Fatalf("certificate for %q", res.Certificate.Subject.CommonName)
	}
	fi, err := os.Stat(res.KeyPath)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v", fi.Mode().Perm(), err)
	}
	if s.requestsSeen() == 0 {
		t.Fatal("metrics count no request messages after an enrollment")
	}
	st, err := c.Status()
	if err != nil || st.State != enrollclient.StateIssued {
		t.Fatalf("status %+v %v", st, err)
	}

	// renew (forced) replaces the certificate; the old one lands on the CRL
	old := res.Certificate
	renewed, res2, err := c.Renew(context.Background(), true)
	if err != nil || !renewed {
		t.Fatalf("renew: %v %v", renewed, err)
	}
	if res2.Certificate.SerialNumber.Cmp(old.SerialNumber) == 0 {
		t.Fatal("renew kept the old certificate")
	}
	if s.crlEntry(res2.CACert, old) == nil {
		t.Fatal("the renewed-away certificate is not on the CRL")
	}
	// not due: nothing happens
	if renewed, _, err := c.Renew(context.Background(), false); err != nil || renewed {
		t.Fatalf("renew when not due: %v %v", renewed, err)
	}
}

func TestClientEnrollManualApproval(t *testing.T) {
	s := startServer(t, serverOpts{approval: "manual"})
	c := s.newClient("device4.com")
	polls := 0
	c.Progress = func(attempt int, next time.Duration, _ error) {
		polls = attempt
		if attempt == 2 { // the administrator approves while the device polls
			for _, p := range s.pending() {
				if code, body := s.Admin("POST", "/enroll/approve/"+p.ID, ""); code != 200 {
					t.Errorf("approve: %d %s", code, body)
				}
			}
		}
	}
	res, err := c.Enroll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if polls < 2 || res.Certificate.Subject.CommonName != "device4.com" {
		t.Fatalf("polls %d, cert %q", polls, res.Certificate.Subject.CommonName)
	}
	if d, _ := s.confFile().Device("device4.com"); !d.Enrolled {
		t.Fatal("device4.com not marked enrolled")
	}
}

func TestClientStopsOnWrongFingerprint(t *testing.T) {
	s := startServer(t, serverOpts{})
	c := s.newClient("device6.isp.com")
	c.CAFingerprint = strings.Repeat("00:", 31) + "00"
	_, err := c.Enroll(context.Background())
	if !errors.Is(err, enrollclient.ErrFingerprintMismatch) {
		t.Fatalf("want a fingerprint mismatch, got %v", err)
	}
	if n := s.requestsSeen(); n != 0 {
		t.Fatalf("the server saw %d request/retrieve messages; nothing with a key may be sent", n)
	}
	if entries, _ := os.ReadDir(c.Dir); len(entries) > 1 {
		t.Fatalf("files left behind: %v", entries)
	}
}

func TestClientStopsOnUntrustedServer(t *testing.T) {
	s := startServer(t, serverOpts{})
	c := s.newClient("device6.isp.com")
	// a root that did not sign the server's certificate
	other := startServer(t, serverOpts{})
	c.RootCAPEM = other.rootPEM()
	_, err := c.Enroll(context.Background())
	if !errors.Is(err, enrollclient.ErrServerNotTrusted) {
		t.Fatalf("want server not trusted, got %v", err)
	}
	if n := s.requestsSeen(); n != 0 {
		t.Fatalf("the server answered %d request/retrieve messages", n)
	}
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) && !strings.Contains(err.Error(), "unknown authority") {
		t.Logf("error: %v", err)
	}
}
