package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/enrollclient/enrolltest"
)

type result struct {
	code           int
	stdout, stderr string
}

type fixture struct {
	t      *testing.T
	srv    *enrolltest.Server
	dir    string
	rootCA string
	pwFile string
}

func newFixture(t *testing.T, cfg enrolltest.Config) *fixture {
	t.Helper()
	f := &fixture{t: t, srv: enrolltest.New(t, cfg), dir: t.TempDir()}
	tmp := t.TempDir()
	f.rootCA = filepath.Join(tmp, "root.pem")
	if err := os.WriteFile(f.rootCA, f.srv.RootPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	f.pwFile = filepath.Join(tmp, "password")
	if err := os.WriteFile(f.pwFile, []byte("pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// args are the flags every enrollment needs, before extra.
func (f *fixture) args(cmd string, extra ...string) []string {
	a := []string{cmd, "--server", f.srv.URL, "--root-ca", f.rootCA, "--ca-fingerprint", f.srv.CAFingerprint(),
		"--device-name", "gw1.example.com", "--device-id", "134217728", "--customer", "0", "--username", "user",
		"--password-file", f.pwFile, "--dir", f.dir, "--poll-interval", "1ms", "--max-poll-interval", "2ms"}
	return append(a, extra...)
}

func runCmd(t *testing.T, stdin string, tty bool, envs map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, env{
		stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb,
		getenv:     func(k string) string { return envs[k] },
		isTerminal: func() bool { return tty },
	})
	return result{code, out.String(), errb.String()}
}

func expect(t *testing.T, r result, code int, contains ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	for _, s := range contains {
		if !strings.Contains(r.stdout+r.stderr, s) {
			t.Fatalf("output lacks %q\nstdout:\n%s\nstderr:\n%s", s, r.stdout, r.stderr)
		}
	}
}

func TestUsage(t *testing.T) {
	expect(t, runCmd(t, "", false, nil), exitUsage, "Usage: chclient")
	expect(t, runCmd(t, "", false, nil, "help"), exitOK, "Exit status:")
	expect(t, runCmd(t, "", false, nil, "enroll", "-h"), exitOK, "Exit status:")
	expect(t, runCmd(t, "", false, nil, "frobnicate"), exitUsage, `unknown command "frobnicate"`)
	expect(t, runCmd(t, "", false, nil, "enroll", "--no-such-flag"), exitUsage, "no-such-flag")
	expect(t, runCmd(t, "", false, nil, "status", "extra"), exitUsage, "unexpected argument")
	expect(t, runCmd(t, "", false, nil, "enroll", "--key-type", "dsa"), exitUsage, `--key-type: unknown key type "dsa"`)
	expect(t, runCmd(t, "", false, nil, "enroll", "--ca-fingerprint", "abcd"), exitUsage, `--ca-fingerprint: CA fingerprint "abcd" is not a SHA-256 fingerprint`)
	expect(t, runCmd(t, "", false, nil, "renew", "--renew-window", "2"), exitUsage, "--renew-window")
}

// A missing setting is named by the flag that gives it (the library names
// the setting).
func TestMissingFlagNamed(t *testing.T) {
	dir := t.TempDir()
	full := []string{"--server", "https://127.0.0.1:1/", "--device-name", "gw1.example", "--username", "ops", "--device-id", "1", "--customer", "0"}
	for i, flag := range []string{"--server", "--device-name", "--username", "--device-id", "--customer"} {
		args := append([]string{"enroll", "--dir", dir}, full[:2*i]...)
		args = append(args, full[2*i+2:]...)
		expect(t, runCmd(t, "", false, map[string]string{passwordEnv: "pw"}, args...), exitUsage, "Give it with "+flag+".")
	}
	expect(t, runCmd(t, "", false, nil, "enroll", "--dir", dir, "--server", "http://127.0.0.1:1/"), exitUsage, "--allow-http in a lab")
}

func TestPasswordFlagRefused(t *testing.T) {
	for _, a := range [][]string{{"--password", "secret"}, {"--password=secret"}, {"-password", "x"}} {
		r := runCmd(t, "", false, nil, append([]string{"enroll", "--server", "https://x/"}, a...)...)
		expect(t, r, exitUsage, "is not accepted", "--password-file", "CHCLIENT_PASSWORD")
		if strings.Contains(r.stderr, "secret") {
			t.Fatal("password echoed")
		}
	}
}

func TestDocHasUsage(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(usage, "\n") {
		if strings.TrimSpace(line) != "" && !bytes.Contains(doc, []byte("//\t"+line+"\n")) {
			t.Errorf("doc.go lacks usage line %q", line)
		}
	}
}

func TestSession(t *testing.T) {
	f := newFixture(t, enrolltest.Config{})
	expect(t, runCmd(t, "", false, nil, "status", "--dir", f.dir), exitError, "state:        none")
	r := runCmd(t, "", false, nil, f.args("enroll")...)
	expect(t, r, exitOK, "enrolled: CN=gw1.example.com", "CA SHA-256   "+f.srv.CAFingerprint())
	fi, err := os.Stat(filepath.Join(f.dir, "key.pem"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key.pem: %v %v", fi, err)
	}
	expect(t, runCmd(t, "", false, nil, f.args("enroll")...), exitOK, "already enrolled")
	r = runCmd(t, "", false, nil, append(f.args("enroll"), "--device-name", "gw2.example.com")...)
	expect(t, r, exitOK, "enrolled: CN=gw2.example.com")
	expect(t, runCmd(t, "", false, nil, append(f.args("enroll"), "--device-name", "gw2.example.com")...), exitOK, "already enrolled")
	expect(t, runCmd(t, "", false, nil, "status", "--dir", f.dir), exitOK, "state:        issued", "matches certificate: true")
	expect(t, runCmd(t, "", false, nil, f.args("renew")...), exitOK, "not yet due")
	expect(t, runCmd(t, "", false, nil, f.args("renew", "--force")...), exitOK, "renewed: CN=gw1.example.com")
	expect(t, runCmd(t, "", false, nil, f.args("enroll", "--force")...), exitOK, "enrolled:")
	if n := strings.Count(strings.Join(f.srv.Ops(), " "), "request"); n != 4 {
		t.Fatalf("%d requests: %v", n, f.srv.Ops())
	}
}

// renew keeps the current key's type unless --key-type is given.
func TestRenewKeepsKeyType(t *testing.T) {
	f := newFixture(t, enrolltest.Config{})
	expect(t, runCmd(t, "", false, nil, f.args("enroll", "--key-type", "rsa2048")...), exitOK, "(RSA 2048, mode 0600)")
	expect(t, runCmd(t, "", false, nil, f.args("renew", "--force")...), exitOK, "renewed:", "(RSA 2048, mode 0600)")
	expect(t, runCmd(t, "", false, nil, f.args("renew", "--force", "--key-type", "p256")...), exitOK, "renewed:", "(ECDSA P-256, mode 0600)")
	expect(t, runCmd(t, "", false, nil, f.args("enroll", "--force")...), exitOK, "enrolled:", "(ECDSA P-256, mode 0600)")
}

// renew says why a certificate that ends with its CA is not renewed.
func TestRenewAtTheCAsEnd(t *testing.T) {
	f := newFixture(t, enrolltest.Config{Lifetime: 20 * 365 * 24 * time.Hour})
	expect(t, runCmd(t, "", false, nil, f.args("enroll")...), exitOK, "enrolled:")
	expect(t, runCmd(t, "", false, nil, f.args("renew", "--renew-window", "1")...), exitOK,
		"not renewed:", "when its CA ends too", "the operator must renew the operational CA")
	expect(t, runCmd(t, "", false, nil, f.args("renew", "--force")...), exitOK, "renewed:")
}

func TestPasswordFromEnv(t *testing.T) {
	f := newFixture(t, enrolltest.Config{})
	args := f.args("enroll")
	for i, a := range args {
		if a == "--password-file" {
			args = append(args[:i:i], args[i+2:]...)
			break
		}
	}
	expect(t, runCmd(t, "", false, nil, args...), exitUsage, "password is required", "CHCLIENT_PASSWORD")
	expect(t, runCmd(t, "", false, map[string]string{"CHCLIENT_PASSWORD": "pass"}, args...), exitOK, "enrolled:")
}

func TestPending(t *testing.T) {
	f := newFixture(t, enrolltest.Config{Manual: true})
	expect(t, runCmd(t, "", false, nil, f.args("enroll", "--max-wait", "0")...), exitPending, "pending approval")
	expect(t, runCmd(t, "", false, nil, f.args("enroll", "--max-wait", "1s", "--poll-interval", "100ms", "--max-poll-interval", "100ms")...),
		exitPending, "pending approval; retrieve 2 in 100ms", "still pending", "run enroll again")
	expect(t, runCmd(t, "", false, nil, "status", "--dir", f.dir), exitPending, "request waiting for approval", "--password-file")
	f.srv.Approve()
	r := runCmd(t, "", false, map[string]string{"CHCLIENT_PASSWORD": "pass"}, "status", "--dir", f.dir, "--root-ca", f.rootCA)
	expect(t, r, exitOK, "asking the server", "issued: CN=gw1.example.com", "(resumed a saved request)")
	if strings.Count(strings.Join(f.srv.Ops(), " "), "request") != 1 {
		t.Fatalf("a second request was sent: %v", f.srv.Ops())
	}
	expect(t, runCmd(t, "", false, nil, "status", "--dir", f.dir), exitOK, "state:        issued")
}

func TestPendingThenApprovedWithProgress(t *testing.T) {
	f := newFixture(t, enrolltest.Config{PendingPolls: 2})
	r := runCmd(t, "", false, nil, f.args("enroll")...)
	expect(t, r, exitOK, "retrieve 1 in 1ms", "retrieve 2 in 2ms", "retrieve 3 in 2ms", "enrolled:")
	r = runCmd(t, "", false, nil, f.args("renew", "--force", "--quiet")...)
	expect(t, r, exitOK, "renewed:")
	if strings.Contains(r.stderr, "retrieve") {
		t.Fatal("--quiet printed progress")
	}
}

func TestTrustFailures(t *testing.T) {
	f := newFixture(t, enrolltest.Config{})
	noFP := func(extra ...string) []string {
		a := f.args("enroll", extra...)
		for i := range a {
			if a[i] == "--ca-fingerprint" {
				return append(a[:i:i], a[i+2:]...)
			}
		}
		return a
	}
	wrong := strings.Repeat("00", 32)
	expect(t, runCmd(t, "", false, nil, f.args("enroll", "--ca-fingerprint", wrong)...), exitUntrusted,
		"fingerprint mismatch", "No key was generated or sent")
	expect(t, runCmd(t, "", false, nil, noFP()...), exitUntrusted, "--ca-fingerprint "+f.srv.CAFingerprint())
	expect(t, runCmd(t, "n\n", true, nil, noFP()...), exitUntrusted, "Trust this CA? [y/N]", "refused")
	if f.srv.Saw("request") {
		t.Fatal("request sent without trust")
	}
	// no --root-ca: the test server's certificate is not in the system roots
	a := f.args("enroll")
	for i := range a {
		if a[i] == "--root-ca" {
			a = append(a[:i:i], a[i+2:]...)
			break
		}
	}
	n := len(f.srv.Messages())
	expect(t, runCmd(t, "", false, nil, a...), exitUntrusted, "server certificate not trusted: ", "--root-ca FILE")
	if len(f.srv.Messages()) != n {
		t.Fatal("sent to an untrusted server")
	}
	if _, err := os.Stat(filepath.Join(f.dir, "key.pem")); err == nil {
		t.Fatal("key written")
	}
	expect(t, runCmd(t, "yes\n", true, nil, noFP()...), exitOK, "SHA-256:  "+f.srv.CAFingerprint(), "enrolled:")
	f2 := newFixture(t, enrolltest.Config{})
	f2.srv = f.srv
	expect(t, runCmd(t, "", false, nil, append(f2.args("enroll"), "--trust-on-first-use", "--ca-fingerprint=")...), exitOK, "enrolled:")
}

// A redirect is not followed with the password; one to http:// is an
// error of the server (exit 1), not of the command line (2).
func TestRedirectRefused(t *testing.T) {
	f := newFixture(t, enrolltest.Config{})
	front := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if string(body) == "operation=getcacert" {
			r.Body = io.NopCloser(bytes.NewReader(body))
			f.srv.HTTP.Config.Handler.ServeHTTP(w, r)
			return
		}
		http.Redirect(w, r, "http://"+r.Host+"/", http.StatusTemporaryRedirect)
	}))
	front.Config.ErrorLog = log.New(io.Discard, "", 0)
	front.StartTLS()
	defer front.Close()
	roots := append(f.srv.RootPEM(), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: front.Certificate().Raw})...)
	if err := os.WriteFile(f.rootCA, roots, 0o644); err != nil {
		t.Fatal(err)
	}
	r := runCmd(t, "", false, nil, f.args("enroll", "--server", front.URL+"/")...)
	expect(t, r, exitError, "HTTP 307 Temporary Redirect, a redirect to http://", "not followed")
	if f.srv.Saw("request") {
		t.Fatal("request reached the enrollment server behind the redirect")
	}
}

func TestRejectedAndHTTP(t *testing.T) {
	f := newFixture(t, enrolltest.Config{RejectStatus: 6, RejectReason: "device is disabled"})
	expect(t, runCmd(t, "", false, nil, f.args("enroll")...), exitRejected, "status 6 (device disabled)", "device is disabled")
	r := runCmd(t, "", false, nil, "enroll", "--server", "http://127.0.0.1:1/", "--device-name", "gw1.example.com",
		"--device-id", "1", "--customer", "0", "--username", "u", "--dir", t.TempDir(), "--trust-on-first-use")
	expect(t, r, exitUsage, "plain HTTP not allowed")
}

// The CA certificate's subject is the server's text: shown when the
// operator is asked to trust it, and in errors, it is escaped, so that it
// cannot forge or hide the fingerprint line the operator compares.
func TestCASubjectPrintable(t *testing.T) {
	f := newFixture(t, enrolltest.Config{})
	forged := strings.Repeat("AB:", 31) + "AB"
	ca, key, err := enrolltest.NewCA("Clearinghouse CA\n  SHA-256:  " + forged + "\n\x1b[8m")
	if err != nil {
		t.Fatal(err)
	}
	f.srv.CA, f.srv.CAKey = ca, key
	a := f.args("enroll")
	for i := range a {
		if a[i] == "--ca-fingerprint" {
			a = append(a[:i:i], a[i+2:]...)
			break
		}
	}
	for _, tc := range []struct {
		name  string
		tty   bool
		stdin string
	}{{"asked", true, "n\n"}, {"not asked", false, ""}} {
		r := runCmd(t, tc.stdin, tc.tty, nil, a...)
		expect(t, r, exitUntrusted, f.srv.CAFingerprint())
		out := r.stdout + r.stderr
		if strings.Contains(out, "\x1b") || strings.Contains(out, "\n  SHA-256:  "+forged) {
			t.Errorf("%s: the CA subject reached the terminal raw:\n%s", tc.name, out)
		}
	}
	// trusted after all (TOFU): the subject in the result is escaped too
	r := runCmd(t, "", false, nil, append(a, "--trust-on-first-use")...)
	expect(t, r, exitOK, "enrolled:")
	if strings.Contains(r.stdout+r.stderr, "\x1b") {
		t.Errorf("result: raw escape:\n%s", r.stdout)
	}
	r = runCmd(t, "", false, nil, "status", "--dir", f.dir)
	if strings.Contains(r.stdout+r.stderr, "\x1b") {
		t.Errorf("status: raw escape:\n%s", r.stdout)
	}
}

// The server's nonce of a pending answer (status=1&nonce=…), saved and shown
// by status, is the server's text too.
func TestServerNoncePrintable(t *testing.T) {
	f := newFixture(t, enrolltest.Config{Manual: true})
	expect(t, runCmd(t, "", false, nil, f.args("enroll", "--max-wait", "0")...), exitPending)
	path := filepath.Join(f.dir, "pending.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatal(err)
	}
	p["server_nonce"] = "A1F0\x1b[2J\x1b]0;pwned\x07"
	data, _ = json.Marshal(p)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCmd(t, "", false, nil, "status", "--dir", f.dir)
	expect(t, r, exitPending, `A1F0\x1b[2J`)
	if strings.Contains(r.stdout+r.stderr, "\x1b") {
		t.Errorf("status: raw escape:\n%s", r.stdout)
	}
}

// While polling, a progress line says "pending approval" only after the
// server answered pending; after a retrieve that failed it says why.
func TestProgressServerUnreachable(t *testing.T) {
	f := newFixture(t, enrolltest.Config{Manual: true})
	var front *httptest.Server
	front = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if strings.Contains(string(body), "operation=request") {
			// the request is answered pending; then the server is gone
			w.Header().Set("Connection", "close")
			front.Listener.Close()
		}
		f.srv.HTTP.Config.Handler.ServeHTTP(w, r)
	}))
	front.Config.ErrorLog = log.New(io.Discard, "", 0)
	front.StartTLS()
	defer front.Close()
	roots := append(f.srv.RootPEM(), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: front.Certificate().Raw})...)
	if err := os.WriteFile(f.rootCA, roots, 0o644); err != nil {
		t.Fatal(err)
	}
	r := runCmd(t, "", false, nil, f.args("enroll", "--server", front.URL+"/", "--max-wait", "300ms",
		"--poll-interval", "20ms", "--max-poll-interval", "20ms")...)
	expect(t, r, exitPending, "chclient: pending approval; retrieve 1 in 20ms",
		"chclient: the server could not be reached (", "connection refused); retrieve 2 in 20ms", "last error:")
	if strings.Count(r.stderr, "pending approval;") != 1 {
		t.Fatalf("\"pending approval\" after the server was gone:\n%s", r.stderr)
	}
}

// The advice after a refused TLS certificate fits why it was refused: the
// --root-ca hint for an unknown authority only; for a certificate that does
// not name the server, all the names it holds.
func TestServerTrustAdvice(t *testing.T) {
	f := newFixture(t, enrolltest.Config{})
	otherRoot := filepath.Join(t.TempDir(), "other.pem")
	other, _, err := enrolltest.NewCA("Some Other Root")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(otherRoot, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: other.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	leaf := func(dns []string, ips []net.IP, notAfter time.Time) *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "impostor"}, DNSNames: dns, IPAddresses: ips,
			NotBefore: notAfter.Add(-48 * time.Hour), NotAfter: notAfter,
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	}
	later := time.Now().Add(time.Hour)
	const rootHint = "give it with --root-ca FILE"
	for name, tc := range map[string]struct {
		cert    *x509.Certificate // nil: the fixture's server
		host    string
		rootCA  string // "": none; "other"; "own": the certificate's
		want    []string
		notWant []string
	}{
		"unknown authority": {want: []string{"unknown authority", rootHint}},
		"not the --root-ca": {rootCA: "other", want: []string{"unknown authority", "not signed by the root CA given with --root-ca"},
			notWant: []string{rootHint}},
		"other DNS name": {cert: leaf([]string{"wrong.example"}, []net.IP{net.ParseIP("192.0.2.7")}, later), host: "localhost", rootCA: "own",
			want:    []string{"valid for wrong.example, not localhost", "does not name localhost", "it holds wrong.example, 192.0.2.7", "Check the --server name"},
			notWant: []string{rootHint}},
		"IP address URL": {cert: leaf([]string{"wrong.example"}, nil, later), host: "127.0.0.1", rootCA: "own",
			want:    []string{"doesn't contain any IP SANs", "does not name 127.0.0.1", "it holds wrong.example.", "Check the --server name"},
			notWant: []string{rootHint}},
		"expired": {cert: leaf([]string{"localhost"}, nil, time.Now().Add(-time.Hour)), host: "localhost", rootCA: "own",
			want: []string{"expired", "check the clock"}, notWant: []string{rootHint}},
	} {
		t.Run(name, func(t *testing.T) {
			server := f.srv.URL
			var root []byte
			if tc.cert != nil {
				var port string
				port, root = enrolltest.SelfSignedTLS(t, tc.cert)
				server = "https://" + net.JoinHostPort(tc.host, port) + "/"
			}
			a := f.args("enroll", "--server", server)
			switch tc.rootCA {
			case "":
				for i := range a {
					if a[i] == "--root-ca" {
						a = append(a[:i:i], a[i+2:]...)
						break
					}
				}
			case "other":
				a = append(a, "--root-ca", otherRoot)
			case "own":
				path := filepath.Join(t.TempDir(), "own.pem")
				if err := os.WriteFile(path, root, 0o644); err != nil {
					t.Fatal(err)
				}
				a = append(a, "--root-ca", path)
			}
			r := runCmd(t, "", false, nil, a...)
			expect(t, r, exitUntrusted, append([]string{"server certificate not trusted: ", "Nothing was sent."}, tc.want...)...)
			for _, s := range tc.notWant {
				if strings.Contains(r.stderr, s) {
					t.Errorf("advice %q does not fit:\n%s", s, r.stderr)
				}
			}
		})
	}
}

// After a refusal that keeps the request (a wrong password), status says
// so and exits as the enroll did (4); the next enroll resumes the request.
func TestStatusAfterRefusal(t *testing.T) {
	f := newFixture(t, enrolltest.Config{Manual: true})
	if err := os.WriteFile(f.pwFile, []byte("wrong\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	expect(t, runCmd(t, "", false, nil, f.args("enroll")...), exitRejected, "status 3 (bad credentials)")
	r := runCmd(t, "", false, nil, "status", "--dir", f.dir)
	expect(t, r, exitRejected, "state:        pending", "request refused by the server's last answer", "run enroll again to resume",
		"refused:    server refused request: status 3 (bad credentials): bad username or password", "1 answer, last")
	if strings.Contains(r.stdout, "no answer from the server") {
		t.Fatalf("status:\n%s", r.stdout)
	}
	if err := os.WriteFile(f.pwFile, []byte("pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	expect(t, runCmd(t, "", false, nil, f.args("enroll", "--max-wait", "0")...), exitPending, "pending approval")
	r = runCmd(t, "", false, nil, "status", "--dir", f.dir)
	expect(t, r, exitPending, "request waiting for approval")
	if strings.Contains(r.stdout, "refused") {
		t.Fatalf("a refusal shown after a pending answer:\n%s", r.stdout)
	}
	f.srv.Approve()
	expect(t, runCmd(t, "", false, nil, f.args("enroll")...), exitOK, "enrolled:", "(resumed a saved request)")
	if n := strings.Count(strings.Join(f.srv.Ops(), " "), "request"); n != 2 { // refused, then pending
		t.Fatalf("ops %v", f.srv.Ops())
	}
}

// Times under a day are shown in hours or minutes, not as "0 days".
func TestShortLifetime(t *testing.T) {
	f := newFixture(t, enrolltest.Config{Lifetime: 3 * time.Hour})
	checks := []struct {
		args []string
		want string
	}{
		{f.args("enroll"), "(2 hours)\n"},
		{f.args("enroll"), "(2 hours left)"}, // already enrolled
		{f.args("renew"), "(2 hours left); renewal due from"},
		{[]string{"status", "--dir", f.dir}, "(2 hours left)\n"},
	}
	for _, c := range checks {
		r := runCmd(t, "", false, nil, c.args...)
		expect(t, r, exitOK, c.want)
		if strings.Contains(r.stdout, "0 days") {
			t.Fatalf("%s:\n%s", c.args[0], r.stdout)
		}
	}
}

func TestSpan(t *testing.T) {
	for d, want := range map[time.Duration]string{
		364*24*time.Hour + 5*time.Hour:  "364 days",
		48 * time.Hour:                  "2 days",
		24 * time.Hour:                  "1 day",
		47 * time.Hour:                  "1 day",
		23*time.Hour + 59*time.Minute:   "23 hours",
		time.Hour:                       "1 hour",
		59*time.Minute + 59*time.Second: "59 minutes",
		61 * time.Second:                "1 minute",
		30 * time.Second:                "30 seconds",
		0:                               "0 seconds",
	} {
		if got := span(d); got != want {
			t.Errorf("span(%v) = %q, want %q", d, got, want)
		}
	}
	if got := timeLeft(time.Now().Add(-(3*24*time.Hour + time.Hour))); got != "expired 3 days ago" {
		t.Errorf("expired: %q", got)
	}
	if got := timeLeft(time.Now().Add(90 * time.Minute)); got != "1 hour left" {
		t.Errorf("90 minutes: %q", got)
	}
}

// A certificate that ended with its CA is not renewed (the server cannot
// issue from an expired CA), but the device has no valid certificate any
// more: renew says so and fails, instead of exit 0 as for one not yet due.
func TestRenewExpiredWithItsCA(t *testing.T) {
	f := newFixture(t, enrolltest.Config{})
	end := time.Now().Add(-time.Hour).Truncate(time.Second)
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Old CA"},
		NotBefore: end.Add(-48 * time.Hour), NotAfter: end, BasicConstraintsValid: true, IsCA: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "gw1.example.com"},
		DNSNames: []string{"gw1.example.com"}, NotBefore: end.Add(-24 * time.Hour), NotAfter: end,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caTmpl, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	for name, b := range map[string]*pem.Block{"ca.pem": {Type: "CERTIFICATE", Bytes: caDER},
		"cert.pem": {Type: "CERTIFICATE", Bytes: der}, "key.pem": {Type: "PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(filepath.Join(f.dir, name), pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	args := f.args("renew")
	for i, a := range args {
		if a == "--ca-fingerprint" { // the cron job's command: ca.pem is the pin
			args = append(args[:i:i], args[i+2:]...)
			break
		}
	}
	r := runCmd(t, "", false, nil, args...)
	expect(t, r, exitError, "not renewed:", "expired", "the operator must renew the operational CA")
	if strings.Contains(r.stdout+r.stderr, "is valid until") {
		t.Fatalf("an expired certificate called valid:\n%s%s", r.stdout, r.stderr)
	}
}

// After the clearinghouse renewed its CA (README, "Renewing the
// operational CA"), the daily renew meets a CA other than the one pinned
// by ca.pem: the error says where the expected fingerprint comes from, and
// how to enroll with the new CA, as no flag of the command named it.
func TestFingerprintMismatchWithSavedPin(t *testing.T) {
	f := newFixture(t, enrolltest.Config{})
	expect(t, runCmd(t, "", false, nil, f.args("enroll")...), exitOK, "enrolled:")
	other, _, err := enrolltest.NewCA("Old Clearinghouse CA")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(f.dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: other.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	args := f.args("renew", "--force")
	for i, a := range args {
		if a == "--ca-fingerprint" {
			args = append(args[:i:i], args[i+2:]...)
			break
		}
	}
	expect(t, runCmd(t, "", false, nil, args...), exitUntrusted, "fingerprint mismatch", "pinned by "+caFile,
		"enroll --force --ca-fingerprint")
	// given on the command line, the pin needs no such explanation
	r := runCmd(t, "", false, nil, f.args("renew", "--force", "--ca-fingerprint", strings.Repeat("00", 32))...)
	expect(t, r, exitUntrusted, "fingerprint mismatch")
	if strings.Contains(r.stderr, "pinned by") {
		t.Fatalf("a pin from --ca-fingerprint said to come from a file:\n%s", r.stderr)
	}
}

// enroll with a --ca-fingerprint other than the installed certificate's CA
// (the clearinghouse renewed its CA: README step 4, each device enrolls
// again) is not "already enrolled": that certificate is of a CA the
// operator no longer pins. It enrolls, checking the server's CA against
// the new pin.
func TestEnrollWithAnotherCAPin(t *testing.T) {
	f := newFixture(t, enrolltest.Config{})
	expect(t, runCmd(t, "", false, nil, f.args("enroll")...), exitOK, "enrolled:")
	n := len(f.srv.Messages())
	r := runCmd(t, "", false, nil, f.args("enroll", "--ca-fingerprint", strings.Repeat("AB", 32))...)
	expect(t, r, exitUntrusted, "fingerprint mismatch")
	if len(f.srv.Messages()) == n {
		t.Fatal("the server was not asked for its CA")
	}
	// the same pin, in another spelling, is the installed CA's
	fp := strings.ToLower(strings.ReplaceAll(f.srv.CAFingerprint(), ":", ""))
	expect(t, runCmd(t, "", false, nil, f.args("enroll", "--ca-fingerprint", fp)...), exitOK, "already enrolled")
}
