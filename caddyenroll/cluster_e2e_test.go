package caddyenroll_test

// Two real Caddy instances sharing one file-system storage and one
// configuration file, as an operator of a pair runs them: what one does,
// the other must agree with ("two Caddy instances sharing a storage
// backend behave as one server").

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/internal/testutil"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// startSecond starts a second Caddy on a's storage and configuration file:
// a's Caddyfile with every listening port of a (its admin, sites and
// waitAddrs) moved to a free one; edit, when given, changes it further.
// remap turns an address or URL of a into the same of the second.
func startSecond(t *testing.T, a *server, waitAddrs []string, edit func(string) string) (b *server, remap func(string) string) {
	t.Helper()
	var pairs []string
	for _, addr := range append([]string{a.AdminAddr, a.tlsAddr, a.httpAddr}, waitAddrs...) {
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		pairs = append(pairs, ":"+port, ":"+strconv.Itoa(testutil.FreePort(t)))
	}
	r := strings.NewReplacer(pairs...)
	cf, err := os.ReadFile(a.Config)
	if err != nil {
		t.Fatal(err)
	}
	second := r.Replace(string(cf))
	if edit != nil {
		second = edit(second)
	}
	var wait []string
	for _, addr := range append([]string{a.tlsAddr, a.httpAddr}, waitAddrs...) {
		wait = append(wait, r.Replace(addr))
	}
	bc := testutil.StartCaddy(t, t.TempDir(), second, r.Replace(a.AdminAddr), wait...)
	b = &server{Caddy: bc, t: t, https: r.Replace(a.https), http: r.Replace(a.http), conf: a.conf,
		tlsAddr: r.Replace(a.tlsAddr), httpAddr: r.Replace(a.httpAddr), client: a.client}
	b.waitTLS()
	return b, r.Replace
}

// startOSPPair is startOSPServer twice, on one storage and one file.
func startOSPPair(t *testing.T, o serverOpts) (a, b *ospServer) {
	t.Helper()
	ospAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	o.sites = fmt.Sprintf(`https://:%s {
	bind 127.0.0.1
	tls {
		client_auth {
			mode verify_if_given
			trust_pool enroll modern
		}
	}
	osp {
		token_validity 30s
	}
}`, ospAddr[strings.LastIndex(ospAddr, ":")+1:])
	o.waitAddrs = []string{ospAddr}
	as := startServer(t, o)
	bs, remap := startSecond(t, as, o.waitAddrs, nil)
	url := "https://" + ospAddr + "/osp"
	return &ospServer{server: as, ospURL: url}, &ospServer{server: bs, ospURL: remap(url)}
}

// adminDevices is GET /enroll/devices.
func (s *server) adminDevices() map[string]deviceInfoJSON {
	s.t.Helper()
	code, body := s.Admin("GET", "/enroll/devices", "")
	if code != 200 {
		s.t.Fatalf("GET /enroll/devices: %d %s", code, body)
	}
	var list []deviceInfoJSON
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		s.t.Fatalf("%v: %s", err, body)
	}
	out := make(map[string]deviceInfoJSON, len(list))
	for _, d := range list {
		out[d.Name] = d
	}
	return out
}

type deviceInfoJSON struct {
	Name         string `json:"name"`
	Enabled      bool   `json:"enabled"`
	Enrolled     bool   `json:"enrolled"`
	Certificates []struct {
		Serial  string `json:"serial"`
		Revoked bool   `json:"revoked"`
		Reason  int    `json:"reason"`
	} `json:"certificates"`
}

// valid lists the serials of the device's certificates that are not revoked.
func (d deviceInfoJSON) valid() []string {
	var out []string
	for _, c := range d.Certificates {
		if !c.Revoked {
			out = append(out, c.Serial)
		}
	}
	return out
}

func serialOf(c *x509.Certificate) string { return strings.ToLower(c.SerialNumber.Text(16)) }

// deviceLines counts the configuration file's lines of a device.
func deviceLines(t *testing.T, conf, device string) int {
	t.Helper()
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "device '"+device+"'")
}

// waitForWithin is waitFor with another deadline.
func waitForWithin(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Revoking a device through one instance unmarks it enrolled, also when
// the other instance marked it moments ago and this one has not reloaded
// the file since (here: watch_interval 1h on B).
func TestClusterRevokeByDeviceUnmarksOtherInstancesMark(t *testing.T) {
	a := startServer(t, serverOpts{})
	b, _ := startSecond(t, a, nil, func(s string) string {
		return strings.Replace(s, "watch_interval 100ms", "watch_interval 1h", 1)
	})
	_, csr := p256CSR(t, "device4.com")
	if ans := a.do(enrollReq(wire.OpRequest, t, csr)); ans.Status != wire.StatusOK {
		t.Fatalf("enroll on A: %d %s", ans.Status, ans.Error)
	}
	if d, _ := a.confFile().Device("device4.com"); !d.Enrolled {
		t.Fatal("A did not mark device4.com enrolled")
	}
	code, body := b.Admin("POST", "/enroll/revoke", `{"device":"device4.com"}`)
	if code != 200 || !strings.Contains(body, `"revoked"`) {
		t.Fatalf("revoke on B: %d %s", code, body)
	}
	if d, _ := a.confFile().Device("device4.com"); d.Enrolled {
		t.Errorf("device4.com revoked through B is still marked enrolled in the file (%s)", body)
	}
	for name, s := range map[string]*server{"A": a, "B": b} {
		if d := s.adminDevices()["device4.com"]; len(d.valid()) != 0 {
			t.Errorf("%s lists valid certificates of device4.com after the revocation: %v", name, d.valid())
		}
	}
}

func tlsCert(cert *x509.Certificate, key crypto.Signer) tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
}

// A device whose certificate was revoked through A enrolls again through
// B: its new certificate is good on both at once, as on one server (B
// issued it; A must not go on treating the device as revoked).
func TestClusterReenrollmentAfterRevocationSeenByOtherInstance(t *testing.T) {
	a, b := startOSPPair(t, serverOpts{})
	_, cert, key := a.enrolledDevice("device4.carrier.com")
	if rsp := a.authorize(a.clientWith(tlsCert(cert, key)), "14045550100"); rsp.Status.Code != 200 {
		t.Fatalf("A before the revocation: %+v", rsp.Status)
	}
	if code, body := a.Admin("POST", "/enroll/revoke", `{"serial":"`+serialOf(cert)+`"}`); code != 200 {
		t.Fatalf("revoke on A: %d %s", code, body)
	}
	if rsp := a.authorize(a.clientWith(tlsCert(cert, key)), "14045550100"); rsp.Status.Code != 401 {
		t.Fatalf("A after the revocation: %+v", rsp.Status)
	}
	_, cert2, key2 := b.enrolledDevice("device4.carrier.com")
	if rsp := b.authorize(b.clientWith(tlsCert(cert2, key2)), "14045550100"); rsp.Status.Code != 200 {
		t.Fatalf("B with the new certificate: %+v", rsp.Status)
	}
	if rsp := a.authorize(a.clientWith(tlsCert(cert2, key2)), "14045550100"); rsp.Status.Code != 200 {
		t.Fatalf("A with the new certificate B issued: %+v", rsp.Status)
	}
}
