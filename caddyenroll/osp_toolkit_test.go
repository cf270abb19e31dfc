package caddyenroll_test

// Call authorization over OSP with the real clients: the UNMODIFIED OSP
// Toolkit 4.33.1 (built from ../shared/vendor by internal/osptk) against a
// real Caddy on a test variant of examples/legacy.Caddyfile, whose two sites
// serve OSP at /osp beside the enrollment protocol:
//
//   - the toolkit's own test_app, driven through its menu with its stock
//     bin/test.cfg pointed at the server (TestOSPToolkitTestApp);
//   - a gateway built on the toolkit library the way Asterisk's res_osp
//     builds one (osp/testdata/toolkit/gateway.c), configured with the
//     files enrollment through the same Caddy gave it, asking for a route
//     and checking the signed token it got (TestOSPSignedTokenToolkitValidation).
//
// Identifiers here start with otk (the package's other test files are
// edited in parallel).

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/internal/osptk"
	"github.com/clearinghouse-dev/caddy-clearinghouse/internal/testutil"
)

// Table 7 of the seed (examples/legacy.conf): a call from device1.itsp.com
// (group ACME ITSP, named by its source address 127.0.0.1 in the shipped
// Caddyfile) to 1678 matches 'ACME ITSP' '+1...' and gets device2.itsp.com,
// then the fallback device4.carrier.com (device1 is the caller, device3 is
// disabled). Signalling addresses are the device names, port 5060.
const (
	otkCalling = "14048724799" // test.cfg's CALLING
	otkCalled  = "1678"        // test.cfg's CALLED
	otkSource  = "device1.itsp.com"
	otkFirst   = "device2.itsp.com:5060"
	otkSecond  = "device4.carrier.com:5060"
)

// otkServer is a real Caddy on a test variant of examples/legacy.Caddyfile.
type otkServer struct {
	*legServer
	shortAddr string // HTTPS site whose osp handler has token_validity 2s (withShort)
	// HTTPS sites whose osp handlers have tokens ca_signed and profile
	// modern, the second also token_validity 2s, and the third tokens
	// ca_signed with the shipped profile legacy (otkStartCASigned)
	caSignedAddr, caSignedShortAddr, caSignedLegacyAddr string
}

// otkStart starts the shipped legacy example with free ports, temporary
// storage and a copy of legacy.conf (legacyCaddyfile: exact replacements of
// the shipped text). withShort adds an HTTPS site whose osp block is the
// shipped signed one plus `token_validity 2s`, for expired tokens.
func otkStart(t *testing.T, withShort bool) *otkServer {
	t.Helper()
	return otkStartWith(t, withShort, "")
}

// otkStartWith is otkStart with lines added at the end of the copy of
// legacy.conf.
func otkStartWith(t *testing.T, withShort bool, extraConf string) *otkServer {
	t.Helper()
	return otkStartSites(t, withShort, false, extraConf)
}

// otkStartCASigned is otkStart with three more HTTPS sites whose osp
// blocks are the shipped signed one with `tokens ca_signed`: two with
// `profile modern` (P-256), the second also with `token_validity 2s`, and
// one with the shipped `profile legacy` (RSA-2048).
func otkStartCASigned(t *testing.T) *otkServer {
	t.Helper()
	return otkStartSites(t, false, true, "")
}

func otkStartSites(t *testing.T, withShort, caSigned bool, extraConf string) *otkServer {
	t.Helper()
	dir := t.TempDir()
	conf, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "examples", "legacy.conf"))
	if err != nil {
		t.Fatal(err)
	}
	conf = append(conf, extraConf...)
	confPath := filepath.Join(dir, "legacy.conf")
	if err := os.WriteFile(confPath, conf, 0o640); err != nil {
		t.Fatal(err)
	}
	s := &otkServer{legServer: &legServer{t: t, conf: confPath,
		httpAddr: fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t)),
		tlsAddr:  fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t)),
	}}
	admin := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	cf := legacyCaddyfile(t, dir, admin, s.httpAddr, s.tlsAddr, "", confPath, legOpts{})
	wait := []string{s.httpAddr, s.tlsAddr}
	// a site whose osp block is the shipped signed one with the tokens
	// form and profile given and the lines given after `tokens`
	site := func(tokens, profile, lines string) string {
		addr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
		const start, end = "\t\tosp {\n\t\t\ttokens signed\n", "\t\t}\n"
		i := strings.Index(cf, start)
		if i < 0 || strings.Count(cf, start) != 1 {
			t.Fatalf("examples/legacy.Caddyfile: want exactly one %q (the HTTPS site's osp block)", start)
		}
		block := cf[i : i+len(start)+strings.Index(cf[i+len(start):], end)+len(end)]
		block = strings.Replace(block, start, "\t\tosp {\n\t\t\ttokens "+tokens+"\n"+lines, 1)
		if n := strings.Count(block, "\t\t\tprofile legacy\n"); n != 1 {
			t.Fatalf("examples/legacy.Caddyfile: the HTTPS site's osp block has %d `profile legacy` lines, want 1", n)
		}
		block = strings.Replace(block, "\t\t\tprofile legacy\n", "\t\t\tprofile "+profile+"\n", 1)
		cf += fmt.Sprintf("\nhttps://%s {\n\tbind 127.0.0.1\n\ttls internal\n\thandle /osp {\n%s\t}\n}\n", addr, block)
		wait = append(wait, addr)
		return addr
	}
	if withShort {
		s.shortAddr = site("signed", "legacy", "\t\t\ttoken_validity 2s\n")
	}
	if caSigned {
		s.caSignedAddr = site("ca_signed", "modern", "")
		s.caSignedShortAddr = site("ca_signed", "modern", "\t\t\ttoken_validity 2s\n")
		s.caSignedLegacyAddr = site("ca_signed", "legacy", "")
	}
	s.Caddy = testutil.StartCaddy(t, dir, cf, admin, wait...)
	for _, a := range wait[1:] {
		legWaitTLS(t, a)
	}
	return s
}

// otkCDR is a stored call detail record as GET /enroll/cdrs lists it.
type otkCDR struct {
	TransactionID uint64            `json:"transaction_id,string"`
	Role          string            `json:"role"`
	RoleState     string            `json:"role_state"`
	Protocol      string            `json:"protocol"`
	ProviderPDD   float64           `json:"provider_post_dial_delay_seconds"`
	Reporter      string            `json:"reporter"`
	Source        string            `json:"transaction_source"`
	CallID        string            `json:"call_id"`
	Calling       string            `json:"calling"`
	Called        string            `json:"called"`
	Destination   string            `json:"destination"`
	Duration      float64           `json:"duration_seconds"`
	TermCauses    []string          `json:"term_causes"`
	PDD           *float64          `json:"post_dial_delay_seconds"`
	Timestamp     time.Time         `json:"timestamp"`
	CustomerID    string            `json:"customer_id"`
	DeviceID      string            `json:"device_id"`
	GroupID       string            `json:"group_id"`
	TotalAttempts *int              `json:"total_setup_attempts"`
	Statistics    map[string]string `json:"statistics"`
	RoutingNumber string            `json:"routing_number"`
	CIC           string            `json:"cic"`
	NPDI          bool              `json:"npdi"`
	Details       map[string]string `json:"details"`
}

// otkConfID is the conference id test_app gives every ReportUsage.
const otkConfID = "E4596A7B-2C27-11D9-816A-EA39F2B2CD06"

func (s *otkServer) cdrs() []otkCDR {
	s.t.Helper()
	code, body := s.Admin("GET", "/enroll/cdrs", "")
	if code != 200 {
		s.t.Fatalf("GET /enroll/cdrs: %d %s", code, body)
	}
	var list []otkCDR
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		s.t.Fatalf("%v: %s", err, body)
	}
	return list
}

// ---------------------------------------------------------------------------
// test_app

var otkReturnCode = regexp.MustCompile(`function return code = (-?\d+)`)

// otkTestCfg is the toolkit's stock bin/test.cfg with its service point
// replaced by sp and TOKENALGO (2 as shipped) by tokenAlgo; CALLED=1678 and
// CALLING=14048724799 stay as shipped.
func otkTestCfg(t *testing.T, bin, sp string, tokenAlgo int) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(bin, "test.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	for old, repl := range map[string]string{
		"\nSP=http://osptestserver.transnexus.com:5045/osp\n": "\nSP=" + sp + "\n",
		"\nTOKENALGO=2\n":                fmt.Sprintf("\nTOKENALGO=%d\n", tokenAlgo),
		"\nCALLED=" + otkCalled + "\n":   "\nCALLED=" + otkCalled + "\n",
		"\nCALLING=" + otkCalling + "\n": "\nCALLING=" + otkCalling + "\n",
	} {
		if n := strings.Count(cfg, old); n != 1 {
			t.Fatalf("bin/test.cfg: %q occurs %d times, want once", old, n)
		}
		cfg = strings.Replace(cfg, old, repl, 1)
	}
	return cfg
}

// otkRunTestApp runs the unmodified test_app in a folder holding cfg as
// test.cfg (it reads it from its working folder), choosing the menu steps
// given (each followed by the line "press any key" waits for), then "q";
// it returns each step's return code and the whole output.
func otkRunTestApp(t *testing.T, bin, cfg string, steps ...int) ([]int, string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "test.cfg"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var in strings.Builder
	for _, s := range steps {
		in.WriteString(strconv.Itoa(s) + "\n\n")
	}
	in.WriteString("q\n")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "test_app"))
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("test_app did not finish:\n%s", out)
	}
	if err != nil {
		t.Fatalf("test_app: %v\n%s", err, out)
	}
	var codes []int
	for _, m := range otkReturnCode.FindAllStringSubmatch(string(out), -1) {
		n, _ := strconv.Atoi(m[1])
		codes = append(codes, n)
	}
	if len(codes) != len(steps) {
		t.Fatalf("%d return codes for steps %v:\n%s", len(codes), steps, out)
	}
	return codes, string(out)
}

// otkStepOutput is what test_app printed for step i (0-based) of a run:
// the text between the preceding step's return code and its own.
func otkStepOutput(out string, i int) string {
	locs := otkReturnCode.FindAllStringIndex(out, -1)
	from := 0
	if i > 0 {
		from = locs[i-1][1]
	}
	return out[from:locs[i][1]]
}

// The toolkit's test_app, unmodified, with its stock test.cfg pointed at
// the shipped legacy example's OSP sites:
//
//   - plain HTTP, unsigned tokens (TOKENALGO=1): new provider (1), new
//     transaction (23), RequestAuthorisation (29) gets Table 7's two
//     destinations, GetFirstDestination (27) device2.itsp.com,
//     ValidateAuthorisation (31) `authorised = 1`, ReportUsage (32) is
//     stored as a CDR (admin API and `caddy enroll cdrs --format csv`),
//     delete transaction (24) and provider (2): every step returns 0; a
//     second run's GetNextDestination (28) gets device4.carrier.com;
//   - HTTPS, signed tokens (TOKENALGO=0): 29 and 27 return 0; 31 returns
//     18020 (OSPC_ERR_PKCS7_INVALID_SIGNATURE): test_app's authority
//     certificate is compiled in (a TransNexus test CA that expired in
//     2012), so it can check no other CA's token. A gateway configured with
//     the clearinghouse's CA does: TestOSPSignedTokenToolkitValidation.
func TestOSPToolkitTestApp(t *testing.T) {
	bin := osptk.Build(t)
	s := otkStart(t, false)

	t.Run("HTTP unsigned", func(t *testing.T) {
		cfg := otkTestCfg(t, bin, "http://"+s.httpAddr+"/osp", 1)
		steps := []int{1, 23, 29, 27, 31, 32, 24, 2}
		codes, out := otkRunTestApp(t, bin, cfg, steps...)
		for i, c := range codes {
			if c != 0 {
				t.Fatalf("step %d (menu %d) returned %d:\n%s", i, steps[i], c, out)
			}
		}
		if got := otkStepOutput(out, 2); !strings.Contains(got, "num dest = 2") {
			t.Errorf("RequestAuthorisation: want 2 destinations (device2.itsp.com, device4.carrier.com):\n%s", got)
		}
		if got := otkStepOutput(out, 3); !strings.Contains(got, "\n"+otkFirst+"\n") || !strings.Contains(got, "timelimit = ") {
			t.Errorf("GetFirstDestination: want %s:\n%s", otkFirst, got)
		}
		if got := otkStepOutput(out, 4); !strings.Contains(got, "authorised = 1") {
			t.Errorf("ValidateAuthorisation: want authorised = 1:\n%s", got)
		}

		// ReportUsage was stored as a call detail record of the caller
		list := s.cdrs()
		if len(list) != 1 {
			t.Fatalf("want 1 CDR after ReportUsage, got %+v", list)
		}
		c := list[0]
		// (role "destination": menu 31 made test_app's transaction the
		// terminating side's, as a gateway validating an inbound token)
		// (and the transaction's source is test_app's device, whose
		// authorization made it)
		if c.Reporter != otkSource || c.Calling != otkCalling || c.Called != otkCalled || c.TransactionID == 0 ||
			c.Role != "destination" || c.Duration <= 0 || c.Source != otkSource {
			t.Errorf("CDR %+v: want reporter and source %s, %s -> %s, a transaction id, a duration", c, otkSource, otkCalling, otkCalled)
		}
		// what test.cfg configures (CUSTID, DEVID, IS_PDD_INFO_AVAILABLE=1
		// with test_app's 1010 ms) and the conference id, kept since they
		// were dropped; the terminating side sends no statistics
		if c.CustomerID != "1000" || c.DeviceID != "1000" || c.GroupID != otkConfID || c.PDD == nil || *c.PDD != 1.01 ||
			time.Since(c.Timestamp) > 2*time.Minute || len(c.Statistics) != 0 {
			t.Errorf("CDR %+v: want customer and device 1000, the conference id, a post-dial delay of 1.01 s and the report's timestamp", c)
		}
		// and exported by the command the README documents
		cmd := exec.Command(testutil.CaddyBinary(t), "enroll", "cdrs", "--format", "csv", "--address", s.AdminAddr)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		csvOut, err := cmd.Output()
		if err != nil {
			t.Fatalf("caddy enroll cdrs --format csv: %v\n%s", err, stderr.String())
		}
		lines := strings.Split(strings.TrimSpace(string(csvOut)), "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[0], "transaction_id,role,reporter,") ||
			!strings.HasPrefix(lines[1], strconv.FormatUint(c.TransactionID, 10)+",") ||
			!strings.Contains(lines[1], ","+otkSource+",") || !strings.Contains(lines[1], ","+otkCalling+","+otkCalled+",") {
			t.Errorf("caddy enroll cdrs --format csv:\n%s", csvOut)
		}

		// The second destination comes with GetNextDestination; the call
		// "goes" there and its usage is reported (the toolkit refuses to
		// delete a transaction with destinations before: 11010), from the
		// source's side this time (above, ValidateAuthorisation had made
		// test_app's transaction a destination's). One UsageIndication
		// carries both attempts, with the same transaction id and role: the
		// first destination (TC 41, no duration) and the call to the second
		// (30 s). Both are stored.
		codes, out = otkRunTestApp(t, bin, cfg, 1, 23, 29, 27, 28, 32, 24)
		for i, c := range codes {
			if c != 0 {
				t.Fatalf("second run: step %d returned %d:\n%s", i, c, out)
			}
		}
		if got := otkStepOutput(out, 4); !strings.Contains(got, "\n"+otkSecond+"\n") {
			t.Errorf("GetNextDestination: want %s:\n%s", otkSecond, got)
		}
		list = s.cdrs()
		if len(list) != 3 {
			t.Fatalf("want 3 CDRs after the second ReportUsage (one per attempt), got %+v", list)
		}
		attempts := map[string]otkCDR{}
		for _, c2 := range list[1:] {
			if c2.Reporter != otkSource || c2.Role != "source" || c2.Calling != otkCalling || c2.Called != otkCalled ||
				c2.TransactionID != list[1].TransactionID || c2.TransactionID == c.TransactionID {
				t.Errorf("second run's CDR %+v: want the source's records of one transaction", c2)
			}
			attempts[c2.Destination] = c2
		}
		// only the call that connected has a post-dial delay and the
		// statistics (OSPPTransactionReportUsage's packets lost: 1, 2,
		// 100, 10 in test_app)
		if a := attempts[otkFirst]; a.Duration != 0 || len(a.TermCauses) != 1 || !strings.HasPrefix(a.TermCauses[0], "q850:41:") ||
			a.PDD != nil || len(a.Statistics) != 0 {
			t.Errorf("failed attempt to %s: %+v", otkFirst, a)
		}
		wantStats := map[string]string{"LossSent.Packets": "1", "LossSent.Fraction": "2",
			"LossReceived.Packets": "100", "LossReceived.Fraction": "10"}
		if a := attempts[otkSecond]; a.Duration != 30 || a.PDD == nil || *a.PDD != 1.01 || !reflect.DeepEqual(a.Statistics, wantStats) {
			t.Errorf("call to %s: %+v, want 30 s, a post-dial delay of 1.01 s and the statistics %v", otkSecond, a, wantStats)
		}

		// SetRoleInfo (menu 200: state stop1, format radius, vendor
		// cisco) adds <RoleInfo> to the usage: accepted, and its state
		// kept with the record; SetProtocol (220) gives a protocol for
		// the source, the destination and "na", and SetProviderPDD (237)
		// the provider's post dial delay, 2.010 s, and
		// SetTotalSetupAttempts (219) the call's attempts, 12; and what
		// records keep in their details: SetPricingInfo (55, before the
		// authorization), SetCodec (221), SetNetworkId and SetSwitchId
		// (222), SetSessionId (223), SetCallPartyInfo (226), SetUserAgent
		// (234), SetChargingVector (240)
		codes, out = otkRunTestApp(t, bin, cfg, 1, 23, 55, 29, 27, 28, 200, 220, 237, 219, 221, 222, 223, 226, 234, 240, 32, 24)
		for i, c := range codes {
			if c != 0 {
				t.Fatalf("third run: step %d returned %d:\n%s", i, c, out)
			}
		}
		list = s.cdrs()
		if len(list) != 5 {
			t.Fatalf("want 5 CDRs after the third ReportUsage, got %+v", list)
		}
		for _, c3 := range list[3:] {
			if c3.RoleState != "stop1" || c3.Reporter != otkSource || c3.TotalAttempts == nil || *c3.TotalAttempts != 12 {
				t.Errorf("third run's CDR %+v: want role state stop1 and 12 setup attempts in all", c3)
			}
			// the call that connected has the protocols and delay set
			if c3.Destination == otkSecond && (c3.Protocol != "h323-Q931" || c3.ProviderPDD != 2.01) {
				t.Errorf("third run's call to %s: %+v, want the destination's protocol h323-Q931 (not the source's or na's) and the provider's delay 2.01 s", otkSecond, c3)
			}
			// every attempt has the transaction's pricing element in
			// turn, the calling party and the user agent; the call that
			// connected the called party, codecs and session ids set
			// after the answer as well
			want := map[string]string{"CallingPartyInfo.UserId": "callinguserid", "UserAgent": "Cisco-SIPGateway/IOS-12.x",
				"ChargingVector[type:icidvalue]": "PCVICID", "RoleInfo.VendorInfo": "cisco",
				"SignalingProtocol[type:source]": "h323-LRQ", "SignalingProtocol[type:na]": "iax",
				"PricingIndication.Amount": "0.100", "PricingIndication.Currency": "USD"}
			if c3.Destination == otkSecond {
				maps.Copy(want, map[string]string{"PricingIndication.Amount": "0.150", "PricingIndication.Currency": "EUR",
					"CalledPartyInfo.UserGroup": "calledusergroup", "Codec[service:voice,type:source]": "g729",
					"Codec[service:video,type:destination]": "alaw", "SessionId[encoding:base64,type:source]": "c291cmNlY2FsbGlk",
					"DestinationAlternate[type:switchId]": "DestSwitchId", "SignalingProtocol[type:destination]": "h323-Q931"})
			}
			for k, v := range want {
				if c3.Details[k] != v {
					t.Errorf("third run's record of the attempt at %s: details %s = %q, want %q (details %q)", c3.Destination, k, c3.Details[k], v, c3.Details)
				}
			}
		}
	})

	t.Run("HTTPS signed", func(t *testing.T) {
		cfg := otkTestCfg(t, bin, "https://"+s.tlsAddr+"/osp", 0)
		codes, out := otkRunTestApp(t, bin, cfg, 1, 23, 29, 27, 31, 24)
		if codes[0] != 0 || codes[1] != 0 || codes[2] != 0 || codes[3] != 0 {
			t.Fatalf("provider/transaction/RequestAuthorisation/GetFirstDestination returned %v:\n%s", codes, out)
		}
		if got := otkStepOutput(out, 3); !strings.Contains(got, "\n"+otkFirst+"\n") {
			t.Errorf("GetFirstDestination: want %s:\n%s", otkFirst, got)
		}
		if codes[4] != 18020 {
			t.Errorf("ValidateAuthorisation with test_app's compiled-in (expired, foreign) CA: %d, want 18020:\n%s", codes[4], out)
		}
	})
}

// ---------------------------------------------------------------------------
// A gateway on the toolkit library, as Asterisk's res_osp makes one

var (
	otkLookupOut   = regexp.MustCompile(`lookup errcode=(-?\d+) numdest=(\d+) dest=(\S*) timelimit=(\d+) tokensize=(\d+) b64=(-?\d+)`)
	otkValidateOut = regexp.MustCompile(`validate errcode=(-?\d+) authorised=(\d+) timelimit=(\d+)`)
)

// otkGateway is the gateway harness with one device's files: its key and
// certificate from enrollment and the CA certificate from getcacert.
type otkGateway struct {
	t                *testing.T
	exe, dir         string
	key, cert, cacrt string
	b64              int // OSPPBase64Encode's result on the last lookup's token into 2048 bytes
	// noCallerID makes the calling number of lookup and validate empty
	// instead of otkCalling: a call without caller id, as res_osp passes
	// it (NULL becomes "")
	noCallerID bool
}

// calling is the calling number the gateway passes to the toolkit.
func (g *otkGateway) calling() string {
	if g.noCallerID {
		return ""
	}
	return otkCalling
}

func (g *otkGateway) run(args ...string) string {
	g.t.Helper()
	return runHarness(g.t, "gateway", g.exe, g.dir, nil, args...)
}

// runHarness runs a C harness linking the toolkit with args (in dir and
// with env when given, else the test's) and returns its output; a failure
// ends the test.
func runHarness(t *testing.T, what, exe, dir string, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", what, args, err, out)
	}
	return string(out)
}

// lookup asks the service point sp to authorize a call from
// otkCalling (or no caller id) to otkCalled (source "[127.0.0.1]", as res_osp converts its
// own address) and returns the toolkit's error code, the first destination
// and the path of the file holding its token.
func (g *otkGateway) lookup(sp string) (code int, numDest int, dest string, token string) {
	g.t.Helper()
	f, err := os.CreateTemp(g.dir, "token-*")
	if err != nil {
		g.t.Fatal(err)
	}
	f.Close()
	out := g.run(sp, g.key, g.cert, g.cacrt, "lookup", "[127.0.0.1]", g.calling(), otkCalled, f.Name())
	m := otkLookupOut.FindStringSubmatch(out)
	if m == nil {
		g.t.Fatalf("gateway lookup printed: %s", out)
	}
	code, _ = strconv.Atoi(m[1])
	numDest, _ = strconv.Atoi(m[2])
	g.b64, _ = strconv.Atoi(m[6])
	return code, numDest, m[3], f.Name()
}

// validate checks a token as res_osp's OSPAuth does, with the given
// tokenformat (0 signed, 1 unsigned, 2 both).
func (g *otkGateway) validate(token string, tokenFormat int) (code, authorised, timelimit int, out string) {
	g.t.Helper()
	out = g.run("https://127.0.0.1:9/osp", g.key, g.cert, g.cacrt, "validate", "[127.0.0.1]", "[127.0.0.1]",
		g.calling(), otkCalled, token, strconv.Itoa(tokenFormat))
	m := otkValidateOut.FindStringSubmatch(out)
	if m == nil {
		g.t.Fatalf("gateway validate printed: %s", out)
	}
	code, _ = strconv.Atoi(m[1])
	authorised, _ = strconv.Atoi(m[2])
	timelimit, _ = strconv.Atoi(m[3])
	return code, authorised, timelimit, out
}

// refusesTampered writes tok with one bit of its TokenInfo flipped to path
// and checks the gateway refuses it as a bad signature; it returns path.
func (g *otkGateway) refusesTampered(t *testing.T, tok []byte, path string) string {
	t.Helper()
	bad := bytes.Clone(tok)
	i := bytes.Index(bad, []byte("<DestinationInfo"))
	if i < 0 {
		t.Fatalf("no <DestinationInfo in the token's content")
	}
	bad[i+1] ^= 0x20
	if err := os.WriteFile(path, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, authorised, _, out := g.validate(path, 0); code != 18020 || authorised != 0 { // OSPC_ERR_PKCS7_INVALID_SIGNATURE
		t.Fatalf("tampered token: want errcode 18020: %s", out)
	}
	return path
}

// refusesExpired has orig look a call up at sp, a site of token_validity
// 2s, and checks the gateway refuses the token once it expired.
func (g *otkGateway) refusesExpired(t *testing.T, orig *otkGateway, sp string) {
	t.Helper()
	code, _, _, short := orig.lookup(sp)
	if code != 0 {
		t.Fatalf("lookup on the token_validity 2s site %s: errcode %d", sp, code)
	}
	// ValidUntil = issue time + 2s, compared in whole seconds
	time.Sleep(3500 * time.Millisecond)
	if code, authorised, _, out := g.validate(short, 0); code != 11140 || authorised != 0 { // OSPC_ERR_TRAN_TOO_LATE_TO_USE_TOKEN
		t.Fatalf("expired token: want errcode 11140: %s", out)
	}
}

// otkOpenSSLVerify runs `openssl <cmd> -verify -inform DER -binary -nochain
// -CAfile ca` on a token, as osp/token_test.go does: `smime -nochain` is
// PKCS7_verify with PKCS7_NOCHAIN, the toolkit's own call
// (src/ospsecurity.c); OpenSSL before 3.2 (3.0 here) has no `cms -nochain`,
// and cms then runs without it (the token embeds only the signer's
// certificate, so no intermediate can come from the message: the same
// check). It returns the signer certificate on success.
func otkOpenSSLVerify(t *testing.T, cmd, token, ca string) (*x509.Certificate, error) {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatal("the openssl command is needed (apt-get install openssl)")
	}
	dir := t.TempDir()
	signer := filepath.Join(dir, "signer.pem")
	args := []string{cmd, "-verify", "-inform", "DER", "-binary", "-nochain", "-CAfile", ca, "-in", token,
		"-out", filepath.Join(dir, "content"), "-signer", signer}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil && cmd == "cms" && bytes.Contains(out, []byte("nochain")) {
		t.Logf("openssl cms has no -nochain here (OpenSSL before 3.2): checking without it; smime -nochain is the exact check")
		args = append(args[:5:5], args[6:]...) // drop -nochain
		out, err = exec.Command(bin, args...).CombinedOutput()
	}
	if err != nil {
		return nil, fmt.Errorf("openssl %s -verify: %v: %s", cmd, err, out)
	}
	b, err := os.ReadFile(signer)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := pem.Decode(b)
	if p == nil {
		t.Fatalf("openssl %s wrote no signer certificate", cmd)
	}
	c, err := x509.ParseCertificate(p.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c, nil
}

// otkEnrollGateways enrolls device1.itsp.com and device2.itsp.com
// through s as toolkit gateways do (getcacert of the legacy CA, RSA keys)
// and returns the gateway harness for each, with the CA certificate file
// and DER.
func otkEnrollGateways(t *testing.T, c *tkClient, s *otkServer) (orig, term *otkGateway, cacert string, legacyCA []byte) {
	t.Helper()
	exe := osptk.BuildHarness(t, filepath.Join(testutil.RepoRoot(), "osp", "testdata", "toolkit", "gateway.c"))
	// enrollment through the same Caddy, as a toolkit gateway does it
	legacyCA = s.adminCA("legacy")
	r, cacert := c.getCACert(s.httpAddr, md5Hex(legacyCA))
	if r.code != 0 || !bytes.Equal(printedCert(t, r), legacyCA) {
		t.Fatalf("getcacert:\n%s", r)
	}
	gw := map[string]*otkGateway{}
	for _, dev := range []string{"device1.itsp.com", "device2.itsp.com"} {
		name := strings.ReplaceAll(dev, ".", "_")
		// RSA: OSPPUtilLoadPEMPrivateKey reads RSA keys only
		csrPath, _ := c.csr(name, dev, "-newkey", "rsa:2048")
		r := c.request("request", s.tlsAddr, cacert, csrPath, legPassword)
		if r.code != 0 {
			t.Fatalf("enroll %s:\n%s", dev, r)
		}
		cert := filepath.Join(c.dir, name+".cert.pem")
		if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: printedCert(t, r)}), 0o644); err != nil {
			t.Fatal(err)
		}
		gw[dev] = &otkGateway{t: t, exe: exe, dir: c.dir, key: filepath.Join(c.dir, name+".key.pem"), cert: cert, cacrt: cacert}
	}
	return gw["device1.itsp.com"], gw["device2.itsp.com"], cacert, legacyCA
}

// Signed tokens of a real Caddy, checked the way gateways check them: a
// gateway linking the unmodified toolkit library as Asterisk's res_osp does
// (osp/testdata/toolkit/gateway.c), configured with what enrollment through
// the same Caddy gave two devices — the legacy CA certificate from
// getcacert (the toolkit's `enroll -fprint`), and each device's RSA key and
// certificate from `enroll -function request` — asks the HTTPS site for a
// route (device1.itsp.com, by its source address) and, as device2.itsp.com,
// validates the token: authorised. A tampered token and an expired one
// (token_validity 2s) are refused, and so are a token checked against
// another CA (the modern one) and an unsigned token where only signed ones
// are allowed (res_osp's default tokenformat 0). A call without caller id
// (an empty calling number, which the toolkit sends as it is) is routed,
// and its token authorises only a call without caller id. `openssl smime -verify
// -nochain` and `openssl cms -verify` accept the token with the legacy CA.
func TestOSPSignedTokenToolkitValidation(t *testing.T) {
	c := newTKClient(t) // the toolkit's enroll, built by internal/osptk
	s := otkStart(t, true)
	orig, term, cacert, legacyCA := otkEnrollGateways(t, c, s)

	code, n, dest, token := orig.lookup("https://" + s.tlsAddr + "/osp")
	if code != 0 || n != 2 || dest != otkFirst {
		t.Fatalf("lookup: errcode %d, %d destinations, first %q; want 0, 2, %s", code, n, dest, otkFirst)
	}
	tok, err := os.ReadFile(token)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.HasPrefix(tok, []byte("<?xml")) || len(tok) < 200 || tok[0] != 0x30 {
		t.Fatalf("the HTTPS site's token is not CMS SignedData: %q", tok)
	}

	t.Run("authorised", func(t *testing.T) {
		code, authorised, limit, out := term.validate(token, 0)
		if code != 0 || authorised != 1 || limit == 0 {
			t.Fatalf("ValidateAuthorisation: %s", out)
		}
		t.Logf("device2.itsp.com: %s", strings.TrimSpace(out))
	})

	t.Run("openssl", func(t *testing.T) {
		ca, err := x509.ParseCertificate(legacyCA)
		if err != nil {
			t.Fatal(err)
		}
		for _, cmd := range []string{"smime", "cms"} {
			signer, err := otkOpenSSLVerify(t, cmd, token, cacert)
			if err != nil {
				t.Fatal(err)
			}
			// the signer certificate is the legacy CA's, SHA-256-signed
			if !bytes.Equal(signer.RawIssuer, ca.RawSubject) || signer.SignatureAlgorithm != x509.SHA256WithRSA ||
				signer.CheckSignatureFrom(ca) != nil {
				t.Fatalf("openssl %s: signer %q issued by %q with %v, want the legacy CA, SHA256-RSA", cmd,
					signer.Subject, signer.Issuer, signer.SignatureAlgorithm)
			}
		}
	})

	t.Run("tampered", func(t *testing.T) {
		path := term.refusesTampered(t, tok, filepath.Join(c.dir, "tampered"))
		if _, err := otkOpenSSLVerify(t, "smime", path, cacert); err == nil {
			t.Fatal("openssl smime accepted a tampered token")
		}
	})

	t.Run("another CA", func(t *testing.T) {
		modern := filepath.Join(c.dir, "modern-ca.pem")
		if err := os.WriteFile(modern, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.adminCA("modern")}), 0o644); err != nil {
			t.Fatal(err)
		}
		other := *term
		other.cacrt = modern
		if code, _, _, out := other.validate(token, 0); code != 18020 {
			t.Fatalf("token checked against the modern CA: want errcode 18020: %s", out)
		}
	})

	t.Run("expired", func(t *testing.T) { term.refusesExpired(t, orig, "https://"+s.shortAddr+"/osp") })

	// a call without caller id: the toolkit sends the empty calling
	// number, the answer routes it, and its token authorises the call
	// without caller id only
	t.Run("no caller id", func(t *testing.T) {
		anonOrig, anonTerm := *orig, *term
		anonOrig.noCallerID, anonTerm.noCallerID = true, true
		code, n, dest, token := anonOrig.lookup("https://" + s.tlsAddr + "/osp")
		if code != 0 || n != 2 || dest != otkFirst {
			t.Fatalf("lookup: errcode %d, %d destinations, first %q; want 0, 2, %s", code, n, dest, otkFirst)
		}
		if code, authorised, limit, out := anonTerm.validate(token, 0); code != 0 || authorised != 1 || limit == 0 {
			t.Fatalf("ValidateAuthorisation for the call without caller id: %s", out)
		}
		if code, _, _, out := term.validate(token, 0); code != 11270 { // OSPC_ERR_TRAN_TOKEN_INVALID
			t.Fatalf("the token for a call with calling number %s: want errcode 11270: %s", otkCalling, out)
		}
	})

	t.Run("unsigned where signed are required", func(t *testing.T) {
		code, _, _, plain := orig.lookup("http://" + s.httpAddr + "/osp")
		if code != 0 {
			t.Fatalf("lookup on the plain-HTTP (unsigned) site: errcode %d", code)
		}
		if b, _ := os.ReadFile(plain); !bytes.HasPrefix(b, []byte("<?xml")) {
			t.Fatalf("the plain-HTTP site's token is not unsigned TokenInfo XML: %q", b)
		}
		if code, _, _, out := term.validate(plain, 0); code != 11506 { // OSPC_ERR_TRAN_UNSIGNED_TOKEN_NOT_ALLOWED
			t.Fatalf("unsigned token, tokenformat 0: want errcode 11506: %s", out)
		}
		if code, authorised, _, out := term.validate(plain, 1); code != 0 || authorised != 1 {
			t.Fatalf("unsigned token, tokenformat 1: %s", out)
		}
	})

	if t.Failed() {
		return
	}
	// nothing was reported, so nothing was stored
	if list := s.cdrs(); len(list) != 0 {
		t.Errorf("CDRs without usage reports: %+v", list)
	}
}

// `tokens ca_signed` (tokens signed with the CA's own key, no certificate
// embedded) against the same gateway, as OpenSIPS and Kamailio need it.
// With the modern (P-256) CA the token is at most 1024 bytes, so
// OSPPBase64Encode puts it into the 2048-byte buffer those modules give it
// (b64=0; the embedded form's token does not fit: 22010,
// OSPC_ERR_B64_ENCODE_FAILED); the toolkit's ValidateAuthorisation, which
// finds the signer among the CA certificates the gateway holds
// (PKCS7_verify, PKCS7_NOCHAIN), authorises it with the modern CA
// certificate configured; tampered and expired tokens are refused, and so
// is the token checked against another CA (the legacy one). `openssl smime
// -verify -nochain -CAfile ca -certfile ca` (the same PKCS7_verify)
// accepts it. The size with the legacy (RSA-2048) CA is logged: the RSA
// signature makes it some 190 bytes larger (README).
func TestOSPSignedTokenToolkitValidationCASigned(t *testing.T) {
	c := newTKClient(t)
	s := otkStartCASigned(t)
	orig, legacyTerm, legacyCACert, _ := otkEnrollGateways(t, c, s)
	modernCA := filepath.Join(c.dir, "modern-ca.pem")
	if err := os.WriteFile(modernCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.adminCA("modern")}), 0o644); err != nil {
		t.Fatal(err)
	}
	term := *legacyTerm
	term.cacrt = modernCA // the CA the terminating gateway holds: the modern one

	// the embedded form, for comparison: too large for the 2048 bytes
	if code, _, _, _ := orig.lookup("https://" + s.tlsAddr + "/osp"); code != 0 || orig.b64 != 22010 {
		t.Errorf("signed (embedded) token: lookup errcode %d, OSPPBase64Encode into 2048 bytes %d; want 0 and 22010", code, orig.b64)
	}
	if code, _, _, legacyTok := orig.lookup("https://" + s.caSignedLegacyAddr + "/osp"); code == 0 {
		b, _ := os.ReadFile(legacyTok)
		t.Logf("ca_signed token with the legacy RSA-2048 CA: %d bytes, OSPPBase64Encode into 2048 bytes: %d", len(b), orig.b64)
	} else {
		t.Errorf("lookup on the ca_signed legacy site: errcode %d", code)
	}
	code, n, dest, token := orig.lookup("https://" + s.caSignedAddr + "/osp")
	if code != 0 || n != 2 || dest != otkFirst {
		t.Fatalf("lookup: errcode %d, %d destinations, first %q; want 0, 2, %s", code, n, dest, otkFirst)
	}
	tok, err := os.ReadFile(token)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ca_signed token with the modern P-256 CA: %d bytes", len(tok))
	if len(tok) > 1024 || orig.b64 != 0 || tok[0] != 0x30 {
		t.Fatalf("ca_signed token of %d bytes, OSPPBase64Encode into 2048 bytes: %d; want CMS of at most 1024 bytes, 0", len(tok), orig.b64)
	}

	t.Run("authorised", func(t *testing.T) {
		code, authorised, limit, out := term.validate(token, 0)
		if code != 0 || authorised != 1 || limit == 0 {
			t.Fatalf("ValidateAuthorisation: %s", out)
		}
	})

	t.Run("openssl", func(t *testing.T) {
		bin, err := exec.LookPath("openssl")
		if err != nil {
			t.Fatal("the openssl command is needed (apt-get install openssl)")
		}
		args := []string{"smime", "-verify", "-inform", "DER", "-binary", "-nochain", "-CAfile", modernCA, "-certfile", modernCA,
			"-in", token, "-out", filepath.Join(t.TempDir(), "content")}
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v: %s", args, err, out)
		}
		// the token embeds no certificate: without -certfile no signer
		if _, err := otkOpenSSLVerify(t, "smime", token, modernCA); err == nil {
			t.Fatal("openssl smime verified the token without the CA as candidate signer: it embeds a certificate")
		}
	})

	t.Run("tampered", func(t *testing.T) { term.refusesTampered(t, tok, filepath.Join(c.dir, "ca-signed-tampered")) })

	t.Run("another CA", func(t *testing.T) {
		other := term
		other.cacrt = legacyCACert
		if code, _, _, out := other.validate(token, 0); code != 18020 {
			t.Fatalf("token checked against the legacy CA: want errcode 18020: %s", out)
		}
	})

	t.Run("expired", func(t *testing.T) { term.refusesExpired(t, orig, "https://"+s.caSignedShortAddr+"/osp") })
}

// test_app's RequestReauthorization (menu 38), unmodified, after it got a
// destination: the server takes the toolkit's request (role source, the
// call's first token, the transaction id naming test_app's device, which
// asks from the same address) and extends the call. The toolkit cannot
// take the answer (README, Call authorization): test_app 4.33.1 crashes
// on it (OSPPReauthRspFromElement frees the response it parsed and leaves
// the caller's pointer unset), so only what the server did is checked.
func TestOSPToolkitReauthorization(t *testing.T) {
	bin := osptk.Build(t)
	s := otkStart(t, false)
	m := &server{Caddy: s.Caddy, t: t}
	dir := t.TempDir()
	cfg := otkTestCfg(t, bin, "http://"+s.httpAddr+"/osp", 1)
	if err := os.WriteFile(filepath.Join(dir, "test.cfg"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "test_app"))
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader("1\n\n23\n\n29\n\n27\n\n38\n\nq\n")
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("test_app did not finish:\n%s", out)
	}
	if codes := otkReturnCode.FindAllStringSubmatch(string(out), -1); len(codes) < 4 {
		t.Fatalf("test_app (%v) did not get to RequestReauthorization:\n%s", err, out)
	}
	const authz = "caddy_clearinghouse_authorizations_total"
	for outcome, want := range map[string]float64{"authorized": 1, "reauthorized": 1, "unauthorized": 0, "bad_token": 0} {
		if got := m.metric(authz, map[string]string{"outcome": outcome}); got != want {
			t.Errorf("%s{outcome=%q} = %v, want %v (test_app: %v)", authz, outcome, got, want, err)
		}
	}
}

// test_app's number portability data (menu 210:
// OSPPTransactionSetNumberPortability(…, "13243546576", "NPCic", 1), the
// number 1678 ported to the switch 1 324 354…) routes its call on the
// routing number: with a route of device1's group for that prefix
// (added to legacy.conf) the answer has its one device,
// device4.carrier.com, where the dialed 1678 gets device2.itsp.com first.
// GetNumberPortabilityParameters (250) reads the echo, the token validates
// for the dialed number (31, unsigned over HTTP), and the usage (32) is
// stored with the routing number, CIC and npdi.
func TestOSPToolkitNumberPortability(t *testing.T) {
	bin := osptk.Build(t)
	s := otkStartWith(t, false, "route 'ACME ITSP' '+1 324 354...' 'device4.carrier.com' 1\n")
	cfg := otkTestCfg(t, bin, "http://"+s.httpAddr+"/osp", 1)
	steps := []int{1, 23, 210, 29, 27, 250, 31, 32, 24, 2}
	codes, out := otkRunTestApp(t, bin, cfg, steps...)
	for i, c := range codes {
		if c != 0 {
			t.Fatalf("step %d (menu %d) returned %d:\n%s", i, steps[i], c, out)
		}
	}
	if got := otkStepOutput(out, 3); !strings.Contains(got, "num dest = 1") {
		t.Errorf("RequestAuthorisation: want the routing number's one destination:\n%s", got)
	}
	if got := otkStepOutput(out, 4); !strings.Contains(got, "\n"+otkSecond+"\n") {
		t.Errorf("GetFirstDestination: want %s:\n%s", otkSecond, got)
	}
	if got := otkStepOutput(out, 5); !strings.Contains(got, "rn = '13243546576'\ncic = 'NPCic'\nnpdi = 1\n") {
		t.Errorf("GetNumberPortabilityParameters: want the echo:\n%s", got)
	}
	if got := otkStepOutput(out, 6); !strings.Contains(got, "authorised = 1") {
		t.Errorf("ValidateAuthorisation for the dialed number: want authorised = 1:\n%s", got)
	}
	list := s.cdrs()
	if len(list) != 1 {
		t.Fatalf("want 1 CDR, got %+v", list)
	}
	if c := list[0]; c.Called != otkCalled || c.RoutingNumber != "13243546576" || c.CIC != "NPCic" || !c.NPDI || c.Source != otkSource {
		t.Errorf("CDR %+v: want the dialed %s and the routing number, CIC and npdi test_app set", c, otkCalled)
	}
}
