package caddyenroll_test

// Interoperability with the real client: the UNMODIFIED OSP Toolkit 4.33.1
// `enroll` program (built from ../shared/vendor by internal/osptk) against a
// real Caddy on a test variant of examples/legacy.Caddyfile, plus the
// toolkit's own bin/enroll.sh against the shipped file itself. Device
// requests are made with `openssl req` as bin/enroll.sh makes them (its
// openssl.cnf, so names are PrintableString), with an allowed key.
//
// What the binary really does, as observed here (enroll/osptnep.c main
// returns OSPPEnroll's code): exit 0 when issued AND when pending (stdout
// then says "The certificate request is pending approval."), exit N when
// the server answers status N >= 2, and an internal error code modulo 256
// for local failures (229: bad -fprint; 76: a CSR it cannot parse).

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/internal/osptk"
	"github.com/clearinghouse-dev/caddy-clearinghouse/internal/testutil"
)

type tkResult struct {
	code           int
	stdout, stderr string
}

func (r tkResult) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// runTK runs a program of the toolkit's bin folder (or a script) in dir.
func runTK(t testing.TB, dir, bin string, stdin string, name string, args ...string) tkResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "HOME="+dir)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %v: timed out\n%s\n%s", name, args, stdout.String(), stderr.String())
	}
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("%s: %v", name, err)
		}
		code = ee.ExitCode()
	}
	return tkResult{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// tkClient is the built toolkit plus a working folder for one device.
type tkClient struct {
	t   *testing.T
	bin string // the toolkit's bin folder: enroll, openssl.cnf, enroll.sh
	dir string
}

func newTKClient(t *testing.T) *tkClient {
	t.Helper()
	bin := osptk.Build(t)
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("the openssl command is needed to make CSRs as bin/enroll.sh does (apt-get install openssl)")
	}
	return &tkClient{t: t, bin: bin, dir: t.TempDir()}
}

func (c *tkClient) enroll(args ...string) tkResult {
	c.t.Helper()
	return runTK(c.t, c.dir, c.bin, "", filepath.Join(c.bin, "enroll"), args...)
}

// csr makes a key and CSR with `openssl req` the way bin/enroll.sh does —
// OPENSSL_CONF=its openssl.cnf, -outform PEM -nodes -new — with the given
// key arguments, and returns the CSR's path and DER.
func (c *tkClient) csr(name, cn string, keyArgs ...string) (string, []byte) {
	c.t.Helper()
	out := filepath.Join(c.dir, name+".csr.pem")
	args := append([]string{"req", "-outform", "PEM", "-nodes"}, keyArgs...)
	args = append(args, "-new", "-out", out, "-keyform", "PEM", "-keyout", filepath.Join(c.dir, name+".key.pem"), "-subj", "/CN="+cn)
	cmd := exec.Command("openssl", args...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "OPENSSL_CONF="+filepath.Join(c.bin, "openssl.cnf"), "RANDFILE="+filepath.Join(c.dir, ".rnd"))
	if b, err := cmd.CombinedOutput(); err != nil {
		c.t.Fatalf("openssl %v: %v\n%s", args, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		c.t.Fatal(err)
	}
	p, _ := pem.Decode(b)
	if p == nil {
		c.t.Fatalf("no PEM in %s", out)
	}
	return out, p.Bytes
}

// getCACert runs `enroll -function getcacert -caurl http://ADDR/tep [-fprint F]`
// and, on exit 0, writes the PEM it prints to a file for -cacert.
func (c *tkClient) getCACert(addr string, fprint string) (tkResult, string) {
	c.t.Helper()
	args := []string{"-function", "getcacert", "-caurl", "http://" + addr + "/tep"}
	if fprint != "" {
		args = append(args, "-fprint", fprint)
	}
	r := c.enroll(args...)
	path := filepath.Join(c.dir, "cacert.pem")
	if r.code == 0 {
		if err := os.WriteFile(path, []byte(r.stdout), 0o644); err != nil {
			c.t.Fatal(err)
		}
	}
	return r, path
}

// request runs `enroll -function OP` with bin/enroll.sh's arguments.
func (c *tkClient) request(op, tlsAddr, cacert, csrPath, password string) tkResult {
	c.t.Helper()
	return c.enroll("-function", op, "-username", legUser, "-password", password, "-customer", legCustomer,
		"-device", "1000", "-cacert", cacert, "-certreq", csrPath, "-sslurl", "https://"+tlsAddr+"/tep")
}

// printedCert is the DER of the certificate PEM a toolkit run printed.
func printedCert(t testing.TB, r tkResult) []byte {
	t.Helper()
	p, _ := pem.Decode([]byte(r.stdout))
	if p == nil || p.Type != "CERTIFICATE" {
		t.Fatalf("no certificate PEM printed:\n%s", r)
	}
	return p.Bytes
}

func md5Hex(der []byte) string {
	h := md5.Sum(der)
	return strings.ToUpper(hex.EncodeToString(h[:]))
}

// The unmodified `enroll`: getcacert over plain HTTP with and without
// -fprint (and refused with a wrong one), requests with RSA-2048 (MD5- or
// SHA-256-signed CSR) and P-256 device keys over HTTPS without SNI, and the
// refusals it reports as its exit code.
func TestToolkitEnrollInterop(t *testing.T) {
	c := newTKClient(t)
	s := startLegacy(t, legOpts{})
	caDER := s.adminCA("legacy")
	fprint := md5Hex(caDER)

	r, cacert := c.getCACert(s.httpAddr, "")
	if r.code != 0 || !strings.Contains(r.stderr, "CA certificate received") {
		t.Fatalf("getcacert:\n%s", r)
	}
	if !bytes.Equal(printedCert(t, r), caDER) {
		t.Fatal("getcacert printed another certificate than the legacy CA")
	}
	ca := checkLegacyCA(t, caDER)

	t.Run("getcacert -fprint", func(t *testing.T) {
		for _, fp := range []string{fprint, strings.ToLower(fprint)} {
			r, _ := c.getCACert(s.httpAddr, fp)
			if r.code != 0 || !bytes.Equal(printedCert(t, r), caDER) {
				t.Fatalf("getcacert -fprint %s:\n%s", fp, r)
			}
		}
	})
	t.Run("getcacert wrong -fprint", func(t *testing.T) {
		wrong := []byte(fprint)
		if wrong[0] == '0' {
			wrong[0] = '1'
		} else {
			wrong[0] = '0'
		}
		r, _ := c.getCACert(s.httpAddr, string(wrong))
		if r.code == 0 || strings.Contains(r.stdout, "BEGIN CERTIFICATE") {
			t.Fatalf("getcacert with a wrong fingerprint was accepted:\n%s", r)
		}
		t.Logf("wrong fingerprint: exit %d", r.code)
	})

	// the CA file for -cacert is the one getcacert printed, as in bin/enroll.sh
	for _, k := range []struct {
		name, device string
		keyArgs      []string
	}{
		{"RSA-2048 -md5 (bin/enroll.sh with rsa:2048)", "gw1.example.com", []string{"-newkey", "rsa:2048", "-md5"}},
		{"RSA-2048 without -md5 (SHA-256 CSR)", "device6.isp.com", []string{"-newkey", "rsa:2048"}},
		{"P-256", "device4.com", []string{"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"}},
	} {
		t.Run("request "+k.name, func(t *testing.T) {
			csrPath, csrDER := c.csr(strings.ReplaceAll(k.device, ".", "_"), k.device, k.keyArgs...)
			r := c.request("request", s.tlsAddr, cacert, csrPath, legPassword)
			if r.code != 0 || !strings.Contains(r.stderr, "The certificate request was successful.") {
				t.Fatalf("request:\n%s", r)
			}
			der := printedCert(t, r)
			checkLegacyLeaf(t, der, ca, csrDER, k.device)
			// retrieve (a new nonce) gets the same certificate
			r = c.request("retrieve", s.tlsAddr, cacert, csrPath, legPassword)
			if r.code != 0 || !bytes.Equal(printedCert(t, r), der) {
				t.Fatalf("retrieve:\n%s", r)
			}
		})
	}

	for _, k := range []struct {
		name, device, password string
		keyArgs                []string
		code                   int
	}{
		{"disabled device", "device3.itsp.com", legPassword, []string{"-newkey", "rsa:2048"}, 6},
		{"bad password", "gw1.example.com", "not-nexus", []string{"-newkey", "rsa:2048"}, 3},
		{"RSA-512 (bin/enroll.sh unmodified)", "gw1.example.com", legPassword, []string{"-newkey", "rsa:512", "-md5"}, 7},
	} {
		t.Run("refused "+k.name, func(t *testing.T) {
			csrPath, _ := c.csr("refused", k.device, k.keyArgs...)
			r := c.request("request", s.tlsAddr, cacert, csrPath, k.password)
			if r.code != k.code || strings.Contains(r.stdout, "BEGIN CERTIFICATE") ||
				!strings.Contains(r.stderr, fmt.Sprintf("failed with the following code: %d", k.code)) {
				t.Fatalf("want exit %d:\n%s", k.code, r)
			}
		})
	}

	// OpenSSL's default string_mask (utf8only) makes UTF8String names, which
	// the toolkit's ASN.1 parser rejects before sending anything: keep
	// bin/enroll.sh's OPENSSL_CONF=./openssl.cnf (string_mask = nombstr).
	t.Run("UTF8String CSR is refused by the toolkit itself", func(t *testing.T) {
		utf8 := filepath.Join(c.dir, "utf8.csr.pem")
		// OpenSSL's default string mask, as an operator who drops
		// OPENSSL_CONF gets it, spelled out so that every openssl obeys it
		cnf := filepath.Join(c.dir, "utf8only.cnf")
		if err := os.WriteFile(cnf, []byte("[req]\ndistinguished_name = dn\nstring_mask = utf8only\n[dn]\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("openssl", "req", "-config", cnf, "-new", "-nodes", "-newkey", "rsa:2048", "-keyout", filepath.Join(c.dir, "utf8.key"),
			"-out", utf8, "-subj", "/CN=gw1.example.com")
		for _, e := range os.Environ() {
			if !strings.HasPrefix(e, "OPENSSL_CONF=") {
				cmd.Env = append(cmd.Env, e)
			}
		}
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("openssl: %v\n%s", err, b)
		}
		b, _ := os.ReadFile(utf8)
		p, _ := pem.Decode(b)
		if p == nil || !bytes.Contains(p.Bytes, []byte{0x0c, 0x0f, 'g', 'w', '1'}) {
			t.Fatal("openssl did not make a UTF8String CN with string_mask = utf8only")
		}
		r := c.request("request", s.tlsAddr, cacert, utf8, legPassword)
		if r.code == 0 || strings.Contains(r.stdout, "BEGIN CERTIFICATE") {
			t.Fatalf("the toolkit accepted a UTF8String CSR:\n%s", r)
		}
		t.Logf("UTF8String CSR: exit %d", r.code)
	})
}

// Under manual approval the toolkit is told "pending" (it exits 0 and says
// so on stdout), keeps being told so on retrieve, and gets its certificate
// with `-function retrieve` once an administrator approves the request
// through the admin API.
func TestToolkitPendingThenRetrieve(t *testing.T) {
	c := newTKClient(t)
	s := startLegacy(t, legOpts{approval: "manual"})
	r, cacert := c.getCACert(s.httpAddr, md5Hex(s.adminCA("legacy")))
	if r.code != 0 {
		t.Fatalf("getcacert:\n%s", r)
	}
	ca := checkLegacyCA(t, printedCert(t, r))
	csrPath, csrDER := c.csr("gw1", "gw1.example.com", "-newkey", "rsa:2048", "-md5")

	const pendingMsg = "The certificate request is pending approval."
	for _, op := range []string{"request", "retrieve"} {
		r = c.request(op, s.tlsAddr, cacert, csrPath, legPassword)
		if r.code != 0 || !strings.Contains(r.stdout, pendingMsg) || strings.Contains(r.stdout, "BEGIN CERTIFICATE") {
			t.Fatalf("%s under manual approval: want exit 0 and %q:\n%s", op, pendingMsg, r)
		}
	}
	id, ok := s.pendingIDs()["gw1.example.com"]
	if !ok {
		t.Fatalf("no pending request for gw1.example.com: %v", s.pendingIDs())
	}
	if code, body := s.Admin("POST", "/enroll/approve/"+id, ""); code != 200 {
		t.Fatalf("approve: %d %s", code, body)
	}
	r = c.request("retrieve", s.tlsAddr, cacert, csrPath, legPassword)
	if r.code != 0 || !strings.Contains(r.stderr, "The certificate request was successful.") {
		t.Fatalf("retrieve after approval:\n%s", r)
	}
	checkLegacyLeaf(t, printedCert(t, r), ca, csrDER, "gw1.example.com")

	// a rejected request is reported as status 8
	csr2, _ := c.csr("dev4", "device4.com", "-newkey", "rsa:2048")
	if r = c.request("request", s.tlsAddr, cacert, csr2, legPassword); r.code != 0 || !strings.Contains(r.stdout, pendingMsg) {
		t.Fatalf("second request:\n%s", r)
	}
	if code, body := s.Admin("POST", "/enroll/reject/"+s.pendingIDs()["device4.com"], `{"reason":"demo"}`); code != 200 {
		t.Fatalf("reject: %d %s", code, body)
	}
	if r = c.request("retrieve", s.tlsAddr, cacert, csr2, legPassword); r.code != 8 {
		t.Fatalf("retrieve of a rejected request: want exit 8:\n%s", r)
	}
}

// examples/legacy.Caddyfile exactly as shipped (its fixed ports, its
// cost-14 demo hash) in a copy of the repository layout, and the toolkit's
// own bin/enroll.sh: unmodified it fails (RSA-512 refused, status 7); with
// the one-line change `-newkey rsa:2048` it enrolls the demo gateway.
func TestToolkitShippedCaddyfileAndScript(t *testing.T) {
	c := newTKClient(t)
	for _, addr := range []string{"127.0.0.1:2020", "127.0.0.1:5045", "127.0.0.1:1443"} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("%s is in use: the shipped Caddyfile needs it free: %v", addr, err)
		}
		l.Close()
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "examples"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"legacy.Caddyfile", "legacy.conf"} {
		b, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "examples", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "examples", f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	shipped, _ := os.ReadFile(filepath.Join(dir, "examples", "legacy.Caddyfile"))
	// StartCaddy runs `caddy run --config DIR/Caddyfile` in DIR: the same
	// file, with the same relative paths as `./caddy run --config
	// examples/legacy.Caddyfile` from the repository root
	testutil.StartCaddy(t, dir, string(shipped), "localhost:2020", "127.0.0.1:5045", "127.0.0.1:1443")
	legWaitTLS(t, "127.0.0.1:1443")

	script, err := os.ReadFile(filepath.Join(c.bin, "enroll.sh"))
	if err != nil {
		t.Fatal(err)
	}
	const line512 = "openssl req -outform PEM -nodes -newkey rsa:512 -md5 -new -out certreq.pem -keyform PEM -keyout pkey.pem\n"
	if !bytes.Contains(script, []byte(line512)) {
		t.Fatalf("bin/enroll.sh lacks the line the README tells operators to change:\n%s", script)
	}
	// openssl's prompts (the toolkit's openssl.cnf): country, state,
	// locality, organization, unit, common name = the device, email, then
	// the challenge password and company name attributes (left empty)
	answers := "US\nGeorgia\n.\nDemo ITSP\n.\ngw1.example.com\n.\n\n\n"
	run := func(name string, body []byte) (tkResult, string) {
		wd := filepath.Join(dir, name)
		if err := os.MkdirAll(wd, 0o755); err != nil {
			t.Fatal(err)
		}
		cnf, _ := os.ReadFile(filepath.Join(c.bin, "openssl.cnf"))
		if err := os.WriteFile(filepath.Join(wd, "openssl.cnf"), cnf, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(wd, "enroll.sh"), body, 0o755); err != nil {
			t.Fatal(err)
		}
		return runTK(t, wd, c.bin, answers, "sh", "./enroll.sh", "127.0.0.1"), wd
	}

	r, _ := run("unmodified", script)
	if r.code != 127 || !strings.Contains(r.stdout, "Error Code returned from localcert command : 7") {
		t.Fatalf("unmodified bin/enroll.sh: want exit 127 after status 7 (RSA-512 refused):\n%s", r)
	}

	fixed := bytes.Replace(script, []byte("-newkey rsa:512 "), []byte("-newkey rsa:2048 "), 1)
	r, wd := run("rsa2048", fixed)
	if r.code != 0 || !strings.Contains(r.stdout, "Error Code returned from localcert command : 0") {
		t.Fatalf("bin/enroll.sh with -newkey rsa:2048:\n%s", r)
	}
	caPEM, _ := os.ReadFile(filepath.Join(wd, "cacert_0.pem"))
	certPEM, _ := os.ReadFile(filepath.Join(wd, "localcert.pem"))
	csrPEM, _ := os.ReadFile(filepath.Join(wd, "certreq.pem"))
	caBlock, _ := pem.Decode(caPEM)
	certBlock, _ := pem.Decode(certPEM)
	csrBlock, _ := pem.Decode(csrPEM)
	if caBlock == nil || certBlock == nil || csrBlock == nil {
		t.Fatalf("enroll.sh left no cacert_0.pem/localcert.pem/certreq.pem PEM:\n%s\n%s", caPEM, certPEM)
	}
	ca := checkLegacyCA(t, caBlock.Bytes)
	checkLegacyLeaf(t, certBlock.Bytes, ca, csrBlock.Bytes, "gw1.example.com")
	// the shipped configuration file copy now names the CAs and marks the
	// demo gateway enrolled
	conf, _ := os.ReadFile(filepath.Join(dir, "examples", "legacy.conf"))
	if !bytes.Contains(conf, []byte("device 'gw1.example.com' 'Prepaid' enabled enrolled\n")) ||
		!bytes.Contains(conf, []byte("legacy:rsa2048:")) {
		t.Fatalf("configuration file after enrollment:\n%s", conf)
	}
}
