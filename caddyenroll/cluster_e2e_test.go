package caddyenroll_test

// Two real Caddy instances sharing one file-system storage and one
// configuration file, as an operator of a pair runs them: what one does,
// the other must agree with ("two Caddy instances sharing a storage
// backend behave as one server").

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/internal/testutil"
	"github.com/clearinghouse-dev/caddy-clearinghouse/osp"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// startSecond starts a second Caddy (a's binary) on a's storage and
// configuration file: a's Caddyfile with every listening port of a (its admin, sites and
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
	bin := a.bin
	if bin == "" {
		bin = testutil.CaddyBinary(t)
	}
	bc := testutil.StartCaddyBinary(t, bin, t.TempDir(), second, r.Replace(a.AdminAddr), wait...)
	b = &server{Caddy: bc, t: t, https: r.Replace(a.https), http: r.Replace(a.http), conf: a.conf,
		tlsAddr: r.Replace(a.tlsAddr), httpAddr: r.Replace(a.httpAddr), client: a.client, bin: bin}
	b.waitTLS()
	return b, r.Replace
}

// startOSPPair is startOSPServer twice, on one storage and one file.
func startOSPPair(t *testing.T, o serverOpts) (a, b *ospServer) {
	t.Helper()
	ospAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	o.sites = mtlsOSPSite(ospAddr)
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

// A certificate revoked through A's admin API (by serial: the file does
// not change) is refused by B's OSP handler, which identified the device
// by it before, and is on B's CRL, within the documented 30 s.
func TestClusterRevocationSeenByOtherInstance(t *testing.T) {
	a, b := startOSPPair(t, serverOpts{})
	caCert := a.getCACert()
	_, cert, key := a.enrolledDevice("device4.carrier.com")
	onB := b.clientWith(tlsCert(cert, key))
	onA := a.clientWith(tlsCert(cert, key))
	if rsp := b.authorize(onB, "14045550100"); rsp.Status.Code != 200 {
		t.Fatalf("B before the revocation: %+v", rsp.Status)
	}
	if b.crlEntry(caCert, cert) != nil { // B now serves a CRL without it
		t.Fatal("on B's CRL before the revocation")
	}
	if code, body := a.Admin("POST", "/enroll/revoke", `{"serial":"`+serialOf(cert)+`"}`); code != 200 {
		t.Fatalf("revoke on A: %d %s", code, body)
	}
	if rsp := a.authorize(onA, "14045550100"); rsp.Status.Code != 401 {
		t.Fatalf("A right after its revocation: %+v", rsp.Status)
	}
	if a.crlEntry(caCert, cert) == nil {
		t.Fatal("not on A's CRL right after its revocation")
	}
	// documented: within 30 s on other instances (a little slack for the
	// refresh itself)
	const bound = 30*time.Second + 5*time.Second
	waitForWithin(t, bound, "B to refuse the revoked certificate", func() bool {
		return b.authorize(onB, "14045550100").Status.Code == 401
	})
	waitForWithin(t, bound, "B's CRL to list the revoked certificate", func() bool {
		return b.crlEntry(caCert, cert) != nil
	})
}

// The same device enrolling on A and B at once, with different keys, ends
// with exactly one current certificate (the other superseded), the file
// marking it once; with the same key, both get one certificate. (The
// superseded certificate's place on the CRLs is TestClusterRevocationSeenByOtherInstance's.)
// After max_issued_per_device certificates, a new key waits on either
// instance: the count is the storage's.
func TestClusterConcurrentEnrollment(t *testing.T) {
	a := startServer(t, serverOpts{extra: "max_issued_per_device 7"})
	b, _ := startSecond(t, a, nil, nil)
	for round := 0; round < 3; round++ {
		var wg sync.WaitGroup
		answers := make([]*wire.Response, 2)
		csrs := make([][]byte, 2)
		for i := range csrs {
			_, csrs[i] = p256CSR(t, "device4.com")
		}
		for i, s := range []*server{a, b} {
			wg.Go(func() { answers[i] = s.do(enrollReq(wire.OpRequest, t, csrs[i])) })
		}
		wg.Wait()
		var serials []string
		for i, ans := range answers {
			if ans.Status != wire.StatusOK {
				t.Fatalf("round %d: enrollment %d: status %d %s", round, i, ans.Status, ans.Error)
			}
			c, err := x509.ParseCertificate(ans.Certificate)
			if err != nil {
				t.Fatal(err)
			}
			serials = append(serials, serialOf(c))
		}
		da, db := a.adminDevices()["device4.com"], b.adminDevices()["device4.com"]
		if v := da.valid(); len(v) != 1 || !slicesContain(serials, v[0]) {
			t.Fatalf("round %d: valid certificates of device4.com on A: %v (issued %v)", round, v, serials)
		}
		// the other superseded; both instances list the same
		if fmt.Sprint(da.valid()) != fmt.Sprint(db.valid()) || len(da.Certificates) != len(db.Certificates) {
			t.Fatalf("round %d: A and B disagree: %+v / %+v", round, da, db)
		}
		if n := deviceLines(t, a.conf, "device4.com"); n != 1 {
			t.Fatalf("round %d: the file has %d lines of device4.com", round, n)
		}
		if d, _ := a.confFile().Device("device4.com"); !d.Enrolled || !d.Enabled {
			t.Fatalf("round %d: device4.com in the file: %+v", round, d)
		}
	}

	// the same key on both at once: one certificate, delivered to both
	_, csr := p256CSR(t, "device4.com")
	var wg sync.WaitGroup
	answers := make([]*wire.Response, 2)
	for i, s := range []*server{a, b} {
		wg.Go(func() { answers[i] = s.do(enrollReq(wire.OpRequest, t, csr)) })
	}
	wg.Wait()
	if answers[0].Status != wire.StatusOK || answers[1].Status != wire.StatusOK || !bytes.Equal(answers[0].Certificate, answers[1].Certificate) {
		t.Fatalf("same key on both: statuses %d %d, same certificate %v", answers[0].Status, answers[1].Status,
			bytes.Equal(answers[0].Certificate, answers[1].Certificate))
	}
	if v := a.adminDevices()["device4.com"].valid(); len(v) != 1 {
		t.Fatalf("valid certificates after the same key on both: %v", v)
	}
	// seven certificates issued, on A and B together: new keys wait on both
	for i, s := range []*server{a, b} {
		_, csr := p256CSR(t, "device4.com")
		if ans := s.do(enrollReq(wire.OpRequest, t, csr)); ans.Status != wire.StatusPending {
			t.Fatalf("an eighth certificate on instance %d: status %d %s, want 1 (held for approval)", i, ans.Status, ans.Error)
		}
	}
}

func slicesContain(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// Approving one pending request on A and B at once issues one
// certificate; the other approval is refused as a conflict. Pending lists
// agree; a rejection on one is seen by a retrieve on the other.
func TestClusterApprovalsAndPendingLists(t *testing.T) {
	a := startServer(t, serverOpts{approval: "manual"})
	b, _ := startSecond(t, a, nil, nil)

	_, csr := p256CSR(t, "device4.com")
	if ans := a.do(enrollReq(wire.OpRequest, t, csr)); ans.Status != wire.StatusPending {
		t.Fatalf("request on A: %d", ans.Status)
	}
	_, other := p256CSR(t, "device6.isp.com")
	if ans := b.do(enrollReq(wire.OpRequest, t, other)); ans.Status != wire.StatusPending {
		t.Fatalf("request on B: %d", ans.Status)
	}
	pa, pb := a.pending(), b.pending()
	if len(pa) != 2 || fmt.Sprint(pa) != fmt.Sprint(pb) {
		t.Fatalf("pending on A %v, on B %v", pa, pb)
	}
	var id string
	for _, p := range pa {
		if p.Device == "device4.com" {
			id = p.ID
		}
	}
	codes := make([]int, 2)
	bodies := make([]string, 2)
	var wg sync.WaitGroup
	for i, s := range []*server{a, b} {
		wg.Go(func() { codes[i], bodies[i] = s.Admin("POST", "/enroll/approve/"+id, "") })
	}
	wg.Wait()
	if !(codes[0] == 200 && codes[1] == 409 || codes[0] == 409 && codes[1] == 200) {
		t.Fatalf("approvals on A and B: %d %s / %d %s", codes[0], bodies[0], codes[1], bodies[1])
	}
	for name, s := range map[string]*server{"A": a, "B": b} {
		if d := s.adminDevices()["device4.com"]; len(d.Certificates) != 1 || len(d.valid()) != 1 {
			t.Errorf("%s: certificates of device4.com: %+v", name, d.Certificates)
		}
		if ans := s.do(enrollReq(wire.OpRetrieve, t, csr)); ans.Status != wire.StatusOK {
			t.Errorf("retrieve on %s: %d", name, ans.Status)
		}
	}
	// a rejection on B is what a retrieve on A gets
	pa, pb = a.pending(), b.pending()
	if len(pa) != 1 || fmt.Sprint(pa) != fmt.Sprint(pb) || pa[0].Device != "device6.isp.com" {
		t.Fatalf("pending after the approval: on A %v, on B %v", pa, pb)
	}
	if code, body := b.Admin("POST", "/enroll/reject/"+pa[0].ID, `{"reason":"not ours"}`); code != 200 {
		t.Fatalf("reject on B: %d %s", code, body)
	}
	r := enrollReq(wire.OpRetrieve, t, other)
	if ans := a.do(r); ans.Status != wire.StatusRejected {
		t.Fatalf("retrieve of the rejected request on A: %d", ans.Status)
	}
	if len(a.pending()) != 0 || len(b.pending()) != 0 {
		t.Fatalf("pending after the rejection: A %v, B %v", a.pending(), b.pending())
	}
	// the CLI's lists agree
	outA, _, codeA := runCaddy(t, a.Dir, "enroll", "requests", "--address", a.AdminAddr)
	outB, _, codeB := runCaddy(t, b.Dir, "enroll", "requests", "--address", b.AdminAddr)
	if codeA != 0 || codeB != 0 || outA != outB || !strings.Contains(outA, "rejected") {
		t.Fatalf("caddy enroll requests: A (exit %d)\n%s\nB (exit %d)\n%s", codeA, outA, codeB, outB)
	}
	outA, _, codeA = runCaddy(t, a.Dir, "enroll", "devices", "--address", a.AdminAddr)
	outB, _, codeB = runCaddy(t, b.Dir, "enroll", "devices", "--address", b.AdminAddr)
	if codeA != 0 || codeB != 0 || outA != outB {
		t.Fatalf("caddy enroll devices: A (exit %d)\n%s\nB (exit %d)\n%s", codeA, outA, codeB, outB)
	}
}

// A device disabled by editing the shared file is refused by both
// instances: enrollment (status 6) and calls (401); its certificate is
// revoked once, for cessation of operation.
func TestClusterDeviceDisabledInFile(t *testing.T) {
	a, b := startOSPPair(t, serverOpts{})
	_, cert, key := a.enrolledDevice("device4.carrier.com")
	onA, onB := a.clientWith(tlsCert(cert, key)), b.clientWith(tlsCert(cert, key))
	for name, s := range map[string]*ospServer{"A": a, "B": b} {
		c := onA
		if s == b {
			c = onB
		}
		if rsp := s.authorize(c, "14045550100"); rsp.Status.Code != 200 {
			t.Fatalf("%s before: %+v", name, rsp.Status)
		}
	}
	a.editConf(t, "'device4.carrier.com' 'BT-Concert' enabled enrolled", "'device4.carrier.com' 'BT-Concert' disabled enrolled")
	for name, s := range map[string]*ospServer{"A": a, "B": b} {
		c := onA
		if s == b {
			c = onB
		}
		waitFor(t, name+" to refuse the disabled device", func() bool { return s.authorize(c, "14045550100").Status.Code == 401 })
		_, csr := p256CSR(t, "device4.carrier.com")
		if ans := s.do(enrollReq(wire.OpRequest, t, csr)); ans.Status != wire.StatusDeviceDisabled {
			t.Errorf("enrollment on %s: status %d", name, ans.Status)
		}
	}
	waitFor(t, "the revocation", func() bool {
		d := a.adminDevices()["device4.carrier.com"]
		return len(d.Certificates) == 1 && d.Certificates[0].Revoked
	})
	if d := b.adminDevices()["device4.carrier.com"]; len(d.Certificates) != 1 || !d.Certificates[0].Revoked || d.Certificates[0].Reason != 5 {
		t.Fatalf("B: %+v", d)
	}
}

// A usage indication retried on the other instance is stored once, and
// so is one sent to both at once.
func TestClusterUsageRetriedOnOtherInstance(t *testing.T) {
	a, b := startOSPPair(t, serverOpts{})
	_, cert, key := a.enrolledDevice("device4.carrier.com")
	onA, onB := a.clientWith(tlsCert(cert, key)), b.clientWith(tlsCert(cert, key))
	rsp := b.authorize(onB, "14045550100")
	if rsp.Status.Code != 200 {
		t.Fatalf("authorize on B: %+v", rsp.Status)
	}
	usage := func(tx uint64) []byte {
		ind := &osp.UsageIndication{MessageID: "7", Usages: []osp.Usage{{
			ComponentID: "8", Timestamp: time.Now().UTC(), Role: "source", TransactionID: tx,
			CallID: []byte("call-1"), SourceInfo: []osp.Info{{Type: "e164", Value: "14048724799"}},
			DestinationInfo: []osp.Info{{Type: "e164", Value: "14045550100"}}, Duration: 42 * time.Second,
			StartTime: time.Now().UTC().Add(-time.Minute), EndTime: time.Now().UTC(),
		}}}
		body, err := ind.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return body
	}
	send := func(s *ospServer, c *http.Client, body []byte) {
		t.Helper()
		cnf, err := osp.ParseUsageConfirmation(s.ask(c, body))
		if err != nil || len(cnf.Confirmations) != 1 || cnf.Confirmations[0].Status.Code != 200 {
			t.Errorf("usage confirmation: %+v %v", cnf, err)
		}
	}
	first := usage(rsp.TransactionID)
	send(a, onA, first)
	send(b, onB, first) // the retry, on the other instance
	second := usage(rsp.TransactionID + 1)
	var wg sync.WaitGroup
	wg.Go(func() { send(a, onA, second) })
	wg.Go(func() { send(b, onB, second) })
	wg.Wait()
	for name, s := range map[string]*ospServer{"A": a, "B": b} {
		_, body := s.Admin("GET", "/enroll/cdrs", "")
		var cdrs []json.RawMessage
		if err := json.Unmarshal([]byte(body), &cdrs); err != nil || len(cdrs) != 2 {
			t.Errorf("CDRs on %s (want 2): %v %s", name, err, body)
		}
	}
}

// Failed logins count across the cluster: after failures on A lock the
// account out, B, which has seen no failure, counts its first from A's
// (the record in storage) and locks the account out at once, instead of
// granting an allowance of its own.
func TestClusterLockoutsShared(t *testing.T) {
	a := startServer(t, serverOpts{extra: "failures_allowed 2\n\t\tlockout 1m 1m"})
	b, _ := startSecond(t, a, nil, nil)
	_, csr := p256CSR(t, "device4.com")
	bad := enrollReq(wire.OpRequest, t, csr)
	bad.Password = "wrong"
	for i := 0; i < 3; i++ {
		bad.Nonce = nonce(t)
		a.do(bad)
	}
	r := enrollReq(wire.OpRequest, t, csr)
	if ans := a.do(r); ans.Status != wire.StatusRateLimited {
		t.Fatalf("A after failures: status %d", ans.Status)
	}
	bad.Nonce = nonce(t)
	if ans := b.do(bad); ans.Status != wire.StatusBadCredentials {
		t.Fatalf("B, a wrong password: status %d %s", ans.Status, ans.Error)
	}
	if ans := b.do(enrollReq(wire.OpRequest, t, csr)); ans.Status != wire.StatusRateLimited {
		t.Fatalf("B after its first failure (the cluster's fourth): status %d %s, want rate limited", ans.Status, ans.Error)
	}
	// the operator unlocks the account through A's admin API: B drops its
	// lockout too, within a second (sharedRecheckInterval: its refused attempts
	// read the record once per interval)
	r = enrollReq(wire.OpRequest, t, csr)
	if code, body := a.Admin("POST", "/enroll/unlock", `{"username": "`+r.Username+`"}`); code != 200 || !strings.Contains(body, `"account_had_failures": true`) {
		t.Fatalf("unlock through A: %d %s", code, body)
	}
	time.Sleep(time.Second) // sharedRecheckInterval
	if ans := b.do(r); ans.Status != wire.StatusOK {
		t.Fatalf("B after the unlock: status %d %s", ans.Status, ans.Error)
	}
}

// While the file does not parse, a device enrolls through A (its mark
// waits in storage) and is revoked through B, which never saw it enrolled:
// once the file parses again the device is not marked enrolled, whichever
// instance applies the marks kept meanwhile.
func TestClusterRevokeWhileFileInvalid(t *testing.T) {
	a := startServer(t, serverOpts{})
	b, _ := startSecond(t, a, nil, nil)
	good, err := os.ReadFile(a.conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(a.conf, append(append([]byte{}, good...), "device 'x.example' nogroup enabled\n"...), 0o640); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*server{"A": a, "B": b} {
		waitFor(t, name+" to find the file invalid", func() bool { return strings.Contains(s.Logs(), "changed but is invalid") })
	}
	_, csr := p256CSR(t, "device4.com")
	if ans := a.do(enrollReq(wire.OpRequest, t, csr)); ans.Status != wire.StatusOK {
		t.Fatalf("enroll on A: %d %s", ans.Status, ans.Error)
	}
	code, body := b.Admin("POST", "/enroll/revoke", `{"device":"device4.com"}`)
	if code != 200 || !strings.Contains(body, "will be marked not enrolled") {
		t.Fatalf("revoke on B: %d %s", code, body)
	}
	// the file parses again (the server's crypto item kept)
	cur, _ := os.ReadFile(a.conf)
	fixed := strings.Replace(string(cur), "device 'x.example' nogroup enabled\n", "", 1)
	if err := os.WriteFile(a.conf+".new", []byte(fixed), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(a.conf+".new", a.conf); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the kept marks to be applied", func() bool {
		ents, _ := os.ReadDir(filepath.Join(a.Dir, "data", "clearinghouse", "enroll", "unmarked"))
		return len(ents) == 0
	})
	if d, _ := a.confFile().Device("device4.com"); d.Enrolled {
		t.Fatal("device4.com, revoked while the file did not parse, is marked enrolled")
	}
}
