package caddyenroll_test

import (
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// Secrets never reach the logs, even at DEBUG: passwords (right, wrong, in
// the username field, behind a bad %-escape or an unescaped '&'), the account's hash, full
// nonces and private keys, over every enrollment outcome and the admin API.
func TestNoSecretsInDebugLogs(t *testing.T) {
	s := startServer(t, serverOpts{global: "debug", approval: "auto"})
	const (
		wrongPassword = "Wr0ng-Sentinel-Pass"
		typedAsUser   = "Typo-Sentinel-User-Pass"
		escapeTail    = "EscapeSentinelTail"
		ampTail       = "AmpSentinelTail"
	)
	var nonces [][]byte
	req := func(mod func(*wire.Request)) *wire.Response {
		t.Helper()
		_, csr := p256CSR(t, "device4.com")
		r := enrollReq("request", t, csr)
		mod(&r)
		nonces = append(nonces, r.Nonce)
		return s.do(r)
	}
	if ans := req(func(*wire.Request) {}); ans.Status != 0 {
		t.Fatalf("enrollment: status %d %s", ans.Status, ans.Error)
	}
	if ans := req(func(r *wire.Request) { r.Password = wrongPassword }); ans.Status != wire.StatusBadCredentials {
		t.Fatalf("wrong password: status %d", ans.Status)
	}
	if ans := req(func(r *wire.Request) { r.Username = typedAsUser }); ans.Status != wire.StatusBadCredentials {
		t.Fatalf("password as username: status %d", ans.Status)
	}
	if ans := req(func(r *wire.Request) { r.Device = "999"; r.Operation = "retrieve" }); ans.Status == 0 {
		t.Fatal("retrieve with another device id answered a certificate")
	}
	// a password with a bad %-escape, the rest of it after the escape
	body := "operation=request&username=demo&password=demo-pa%zz" + escapeTail + "&device=1&customer=0&nonce=12"
	if ans, _, raw := s.post(s.https, []byte(body), "text/plain"); ans == nil || ans.Status == 0 {
		t.Fatalf("bad escape: %s", raw)
	}
	// a password sent with an unescaped '&': its tail arrives as a variable
	// of its own, without '='
	body = "operation=request&username=demo&password=demo-pa&" + ampTail + "&device=1&customer=0&nonce=13"
	if ans, _, raw := s.post(s.https, []byte(body), "text/plain"); ans == nil || ans.Status == 0 {
		t.Fatalf("unescaped '&': %s", raw)
	}
	for _, uri := range []string{"/enroll/devices", "/enroll/pending", "/enroll/requests"} {
		if code, _ := s.Admin("GET", uri, ""); code != 200 {
			t.Fatalf("GET %s: HTTP %d", uri, code)
		}
	}

	logs := s.Logs()
	if !strings.Contains(logs, `"level":"debug"`) {
		t.Fatal("no debug lines: the test does not see what it checks")
	}
	secrets := map[string]string{
		"the password":              "demo-password",
		"the wrong password":        wrongPassword,
		"a password as username":    typedAsUser,
		"a password after a bad %":  escapeTail,
		"a password after a raw &":  ampTail,
		"the account's bcrypt hash": passwordHash(t),
		"a private key":             "PRIVATE KEY",
	}
	for i, n := range nonces {
		for form, v := range map[string]string{
			"hex": hex.EncodeToString(n), "HEX": strings.ToUpper(hex.EncodeToString(n)),
			"base64": base64.StdEncoding.EncodeToString(n), "base64url": base64.RawURLEncoding.EncodeToString(n),
			"form": url.QueryEscape(string(n)), "raw": string(n),
		} {
			secrets["nonce "+string(rune('0'+i))+" as "+form] = v
		}
	}
	// and each line of the CA's private key as stored
	_ = filepath.WalkDir(filepath.Join(s.Dir, "data"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".key") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		for _, line := range strings.Split(string(b), "\n") {
			if len(line) >= 40 && !strings.HasPrefix(line, "-----") {
				secrets["a line of "+filepath.Base(p)] = line
			}
		}
		return nil
	})
	keyLines := 0
	for what := range secrets {
		if strings.HasPrefix(what, "a line of ") {
			keyLines++
		}
	}
	if keyLines == 0 {
		t.Fatal("found no private key in the storage to look for")
	}
	for what, v := range secrets {
		// as sent, and as the devices' encoder escapes it
		for _, form := range []string{v, wireEscaped(v), strings.ToLower(wireEscaped(v))} {
			if i := strings.Index(logs, form); i >= 0 {
				start := strings.LastIndex(logs[:i], "\n") + 1
				t.Errorf("%s is in the log: %.400s", what, logs[start:])
				break
			}
		}
	}
}

// wireEscaped is s as the devices' encoder sends it: every byte but
// letters and digits %-escaped (RFC 1738).
func wireEscaped(s string) string {
	_, v, _ := strings.Cut(string(wire.EncodeRequest(wire.Request{Operation: "request", Username: s})), "username=")
	v, _, _ = strings.Cut(v, "&")
	return v
}
