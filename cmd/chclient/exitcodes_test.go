package main

import (
	"bytes"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/clearinghouse-dev/caddy-clearinghouse/enrollclient/enrolltest"
)

// README: `chclient status` exits 0 while the device's certificate is
// valid. A renewal left pending (renew --max-wait 0, or one that timed
// out) does not change that when a password is at hand (CHCLIENT_PASSWORD
// of a timer, --password-file): the poll's outcome is information, so that
// `chclient status || alert` does not alert on a healthy device.
func TestStatusValidCertWithPendingRenewal(t *testing.T) {
	f := newFixture(t, enrolltest.Config{})
	expect(t, runCmd(t, "", false, nil, f.args("enroll")...), exitOK, "enrolled:")
	f.srv.Update(func(c *enrolltest.Config) { c.Manual = true })
	expect(t, runCmd(t, "", false, nil, f.args("renew", "--force", "--max-wait", "0")...), exitPending)

	// without a password: the valid certificate counts (exit 0)
	expect(t, runCmd(t, "", false, nil, "status", "--dir", f.dir), exitOK, "state:        issued")

	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"password file", []string{"status", "--dir", f.dir, "--root-ca", f.rootCA, "--password-file", f.pwFile}, nil},
		{"password env", []string{"status", "--dir", f.dir, "--root-ca", f.rootCA}, map[string]string{"CHCLIENT_PASSWORD": "pass"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCmd(t, "", false, tc.env, tc.args...)
			if r.code != exitOK {
				t.Errorf("status of a device with a valid certificate and a pending renewal: exit %d, want %d (as without a password)\nstdout:\n%s\nstderr:\n%s",
					r.code, exitOK, r.stdout, r.stderr)
			}
		})
	}
}

// README: "a temporary answer — rate limited, server error — is no
// refusal: the request is still pending, exit 3", also when that answer
// ends the run (the first request; a retrieve with --max-wait 0), as
// status then says (it was exit 4, "refused").
func TestTemporaryAnswerExitsPending(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  int
		pending bool // the request was answered pending first
	}{
		{"request rate limited", 10, false},
		{"request server error", 14, false},
		{"retrieve rate limited", 10, true},
		{"retrieve server error", 14, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, enrolltest.Config{Manual: true})
			if tc.pending {
				expect(t, runCmd(t, "", false, nil, f.args("enroll", "--max-wait", "0")...), exitPending)
			}
			f.srv.Update(func(c *enrolltest.Config) { c.RejectStatus = tc.status })
			r := runCmd(t, "", false, nil, f.args("enroll", "--max-wait", "0")...)
			st := runCmd(t, "", false, nil, "status", "--dir", f.dir)
			if r.code != exitPending {
				t.Errorf("enroll after status=%d: exit %d, want %d (still pending); status then exits %d\nstderr:\n%s",
					tc.status, r.code, exitPending, st.code, r.stderr)
			}
		})
	}
}

// A temporary refusal of getcacert (status 14: the server cannot read its
// CA) leaves nothing pending on a first enrollment or a renewal: exit 1,
// not 3 ("pending: the request waits for approval (saved …)"). With a
// saved request, which the run was resuming, it is still exit 3.
func TestTemporaryGetCACertRefusal(t *testing.T) {
	f := newFixture(t, enrolltest.Config{Manual: true})
	var broken atomic.Bool
	front := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if broken.Load() && string(body) == "operation=getcacert" {
			io.WriteString(w, "status=14&error=server%20error\n")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		f.srv.HTTP.Config.Handler.ServeHTTP(w, r)
	}))
	front.Config.ErrorLog = log.New(io.Discard, "", 0)
	front.StartTLS()
	defer front.Close()
	if err := os.WriteFile(f.rootCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: front.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	broken.Store(true)
	r := runCmd(t, "", false, nil, f.args("enroll", "--server", front.URL+"/")...)
	expect(t, r, exitError, "status 14")
	if _, err := os.Stat(filepath.Join(f.dir, "pending.json")); err == nil {
		t.Fatal("a request was saved")
	}
	broken.Store(false)
	expect(t, runCmd(t, "", false, nil, f.args("enroll", "--server", front.URL+"/", "--max-wait", "0")...), exitPending)
	broken.Store(true)
	expect(t, runCmd(t, "", false, nil, f.args("enroll", "--server", front.URL+"/")...), exitPending, "status 14")
}
