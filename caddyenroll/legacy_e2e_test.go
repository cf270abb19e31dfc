package caddyenroll_test

// End-to-end tests of the legacy profile, speaking to a real Caddy exactly
// as the OSP Toolkit's `enroll` client does (raw request bytes, TLS without
// SNI, its way of reading answers) and checking the issued certificates the
// way it does: MD5-RSA signatures over the raw TBS bytes, PrintableString
// names, UTCTime dates. The server runs on a test variant of
// examples/legacy.Caddyfile (free ports, temporary storage, a copy of
// examples/legacy.conf), derived from the shipped file so the two cannot
// drift apart. toolkit_interop_test.go runs the real client.

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	ctx509 "github.com/google/certificate-transparency-go/x509"
	ctpkix "github.com/google/certificate-transparency-go/x509/pkix"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/clearinghouse-dev/caddy-clearinghouse/internal/testutil"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// The demo account of examples/legacy.Caddyfile (bin/enroll.sh's).
const (
	legUser     = "trans"
	legPassword = "nexus"
	legCustomer = "1000"
	legShipHash = "$2a$14$.VTJ1jsmxgpQL62fSCIAyenqgsBHXcxt30SFE1nnKGR2HNzJXIrhO"
)

// rsa512CSR is what bin/enroll.sh's unmodified `openssl req -newkey rsa:512
// -md5` makes (CN gw1.example.com, PrintableString via its openssl.cnf).
// Kept as a constant: Go refuses to generate RSA keys under 1024 bits.
const rsa512CSR = `-----BEGIN CERTIFICATE REQUEST-----
MIHTMH8CAQAwGjEYMBYGA1UEAxMPZ3cxLmV4YW1wbGUuY29tMFwwDQYJKoZIhvcN
AQEBBQADSwAwSAJBALb+jtvQnypQZoJ/wL0O8l5wMZyhjmqSSZhvGqmYJe/PaRJI
jV9wCVZ+aqrUfSM3sYPos33qrcrksxNqX3I7duMCAwEAAaAAMA0GCSqGSIb3DQEB
BAUAA0EAQmfr+DdssF8FE2ssSWQH9MTxM4/1gh8mw7zwiv4mT3q/UfkKXpcG0df7
5ToEKlNqKwigQ/OYLdraARozWZmSmg==
-----END CERTIFICATE REQUEST-----
`

var (
	oidMD5WithRSA      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 4}
	oidMD5WithRSABytes = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04}
)

// ---------------------------------------------------------------------------
// The server: a test variant of examples/legacy.Caddyfile.

type legOpts struct {
	approval    string // default "auto"
	noLegacy    bool   // drop `ca legacy`; both sites use the modern profile
	modernSite  bool   // add an HTTPS site with `enroll modern`
	extraGlobal string // more lines for the global enroll block
	extraConf   string // more lines for the configuration file copy
}

type legServer struct {
	*testutil.Caddy
	t          *testing.T
	httpAddr   string // plain-HTTP site (getcacert only)
	tlsAddr    string // HTTPS site (request, retrieve)
	modernAddr string // HTTPS site of the modern profile, with legOpts.modernSite
	conf       string // path of the configuration file copy
}

var (
	legHashOnce sync.Once
	legHashes   map[string]string
)

// legHash is a bcrypt hash of password at the minimum cost (the shipped
// cost-14 hash takes seconds per check; TestLegacyCaddyfileShipped checks
// that one once).
func legHash(t testing.TB, password string) string {
	legHashOnce.Do(func() {
		legHashes = map[string]string{}
		for _, p := range []string{legPassword, "01234567"} {
			h, err := bcrypt.GenerateFromPassword([]byte(p), bcrypt.MinCost)
			if err != nil {
				panic(err)
			}
			legHashes[p] = string(h)
		}
	})
	h, ok := legHashes[password]
	if !ok {
		t.Fatalf("no hash prepared for %q", password)
	}
	return h
}

// replaceOnce replaces old by new in s, failing the test unless old occurs
// exactly once (an edited example must fail loudly here, not silently test
// something else).
func replaceOnce(t testing.TB, s, old, new string) string {
	t.Helper()
	if n := strings.Count(s, old); n != 1 {
		t.Fatalf("examples/legacy.Caddyfile: %q occurs %d times, want exactly once (update legacyCaddyfile)", old, n)
	}
	return strings.Replace(s, old, new, 1)
}

// legacyCaddyfile turns the shipped examples/legacy.Caddyfile into a test
// variant: free ports on 127.0.0.1, storage and configuration file in dir,
// a fast password hash.
func legacyCaddyfile(t testing.TB, dir, admin, httpAddr, tlsAddr, modernAddr, confPath string, o legOpts) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "examples", "legacy.Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	s = replaceOnce(t, s, "\tadmin localhost:2020\n", "\tadmin "+admin+"\n")
	s = replaceOnce(t, s, "\tstorage file_system ./.data/legacy\n", "\tstorage file_system "+filepath.Join(dir, "data")+"\n")
	s = replaceOnce(t, s, "\t\tconfig_file examples/legacy.conf\n", "\t\tconfig_file "+confPath+"\n")
	approval := o.approval
	if approval == "" {
		approval = "auto"
	}
	s = replaceOnce(t, s, "\t\tapproval auto\n", "\t\tapproval "+approval+"\n")
	s = replaceOnce(t, s, "\t\taccount trans "+legShipHash+" 1000\n",
		"\t\taccount trans "+legHash(t, legPassword)+" 1000\n\t\twatch_interval 100ms\n"+o.extraGlobal+"\n")
	s = replaceOnce(t, s, "\nhttp://127.0.0.1:5045 {\n", "\nhttp://"+httpAddr+" {\n")
	s = replaceOnce(t, s, "\nhttps://127.0.0.1:1443 {\n", "\nhttps://"+tlsAddr+" {\n")
	if o.noLegacy {
		s = replaceOnce(t, s, "\t\tca legacy {\n\t\t\talgorithm rsa2048\n\t\t}\n", "")
		s = replaceOnce(t, s, "\tenroll legacy {\n", "\tenroll {\n")
		s = replaceOnce(t, s, "\tenroll legacy\n", "\tenroll\n")
		s = replaceOnce(t, s, "\t\t\tprofile legacy\n", "\t\t\tprofile modern\n") // the HTTPS site's osp token signer
	}
	if o.modernSite {
		s += fmt.Sprintf("\nhttps://%s {\n\tbind 127.0.0.1\n\ttls internal\n\tenroll modern\n}\n", modernAddr)
	}
	return s
}

func startLegacy(t *testing.T, o legOpts) *legServer {
	t.Helper()
	dir := t.TempDir()
	conf, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "examples", "legacy.conf"))
	if err != nil {
		t.Fatal(err)
	}
	confPath := filepath.Join(dir, "legacy.conf")
	if err := os.WriteFile(confPath, append(conf, o.extraConf...), 0o640); err != nil {
		t.Fatal(err)
	}
	s := &legServer{t: t, conf: confPath,
		httpAddr: fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t)),
		tlsAddr:  fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t)),
	}
	admin := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	wait := []string{s.httpAddr, s.tlsAddr}
	if o.modernSite {
		s.modernAddr = fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
		wait = append(wait, s.modernAddr)
	}
	cf := legacyCaddyfile(t, dir, admin, s.httpAddr, s.tlsAddr, s.modernAddr, confPath, o)
	s.Caddy = testutil.StartCaddy(t, dir, cf, admin, wait...)
	for _, a := range wait[1:] {
		legWaitTLS(t, a)
	}
	return s
}

// legWaitTLS waits until a TLS handshake without SNI succeeds (Caddy gets
// the site's certificate from its internal CA in the background).
func legWaitTLS(t testing.TB, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, tkTLSConfig())
		if err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no TLS handshake without SNI on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// adminCA returns the DER of a profile's CA certificate from the admin API.
func (s *legServer) adminCA(profile string) []byte {
	s.t.Helper()
	code, body := s.Admin("GET", "/enroll/ca/"+profile, "")
	if code != 200 {
		s.t.Fatalf("GET /enroll/ca/%s: %d %s", profile, code, body)
	}
	var info struct {
		Certificate string `json:"certificate_pem"`
	}
	if err := json.Unmarshal([]byte(body), &info); err != nil {
		s.t.Fatal(err)
	}
	p, _ := pem.Decode([]byte(info.Certificate))
	if p == nil {
		s.t.Fatalf("no PEM in %s", body)
	}
	return p.Bytes
}

func (s *legServer) pendingIDs() map[string]string {
	s.t.Helper()
	code, body := s.Admin("GET", "/enroll/pending", "")
	if code != 200 {
		s.t.Fatalf("GET /enroll/pending: %d %s", code, body)
	}
	var reqs []struct{ ID, Device string }
	if err := json.Unmarshal([]byte(body), &reqs); err != nil {
		s.t.Fatalf("%v: %s", err, body)
	}
	out := map[string]string{}
	for _, r := range reqs {
		out[r.Device] = r.ID
	}
	return out
}

// ---------------------------------------------------------------------------
// The client: what the OSP Toolkit 4.33.1 `enroll` puts on the wire and how
// it reads the answer (src/osphttp.c, src/ospsocket.c, enroll/*.c).

// tkTLSConfig is the toolkit's TLS client: no SNI (ServerName is empty, so
// crypto/tls sends none), no verification of the server's certificate.
func tkTLSConfig() *tls.Config {
	return &tls.Config{InsecureSkipVerify: true}
}

// tkAnswer is an answer as the toolkit reads it.
type tkAnswer struct {
	header string // lower-cased, as OSPPHttpVerifyResponse leaves it
	body   []byte // Content-Length bytes, last one dropped (OSPM_STRNCPY)
	raw    []byte // Content-Length bytes as received
}

// field finds a variable's value as OSPPExtractFieldFromResponse does:
// strstr for the name, accepted only at the start or after one of "&\n ",
// then sscanf "%*[^=]=%[^& ]" — no URL decoding.
func (a *tkAnswer) field(name string) (string, bool) {
	s := string(a.body)
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	for off := 0; off < len(s); off++ {
		j := strings.Index(s[off:], name)
		if j < 0 {
			return "", false
		}
		p := off + j
		if p == 0 || strings.IndexByte("&\n ", s[p-1]) >= 0 {
			rest := s[p:]
			eq := strings.IndexByte(rest, '=')
			if eq > 0 {
				v := rest[eq+1:]
				if k := strings.IndexAny(v, "& "); k >= 0 {
					v = v[:k]
				}
				if v != "" {
					return v, true
				}
			}
		}
		off = p
	}
	return "", false
}

// status is the answer's status as the toolkit takes it: digits only.
func (a *tkAnswer) status(t testing.TB) int {
	t.Helper()
	v, ok := a.field("status")
	if !ok {
		t.Fatalf("answer without status: %q", a.raw)
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			t.Fatalf("status %q is not all digits (the toolkit refuses it): %q", v, a.raw)
		}
	}
	n, _ := strconv.Atoi(v)
	return n
}

// cert is the base64 certificate of a status=0 answer, decoded as the
// toolkit does (raw value, no URL decoding).
func (a *tkAnswer) cert(t testing.TB, name string) []byte {
	t.Helper()
	v, ok := a.field(name)
	if !ok {
		t.Fatalf("answer without %s: %q", name, a.raw)
	}
	der, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		t.Fatalf("%s is not raw standard base64 (the toolkit does not URL-decode): %v: %q", name, err, v)
	}
	return der
}

// tkPost sends body as the toolkit does, over TLS (no SNI) or plain TCP,
// and reads the answer as it does: status line with " 200 ", a
// Content-Length and a Content-Type header, then exactly Content-Length
// bytes, of which the last is dropped.
func tkPost(t testing.TB, addr string, useTLS bool, ctype string, body []byte) *tkAnswer {
	t.Helper()
	var conn net.Conn
	var err error
	d := &net.Dialer{Timeout: 10 * time.Second}
	if useTLS {
		conn, err = tls.DialWithDialer(d, "tcp", addr, tkTLSConfig())
	} else {
		conn, err = d.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatalf("connecting to %s: %v", addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	host, _, _ := net.SplitHostPort(addr)
	// OSPC_HTTP_HEADER_MSG_FMT of include/osp/osphttp.h, path of -caurl/-sslurl
	req := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\ncontent-type: %s\r\nContent-Length: %d\r\nConnection: Keep-Alive\r\n\r\n",
		"/tep", host, ctype, len(body))
	if _, err := conn.Write(append([]byte(req), body...)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	var hdr strings.Builder
	for !strings.HasSuffix(hdr.String(), "\r\n\r\n") {
		c, err := br.ReadByte()
		if err != nil {
			t.Fatalf("reading answer header from %s: %v (so far %q)", addr, err, hdr.String())
		}
		hdr.WriteByte(c)
	}
	h := strings.ToLower(hdr.String())
	statusLine, _, _ := strings.Cut(h, "\r\n")
	if !strings.Contains(statusLine, " 200 ") {
		t.Fatalf("status line %q lacks \" 200 \" (the toolkit drops the answer)", statusLine)
	}
	i := strings.Index(h, "content-length: ")
	if i < 0 {
		t.Fatalf("answer without Content-Length (the toolkit drops it): %q", h)
	}
	var n int
	if _, err := fmt.Sscanf(h[i+len("content-length: "):], "%d", &n); err != nil || n <= 0 {
		t.Fatalf("bad Content-Length in %q", h)
	}
	if j := strings.Index(h, "content-type: "); j < 0 || !strings.Contains(h[j:], "\r\n") {
		t.Fatalf("answer without Content-Type (the toolkit drops it): %q", h)
	}
	if strings.Contains(h, "transfer-encoding:") || strings.Contains(h, "content-encoding:") {
		t.Fatalf("answer is chunked or compressed: %q", h)
	}
	raw := make([]byte, n)
	if _, err := io.ReadFull(br, raw); err != nil {
		t.Fatalf("reading %d body bytes: %v", n, err)
	}
	if raw[n-1] != '\n' {
		t.Fatalf("answer does not end in the byte the toolkit throws away (\\n): %q", raw)
	}
	return &tkAnswer{header: h, raw: raw, body: raw[:n-1]}
}

// tkEscape is OSPPAppendUrlEncodedString: isalnum() bytes as they are,
// every other byte %XX in upper-case hex.
func tkEscape(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
			sb.WriteByte(c)
		} else {
			fmt.Fprintf(&sb, "%%%02X", c)
		}
	}
	return sb.String()
}

// tkRequest is the body of OSPPCreateEnrollmentRequestBody: operation,
// nonce, username, password, device, customer, request, in that order.
type tkRequest struct {
	op, user, password, device, customer string
	nonce, csr                           []byte
}

func (r tkRequest) body() []byte {
	var sb strings.Builder
	sb.WriteString("operation=" + tkEscape([]byte(r.op)))
	sb.WriteString("&nonce=" + tkEscape(r.nonce))
	sb.WriteString("&username=" + tkEscape([]byte(r.user)))
	sb.WriteString("&password=" + tkEscape([]byte(r.password)))
	sb.WriteString("&device=" + tkEscape([]byte(r.device)))
	sb.WriteString("&customer=" + tkEscape([]byte(r.customer)))
	sb.WriteString("&request=" + tkEscape([]byte(base64.StdEncoding.EncodeToString(r.csr))))
	return []byte(sb.String())
}

// tkNonce is a nonce like OSPPCreateNonce(16): decimal rand_r() strings,
// each ending in the NUL that OSPM_STRNCPY writes.
func tkNonce(t testing.TB) []byte {
	t.Helper()
	var out []byte
	for len(out) < 16 {
		n, err := rand.Int(rand.Reader, big.NewInt(1<<31-1))
		if err != nil {
			t.Fatal(err)
		}
		chunk := append([]byte(n.String()), 0)
		if len(out)+len(chunk) > 16 {
			chunk = chunk[:16-len(out)]
			chunk[len(chunk)-1] = 0
		}
		out = append(out, chunk...)
	}
	if !bytes.Contains(out, []byte{0}) {
		t.Fatal("nonce without NUL")
	}
	return out
}

// tkReq is a request of the demo account (bin/enroll.sh's arguments).
func tkReq(t testing.TB, op string, csr []byte) tkRequest {
	return tkRequest{op: op, user: legUser, password: legPassword, device: "1000", customer: legCustomer,
		nonce: tkNonce(t), csr: csr}
}

// readGoldenBody returns a wire/testdata/*.golden body: the file minus its
// leading '#' comment lines, byte for byte.
func readGoldenBody(t testing.TB, name string) []byte {
	t.Helper()
	return testutil.GoldenBody(t, filepath.Join(testutil.RepoRoot(), "wire", "testdata", name))
}

func readWirePEM(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "wire", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := pem.Decode(b)
	if p == nil {
		t.Fatalf("%s: no PEM block", name)
	}
	return p.Bytes
}

// ---------------------------------------------------------------------------
// What the toolkit checks in certificates (src/ospx509.c, ospasn1parse.c,
// ospcryptowrap.c), done here independently of the ca package.

type signedParts struct {
	tbs  []byte
	alg  asn1.ObjectIdentifier
	sig  []byte
	full []byte
}

// splitCert parses the outer Certificate SEQUENCE into its raw TBS bytes,
// signature algorithm and signature.
func splitCert(t testing.TB, der []byte) signedParts {
	t.Helper()
	in := cryptobyte.String(der)
	var outer, tbs, alg cryptobyte.String
	var oid asn1.ObjectIdentifier
	var sig asn1.BitString
	if !in.ReadASN1(&outer, cbasn1.SEQUENCE) || !in.Empty() ||
		!outer.ReadASN1Element(&tbs, cbasn1.SEQUENCE) ||
		!outer.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&oid) ||
		!outer.ReadASN1BitString(&sig) || !outer.Empty() {
		t.Fatalf("malformed certificate DER")
	}
	return signedParts{tbs: tbs, alg: oid, sig: sig.RightAlign(), full: der}
}

// verifyMD5RSA checks sig over the raw TBS with MD5 and RSA PKCS#1 v1.5.
func verifyMD5RSA(t testing.TB, what string, p signedParts, pub crypto.PublicKey) {
	t.Helper()
	if !p.alg.Equal(oidMD5WithRSA) {
		t.Fatalf("%s: signature algorithm %v, want md5WithRSAEncryption (the toolkit verifies nothing else)", what, p.alg)
	}
	rpub, ok := pub.(*rsa.PublicKey)
	if !ok {
		t.Fatalf("%s: signer key is %T, want RSA", what, pub)
	}
	h := md5.Sum(p.tbs)
	if err := rsa.VerifyPKCS1v15(rpub, crypto.MD5, h[:], p.sig); err != nil {
		t.Fatalf("%s: MD5-RSA signature does not verify: %v", what, err)
	}
}

// checkPrintableName requires every attribute value of a Name to be a
// PrintableString (tag 19), the only string type the toolkit parses.
func checkPrintableName(t testing.TB, what string, raw []byte) {
	t.Helper()
	in := cryptobyte.String(raw)
	var rdns cryptobyte.String
	if !in.ReadASN1(&rdns, cbasn1.SEQUENCE) {
		t.Fatalf("%s: malformed Name", what)
	}
	n := 0
	for !rdns.Empty() {
		var set cryptobyte.String
		if !rdns.ReadASN1(&set, cbasn1.SET) {
			t.Fatalf("%s: malformed RDN", what)
		}
		for !set.Empty() {
			var atv cryptobyte.String
			var oid asn1.ObjectIdentifier
			var tag cbasn1.Tag
			var val cryptobyte.String
			if !set.ReadASN1(&atv, cbasn1.SEQUENCE) || !atv.ReadASN1ObjectIdentifier(&oid) || !atv.ReadAnyASN1(&val, &tag) {
				t.Fatalf("%s: malformed attribute", what)
			}
			if tag != cbasn1.PrintableString {
				t.Fatalf("%s: attribute %v is tag %d, want PrintableString (19)", what, oid, tag)
			}
			n++
		}
	}
	if n == 0 {
		t.Fatalf("%s: empty Name", what)
	}
}

// checkUTCTime requires both validity dates to be UTCTime (tag 23).
func checkUTCTime(t testing.TB, what string, tbs []byte) {
	t.Helper()
	in := cryptobyte.String(tbs)
	var s, skip, validity cryptobyte.String
	if !in.ReadASN1(&s, cbasn1.SEQUENCE) ||
		!s.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) || // version
		!s.ReadASN1(&skip, cbasn1.INTEGER) || // serial
		!s.ReadASN1(&skip, cbasn1.SEQUENCE) || // signature
		!s.ReadASN1(&skip, cbasn1.SEQUENCE) || // issuer
		!s.ReadASN1(&validity, cbasn1.SEQUENCE) {
		t.Fatalf("%s: malformed TBSCertificate", what)
	}
	for _, which := range []string{"notBefore", "notAfter"} {
		var tag cbasn1.Tag
		var v cryptobyte.String
		if !validity.ReadAnyASN1(&v, &tag) {
			t.Fatalf("%s: malformed validity", what)
		}
		if tag != cbasn1.UTCTime {
			t.Fatalf("%s: %s is tag %d, want UTCTime (23)", what, which, tag)
		}
	}
}

// checkLegacyCA checks a getcacert answer the way the toolkit does and
// returns the parsed CA certificate.
func checkLegacyCA(t testing.TB, der []byte) *x509.Certificate {
	t.Helper()
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("CA certificate: %v", err)
	}
	if !ca.IsCA {
		t.Fatal("getcacert answered a certificate that is not a CA")
	}
	if !bytes.Equal(ca.RawIssuer, ca.RawSubject) {
		t.Fatal("legacy CA is not self-signed (issuer Name differs from subject Name)")
	}
	p := splitCert(t, der)
	verifyMD5RSA(t, "legacy CA (self-signed)", p, ca.PublicKey)
	checkPrintableName(t, "legacy CA subject", ca.RawSubject)
	checkUTCTime(t, "legacy CA", p.tbs)
	return ca
}

// checkLegacyLeaf checks an issued certificate the way the toolkit does:
// issuer Name byte-equal to the CA's subject, MD5-RSA signature of that CA,
// the CSR's SubjectPublicKeyInfo byte for byte, PrintableString names,
// UTCTime dates. It also checks the device name.
func checkLegacyLeaf(t testing.TB, der []byte, ca *x509.Certificate, csrDER []byte, device string) *x509.Certificate {
	t.Helper()
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("issued certificate: %v", err)
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cert.RawSubjectPublicKeyInfo, csr.RawSubjectPublicKeyInfo) {
		t.Fatal("issued certificate does not carry the CSR's public key")
	}
	if !bytes.Equal(cert.RawIssuer, ca.RawSubject) {
		t.Fatal("issued certificate's issuer Name is not byte-equal to the CA's subject")
	}
	p := splitCert(t, der)
	verifyMD5RSA(t, "device certificate", p, ca.PublicKey)
	checkPrintableName(t, "device certificate subject", cert.RawSubject)
	checkPrintableName(t, "device certificate issuer", cert.RawIssuer)
	checkUTCTime(t, "device certificate", p.tbs)
	if cert.IsCA {
		t.Fatal("device certificate is a CA")
	}
	if cert.Subject.CommonName != device {
		t.Fatalf("device certificate names %q, want %q", cert.Subject.CommonName, device)
	}
	return cert
}

// ---------------------------------------------------------------------------
// CSRs.

// md5RSACSR is an RSA CSR signed with md5WithRSAEncryption and a
// PrintableString CN, as `openssl req -md5` with the toolkit's openssl.cnf
// makes (crypto/x509 refuses to sign with MD5; certificate-transparency-go
// still does).
func md5RSACSR(t testing.TB, bits int, cn string) (*rsa.PrivateKey, []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	der, err := ctx509.CreateCertificateRequest(rand.Reader, &ctx509.CertificateRequest{
		Subject:            ctpkix.Name{CommonName: cn},
		SignatureAlgorithm: ctx509.MD5WithRSA,
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	p := splitCert(t, der) // same SIGNED{} shape
	if !p.alg.Equal(oidMD5WithRSA) {
		t.Fatalf("CSR signed with %v, want MD5-RSA", p.alg)
	}
	return key, der
}

func legP256CSR(t testing.TB, cn string) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, der
}

func pemDER(t testing.TB, s string) []byte {
	t.Helper()
	p, _ := pem.Decode([]byte(s))
	if p == nil {
		t.Fatal("no PEM block")
	}
	return p.Bytes
}

// ---------------------------------------------------------------------------
// Tests.

// The client side of this file reproduces the captured toolkit requests
// byte for byte, and reads the captured answers as the toolkit does.
func TestLegacyToolkitWireFormat(t *testing.T) {
	for _, name := range []string{"request.golden", "retrieve.golden"} {
		golden := readGoldenBody(t, name)
		r, err := wire.DecodeRequest(golden)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Contains(r.Nonce, []byte{0}) {
			t.Fatalf("%s: the captured nonce has no NUL", name)
		}
		got := tkRequest{op: r.Operation, user: r.Username, password: r.Password, device: r.Device,
			customer: r.Customer, nonce: r.Nonce, csr: r.CSR}.body()
		if !bytes.Equal(got, golden) {
			t.Fatalf("%s: encoder differs from the capture:\n got %q\nwant %q", name, got, golden)
		}
		if !bytes.Equal(r.CSR, readWirePEM(t, "device.csr.pem")) {
			t.Fatalf("%s: CSR is not testdata/device.csr.pem", name)
		}
	}
	if g := readGoldenBody(t, "getcacert.golden"); string(g) != "operation=getcacert" {
		t.Fatalf("getcacert.golden body %q", g)
	}
	for name, certField := range map[string]string{"getcacert-answer.golden": "certificate", "request-answer.golden": "cert"} {
		raw := readGoldenBody(t, name)
		a := &tkAnswer{raw: raw, body: raw[:len(raw)-1]}
		if a.status(t) != 0 || len(a.cert(t, certField)) == 0 {
			t.Fatalf("%s: not read as status 0 with a certificate", name)
		}
	}
	n := tkNonce(t)
	if len(n) != 16 || n[len(n)-1] != 0 {
		t.Fatalf("nonce %q", n)
	}
}

// The captured requests of the unmodified toolkit, replayed byte for byte
// (TLS without SNI, read as the toolkit reads), get an MD5-RSA certificate
// that the toolkit's checks accept; the retrieve (a new nonce, the same CSR)
// gets the same certificate.
func TestLegacyGoldenReplay(t *testing.T) {
	s := startLegacy(t, legOpts{
		// the captures' account and device (seed 001, Table 4)
		extraGlobal: "\t\taccount mcmanus " + legHash(t, "01234567"),
		extraConf:   "device 'testtep4.transnexus.com' 'Prepaid' enabled\n",
	})
	// getcacert over plain HTTP, Content-Type text/plain as the toolkit sends it
	a := tkPost(t, s.httpAddr, false, "text/plain", readGoldenBody(t, "getcacert.golden"))
	if st := a.status(t); st != 0 {
		t.Fatalf("getcacert: status %d: %q", st, a.raw)
	}
	caDER := a.cert(t, "certificate")
	ca := checkLegacyCA(t, caDER)
	if !bytes.Equal(caDER, s.adminCA("legacy")) {
		t.Fatal("getcacert answered another certificate than the admin API's legacy CA")
	}
	if !strings.Contains(a.header, "content-type: text/html\r\n") {
		t.Fatalf("Content-Type is not the handler's default text/html: %q", a.header)
	}

	csr := readWirePEM(t, "device.csr.pem")
	a = tkPost(t, s.tlsAddr, true, "text/html", readGoldenBody(t, "request.golden"))
	if st := a.status(t); st != 0 {
		t.Fatalf("request: status %d: %q", st, a.raw)
	}
	certDER := a.cert(t, "cert")
	checkLegacyLeaf(t, certDER, ca, csr, "testtep4.transnexus.com")

	a = tkPost(t, s.tlsAddr, true, "text/html", readGoldenBody(t, "retrieve.golden"))
	if st := a.status(t); st != 0 {
		t.Fatalf("retrieve: status %d: %q", st, a.raw)
	}
	if !bytes.Equal(a.cert(t, "cert"), certDER) {
		t.Fatal("retrieve answered another certificate than request")
	}
}

// RSA-2048 (MD5-signed CSR, as `openssl req -md5` makes) and P-256 device
// keys get MD5-RSA certificates from the legacy CA; a retrieve with a new
// nonce answers the same certificate.
func TestLegacyRawClientKeys(t *testing.T) {
	s := startLegacy(t, legOpts{})
	a := tkPost(t, s.httpAddr, false, "text/plain", []byte("operation=getcacert"))
	ca := checkLegacyCA(t, a.cert(t, "certificate"))

	_, rsaCSR := md5RSACSR(t, 2048, "gw1.example.com")
	_, ecCSR := legP256CSR(t, "device4.com")
	for _, c := range []struct {
		name, device string
		csr          []byte
	}{{"RSA-2048 MD5-signed CSR", "gw1.example.com", rsaCSR}, {"P-256 CSR", "device4.com", ecCSR}} {
		t.Run(c.name, func(t *testing.T) {
			a := tkPost(t, s.tlsAddr, true, "text/html", tkReq(t, "request", c.csr).body())
			if st := a.status(t); st != 0 {
				t.Fatalf("request: status %d: %q", st, a.raw)
			}
			der := a.cert(t, "cert")
			checkLegacyLeaf(t, der, ca, c.csr, c.device)
			a = tkPost(t, s.tlsAddr, true, "text/html", tkReq(t, "retrieve", c.csr).body())
			if st := a.status(t); st != 0 || !bytes.Equal(a.cert(t, "cert"), der) {
				t.Fatalf("retrieve with a new nonce: status %d, same certificate %v", st, bytes.Equal(a.cert(t, "cert"), der))
			}
		})
	}
}

// Refusals reach the client as statuses it reads (HTTP 200, the status
// digits, an error= reason): bad password 3, disabled device 6, RSA-512
// key 7, request or retrieve over plain HTTP 12.
func TestLegacyRefusals(t *testing.T) {
	s := startLegacy(t, legOpts{})
	_, good := md5RSACSR(t, 2048, "gw1.example.com")
	_, disabled := legP256CSR(t, "device3.itsp.com")
	bad := tkReq(t, "request", good)
	bad.password = "wrong"
	for _, c := range []struct {
		name   string
		tls    bool
		body   []byte
		status int
	}{
		{"bad password", true, bad.body(), 3},
		{"disabled device", true, tkReq(t, "request", disabled).body(), 6},
		{"RSA-512 key (bin/enroll.sh unmodified)", true, tkReq(t, "request", pemDER(t, rsa512CSR)).body(), 7},
		{"request over plain HTTP", false, tkReq(t, "request", good).body(), 12},
		{"retrieve over plain HTTP", false, tkReq(t, "retrieve", good).body(), 12},
	} {
		t.Run(c.name, func(t *testing.T) {
			addr := s.httpAddr
			if c.tls {
				addr = s.tlsAddr
			}
			a := tkPost(t, addr, c.tls, "text/html", c.body)
			if st := a.status(t); st != c.status {
				t.Fatalf("status %d, want %d: %q", st, c.status, a.raw)
			}
			if _, ok := a.field("error"); !ok {
				t.Fatalf("refusal without error= reason: %q", a.raw)
			}
			if _, ok := a.field("cert"); ok {
				t.Fatalf("refusal carries a certificate: %q", a.raw)
			}
		})
	}
	// and the plain-HTTP site still answers getcacert
	if st := tkPost(t, s.httpAddr, false, "text/plain", []byte("operation=getcacert")).status(t); st != 0 {
		t.Fatalf("getcacert over plain HTTP: status %d", st)
	}
}

// The same Caddy serves a modern site beside the legacy ones: each site's
// getcacert answers its own CA, and the modern site issues ECDSA/SHA-256
// certificates from the modern CA while the legacy site issues MD5-RSA ones.
func TestLegacyAndModernSitesOfOneCaddy(t *testing.T) {
	s := startLegacy(t, legOpts{modernSite: true})
	legacyPlain := tkPost(t, s.httpAddr, false, "text/plain", []byte("operation=getcacert")).cert(t, "certificate")
	legacyTLS := tkPost(t, s.tlsAddr, true, "text/plain", []byte("operation=getcacert")).cert(t, "certificate")
	modernDER := tkPost(t, s.modernAddr, true, "text/plain", []byte("operation=getcacert")).cert(t, "certificate")
	if !bytes.Equal(legacyPlain, legacyTLS) || !bytes.Equal(legacyPlain, s.adminCA("legacy")) {
		t.Fatal("the legacy sites answer different CA certificates")
	}
	if !bytes.Equal(modernDER, s.adminCA("modern")) {
		t.Fatal("the modern site does not answer the modern CA")
	}
	legacyCA := checkLegacyCA(t, legacyPlain)
	modernCA, err := x509.ParseCertificate(modernDER)
	if err != nil {
		t.Fatal(err)
	}
	if modernCA.SignatureAlgorithm != x509.ECDSAWithSHA256 || modernCA.PublicKeyAlgorithm != x509.ECDSA {
		t.Fatalf("modern CA: %v %v, want ECDSA-SHA256", modernCA.PublicKeyAlgorithm, modernCA.SignatureAlgorithm)
	}
	if bytes.Contains(modernDER, oidMD5WithRSABytes) {
		t.Fatal("modern CA certificate mentions md5WithRSAEncryption")
	}

	key, csr := legP256CSR(t, "device4.com")
	a := tkPost(t, s.modernAddr, true, "text/html", tkReq(t, "request", csr).body())
	if st := a.status(t); st != 0 {
		t.Fatalf("modern request: status %d: %q", st, a.raw)
	}
	modernLeaf, err := x509.ParseCertificate(a.cert(t, "cert"))
	if err != nil {
		t.Fatal(err)
	}
	if modernLeaf.SignatureAlgorithm != x509.ECDSAWithSHA256 {
		t.Fatalf("modern certificate signed with %v, want ECDSA-SHA256", modernLeaf.SignatureAlgorithm)
	}
	pool := x509.NewCertPool()
	pool.AddCert(modernCA)
	if _, err := modernLeaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("modern certificate does not chain to the modern CA: %v", err)
	}
	if bytes.Equal(modernLeaf.RawIssuer, legacyCA.RawSubject) {
		t.Fatal("modern certificate names the legacy CA as issuer")
	}
	pub, _ := x509.MarshalPKIXPublicKey(key.Public())
	if !bytes.Equal(pub, modernLeaf.RawSubjectPublicKeyInfo) {
		t.Fatal("modern certificate does not carry the CSR's key")
	}

	// the legacy site of the same Caddy still issues MD5-RSA certificates
	_, rsaCSR := md5RSACSR(t, 2048, "gw1.example.com")
	a = tkPost(t, s.tlsAddr, true, "text/html", tkReq(t, "request", rsaCSR).body())
	if st := a.status(t); st != 0 {
		t.Fatalf("legacy request: status %d: %q", st, a.raw)
	}
	checkLegacyLeaf(t, a.cert(t, "cert"), legacyCA, rsaCSR, "gw1.example.com")
}

// Without `ca legacy` (and `enroll` sites of the modern profile), the same
// layout answers with the modern CA: ECDSA/SHA-256, MD5 nowhere — neither
// in the CA certificate, nor in issued ones, nor accepted in CSRs.
func TestLegacyProfileAbsentAnswersModern(t *testing.T) {
	s := startLegacy(t, legOpts{noLegacy: true})
	if code, _ := s.Admin("GET", "/enroll/ca/legacy", ""); code != 404 {
		t.Fatalf("GET /enroll/ca/legacy without the profile: %d, want 404", code)
	}
	a := tkPost(t, s.httpAddr, false, "text/plain", []byte("operation=getcacert"))
	if st := a.status(t); st != 0 {
		t.Fatalf("getcacert: status %d: %q", st, a.raw)
	}
	caDER := a.cert(t, "certificate")
	if !bytes.Equal(caDER, s.adminCA("modern")) {
		t.Fatal("getcacert does not answer the modern CA")
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	if ca.SignatureAlgorithm != x509.ECDSAWithSHA256 || bytes.Contains(caDER, oidMD5WithRSABytes) {
		t.Fatalf("CA signed with %v (MD5 OID present: %v)", ca.SignatureAlgorithm, bytes.Contains(caDER, oidMD5WithRSABytes))
	}

	_, csr := legP256CSR(t, "device4.com")
	a = tkPost(t, s.tlsAddr, true, "text/html", tkReq(t, "request", csr).body())
	if st := a.status(t); st != 0 {
		t.Fatalf("request: status %d: %q", st, a.raw)
	}
	der := a.cert(t, "cert")
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("certificate does not chain to the modern CA: %v", err)
	}
	if leaf.SignatureAlgorithm != x509.ECDSAWithSHA256 || bytes.Contains(der, oidMD5WithRSABytes) {
		t.Fatalf("certificate signed with %v", leaf.SignatureAlgorithm)
	}
	// an MD5-signed CSR is refused by the modern profile
	_, md5CSR := md5RSACSR(t, 2048, "gw1.example.com")
	if st := tkPost(t, s.tlsAddr, true, "text/html", tkReq(t, "request", md5CSR).body()).status(t); st != 7 {
		t.Fatalf("MD5-signed CSR on the modern profile: status %d, want 7", st)
	}
}

// examples/legacy.Caddyfile as shipped: it adapts, carries the settings the
// toolkit needs, and its demo account is trans / nexus.
func TestLegacyCaddyfileShipped(t *testing.T) {
	if err := bcrypt.CompareHashAndPassword([]byte(legShipHash), []byte(legPassword)); err != nil {
		t.Fatalf("the shipped hash is not bcrypt(%q): %v", legPassword, err)
	}
	// adapt only: validating would provision the app, which creates the CA
	// in ./.data/legacy and rewrites examples/legacy.conf
	cmd := exec.Command(testutil.CaddyBinary(t), "adapt", "--config", "examples/legacy.Caddyfile")
	cmd.Dir = testutil.RepoRoot()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("caddy adapt: %v\n%s", err, stderr.String())
	}
	var cfg map[string]any
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	js := string(out)
	for _, want := range []string{
		`"listen":"localhost:2020"`, `"default_sni":"127.0.0.1"`, `"plain_getcacert":true`,
		`"profile":"legacy"`, `"root":"./.data/legacy"`, `"config_file":"examples/legacy.conf"`,
		`"127.0.0.1:5045"`, `"127.0.0.1:1443"`, `"approval":"auto"`, `"username":"trans"`, `"customer":"1000"`,
	} {
		if !strings.Contains(js, want) {
			t.Errorf("adapted config lacks %s:\n%s", want, js)
		}
	}
	// the demo gateway and Table 7's enabled devices are in the conf copy
	conf, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "examples", "legacy.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"device 'gw1.example.com' 'Prepaid' enabled\n", "device 'device4.com' 'HK Telecom' enabled\n", "ssl enabled\n", "enroll enabled\n"} {
		if !bytes.Contains(conf, []byte(line)) {
			t.Errorf("examples/legacy.conf lacks %q", line)
		}
	}
}

// The toolkit's nonce is no random value: OSPPUtilGetRandom seeds rand_r()
// with time(NULL), so every `enroll` started in the same second sends the
// same 16 bytes. Two gateways enrolling in the same second (a fleet
// provisioned at once, the demo's shared account) must both enroll; the
// nonce still refuses another key of the same device.
func TestLegacyToolkitNonceOfTheSameSecond(t *testing.T) {
	s := startLegacy(t, legOpts{})
	_, a := md5RSACSR(t, 2048, "device6.isp.com")
	_, b := md5RSACSR(t, 2048, "device7.isp.com")
	_, b2 := md5RSACSR(t, 2048, "device7.isp.com")
	nonce := []byte("176370907\x0019533\x00") // what every enroll sent in one second
	ra, rb, rb2 := tkReq(t, "request", a), tkReq(t, "request", b), tkReq(t, "request", b2)
	ra.nonce, rb.nonce, rb2.nonce = nonce, nonce, nonce
	if st := tkPost(t, s.tlsAddr, true, "text/html", ra.body()).status(t); st != 0 {
		t.Fatalf("first gateway: status %d", st)
	}
	if a := tkPost(t, s.tlsAddr, true, "text/html", rb.body()); a.status(t) != 0 {
		t.Fatalf("second gateway, same second: %q", a.raw)
	}
	if st := tkPost(t, s.tlsAddr, true, "text/html", rb2.body()).status(t); st != 9 {
		t.Fatalf("the nonce with another key of the same device: status %d, want 9", st)
	}
}
