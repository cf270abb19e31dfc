package caddyenroll_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// reload loads caddyfile into the running Caddy (`caddy reload`) and
// returns the admin API's status.
func (s *server) reload(caddyfile string) (int, string) {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.AdminAddr+"/load", strings.NewReader(caddyfile))
	req.Header.Set("Content-Type", "text/caddyfile")
	req.Header.Set("Cache-Control", "must-revalidate") // reload even if unchanged
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4000))
	s.client.CloseIdleConnections() // the replaced servers closed theirs
	return resp.StatusCode, string(b)
}

// `caddy reload`, with the same configuration file or another one: a file
// that is empty (emptied by mistake, or caught between an in-place
// editor's truncation and its write) is refused, as the watcher refuses
// it: the configuration in force stays, and no new CA is made for a file
// that names none. Another valid file is followed from then on, and the
// old one no longer.
func TestCaddyReloadConfigFile(t *testing.T) {
	if testing.Short() {
		t.Skip("reloads a real Caddy")
	}
	for _, tc := range []struct {
		name    string
		newFile string // contents of the file the reloaded config names; "" = empty
		other   bool   // the file is another path than the one in force
		ok      bool   // the reload is taken
	}{
		{name: "same path emptied", newFile: "", ok: false},
		{name: "other path empty", newFile: "", other: true, ok: false},
		{name: "other path valid", newFile: "copy", other: true, ok: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, serverOpts{})
			caCert := s.getCACert()
			waitFor(t, "the crypto item recorded", func() bool { return strings.HasPrefix(s.confFile().Crypto, "modern:") })
			before, err := os.ReadFile(s.conf)
			if err != nil {
				t.Fatal(err)
			}
			caddyfile, err := os.ReadFile(s.Config)
			if err != nil {
				t.Fatal(err)
			}
			target := s.conf
			if tc.other {
				target = filepath.Join(t.TempDir(), "other.conf")
			}
			contents := []byte(nil)
			if tc.newFile == "copy" {
				contents = before
			}
			if err := os.WriteFile(target, contents, 0o640); err != nil {
				t.Fatal(err)
			}
			code, body := s.reload(strings.Replace(string(caddyfile), s.conf, target, 1))
			if (code == http.StatusOK) != tc.ok {
				t.Fatalf("reload: HTTP %d %s, want taken %v", code, body, tc.ok)
			}
			if !tc.ok {
				if got, _ := os.ReadFile(target); len(got) != 0 {
					t.Fatalf("the refused file was written:\n%s", got)
				}
			}
			if got := s.getCACert(); !got.Equal(caCert) {
				t.Fatal("the operational CA changed: the file in force no longer names it")
			}
			// an enrollment marks its device in the file in force
			_, csr := p256CSR(t, "device4.com")
			if a := s.do(enrollReq(wire.OpRequest, t, csr)); a.Status != wire.StatusOK {
				t.Fatalf("enrollment after the reload: status %d %s", a.Status, a.Error)
			}
			if !tc.ok && !tc.other {
				// the write completes: the mark, kept meanwhile, is written
				if err := os.WriteFile(s.conf, before, 0o640); err != nil {
					t.Fatal(err)
				}
			}
			inForce := s.conf
			if tc.ok {
				inForce = target
			}
			waitFor(t, "device4.com marked enrolled in "+inForce, func() bool {
				b, _ := os.ReadFile(inForce)
				return strings.Contains(string(b), "'device4.com' 'HK Telecom' enabled enrolled")
			})
			if tc.ok && tc.other {
				if got, _ := os.ReadFile(s.conf); string(got) != string(before) {
					t.Fatalf("the file no longer named was written:\n%s", got)
				}
			}
		})
	}
}
