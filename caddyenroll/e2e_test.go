package caddyenroll_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
	"github.com/clearinghouse-dev/caddy-clearinghouse/internal/testutil"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// server is a real Caddy with the plugin, on loopback, over real TLS.
type server struct {
	*testutil.Caddy
	t        *testing.T
	https    string // base URL of the TLS site
	http     string // base URL of the plain-HTTP site
	conf     string // path of the clearinghouse configuration file
	client   *http.Client
	tlsAddr  string
	httpAddr string
	bin      string // the Caddy binary it runs
}

var (
	hashOnce sync.Once
	demoHash string
)

// passwordHash is a bcrypt hash of "demo-password" at the minimum cost, to
// keep tests fast (production hashes come from `caddy hash-password`).
func passwordHash(t *testing.T) string {
	hashOnce.Do(func() {
		h, err := bcrypt.GenerateFromPassword([]byte("demo-password"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		demoHash = string(h)
	})
	return demoHash
}

type serverOpts struct {
	approval  string
	unknown   string
	extra     string   // more lines for the global enroll block (HTTP_ADDR: the http site's address)
	handler   string   // lines for the enroll handler of the two sites
	conf      string   // configuration file contents; default Table 7
	sites     string   // more site blocks
	servers   string   // more lines for the global servers block
	global    string   // more global options
	waitAddrs []string // their addresses, waited for
	bin       string   // the Caddy binary; default testutil.CaddyBinary's
}

func startServer(t *testing.T, o serverOpts) *server {
	t.Helper()
	dir := t.TempDir()
	conf := o.conf
	if conf == "" {
		b, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "examples", "clearinghouse.conf"))
		if err != nil {
			t.Fatal(err)
		}
		conf = string(b)
	}
	confPath := filepath.Join(dir, "clearinghouse.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o640); err != nil {
		t.Fatal(err)
	}
	if o.approval == "" {
		o.approval = "auto"
	}
	if o.unknown == "" {
		o.unknown = "pending"
	}
	handler := "enroll"
	if o.handler != "" {
		handler = "enroll {\n\t\t" + o.handler + "\n\t}"
	}
	admin := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	tlsAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	o.extra = strings.ReplaceAll(o.extra, "HTTP_ADDR", httpAddr)
	caddyfile := fmt.Sprintf(`{
	admin %s
	local_certs
	skip_install_trust
	auto_https disable_redirects
	%s
	servers {
		protocols h1 h2
		# devices connect to IP addresses, without SNI; client_auth sites
		# would otherwise refuse them (421)
		strict_sni_host insecure_off
		%s
	}
	storage file_system %s
	enroll {
		config_file %s
		approval %s
		unknown_devices %s
		watch_interval 100ms
		account demo %s
		account cust %s 1000
		%s
	}
}
https://%s {
	bind 127.0.0.1
	tls internal
	%s
}
http://%s {
	bind 127.0.0.1
	%s
}
%s
`, admin, o.global, o.servers, filepath.Join(dir, "data"), confPath, o.approval, o.unknown, passwordHash(t), passwordHash(t), o.extra,
		tlsAddr, handler, httpAddr, handler, o.sites)
	if o.bin == "" {
		o.bin = testutil.CaddyBinary(t)
	}
	c := testutil.StartCaddyBinary(t, o.bin, dir, caddyfile, admin, append([]string{tlsAddr, httpAddr}, o.waitAddrs...)...)
	s := &server{Caddy: c, t: t, https: "https://" + tlsAddr + "/", http: "http://" + httpAddr + "/",
		conf: confPath, tlsAddr: tlsAddr, httpAddr: httpAddr, bin: o.bin}
	s.client = s.trustingClient()
	s.waitTLS()
	return s
}

// waitTLS waits until the site serves its certificate (Caddy obtains it
// from its internal CA in the background at start).
func (s *server) waitTLS() {
	s.t.Helper()
	tr := s.client.Transport.(*http.Transport)
	waitFor(s.t, "the TLS certificate", func() bool {
		conn, err := tls.Dial("tcp", s.tlsAddr, tr.TLSClientConfig)
		if err != nil {
			return false
		}
		conn.Close()
		return true
	})
}

// trustingClient verifies the server's certificate against the root of
// Caddy's internal CA, which this test's storage holds.
func (s *server) trustingClient() *http.Client {
	s.t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.rootPEM()) {
		s.t.Fatal("the internal root certificate does not parse")
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
	}}
}

// post sends a protocol body and returns the decoded answer and the raw
// HTTP response.
func (s *server) post(url string, body []byte, ctype string) (*wire.Response, *http.Response, []byte) {
	s.t.Helper()
	resp, err := s.client.Post(url, ctype, bytes.NewReader(body))
	if err != nil {
		s.t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, resp, raw
	}
	ans, err := wire.DecodeResponse(raw)
	if err != nil {
		s.t.Fatalf("decoding answer %q: %v", raw, err)
	}
	return ans, resp, raw
}

// from is s as a client connecting from ip, a loopback address (any of
// 127/8 on Linux): what the server takes for another client address.
func (s *server) from(ip string) *server {
	c := *s
	tr := s.client.Transport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}).DialContext
	c.client = &http.Client{Timeout: s.client.Timeout, Transport: tr}
	return &c
}

func (s *server) do(r wire.Request) *wire.Response {
	s.t.Helper()
	ans, resp, raw := s.post(s.https, wire.EncodeRequest(r), wire.RequestContentType(r.Operation))
	if ans == nil {
		s.t.Fatalf("HTTP %d: %s", resp.StatusCode, raw)
	}
	return ans
}

func (s *server) getCACert() *x509.Certificate {
	s.t.Helper()
	ans := s.do(wire.Request{Operation: wire.OpGetCACert})
	if ans.Status != wire.StatusOK {
		s.t.Fatalf("getcacert: status %d %s", ans.Status, ans.Error)
	}
	cert, err := x509.ParseCertificate(ans.Certificate)
	if err != nil {
		s.t.Fatal(err)
	}
	return cert
}

func (s *server) confFile() *configfile.File {
	s.t.Helper()
	f, err := configfile.ParseFile(s.conf)
	if err != nil {
		s.t.Fatal(err)
	}
	return f
}

func nonce(t *testing.T) []byte {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	b[3], b[9] = 0, 0 // seed-era clients send NUL bytes in nonces
	return b
}

func p256CSR(t *testing.T, cn string) (crypto.Signer, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key, csrFor(t, key, cn)
}

func csrFor(t *testing.T, key crypto.Signer, cn string) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func enrollReq(op string, t *testing.T, csr []byte) wire.Request {
	return wire.Request{Operation: op, Nonce: nonce(t), Username: "demo", Password: "demo-password",
		Device: "134217728", Customer: "0", CSR: csr}
}

func checkIssued(t *testing.T, der []byte, caCert *x509.Certificate, device string, key crypto.Signer) *x509.Certificate {
	t.Helper()
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("issued certificate does not chain to the getcacert certificate: %v", err)
	}
	if cert.Subject.CommonName != device || len(cert.DNSNames) != 1 || cert.DNSNames[0] != device {
		t.Fatalf("certificate names %q %v, want %q", cert.Subject.CommonName, cert.DNSNames, device)
	}
	pub, _ := x509.MarshalPKIXPublicKey(key.Public())
	got, _ := x509.MarshalPKIXPublicKey(cert.PublicKey)
	if !bytes.Equal(pub, got) {
		t.Fatal("certificate does not carry the CSR's public key")
	}
	return cert
}

func TestEnrollAutoApproval(t *testing.T) {
	s := startServer(t, serverOpts{})
	caCert := s.getCACert()
	if !caCert.IsCA {
		t.Fatal("getcacert did not return a CA certificate")
	}
	// unenroll device2 first so the test sees the flag being set
	b, _ := os.ReadFile(s.conf)
	b = bytes.Replace(b, []byte("'device2.itsp.com' 'ACME ITSP' enabled enrolled"), []byte("'device2.itsp.com' 'ACME ITSP' enabled"), 1)
	if err := os.WriteFile(s.conf, b, 0o640); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "reload", func() bool {
		_, body := s.Admin("GET", "/enroll/devices", "")
		return strings.Contains(body, `"name": "device2.itsp.com",
    "group": "ACME ITSP",
    "enabled": true,
    "enrolled": false`)
	})
	key, csr := p256CSR(t, "device2.itsp.com")
	ans := s.do(enrollReq(wire.OpRequest, t, csr))
	if ans.Status != wire.StatusOK {
		t.Fatalf("request: status %d %q", ans.Status, ans.Error)
	}
	cert := checkIssued(t, ans.Certificate, caCert, "device2.itsp.com", key)

	// retrieve with a new nonce gives the same certificate (idempotent)
	again := s.do(enrollReq(wire.OpRetrieve, t, csr))
	if again.Status != wire.StatusOK || !bytes.Equal(again.Certificate, cert.Raw) {
		t.Fatalf("retrieve: status %d, same cert %v", again.Status, bytes.Equal(again.Certificate, cert.Raw))
	}
	if d, _ := s.confFile().Device("device2.itsp.com"); !d.Enrolled {
		t.Fatal("configuration file does not mark device2.itsp.com enrolled")
	}
	raw, _ := os.ReadFile(s.conf)
	if !strings.HasPrefix(string(raw), "# Clearinghouse configuration file, transcribed from Table 7") {
		t.Fatal("rewriting the configuration file lost its comments")
	}

	// re-enrollment with a new key supersedes and revokes the old certificate
	key2, csr2 := p256CSR(t, "device2.itsp.com")
	ans2 := s.do(enrollReq(wire.OpRequest, t, csr2))
	if ans2.Status != wire.StatusOK {
		t.Fatalf("re-enroll: status %d %q", ans2.Status, ans2.Error)
	}
	checkIssued(t, ans2.Certificate, caCert, "device2.itsp.com", key2)
	if s.crlEntry(caCert, cert) == nil {
		t.Fatal("superseded certificate is not on the CRL")
	}
}

func (s *server) fetchCRL(caCert *x509.Certificate) *x509.RevocationList {
	s.t.Helper()
	resp, err := s.client.Get(s.https + "ca.crl")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	der, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/pkix-crl" {
		s.t.Fatalf("GET ca.crl: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := crl.CheckSignatureFrom(caCert); err != nil {
		s.t.Fatalf("CRL signature: %v", err)
	}
	return crl
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type pendingInfo struct {
	ID      string    `json:"id"`
	Device  string    `json:"device"`
	State   string    `json:"state"`
	Created time.Time `json:"created"`
}

func (s *server) pending() []pendingInfo {
	s.t.Helper()
	code, body := s.Admin("GET", "/enroll/pending", "")
	if code != 200 {
		s.t.Fatalf("GET /enroll/pending: %d %s", code, body)
	}
	var out []pendingInfo
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		s.t.Fatalf("%v: %s", err, body)
	}
	return out
}

// The seed's full exchange under manual approval, with a kill -9 and restart
// between the request and the approval.
func TestEnrollManualApprovalSurvivesRestart(t *testing.T) {
	s := startServer(t, serverOpts{approval: "manual"})
	caCert := s.getCACert()
	key, csr := p256CSR(t, "device4.com") // enabled, not enrolled in Table 7
	ans := s.do(enrollReq(wire.OpRequest, t, csr))
	if ans.Status != wire.StatusPending || ans.Nonce == "" {
		t.Fatalf("request: status %d nonce %q, want pending with a nonce", ans.Status, ans.Nonce)
	}
	if r := s.do(enrollReq(wire.OpRetrieve, t, csr)); r.Status != wire.StatusPending {
		t.Fatalf("retrieve while pending: status %d", r.Status)
	}

	s.Restart(s.tlsAddr, s.httpAddr)
	s.waitTLS()

	p := s.pending()
	if len(p) != 1 || p[0].Device != "device4.com" {
		t.Fatalf("pending after restart: %+v", p)
	}
	if code, body := s.Admin("POST", "/enroll/approve/"+p[0].ID, ""); code != 200 {
		t.Fatalf("approve: %d %s", code, body)
	}
	if len(s.pending()) != 0 {
		t.Fatal("request still pending after approval")
	}
	r := s.do(enrollReq(wire.OpRetrieve, t, csr))
	if r.Status != wire.StatusOK {
		t.Fatalf("retrieve after approval: status %d %q", r.Status, r.Error)
	}
	cert := checkIssued(t, r.Certificate, caCert, "device4.com", key)
	if getcacert := s.getCACert(); !getcacert.Equal(caCert) {
		t.Fatal("the CA changed across the restart")
	}
	if d, _ := s.confFile().Device("device4.com"); !d.Enrolled {
		t.Fatal("configuration file does not mark device4.com enrolled")
	}
	// devices list shows the certificate
	_, body := s.Admin("GET", "/enroll/devices", "")
	if !strings.Contains(body, fmt.Sprintf("%x", cert.SerialNumber)) || !strings.Contains(body, `"issued_at"`) {
		t.Fatalf("devices list lacks serial %x or its issued_at: %s", cert.SerialNumber, body)
	}
	// revoking the device puts its certificate on the CRL and unmarks it
	if code, body := s.Admin("POST", "/enroll/revoke", `{"device":"device4.com","reason":1}`); code != 200 {
		t.Fatalf("revoke: %d %s", code, body)
	}
	crl := s.fetchCRL(caCert)
	if len(crl.RevokedCertificateEntries) != 1 || crl.RevokedCertificateEntries[0].SerialNumber.Cmp(cert.SerialNumber) != 0 {
		t.Fatalf("CRL entries %v", crl.RevokedCertificateEntries)
	}
	if d, _ := s.confFile().Device("device4.com"); d.Enrolled {
		t.Fatal("revoked device is still marked enrolled")
	}
}

func TestUnknownDeviceApprovedIsAdded(t *testing.T) {
	s := startServer(t, serverOpts{})
	_, csr := p256CSR(t, "newgw.example.net")
	if ans := s.do(enrollReq(wire.OpRequest, t, csr)); ans.Status != wire.StatusPending {
		t.Fatalf("unknown device: status %d, want pending", ans.Status)
	}
	p := s.pending()
	if len(p) != 1 {
		t.Fatalf("pending: %+v", p)
	}
	if code, body := s.Admin("POST", "/enroll/approve/"+p[0].ID[:8], `{"group":"Prepaid"}`); code != 200 {
		t.Fatalf("approve: %d %s", code, body)
	}
	d, ok := s.confFile().Device("newgw.example.net")
	if !ok || d.Group != "Prepaid" || !d.Enabled || !d.Enrolled {
		t.Fatalf("approved unknown device in file: %+v %v", d, ok)
	}
}

// Every row of the status table is reachable.
func TestStatusTable(t *testing.T) {
	s := startServer(t, serverOpts{unknown: "pending"})
	_, good := p256CSR(t, "device6.isp.com")
	reached := map[int]bool{}
	expect := func(name string, want int, ans *wire.Response) {
		t.Helper()
		if ans.Status != want {
			t.Errorf("%s: status %d (%s), want %d", name, ans.Status, ans.Error, want)
		}
		if want >= 2 && ans.Error == "" {
			t.Errorf("%s: no error= reason", name)
		}
		reached[ans.Status] = true
	}
	// 0, 1
	expect("getcacert", wire.StatusOK, s.do(wire.Request{Operation: wire.OpGetCACert}))
	_, unknownCSR := p256CSR(t, "stranger.example.org")
	expect("unknown device pending", wire.StatusPending, s.do(enrollReq(wire.OpRequest, t, unknownCSR)))
	// 2: malformed body
	a, _, _ := s.post(s.https, []byte("operation=request&nonce=%zz"), "text/html")
	expect("malformed", wire.StatusBadRequest, a)
	// 2: a CSR that is base64 but not DER (not a certificate request at all)
	notDER := enrollReq(wire.OpRequest, t, []byte{0, 0, 0})
	expect("CSR not DER", wire.StatusBadRequest, s.do(notDER))
	// 3: bad password
	r := enrollReq(wire.OpRequest, t, good)
	r.Password = "wrong"
	expect("bad password", wire.StatusBadCredentials, s.do(r))
	// a CSR may spell the device's name in another case
	_, upper := p256CSR(t, "DEVICE7.isp.com")
	expect("name in upper case", wire.StatusOK, s.do(enrollReq(wire.OpRequest, t, upper)))
	// 5 comes from a refusing server below; 6: device3 is disabled in Table 7
	_, d3 := p256CSR(t, "device3.itsp.com")
	expect("disabled device", wire.StatusDeviceDisabled, s.do(enrollReq(wire.OpRequest, t, d3)))
	// 7: weak key
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 1024)
	expect("weak key", wire.StatusBadCSR, s.do(enrollReq(wire.OpRequest, t, csrFor(t, rsaKey, "device6.isp.com"))))
	// 7: names the CA would refuse: a second name, a name that is no DNS name
	k7, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	extra, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "device6.isp.com"}, DNSNames: []string{"evil.example"}}, k7)
	if err != nil {
		t.Fatal(err)
	}
	expect("another DNS name", wire.StatusBadCSR, s.do(enrollReq(wire.OpRequest, t, extra)))
	expect("unknown name not a DNS name", wire.StatusBadCSR, s.do(enrollReq(wire.OpRequest, t, csrFor(t, k7, "bad_name.example"))))
	// 8: rejected by the administrator
	_, rej := p256CSR(t, "rejected.example.org")
	expect("to reject", wire.StatusPending, s.do(enrollReq(wire.OpRequest, t, rej)))
	for _, p := range s.pending() {
		if p.Device == "rejected.example.org" {
			if code, body := s.Admin("POST", "/enroll/reject/"+p.ID, `{"reason":"not ours"}`); code != 200 {
				t.Fatalf("reject: %d %s", code, body)
			}
		}
	}
	expect("rejected", wire.StatusRejected, s.do(enrollReq(wire.OpRetrieve, t, rej)))
	// 9: a nonce reused with another CSR
	r1 := enrollReq(wire.OpRequest, t, good)
	expect("first use", wire.StatusOK, s.do(r1))
	_, other := p256CSR(t, "device6.isp.com") // another key of the device
	r2 := enrollReq(wire.OpRequest, t, other)
	r2.Nonce = r1.Nonce
	expect("nonce reuse", wire.StatusNonceReused, s.do(r2))
	// … and with the same CSR but another device id
	r3 := r1
	r3.Device = "999" + r1.Device
	expect("nonce reuse with another device id", wire.StatusNonceReused, s.do(r3))
	expect("nonce repeated with the same request", wire.StatusOK, s.do(r1))
	// 11: retrieve of a request never made
	_, never := p256CSR(t, "device7.isp.com")
	expect("retrieve unknown", wire.StatusNotFound, s.do(enrollReq(wire.OpRetrieve, t, never)))
	// 12: plain HTTP under `ssl enabled`
	a, _, _ = s.post(s.http, wire.EncodeRequest(enrollReq(wire.OpRequest, t, good)), "text/html")
	expect("plain http", wire.StatusSSLRequired, a)
	a, _, _ = s.post(s.http, []byte("operation=getcacert"), "text/plain")
	expect("plain http getcacert", wire.StatusSSLRequired, a)
	for _, p := range []string{"ca.crt", "ca.crl"} {
		resp, err := http.Get(strings.TrimSuffix(s.http, "/") + "/" + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("plain http GET /%s under ssl enabled: HTTP %d, want 403", p, resp.StatusCode)
		}
	}
	// 13: customer differs from the account's
	rc := enrollReq(wire.OpRequest, t, good)
	rc.Username, rc.Customer = "cust", "999"
	expect("customer mismatch", wire.StatusCustomerMismatch, s.do(rc))
	// 13: device id differs from the one device6 enrolled with
	rd := enrollReq(wire.OpRequest, t, good)
	rd.Device = "42"
	expect("device id mismatch", wire.StatusCustomerMismatch, s.do(rd))
	// 15: unknown operation
	a, _, _ = s.post(s.https, []byte("operation=renew"), "text/plain")
	expect("unsupported", wire.StatusUnsupportedOperation, a)
	// 14: storage broken under the server: the requests folder is a file
	reqDir := filepath.Join(s.Dir, "data", "clearinghouse", "enroll", "requests")
	if err := os.RemoveAll(reqDir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(reqDir, []byte("not a folder"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, broken := p256CSR(t, "another.example.org")
	expect("server error", wire.StatusServerError, s.do(enrollReq(wire.OpRequest, t, broken)))
	os.Remove(reqDir)
	// 4: enrollment disabled in the configuration file (edit, then reload)
	b, _ := os.ReadFile(s.conf)
	if err := os.WriteFile(s.conf, bytes.Replace(b, []byte("enroll enabled"), []byte("enroll disabled"), 1), 0o640); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "enroll disabled", func() bool {
		return s.do(enrollReq(wire.OpRequest, t, good)).Status == wire.StatusEnrollmentDisabled
	})
	reached[wire.StatusEnrollmentDisabled] = true
	expect("getcacert while disabled", wire.StatusOK, s.do(wire.Request{Operation: wire.OpGetCACert}))

	// 5 and 10 on a server that refuses unknown devices and locks out fast
	s2 := startServer(t, serverOpts{unknown: "refuse", extra: "failures_allowed 2\n\t\tlockout 1m 1m"})
	_, unk := p256CSR(t, "stranger.example.org")
	// (a valid login: 127.0.0.1 is now a known address of demo's)
	expect("unknown refused", wire.StatusUnknownDevice, s2.do(enrollReq(wire.OpRequest, t, unk)))
	bad := enrollReq(wire.OpRequest, t, good)
	bad.Password = "guess"
	guesser, unknown := s2.from("127.0.0.3"), s2.from("127.0.0.2")
	for i := 0; i < 2; i++ {
		expect("guess", wire.StatusBadCredentials, guesser.do(bad))
	}
	expect("locked out", wire.StatusRateLimited, guesser.do(bad))
	// the right password is refused too while locked out, from an address
	// that has not logged in to the account; from one that has, it is not
	expect("locked out, right password", wire.StatusRateLimited, guesser.do(enrollReq(wire.OpRequest, t, good)))
	expect("locked out, right password, unknown address", wire.StatusRateLimited, unknown.do(enrollReq(wire.OpRequest, t, good)))
	expect("locked out, right password, known address", wire.StatusUnknownDevice, s2.do(enrollReq(wire.OpRequest, t, unk)))
	// guesses from the known address lock the account out there too
	for i := 0; i < 2; i++ {
		expect("guess from the known address", wire.StatusBadCredentials, s2.do(bad))
	}
	expect("locked out at the known address", wire.StatusRateLimited, s2.do(bad))
	expect("locked out at the known address, right password", wire.StatusRateLimited, s2.do(enrollReq(wire.OpRequest, t, good)))

	for _, st := range wire.Statuses() {
		if !reached[st.Code] {
			t.Errorf("status %d (%s) was never reached", st.Code, st.Name)
		}
	}
}

// Answers are what legacy clients can read: HTTP 200, Content-Length, a
// Content-Type, no chunking, raw base64 and a final newline.
func TestAnswerShape(t *testing.T) {
	s := startServer(t, serverOpts{})
	_, resp, raw := s.post(s.https, []byte("operation=getcacert"), "text/plain")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html" ||
		resp.ContentLength != int64(len(raw)) || len(resp.TransferEncoding) != 0 {
		t.Fatalf("answer: %d %q len %d/%d te %v", resp.StatusCode, resp.Header.Get("Content-Type"), resp.ContentLength, len(raw), resp.TransferEncoding)
	}
	if !bytes.HasPrefix(raw, []byte("status=0&certificate=MI")) || raw[len(raw)-1] != '\n' || bytes.Contains(raw, []byte("%")) {
		t.Fatalf("answer body %q", raw)
	}
	// oversized bodies are refused before parsing
	big := bytes.Repeat([]byte("a"), 70<<10)
	_, resp, _ = s.post(s.https, big, "text/plain")
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body: HTTP %d", resp.StatusCode)
	}
	// CA certificate over GET, DER
	r, err := s.client.Get(s.https + "ca.crt")
	if err != nil {
		t.Fatal(err)
	}
	der, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if _, err := x509.ParseCertificate(der); err != nil {
		t.Fatalf("ca.crt: %v", err)
	}
	_ = pem.EncodeToMemory
}

// `content_type text/plain` on the handler makes every answer text/plain:
// getcacert (the constant answer and the one over plain HTTP), an issued
// request and a refused one; without it they are text/html.
func TestHandlerContentType(t *testing.T) {
	for _, c := range []struct{ handler, want string }{
		{"", "text/html"},
		{"content_type text/plain", "text/plain"},
	} {
		s := startServer(t, serverOpts{handler: c.handler})
		check := func(what string, resp *http.Response, raw []byte, status int) {
			t.Helper()
			if ct := resp.Header.Get("Content-Type"); ct != c.want {
				t.Errorf("handler %q, %s: Content-Type %q, want %q", c.handler, what, ct, c.want)
			}
			ans, err := wire.DecodeResponse(raw)
			if resp.StatusCode != 200 || err != nil || ans.Status != status {
				t.Fatalf("handler %q, %s: HTTP %d %q (%v), want status %d", c.handler, what, resp.StatusCode, raw, err, status)
			}
		}
		_, resp, raw := s.post(s.https, []byte("operation=getcacert"), "text/plain")
		check("getcacert", resp, raw, wire.StatusOK)
		_, resp, raw = s.post(s.https, wire.EncodeRequest(wire.Request{Operation: wire.OpGetCACert, Nonce: nonce(t)}), "text/html")
		check("getcacert with a nonce", resp, raw, wire.StatusOK)
		_, resp, raw = s.post(s.http, []byte("operation=getcacert"), "text/plain")
		check("getcacert over plain HTTP", resp, raw, wire.StatusSSLRequired)
		_, csr := p256CSR(t, "device4.com")
		r := enrollReq(wire.OpRequest, t, csr)
		_, resp, raw = s.post(s.https, wire.EncodeRequest(r), wire.RequestContentType(r.Operation))
		check("request", resp, raw, wire.StatusOK)
		r = enrollReq(wire.OpRequest, t, csr)
		r.Password = "wrong"
		_, resp, raw = s.post(s.https, wire.EncodeRequest(r), wire.RequestContentType(r.Operation))
		check("request with a wrong password", resp, raw, wire.StatusBadCredentials)
	}
}

// An operator's edit that does not parse is never overwritten by the
// server's own edits: the certificate is still issued and delivered, and
// the device is marked enrolled once the file parses again.
func TestInvalidOperatorEditIsKept(t *testing.T) {
	s := startServer(t, serverOpts{})
	good, err := os.ReadFile(s.conf)
	if err != nil {
		t.Fatal(err)
	}
	broken := append(append([]byte{}, good...), []byte("device 'gw9.example.com' nogroup enabled\n")...)
	if err := os.WriteFile(s.conf, broken, 0o640); err != nil {
		t.Fatal(err)
	}
	key, csr := p256CSR(t, "device4.com") // enabled, not enrolled in Table 7
	ans := s.do(enrollReq(wire.OpRequest, t, csr))
	if ans.Status != wire.StatusOK {
		t.Fatalf("enrollment while the file is invalid: status %d %s", ans.Status, ans.Error)
	}
	checkIssued(t, ans.Certificate, s.getCACert(), "device4.com", key)
	time.Sleep(300 * time.Millisecond) // a few watch intervals
	if now, _ := os.ReadFile(s.conf); !bytes.Equal(now, broken) {
		t.Fatal("the server overwrote the operator's edit")
	}
	if err := os.WriteFile(s.conf, good, 0o640); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "device4.com marked enrolled after the fix", func() bool {
		d, ok := s.confFile().Device("device4.com")
		return ok && d.Enrolled
	})
	again := s.do(enrollReq(wire.OpRetrieve, t, csr))
	if again.Status != wire.StatusOK || !bytes.Equal(again.Certificate, ans.Certificate) {
		t.Fatalf("retrieve after the fix: status %d %s", again.Status, again.Error)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "data", "clearinghouse", "enroll", "unmarked")); err == nil {
		entries, _ := os.ReadDir(filepath.Join(s.Dir, "data", "clearinghouse", "enroll", "unmarked"))
		if len(entries) != 0 {
			t.Fatalf("%d deferred marks left in storage", len(entries))
		}
	}
}

// A crash after the request was stored but before the device record and
// the file's enrolled mark were written is repaired when the device asks
// for its certificate again.
func TestInterruptedIssuanceIsCompleted(t *testing.T) {
	s := startServer(t, serverOpts{})
	caCert := s.getCACert()
	key, csr := p256CSR(t, "device4.com") // enabled, not enrolled in Table 7
	first := s.do(enrollReq(wire.OpRequest, t, csr))
	if first.Status != wire.StatusOK {
		t.Fatalf("request: status %d %s", first.Status, first.Error)
	}
	s.Kill()
	// what the disk holds after a kill -9 between storing the request and
	// the device record
	devices := filepath.Join(s.Dir, "data", "clearinghouse", "enroll", "devices")
	if err := os.RemoveAll(devices); err != nil {
		t.Fatal(err)
	}
	f := s.confFile()
	if err := f.SetEnrolled("device4.com", false); err != nil {
		t.Fatal(err)
	}
	if err := f.Save(s.conf, configfile.SaveOptions{Backups: -1}); err != nil {
		t.Fatal(err)
	}

	s.Restart(s.tlsAddr, s.httpAddr)
	s.waitTLS()
	again := s.do(enrollReq(wire.OpRetrieve, t, csr))
	if again.Status != wire.StatusOK || !bytes.Equal(again.Certificate, first.Certificate) {
		t.Fatalf("retrieve after the crash: status %d %s", again.Status, again.Error)
	}
	checkIssued(t, again.Certificate, caCert, "device4.com", key)
	if d, _ := s.confFile().Device("device4.com"); !d.Enrolled {
		t.Fatal("device4.com not marked enrolled after the retry")
	}
	if entries, _ := os.ReadDir(devices); len(entries) != 1 {
		t.Fatalf("%d device records after the retry, want 1", len(entries))
	}
}

// blockRevokedList makes the CA's list of revoked serials impossible to
// read or write (a directory where the file belongs), so that revocations
// fail; the returned function puts things right.
func (s *server) blockRevokedList(t *testing.T) (unblock func()) {
	t.Helper()
	var caDir string
	filepath.WalkDir(filepath.Join(s.Dir, "data", "clearinghouse", "ca"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == "issued" {
			caDir = filepath.Dir(p)
		}
		return nil
	})
	if caDir == "" {
		t.Fatal("no CA directory in storage")
	}
	revoked := filepath.Join(caDir, "revoked.json")
	if err := os.RemoveAll(revoked); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(revoked, 0o700); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if err := os.Remove(revoked); err != nil {
			t.Fatal(err)
		}
	}
}

// enrollDevice4 enrolls device4.com with a new P-256 key and returns its
// certificate.
func (s *server) enrollDevice4() *x509.Certificate {
	t := s.t
	t.Helper()
	_, csr := p256CSR(t, "device4.com")
	a := s.do(enrollReq(wire.OpRequest, t, csr))
	if a.Status != wire.StatusOK {
		t.Fatalf("enrollment: status %d %s", a.Status, a.Error)
	}
	cert, err := x509.ParseCertificate(a.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// crlEntry is the entry of cert in the CRL of caCert, nil if it has none.
func (s *server) crlEntry(caCert, cert *x509.Certificate) *x509.RevocationListEntry {
	for _, e := range s.fetchCRL(caCert).RevokedCertificateEntries {
		if e.SerialNumber.Cmp(cert.SerialNumber) == 0 {
			return &e
		}
	}
	return nil
}

// reenrollmentCutShort enrolls device4.com, then re-enrolls it with a new
// key while its certificate cannot be revoked, which fails (status 14). It
// returns the first certificate and the second key and CSR.
func (s *server) reenrollmentCutShort() (*x509.Certificate, crypto.Signer, []byte) {
	t := s.t
	t.Helper()
	old := s.enrollDevice4()
	unblock := s.blockRevokedList(t)
	defer unblock()
	key2, csr2 := p256CSR(t, "device4.com")
	if a := s.do(enrollReq(wire.OpRequest, t, csr2)); a.Status != wire.StatusServerError {
		t.Fatalf("re-enrollment while the previous certificate cannot be revoked: status %d %s, want %d",
			a.Status, a.Error, wire.StatusServerError)
	}
	return old, key2, csr2
}

// A re-enrollment whose revocation of the previous certificate fails is
// not answered as done: the device record keeps naming the previous
// certificate, and the device's retry supersedes it and gets the new one.
// (Answering status 0 with the previous certificate still valid, as a
// logged failure did before, left it valid for good.)
func TestReenrollmentRevocationFailureIsRetried(t *testing.T) {
	s := startServer(t, serverOpts{})
	caCert := s.getCACert()
	old, key2, csr2 := s.reenrollmentCutShort()
	again := s.do(enrollReq(wire.OpRetrieve, t, csr2))
	if again.Status != wire.StatusOK {
		t.Fatalf("retry: status %d %s", again.Status, again.Error)
	}
	checkIssued(t, again.Certificate, caCert, "device4.com", key2)
	if s.crlEntry(caCert, old) == nil {
		t.Fatal("the superseded certificate is not in the CRL after the retry")
	}
}

// A re-enrollment cut short after its certificate was issued (here: the
// previous certificate cannot be revoked) leaves a certificate that the
// device record never named. The device's next enrollment with yet another
// key supersedes it too, and that key's certificate is not delivered again.
func TestUndeliveredCertificateIsSuperseded(t *testing.T) {
	s := startServer(t, serverOpts{})
	caCert := s.getCACert()
	certA, _, csrB := s.reenrollmentCutShort()

	// the device gives up on key B and enrolls with a new key C
	keyC, csrC := p256CSR(t, "device4.com")
	c := s.do(enrollReq(wire.OpRequest, t, csrC))
	if c.Status != wire.StatusOK {
		t.Fatalf("enrollment with key C: status %d %s", c.Status, c.Error)
	}
	certC := checkIssued(t, c.Certificate, caCert, "device4.com", keyC)

	// A and B are revoked, C is not
	revoked := map[string]bool{}
	for _, e := range s.fetchCRL(caCert).RevokedCertificateEntries {
		revoked[e.SerialNumber.String()] = true
	}
	if !revoked[certA.SerialNumber.String()] || revoked[certC.SerialNumber.String()] || len(revoked) != 2 {
		t.Fatalf("CRL holds %d serials (A %v, C %v), want A and B", len(revoked),
			revoked[certA.SerialNumber.String()], revoked[certC.SerialNumber.String()])
	}
	// and key B's certificate is not handed out again
	if b := s.do(enrollReq(wire.OpRetrieve, t, csrB)); b.Status != wire.StatusRejected {
		t.Fatalf("retrieve with key B: status %d %s, want %d", b.Status, b.Error, wire.StatusRejected)
	}
}

// Two pending requests for one device with different customer ids: once
// one is approved, the other can no longer be (409), since the device's ids
// are now recorded; the first certificate stays good.
func TestApprovalKeepsRecordedIDs(t *testing.T) {
	s := startServer(t, serverOpts{approval: "manual"})
	caCert := s.getCACert()
	for _, customer := range []string{"1000", "2000"} {
		_, csr := p256CSR(t, "device4.com")
		r := enrollReq(wire.OpRequest, t, csr)
		r.Customer, r.Device = customer, "99"+customer
		if a := s.do(r); a.Status != wire.StatusPending {
			t.Fatalf("customer %s: status %d %s", customer, a.Status, a.Error)
		}
	}
	p := s.pending()
	if len(p) != 2 {
		t.Fatalf("%d pending, want 2", len(p))
	}
	if code, body := s.Admin("POST", "/enroll/approve/"+p[0].ID, ""); code != 200 {
		t.Fatalf("first approval: %d %s", code, body)
	}
	code, body := s.Admin("POST", "/enroll/approve/"+p[1].ID, "")
	if code != 409 || !strings.Contains(body, "differs") {
		t.Fatalf("second approval with other ids: %d %s, want 409", code, body)
	}
	if left := s.pending(); len(left) != 1 || left[0].ID != p[1].ID {
		t.Fatalf("pending after the refusal: %+v", left)
	}
	crl := s.fetchCRL(caCert)
	if n := len(crl.RevokedCertificateEntries); n != 0 {
		t.Fatalf("%d certificates revoked, want none", n)
	}
}

// A CSR that spells a device's IP address otherwise ("[192.0.2.10]",
// "::ffff:192.0.2.10", "2001:db8:0::1") names the device the file lists, as
// its certificate would: not an unknown device whose request would skip the
// disabled check and the ids the device enrolled with, and whose approval
// would add a second line for it.
func TestDeviceNameSpellings(t *testing.T) {
	s := startServer(t, serverOpts{conf: "enroll enabled\nssl enabled\ngroup \"\"\n" +
		"device 192.0.2.10 \"\" enabled\ndevice 192.0.2.20 \"\" disabled\ndevice '2001:DB8::1' \"\" enabled\n"})
	req := func(cn, customer string) wire.Request {
		_, csr := p256CSR(t, cn)
		r := enrollReq(wire.OpRequest, t, csr)
		r.Customer = customer
		return r
	}
	if a := s.do(req("192.0.2.10", "2")); a.Status != wire.StatusOK {
		t.Fatalf("192.0.2.10: status %d %s", a.Status, a.Error)
	}
	for _, cn := range []string{"[192.0.2.10]", "::ffff:192.0.2.10"} {
		if a := s.do(req(cn, "7")); a.Status != wire.StatusCustomerMismatch {
			t.Errorf("%s with another customer: status %d %s, want %d", cn, a.Status, a.Error, wire.StatusCustomerMismatch)
		}
	}
	if a := s.do(req("[192.0.2.20]", "2")); a.Status != wire.StatusDeviceDisabled {
		t.Errorf("[192.0.2.20], disabled: status %d %s, want %d", a.Status, a.Error, wire.StatusDeviceDisabled)
	}
	a := s.do(req("2001:db8:0::1", "2"))
	if a.Status != wire.StatusOK {
		t.Fatalf("2001:db8:0::1: status %d %s", a.Status, a.Error)
	}
	cert, err := x509.ParseCertificate(a.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "2001:db8::1" || len(cert.IPAddresses) != 1 || cert.IPAddresses[0].String() != "2001:db8::1" {
		t.Errorf("certificate names %q %v, want 2001:db8::1", cert.Subject.CommonName, cert.IPAddresses)
	}
	if p := s.pending(); len(p) != 0 {
		t.Errorf("pending: %+v", p)
	}
	f := s.confFile()
	if len(f.Devices) != 3 {
		t.Errorf("file lists %d devices, want 3: %+v", len(f.Devices), f.Devices)
	}
	if d, ok := f.Device("2001:DB8::1"); !ok || !d.Enrolled {
		t.Errorf("2001:DB8::1 in the file: %+v %v, want enrolled", d, ok)
	}

	// an unknown device's request names it as its certificate will, and
	// its approval adds it to the file so
	if a := s.do(req("[2001:DB8:0::7]", "2")); a.Status != wire.StatusPending {
		t.Fatalf("unknown [2001:DB8:0::7]: status %d %s", a.Status, a.Error)
	}
	p := s.pending()
	if len(p) != 1 || p[0].Device != "2001:db8::7" {
		t.Fatalf("pending: %+v, want one request for 2001:db8::7", p)
	}
	if code, body := s.Admin("POST", "/enroll/approve/"+p[0].ID, ""); code != 200 {
		t.Fatalf("approving 2001:db8::7: %d %s", code, body)
	}
	waitFor(t, "the approved device in the file", func() bool {
		d, ok := s.confFile().Device("2001:db8::7")
		return ok && d.Name == "2001:db8::7" && d.Enrolled
	})

	// a request made while the file did not list the device, which the
	// operator then adds spelled otherwise, is not approved under the
	// request's spelling (its record and lock would not be the device's)
	if a := s.do(req("2001:db8::5", "2")); a.Status != wire.StatusPending {
		t.Fatalf("unknown 2001:db8::5: status %d %s", a.Status, a.Error)
	}
	b, _ := os.ReadFile(s.conf)
	if err := os.WriteFile(s.conf, append(b, "device '2001:DB8:0::5' \"\" enabled\n"...), 0o640); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "reload", func() bool {
		_, body := s.Admin("GET", "/enroll/devices", "")
		return strings.Contains(body, "2001:DB8:0::5")
	})
	p = s.pending()
	if len(p) != 1 {
		t.Fatalf("pending: %+v", p)
	}
	if code, body := s.Admin("POST", "/enroll/approve/"+p[0].ID, ""); code != 409 || !strings.Contains(body, "2001:DB8:0::5") {
		t.Fatalf("approving 2001:db8::5 listed as 2001:DB8:0::5: %d %s, want 409", code, body)
	}
}

// A device disabled in the file while Caddy was not running has its
// certificate revoked when Caddy starts again.
func TestDisabledWhileStoppedIsRevoked(t *testing.T) {
	s := startServer(t, serverOpts{})
	caCert := s.getCACert()
	cert := s.enrollDevice4()
	inCRL := func() bool { return s.crlEntry(caCert, cert) != nil }
	if inCRL() {
		t.Fatal("revoked before it was disabled")
	}
	s.Kill()
	f := s.confFile()
	if err := f.SetEnabled("device4.com", false); err != nil {
		t.Fatal(err)
	}
	if err := f.Save(s.conf, configfile.SaveOptions{Backups: -1}); err != nil {
		t.Fatal(err)
	}
	s.Restart(s.tlsAddr, s.httpAddr)
	s.waitTLS()
	waitFor(t, "the disabled device's certificate in the CRL", inCRL)
}

// A device the operator disables in the file while Caddy runs has its
// certificate revoked for cessationOfOperation once the watcher sees the
// edit, without any request of the device; its new requests get status 6.
func TestDisabledWhileRunningIsRevoked(t *testing.T) {
	s := startServer(t, serverOpts{})
	caCert := s.getCACert()
	cert := s.enrollDevice4()
	entry := func() *x509.RevocationListEntry { return s.crlEntry(caCert, cert) }
	if entry() != nil {
		t.Fatal("revoked before it was disabled")
	}

	// the operator's edit: enabled becomes disabled on device4.com's line
	b, err := os.ReadFile(s.conf)
	if err != nil {
		t.Fatal(err)
	}
	const line = "device 'device4.com' 'HK Telecom' enabled"
	if bytes.Count(b, []byte(line)) != 1 {
		t.Fatalf("configuration file lacks %q:\n%s", line, b)
	}
	b = bytes.Replace(b, []byte(line), []byte("device 'device4.com' 'HK Telecom' disabled"), 1)
	if err := os.WriteFile(s.conf, b, 0o640); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the disabled device's certificate in the CRL", func() bool { return entry() != nil })
	if e := entry(); e.ReasonCode != 5 {
		t.Errorf("CRL entry of the disabled device's certificate: reason %d, want 5 (cessationOfOperation)", e.ReasonCode)
	}

	_, csr2 := p256CSR(t, "device4.com")
	if a := s.do(enrollReq(wire.OpRequest, t, csr2)); a.Status != wire.StatusDeviceDisabled {
		t.Fatalf("request of the disabled device: status %d %s, want %d", a.Status, a.Error, wire.StatusDeviceDisabled)
	}
}

// After the operational CA changes (the crypto item removed: a new CA),
// devices enroll again: with the key they had (not answered with the
// earlier CA's certificate) and with a new one (the earlier certificate,
// which this CA cannot revoke, does not stop it).
func TestReenrollAfterCAChange(t *testing.T) {
	s := startServer(t, serverOpts{})
	oldCA := s.getCACert()
	key1, csr1 := p256CSR(t, "device4.com")
	if a := s.do(enrollReq(wire.OpRequest, t, csr1)); a.Status != wire.StatusOK {
		t.Fatalf("first enrollment: status %d %s", a.Status, a.Error)
	}
	s.Kill()
	replaceCryptoLine(t, s.conf, "")
	s.Restart(s.tlsAddr, s.httpAddr)
	s.waitTLS()
	newCA := s.getCACert()
	if newCA.Equal(oldCA) {
		t.Fatal("the CA did not change")
	}
	again := s.do(enrollReq(wire.OpRequest, t, csr1))
	if again.Status != wire.StatusOK {
		t.Fatalf("the same key after the CA change: status %d %s", again.Status, again.Error)
	}
	checkIssued(t, again.Certificate, newCA, "device4.com", key1)
	key2, csr2 := p256CSR(t, "device4.com")
	fresh := s.do(enrollReq(wire.OpRequest, t, csr2))
	if fresh.Status != wire.StatusOK {
		t.Fatalf("a new key after the CA change: status %d %s", fresh.Status, fresh.Error)
	}
	checkIssued(t, fresh.Certificate, newCA, "device4.com", key2)
}

// A key whose certificate was revoked for key compromise gets no new one;
// after other revocations (here: unspecified) the key enrolls afresh.
func TestReenrollSameKeyAfterRevocation(t *testing.T) {
	s := startServer(t, serverOpts{})
	caCert := s.getCACert()
	for _, c := range []struct {
		device string
		reason int
		want   int
	}{
		{"device4.com", 1, wire.StatusRejected},
		{"device7.isp.com", 0, wire.StatusOK},
	} {
		key, csr := p256CSR(t, c.device)
		first := s.do(enrollReq(wire.OpRequest, t, csr))
		if first.Status != wire.StatusOK {
			t.Fatalf("%s: status %d %s", c.device, first.Status, first.Error)
		}
		cert, _ := x509.ParseCertificate(first.Certificate)
		body := fmt.Sprintf(`{"serial":%q,"reason":%d}`, cert.SerialNumber.Text(16), c.reason)
		if code, out := s.Admin("POST", "/enroll/revoke", body); code != 200 {
			t.Fatalf("revoke: %d %s", code, out)
		}
		a := s.do(enrollReq(wire.OpRequest, t, csr))
		if a.Status != c.want {
			t.Fatalf("%s, same key after revocation for reason %d: status %d %s, want %d", c.device, c.reason, a.Status, a.Error, c.want)
		}
		if a.Status == wire.StatusOK {
			got := checkIssued(t, a.Certificate, caCert, c.device, key)
			if got.SerialNumber.Cmp(cert.SerialNumber) == 0 {
				t.Fatalf("%s: the revoked certificate was delivered again", c.device)
			}
		}
	}
}

// The admin revoke refuses what it cannot do with 4xx, not 500.
func TestAdminRevokeRefusals(t *testing.T) {
	// no routes: device4.com can leave the file
	s := startServer(t, serverOpts{conf: "enroll enabled\nssl enabled\ngroup 'HK Telecom'\n" +
		"device 'device4.com' 'HK Telecom' enabled\ndevice 'device5.com' 'HK Telecom' disabled\n"})
	_, csr := p256CSR(t, "device4.com")
	a := s.do(enrollReq(wire.OpRequest, t, csr))
	if a.Status != wire.StatusOK {
		t.Fatalf("enrollment: status %d %s", a.Status, a.Error)
	}
	cert, _ := x509.ParseCertificate(a.Certificate)
	serial := cert.SerialNumber.Text(16)
	for _, c := range []struct {
		body string
		code int
		want string
	}{
		{fmt.Sprintf(`{"serial":%q,"reason":2}`, serial), 400, "reason"},
		{fmt.Sprintf(`{"serial":%q,"reason":6}`, serial), 400, "reason"},
		{`{"device":"device4.com","reason":7}`, 400, "reason"},
		{`{"device":"bad name!"}`, 400, "not a DNS name"},
		{`{"device":"nosuch.com","reason":3}`, 404, "no device nosuch.com: it is not in the configuration file"},
		{`{"device":"device5.com"}`, 200, `"revoked": []`}, // in the file, never enrolled
		{`{"serial":"not hex"}`, 400, "serial"},
		{`{"serial":"abcdef0123"}`, 404, "no certificate"},
		{`{}`, 400, "exactly one"},
		{fmt.Sprintf(`{"serial":%q,"reason":1}`, serial), 200, serial},
		{fmt.Sprintf(`{"serial":%q}`, serial), 200, serial}, // again: a no-op
	} {
		if code, out := s.Admin("POST", "/enroll/revoke", c.body); code != c.code || !strings.Contains(out, c.want) {
			t.Errorf("revoke %s: %d %s, want %d with %q", c.body, code, out, c.code, c.want)
		}
	}

	// a device removed from the file still has its certificates: revocable
	b, err := os.ReadFile(s.conf)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte("\ndevice 'device4.com' "))
	if i < 0 {
		t.Fatalf("configuration file lacks device4.com:\n%s", b)
	}
	end := i + 1 + bytes.IndexByte(b[i+1:], '\n')
	if err := os.WriteFile(s.conf, append(b[:i:i], b[end:]...), 0o640); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the file without device4.com", func() bool {
		_, out := s.Admin("GET", "/enroll/devices", "")
		return !strings.Contains(out, "device4.com")
	})
	if code, out := s.Admin("POST", "/enroll/revoke", `{"device":"device4.com"}`); code != 200 || !strings.Contains(out, `"revoked"`) {
		t.Errorf("revoke of a device removed from the file: %d %s, want 200", code, out)
	}

	// the command line says so, and fails
	out, errOut, code := runCaddy(t, s.Dir, "enroll", "revoke", "--device", "nosuch.com", "--reason", "3", "--address", s.AdminAddr)
	if code == 0 || !strings.Contains(errOut, "HTTP 404") || !strings.Contains(errOut, "no device nosuch.com") {
		t.Errorf("caddy enroll revoke --device nosuch.com: exit %d\n%s%s", code, out, errOut)
	}
}

// Approving an unknown device into a group the file lacks is refused (it
// went to the default group); the request stays pending.
func TestApproveIntoUnknownGroup(t *testing.T) {
	s := startServer(t, serverOpts{approval: "manual"})
	_, csr := p256CSR(t, "stranger.example.org")
	if a := s.do(enrollReq(wire.OpRequest, t, csr)); a.Status != wire.StatusPending {
		t.Fatalf("status %d %s", a.Status, a.Error)
	}
	p := s.pending()
	if len(p) != 1 {
		t.Fatalf("%d pending", len(p))
	}
	if code, body := s.Admin("POST", "/enroll/approve/"+p[0].ID, `{"group":"Prepayd"}`); code != 400 || !strings.Contains(body, "Prepayd") {
		t.Fatalf("approve into a mistyped group: %d %s, want 400", code, body)
	}
	if left := s.pending(); len(left) != 1 {
		t.Fatal("the refused approval decided the request")
	}
	if code, body := s.Admin("POST", "/enroll/approve/"+p[0].ID, `{"group":"Prepaid"}`); code != 200 {
		t.Fatalf("approve into Prepaid: %d %s", code, body)
	}
	if d, ok := s.confFile().Device("stranger.example.org"); !ok || d.Group != "Prepaid" {
		t.Fatalf("device added as %+v", d)
	}
}

// Answers are never compressed, even on a site with `encode`: seed-era
// clients read bodies by Content-Length only.
func TestAnswersNotCompressed(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	// plain_getcacert: a CA certificate answer is over encode's 512-byte minimum
	site := fmt.Sprintf("http://%s {\n\tbind 127.0.0.1\n\tencode gzip\n\tenroll {\n\t\tplain_getcacert\n\t}\n}", addr)
	startServer(t, serverOpts{sites: site, waitAddrs: []string{addr}})
	c := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	req, _ := http.NewRequest("POST", "http://"+addr+"/", strings.NewReader("operation=getcacert"))
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if enc := resp.Header.Get("Content-Encoding"); enc != "" || resp.ContentLength != int64(len(raw)) || !bytes.HasPrefix(raw, []byte("status=0&certificate=")) {
		t.Fatalf("Content-Encoding %q, Content-Length %d for %d bytes: %.40q", enc, resp.ContentLength, len(raw), raw)
	}
}

// A device that makes a new request with a new key at every restart while
// it waits for approval keeps at most maxPendingPerDevice of them pending
// (the oldest are rejected as superseded), and once one of its requests is
// issued, those it made before are rejected: approving one of them later
// would supersede the certificate it enrolled for.
func TestStalePendingRequestsSuperseded(t *testing.T) {
	const maxPendingPerDevice = 4 // as the server's
	s := startServer(t, serverOpts{approval: "manual"})
	caCert := s.getCACert()
	var csrs [][]byte
	keys := make([]crypto.Signer, 6)
	for i := range keys {
		var csr []byte
		keys[i], csr = p256CSR(t, "device4.com")
		csrs = append(csrs, csr)
		if a := s.do(enrollReq(wire.OpRequest, t, csr)); a.Status != wire.StatusPending {
			t.Fatalf("request %d: status %d %s", i, a.Status, a.Error)
		}
	}
	p := s.pending() // in id order
	if len(p) != maxPendingPerDevice {
		t.Fatalf("%d pending requests of one device, want %d: %+v", len(p), maxPendingPerDevice, p)
	}
	slices.SortFunc(p, func(a, b pendingInfo) int { return a.Created.Compare(b.Created) })
	for i := range 2 {
		if a := s.do(enrollReq(wire.OpRetrieve, t, csrs[i])); a.Status != wire.StatusRejected {
			t.Errorf("retrieve of request %d, beyond the %d newest: status %d %s, want rejected", i, maxPendingPerDevice, a.Status, a.Error)
		}
	}
	// approving the fourth (p[1], oldest first) rejects the
	// third, made before it; the fifth and sixth stay pending
	if code, body := s.Admin("POST", "/enroll/approve/"+p[1].ID, ""); code != 200 {
		t.Fatalf("approve: %d %s", code, body)
	}
	left := s.pending()
	slices.SortFunc(left, func(a, b pendingInfo) int { return a.Created.Compare(b.Created) })
	if len(left) != 2 || left[0].ID != p[2].ID || left[1].ID != p[3].ID {
		t.Fatalf("pending after approving the fourth: %+v, want the fifth and sixth (%s %s)", left, p[2].ID, p[3].ID)
	}
	if a := s.do(enrollReq(wire.OpRetrieve, t, csrs[2])); a.Status != wire.StatusRejected {
		t.Errorf("retrieve of the third request: status %d %s, want rejected (superseded)", a.Status, a.Error)
	}
	a := s.do(enrollReq(wire.OpRetrieve, t, csrs[3]))
	if a.Status != wire.StatusOK {
		t.Fatalf("retrieve of the approved request: status %d %s", a.Status, a.Error)
	}
	checkIssued(t, a.Certificate, caCert, "device4.com", keys[3])
	_, body := s.Admin("GET", "/enroll/requests?state=rejected", "")
	if n := strings.Count(body, "superseded"); n != 3 {
		t.Errorf("%d rejected requests say superseded, want 3: %s", n, body)
	}
}

// Supersession on issuance takes only the device's own earlier requests
// (same device and customer ids): another claimant's request of the same
// name stays pending for the operator to see.
func TestSupersessionKeepsOtherClaimants(t *testing.T) {
	s := startServer(t, serverOpts{approval: "manual"})
	request := func(customer string) []byte {
		_, csr := p256CSR(t, "newgw.example.net")
		r := enrollReq(wire.OpRequest, t, csr)
		r.Customer = customer
		if a := s.do(r); a.Status != wire.StatusPending {
			t.Fatalf("request of customer %s: status %d %s", customer, a.Status, a.Error)
		}
		return csr
	}
	request("2000") // another claimant, first
	request("0")
	request("0")
	p := s.pending()
	slices.SortFunc(p, func(a, b pendingInfo) int { return a.Created.Compare(b.Created) })
	if len(p) != 3 {
		t.Fatalf("pending: %+v", p)
	}
	if code, body := s.Admin("POST", "/enroll/approve/"+p[2].ID, ""); code != 200 {
		t.Fatalf("approve: %d %s", code, body)
	}
	if left := s.pending(); len(left) != 1 || left[0].ID != p[0].ID {
		t.Fatalf("pending after approving the device's newer request: %+v, want only the other claimant's %s", left, p[0].ID)
	}
}
