package osp

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/internal/osptk"
)

// toolkitServer answers the OSP Toolkit's test_app with this package, the
// way the clearinghouse does: ParseRequest, then Authorize / ConfirmUsage,
// or a refusal. rewrite, when set, edits the answer's bytes.
type toolkitServer struct {
	t       *testing.T
	dests   []Destination
	signer  *TokenSigner
	authSt  Status // when set, refuse AuthorizationRequests with it
	usageSt Status // when set, confirm usage with it
	rewrite func([]byte) []byte

	mu       sync.Mutex
	kinds    []Kind
	requests [][]byte // the bodies the toolkit sent, in order
}

func (s *toolkitServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(DefaultLimits.MaxBytes)+1))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.requests = append(s.requests, body)
	s.mu.Unlock()
	now := time.Now()
	var ans Message
	req, err := ParseRequest(body)
	if err != nil {
		s.t.Errorf("the toolkit sent a request ParseRequest refuses: %v\n%s", err, body)
		if ans, err = RefusalFor(err, now); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	} else {
		s.mu.Lock()
		s.kinds = append(s.kinds, req.Kind())
		s.mu.Unlock()
		switch m := req.(type) {
		case *AuthorizationRequest:
			if s.authSt.Code != 0 {
				ans, err = Refuse(m, s.authSt, now)
			} else {
				ans, err = Authorize(m, s.dests, s.signer, now, 0)
			}
		case *UsageIndication:
			st := StatusOK
			if s.usageSt.Code != 0 {
				st = s.usageSt
			}
			ans = ConfirmUsage(m, st, now)
		default:
			ans, err = Refuse(req, StatusUnimplemented, now)
		}
		if err != nil {
			s.t.Error(err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	out, err := ans.Marshal()
	if err != nil {
		s.t.Error(err)
		return
	}
	if s.rewrite != nil {
		out = s.rewrite(out)
	}
	// The toolkit reads the body by its Content-Length (osphttp.c,
	// OSPPHttpParseHeader: no content-length header is
	// OSPC_ERR_HTTP_BAD_HEADER_200, 14220); Go would chunk an answer over
	// 2 KB, as one with a signed token is, so the length is set.
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	_, _ = w.Write(out)
}

var returnCode = regexp.MustCompile(`function return code = (-?\d+)`)

// runTestApp runs the toolkit's unmodified test_app against srv with the
// given menu steps (each followed by the "press any key" line) and returns
// the return code of every step and the whole output.
func runTestApp(t *testing.T, srv *toolkitServer, steps ...int) ([]int, string) {
	t.Helper()
	bin := osptk.Build(t)
	hs := httptest.NewServer(srv)
	defer hs.Close()
	dir := t.TempDir()
	cfg, err := os.ReadFile(filepath.Join(bin, "test.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "test.cfg"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	var in strings.Builder
	for _, s := range steps {
		in.WriteString(strconv.Itoa(s) + "\n\n")
	}
	in.WriteString("q\n")
	cmd := exec.Command(filepath.Join(bin, "test_app"), hs.URL+"/osp")
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(in.String())
	done := make(chan struct{})
	var out []byte
	go func() {
		out, err = cmd.CombinedOutput()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("test_app did not finish:\n%s", out)
	}
	if err != nil {
		t.Fatalf("test_app: %v\n%s", err, out)
	}
	var codes []int
	for _, m := range returnCode.FindAllStringSubmatch(string(out), -1) {
		n, _ := strconv.Atoi(m[1])
		codes = append(codes, n)
	}
	if len(codes) != len(steps) {
		t.Fatalf("%d return codes for %d steps:\n%s", len(codes), len(steps), out)
	}
	return codes, string(out)
}

// Menu steps of test_app (test/test_app.c): 1 OSPPProviderNew, 23
// TransactionNew, 24 TransactionDelete, 27
// GetFirstDestination, 28 GetNextDestination, 29 RequestAuthorisation, 31
// ValidateAuthorisation (TOKENALGO=2: signed or unsigned), 32 ReportUsage.
// The capture also ran 2 (ProviderDelete), which only waits 4 s for the
// queue to drain; "q" ends the program without it.

// The unmodified OSP Toolkit accepts what this package answers: the
// capture's sequence (README of the captures) passes every step with
// Authorize's unsigned token, several destinations come through
// GetFirstDestination/GetNextDestination, and the usage is confirmed.
func TestToolkitAcceptsAnswers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the OSP Toolkit's test_app")
	}
	t.Run("capture sequence, unsigned token", func(t *testing.T) {
		t.Parallel()
		srv := &toolkitServer{t: t, dests: []Destination{{SignalAddress: "127.0.0.2:5060"}}}
		codes, out := runTestApp(t, srv, 1, 23, 29, 27, 31, 32, 24)
		for i, c := range codes {
			if c != 0 {
				t.Fatalf("step %d returned %d:\n%s", i, c, out)
			}
		}
		for _, want := range []string{"num dest = 1", "[127.0.0.2]:5060", "timelimit = 14400", "callid size = 1 value = 1", "authorised = 1"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		if len(srv.kinds) != 2 || srv.kinds[0] != KindAuthorizationRequest || srv.kinds[1] != KindUsageIndication {
			t.Errorf("requests %v", srv.kinds)
		}
	})
	t.Run("three destinations", func(t *testing.T) {
		t.Parallel()
		srv := &toolkitServer{t: t, dests: []Destination{
			{SignalAddress: "127.0.0.2:5060", MaxDuration: time.Hour},
			{SignalAddress: "[127.0.0.3]:5061", Device: "trunk-3"},
			{SignalAddress: "gw4.example.net:5062"},
		}}
		codes, out := runTestApp(t, srv, 1, 23, 29, 27, 28, 28, 32, 24)
		for i, c := range codes {
			if c != 0 {
				t.Fatalf("step %d returned %d:\n%s", i, c, out)
			}
		}
		for _, want := range []string{"num dest = 3", "[127.0.0.2]:5060", "timelimit = 3600", "[127.0.0.3]:5061",
			"gw4.example.net:5062", "callid size = 1 value = 2", "callid size = 1 value = 3"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("signed token", func(t *testing.T) {
		t.Parallel()
		// test_app trusts only its compiled-in TransNexus CA, so it
		// cannot validate our signature (step 31); the response with a
		// signed token must still be accepted and the token handed over.
		srv := &toolkitServer{t: t, dests: []Destination{{SignalAddress: "127.0.0.2:5060"}}, signer: testPKI(t).signer}
		codes, out := runTestApp(t, srv, 1, 23, 29, 27, 31, 24)
		if codes[2] != 0 || codes[3] != 0 {
			t.Fatalf("request/first destination returned %v:\n%s", codes, out)
		}
		// PKCS7_verify ran and refused the signer: OSPC_ERR_PKCS7_INVALID_SIGNATURE.
		if codes[4] != 18020 {
			t.Fatalf("ValidateAuthorisation returned %d, want 18020:\n%s", codes[4], out)
		}
	})
}

// The toolkit turns refusal statuses into its error codes
// (OSPPUtilGetErrorFromStatus), refuses an answer with an unknown critical
// element and ignores one marked critical="false".
func TestToolkitRefusals(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the OSP Toolkit's test_app")
	}
	dest := []Destination{{SignalAddress: "127.0.0.2:5060"}}
	rewrite := func(elem string) func([]byte) []byte {
		return func(b []byte) []byte {
			return []byte(strings.Replace(string(b), "<Destination>", elem+"\n<Destination>", 1))
		}
	}
	cases := []struct {
		name    string
		authSt  Status
		rewrite func([]byte) []byte
		code    int // return code of step 29 (RequestAuthorisation); -1: any error
	}{
		{"404 no route", StatusNoRoute, nil, 11503},
		{"401 unauthorised", StatusUnauthorized, nil, 11483},
		{"412 unsupported critical element", StatusUnsupportedCritical, nil, 11486},
		{"503 service not available", StatusServiceUnavailable, nil, 11496},
		{"unknown critical element in the answer", Status{}, rewrite("<Frobnicate>1</Frobnicate>"), -1},
		{"unknown non-critical element in the answer", Status{}, rewrite(`<Frobnicate critical="false">1</Frobnicate>`), 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := &toolkitServer{t: t, dests: dest, authSt: tc.authSt, rewrite: tc.rewrite}
			codes, out := runTestApp(t, srv, 1, 23, 29, 24)
			switch {
			case tc.code == -1 && codes[2] == 0:
				t.Fatalf("accepted:\n%s", out)
			case tc.code >= 0 && codes[2] != tc.code:
				t.Fatalf("step 29 returned %d, want %d:\n%s", codes[2], tc.code, out)
			}
		})
	}
	t.Run("usage refused", func(t *testing.T) {
		t.Parallel()
		srv := &toolkitServer{t: t, dests: dest, usageSt: StatusBadRequest}
		codes, out := runTestApp(t, srv, 1, 23, 29, 27, 32, 24)
		if codes[2] != 0 || codes[3] != 0 {
			t.Fatalf("%v:\n%s", codes, out)
		}
		if codes[4] != 11260 { // OSPC_ERR_TRAN_STATUS_INVALID (OSPPTransactionVerifyUsageCnf)
			t.Fatalf("ReportUsage with a 400 confirmation returned %d:\n%s", codes[4], out)
		}
	})
}

// buildValidator compiles testdata/toolkit/validate.c against the toolkit
// library osptk built: a gateway's token check by the toolkit's own code.
func buildValidator(t *testing.T) (string, string) {
	t.Helper()
	bin := osptk.Build(t)
	src := osptk.Source()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Fatal("gcc not found (the toolkit was built with it)")
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, "validate")
	harness, err := filepath.Abs(filepath.Join("testdata", "toolkit", "validate.c"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(gcc, "-w", "-O0", "-D_GNU_SOURCE", "-D_XOPEN_SOURCE=700", "-D_POSIX_THREADS", "-D_REENTRANT", "-DOSP_SDK",
		"-I"+filepath.Join(src, "include"), "-I"+filepath.Join(src, "test"), "-o", exe, harness,
		filepath.Join(src, "test", "nonblocking.c"), filepath.Join(src, "test", "syncque.c"),
		filepath.Join(filepath.Dir(bin), "lib", "libosptk.a"), "-lssl", "-lcrypto", "-lutf8proc", "-lpthread", "-lm")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("compiling the validation harness: %v\n%s", err, out)
	}
	cfg, err := os.ReadFile(filepath.Join(bin, "test.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "test.cfg"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	return exe, dir
}

var validateOut = regexp.MustCompile(`errcode=(-?\d+) authorised=(\d+) timelimit=(\d+)`)

// validatorTrustingTestCA builds the toolkit harness (buildValidator) and
// writes the DER of a fresh test PKI's CA beside it, for the harness to
// trust.
func validatorTrustingTestCA(t *testing.T) (exe, dir, caDER string, p *pki) {
	exe, dir = buildValidator(t)
	p = testPKI(t)
	caDER = filepath.Join(dir, "ca.der")
	if err := os.WriteFile(caDER, p.ca.Raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return exe, dir, caDER, p
}

// toolkitValidate has the toolkit harness exe (in dir) validate token,
// written to file name, for a call from calling to called with the
// token algorithm algo ("0" signed, "1" unsigned), and returns the
// toolkit's errcode, authorised and time limit.
func toolkitValidate(t *testing.T, exe, dir, caDER, name string, token []byte, calling, called, algo string) (code int, authorised, timeLimit string) {
	t.Helper()
	tok := filepath.Join(dir, name)
	if err := os.WriteFile(tok, token, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, caDER, tok, calling, called, "1", "[127.0.0.2]:5060", algo)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	m := validateOut.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("output: %s", out)
	}
	code, _ = strconv.Atoi(m[1])
	return code, m[2], m[3]
}

// The toolkit's own OSPPTransactionValidateAuthorisation, trusting the
// test operational CA, accepts Authorize's signed tokens and refuses them
// for the reasons a gateway must (errors of include/osp/osperrno.h).
func TestToolkitValidatesSignedTokens(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the OSP Toolkit")
	}
	exe, dir, caDER, p := validatorTrustingTestCA(t)
	now := time.Now()
	issue := func(s *TokenSigner, at time.Time, mod func(*AuthorizationRequest)) []byte {
		req := authRequest(t)
		if mod != nil {
			mod(req)
		}
		rsp, err := Authorize(req, []Destination{{SignalAddress: "127.0.0.2:5060"}}, s, at, 0)
		if err != nil {
			t.Fatal(err)
		}
		return rsp.Destinations[0].Token
	}
	signed := issue(p.signer, now, nil)
	tampered := bytes.Clone(signed)
	tampered[bytes.Index(tampered, []byte("<DestinationInfo"))+1] ^= 0x20

	otherKey := mustKey(t)
	otherCA := mustCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "Other CA"}, NotBefore: earliest().AddDate(-1, 0, 0),
		NotAfter: now.AddDate(1, 0, 0), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, nil, otherKey, otherKey)
	k2 := mustKey(t)
	other := &TokenSigner{Cert: mustCert(t, tokenCertTemplate("other"), otherCA, otherKey, k2), Key: k2}

	interKey := mustKey(t)
	inter := mustCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "Intermediate"}, NotBefore: earliest().AddDate(0, -1, 0),
		NotAfter: now.AddDate(1, 0, 0), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, p.ca, p.caKey, interKey)
	k3 := mustKey(t)
	viaInter := &TokenSigner{Cert: mustCert(t, tokenCertTemplate("via intermediate"), inter, interKey, k3), Key: k3, Chain: []*x509.Certificate{inter}}

	rsaKey := mustRSAKey(t)
	rsaSigner := &TokenSigner{Cert: mustCert(t, tokenCertTemplate("rsa"), p.ca, p.caKey, rsaKey), Key: rsaKey}

	k4 := mustKey(t)
	tmpl := tokenCertTemplate("clientAuth")
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	clientAuth := &TokenSigner{Cert: mustCert(t, tmpl, p.ca, p.caKey, k4), Key: k4}

	unsigned := issue(nil, now, nil)
	// a ported number: the token carries the routing number before the
	// dialed number, which the toolkit compares (the last DestinationInfo)
	ported := func(r *AuthorizationRequest) {
		r.DestinationInfo = append(r.DestinationInfo, Info{TypeRoutingNumber, "13243546576"}, Info{TypeCIC, "NPCic"}, Info{TypeNPDI, "true"})
	}

	cases := []struct {
		name   string
		token  []byte
		called string
		algo   string
		code   int
	}{
		{"signed P-256", signed, "1678", "0", 0},
		{"signed RSA-2048", issue(rsaSigner, now, nil), "1678", "0", 0},
		{"signed, either form allowed", issue(p.signer, now, nil), "1678", "2", 0},
		{"signer with clientAuth-only EKU (PKCS7_NOCHAIN checks no purpose)", issue(clientAuth, now, nil), "1678", "0", 0},
		{"tampered", tampered, "1678", "0", 18020},                 // OSPC_ERR_PKCS7_INVALID_SIGNATURE
		{"another CA", issue(other, now, nil), "1678", "0", 18020}, // OSPC_ERR_PKCS7_INVALID_SIGNATURE
		{"signer under an intermediate", issue(viaInter, now, nil), "1678", "0", 18020},
		{"wrong called number", issue(p.signer, now, nil), "1679", "0", 11270},         // OSPC_ERR_TRAN_TOKEN_INVALID
		{"expired", issue(p.signer, now.Add(-2*time.Minute), nil), "1678", "0", 11140}, // OSPC_ERR_TRAN_TOO_LATE_TO_USE_TOKEN
		{"unsigned when only signed allowed", unsigned, "1678", "0", 11506},            // OSPC_ERR_TRAN_UNSIGNED_TOKEN_NOT_ALLOWED
		{"unsigned when allowed", issue(nil, now, nil), "1678", "1", 0},
		{"number portability, the dialed number", issue(p.signer, now, ported), "1678", "0", 0},
		{"number portability, the routing number", issue(p.signer, now, ported), "13243546576", "0", 11270},
		{"number portability, unsigned", issue(nil, now, ported), "1678", "1", 0},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, authorised, limit := toolkitValidate(t, exe, dir, caDER, fmt.Sprintf("token-%d", i), tc.token, "14048724799", tc.called, tc.algo)
			if code != tc.code {
				t.Fatalf("errcode %d, want %d", code, tc.code)
			}
			if code == 0 && (authorised != "1" || limit != "14400") {
				t.Fatalf("not authorised: authorised=%s timelimit=%s", authorised, limit)
			}
		})
	}
}
