package caddyenroll_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clearinghouse-dev/caddy-clearinghouse/internal/testutil"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

func runCaddy(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(testutil.CaddyBinary(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+filepath.Join(dir, "xdg"), "XDG_CONFIG_HOME="+filepath.Join(dir, "xdg"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(testutil.RepoRoot(), "examples", "clearinghouse.conf")
	out, _, code := runCaddy(t, dir, "enroll", "check", good)
	if code != 0 {
		t.Fatalf("check of Table 7: exit %d\n%s", code, out)
	}
	for _, want := range []string{"enroll", "routing", "9 devices", "33 routes", "5 groups"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "\n"); n > 24 {
		t.Errorf("summary is %d lines, more than one screen", n)
	}

	// valid, but two devices could never enroll: warned about, exit 0
	odd := filepath.Join(dir, "odd.conf")
	long := strings.Repeat("a", 60) + ".example"
	os.WriteFile(odd, []byte("group \"\"\ndevice gw1.example \"\" enabled\ndevice 127.1 \"\" enabled\ndevice gw_2.example \"\" enabled\ndevice "+long+" \"\" enabled\n"), 0o644)
	out, errOut, code := runCaddy(t, dir, "enroll", "check", odd)
	if code != 0 || !strings.Contains(out, "4 devices") {
		t.Fatalf("check of a file with unissuable names: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if want := []string{odd + `:3: warning: device "127.1" cannot enroll`, odd + `:4: warning: device "gw_2.example" cannot enroll`, odd + `:5: warning: device "aaaa`}; len(strings.Split(strings.TrimSpace(errOut), "\n")) != 3 ||
		!strings.Contains(errOut, want[0]) || !strings.Contains(errOut, want[1]) || !strings.Contains(errOut, want[2]) || !strings.Contains(errOut, "all digits") || !strings.Contains(errOut, "at most 64") {
		t.Errorf("warnings:\n%s\nwant one line each: %q", errOut, want)
	}

	bad := filepath.Join(dir, "bad.conf")
	os.WriteFile(bad, []byte("group \"\"\ndevice gw1 nogroup enabled\nroute \"\" '+1...' gw2 10\nroute \"\" '+1...' gw1 -3\nssl maybe\n"), 0o644)
	out, errOut, code = runCaddy(t, dir, "enroll", "check", bad)
	if code != 1 || out != "" {
		t.Fatalf("check of a bad file: exit %d, want 1 and errors on stderr only\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if len(lines) < 5 || lines[len(lines)-1] != "Error: "+bad+": 4 error(s)" {
		t.Fatalf("want one line per error, then the count, got:\n%s", errOut)
	}
	for _, l := range lines[:len(lines)-1] {
		if !strings.HasPrefix(l, bad+":") {
			t.Errorf("error line without FILE:LINE: %q", l)
		}
	}
	badErrs := errOut

	// past the cap, the count says so and does not count the cut
	many := filepath.Join(dir, "many.conf")
	os.WriteFile(many, []byte(strings.Repeat("bogus\n", 150)), 0o644)
	out, errOut, code = runCaddy(t, dir, "enroll", "check", many)
	if code != 1 || out != "" || !strings.Contains(errOut, many+": more than 100 errors") || strings.Contains(errOut, "101 error") ||
		strings.Count(errOut, many+":") != 102 {
		t.Errorf("check of a file with 150 errors: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}

	// mistakes in the command line are said, not only an exit status
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"enroll", "check"}, "accepts 1 arg"},
		{[]string{"enroll", "check", dir}, "configuration file: " + dir + " is a directory"},
		{[]string{"enroll", "approve", "--address", "127.0.0.1:9"}, "arg"},
		{[]string{"enroll", "revoke", "--address", "127.0.0.1:9"}, "give exactly one of --serial or --device"},
		{[]string{"enroll", "revoke", "--serial", "01", "--forget-ids", "--address", "127.0.0.1:9"}, "--forget-ids needs --device"},
		{[]string{"enroll", "cdrs", "--format", "xml", "--address", "127.0.0.1:9"}, "--format must be csv or json"},
		{[]string{"enroll", "cdrs", "purge", "--address", "127.0.0.1:9"}, "--before is required"},
		{[]string{"enroll", "pending", "--address", "127.0.0.1:9"}, "connection refused"},
	} {
		out, errOut, code := runCaddy(t, dir, c.args...)
		if code == 0 || !strings.Contains(errOut, c.want) || strings.Count(errOut, c.want) > 1 && c.want != "arg" {
			t.Errorf("caddy %s: exit %d, want an error saying %q once:\n%s%s", strings.Join(c.args, " "), code, c.want, out, errOut)
		}
	}
	for _, want := range []string{bad + ":2:", bad + ":3:", bad + ":4:", bad + ":5:"} {
		if !strings.Contains(badErrs, want) {
			t.Errorf("no error reported at %s\n%s", want, badErrs)
		}
	}
}

// The shipped Caddyfile adapts, and the admin subcommands drive a running
// server through its admin API.
func TestAdaptExampleAndAdminCommands(t *testing.T) {
	out, errOut, code := runCaddy(t, testutil.RepoRoot(), "adapt", "--config", "Caddyfile.example")
	if code != 0 {
		t.Fatalf("caddy adapt Caddyfile.example: exit %d\n%s", code, errOut)
	}
	var cfg struct {
		Apps map[string]json.RawMessage `json:"apps"`
	}
	if err := json.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatal(err)
	}
	if _, ok := cfg.Apps["enroll"]; !ok || !strings.Contains(out, `"handler":"enroll"`) {
		t.Fatalf("adapted config lacks the enroll app or handler:\n%s", out)
	}

	s := startServer(t, serverOpts{approval: "manual"})
	_, csr := p256CSR(t, "device4.com")
	if ans := s.do(enrollReq(wire.OpRequest, t, csr)); ans.Status != wire.StatusPending {
		t.Fatalf("status %d", ans.Status)
	}
	out, errOut, code = runCaddy(t, s.Dir, "enroll", "pending", "--address", s.AdminAddr)
	if code != 0 || !strings.Contains(out, "device4.com") {
		t.Fatalf("caddy enroll pending: exit %d\n%s%s", code, out, errOut)
	}
	id := strings.Fields(strings.Split(out, "\n")[1])[0]
	out, errOut, code = runCaddy(t, s.Dir, "enroll", "approve", id[:10], "--address", s.AdminAddr)
	if code != 0 || !strings.Contains(out, `"state": "issued"`) {
		t.Fatalf("caddy enroll approve: exit %d\n%s%s", code, out, errOut)
	}
	var approved struct {
		Serial string `json:"serial"`
	}
	if err := json.Unmarshal([]byte(out), &approved); err != nil || approved.Serial == "" {
		t.Fatalf("approve answer without serial: %v %s", err, out)
	}
	out, _, code = runCaddy(t, s.Dir, "enroll", "certificate", approved.Serial, "--address", s.AdminAddr)
	if code != 0 || !strings.Contains(out, "device4.com") || !strings.Contains(out, "BEGIN CERTIFICATE") || !strings.Contains(out, "Subject") {
		t.Fatalf("caddy enroll certificate: exit %d\n%s", code, out)
	}
	out, _, code = runCaddy(t, s.Dir, "enroll", "devices", "--address", s.AdminAddr)
	if code != 0 || !strings.Contains(out, "device4.com") {
		t.Fatalf("caddy enroll devices: exit %d\n%s", code, out)
	}
	out, _, code = runCaddy(t, s.Dir, "enroll", "ca", "--address", s.AdminAddr)
	if code != 0 || !strings.Contains(out, "BEGIN CERTIFICATE") || !strings.Contains(out, "sha256:") {
		t.Fatalf("caddy enroll ca: exit %d\n%s", code, out)
	}
	out, _, code = runCaddy(t, s.Dir, "enroll", "revoke", "--device", "device4.com", "--forget-ids", "--address", s.AdminAddr)
	if code != 0 || !strings.Contains(out, `"revoked"`) || !strings.Contains(out, `"ids_forgotten": true`) {
		t.Fatalf("caddy enroll revoke: exit %d\n%s", code, out)
	}
	// approving again is a conflict, reported with a non-zero exit
	_, _, code = runCaddy(t, s.Dir, "enroll", "approve", id, "--address", s.AdminAddr)
	if code == 0 {
		t.Fatal("approving an issued request succeeded")
	}
	// bad administrator input gets a 4xx and changes nothing
	for _, c := range []struct {
		method, uri, body string
		want              int
	}{
		{"POST", "/enroll/revoke", `{"serial":"1f","device":"device4.com"}`, 400},
		{"POST", "/enroll/revoke", `{"device":`, 400},
		{"POST", "/enroll/revoke", `{"serial":"1f","reason":7}`, 400},
		{"POST", "/enroll/revoke", `{"serial":"1f"}`, 404},
		{"POST", "/enroll/approve/ffffffffffffffff", "", 404},
		{"POST", "/enroll/approve/ab", "", 400},
		{"GET", "/enroll/approve/" + id, "", 405},
		{"GET", "/enroll/requests?state=lost", "", 400},
		{"GET", "/enroll/cdrs?format=xml", "", 400},
		{"GET", "/enroll/certificates/1f", "", 404},
		{"GET", "/enroll/ca/other", "", 404},
		{"GET", "/enroll/nothing", "", 404},
	} {
		if code, body := s.Admin(c.method, c.uri, c.body); code != c.want {
			t.Errorf("%s %s %s: HTTP %d, want %d: %s", c.method, c.uri, c.body, code, c.want, body)
		}
	}
	// metrics are exported through Caddy's registry
	_, body := s.Admin("GET", "/metrics", "")
	for _, m := range []string{"caddy_clearinghouse_enroll_requests_total", "caddy_clearinghouse_certificates_issued_total"} {
		if !strings.Contains(body, m) {
			t.Errorf("metrics lack %s", m)
		}
	}
}

// `caddy enroll reject` refuses a pending request through the admin API:
// the device's retrieve gets status 8, and `caddy enroll pending` no longer
// lists the request.
func TestRejectCommand(t *testing.T) {
	s := startServer(t, serverOpts{approval: "manual"})
	_, csr := p256CSR(t, "device4.com")
	if ans := s.do(enrollReq(wire.OpRequest, t, csr)); ans.Status != wire.StatusPending {
		t.Fatalf("request: status %d %s", ans.Status, ans.Error)
	}
	p := s.pending()
	if len(p) != 1 || p[0].Device != "device4.com" {
		t.Fatalf("pending: %+v", p)
	}
	id := p[0].ID
	out, errOut, code := runCaddy(t, s.Dir, "enroll", "pending", "--address", s.AdminAddr)
	if code != 0 || !strings.Contains(out, id) {
		t.Fatalf("caddy enroll pending before the rejection: exit %d, want %s listed\n%s%s", code, id, out, errOut)
	}

	out, errOut, code = runCaddy(t, s.Dir, "enroll", "reject", id, "--reason", "not ours", "--address", s.AdminAddr)
	if code != 0 {
		t.Fatalf("caddy enroll reject: exit %d\n%s%s", code, out, errOut)
	}
	var rejected struct {
		ID     string `json:"id"`
		Device string `json:"device"`
		State  string `json:"state"`
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal([]byte(out), &rejected); err != nil {
		t.Fatalf("caddy enroll reject answer: %v\n%s", err, out)
	}
	if rejected.ID != id || rejected.Device != "device4.com" || rejected.State != "rejected" || rejected.Reason != "not ours" {
		t.Fatalf("caddy enroll reject answer: %+v", rejected)
	}

	if ans := s.do(enrollReq(wire.OpRetrieve, t, csr)); ans.Status != wire.StatusRejected {
		t.Fatalf("retrieve after the rejection: status %d %s, want %d", ans.Status, ans.Error, wire.StatusRejected)
	}
	out, errOut, code = runCaddy(t, s.Dir, "enroll", "pending", "--address", s.AdminAddr)
	if code != 0 || strings.Contains(out, id) || strings.Contains(out, "device4.com") {
		t.Fatalf("caddy enroll pending after the rejection: exit %d, want device4.com gone\n%s%s", code, out, errOut)
	}
	if left := s.pending(); len(left) != 0 {
		t.Fatalf("pending after the rejection: %+v", left)
	}
	// rejecting it again is refused, with a non-zero exit
	if out, errOut, code = runCaddy(t, s.Dir, "enroll", "reject", id, "--address", s.AdminAddr); code == 0 {
		t.Fatalf("rejecting a rejected request succeeded:\n%s%s", out, errOut)
	}
}

// `caddy validate` provisions the modules: a bad configuration file or a
// bad setting stops it with a precise message.
func TestValidateRefusesBadSettings(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.conf")
	os.WriteFile(bad, []byte("group \"\"\ndevice gw1 nogroup enabled\n"), 0o644)
	good := filepath.Join(dir, "good.conf")
	os.WriteFile(good, []byte("group \"\"\ndevice gw1 \"\" enabled\n"), 0o644)
	cases := []struct {
		name, global, want string
		site               string // the site's enroll directive; default plain
	}{
		{"bad file", "config_file " + bad, bad + ":2: device: undefined group", ""},
		{"missing file", "config_file " + filepath.Join(dir, "none.conf"), "no such file", ""},
		{"bad approval", "config_file " + good + "\n\t\tapproval sometimes", "approval must be", ""},
		{"plain password", "config_file " + good + "\n\t\taccount ops secret", "password must be a bcrypt hash", ""},
		{"short nonce retention", "config_file " + good + "\n\t\tnonce_retention 30m", "nonce_retention must be at least 1h", ""},
		{"legacy with ecdsa", "config_file " + good + "\n\t\tca legacy {\n\t\t\talgorithm p256\n\t\t}", "legacy profile signs with MD5-RSA and needs an RSA key", ""},
		{"max_body over 1 MiB", "config_file " + good, "max_body must be between 1 KiB and 64 KiB", "enroll {\n\t\tmax_body 2MiB\n\t}"},
		{"negative failures_allowed", "config_file " + good + "\n\t\tfailures_allowed -3", "failures_allowed must not be negative", ""},
		{"lockout base over max", "config_file " + good + "\n\t\tlockout 1h 1s", "the first lockout (lockout_base, 1h0m0s) must not be longer than the longest (lockout_max, 1s)", ""},
		{"device_address port", "config_file " + good + "\n\t\tdevice_address gw1 1.2.3.4:99999", "(want 1 to 65535)", ""},
		{"device_address one device twice", "config_file " + good + "\n\t\tdevice_address gw1 1.2.3.4:5060\n\t\tdevice_address GW1 1.2.3.5:5060", "device_address GW1 is given twice (as gw1)", ""},
	}
	for _, c := range cases {
		if c.site == "" {
			c.site = "enroll"
		}
		cf := fmt.Sprintf("{\n\tadmin off\n\tstorage file_system %s\n\tenroll {\n\t\t%s\n\t}\n}\n:0 {\n\t%s\n}\n", filepath.Join(dir, "data"), c.global, c.site)
		path := filepath.Join(dir, "Caddyfile")
		os.WriteFile(path, []byte(cf), 0o644)
		out, errOut, code := runCaddy(t, dir, "validate", "--config", path, "--adapter", "caddyfile")
		if code == 0 || !strings.Contains(out+errOut, c.want) {
			t.Errorf("%s: exit %d, want an error containing %q:\n%s%s", c.name, code, c.want, out, errOut)
		}
	}
}
