package main

import (
	"testing"

	"github.com/clearinghouse-dev/caddy-clearinghouse/enrollclient/enrolltest"
)

// README: "`chclient status --dir DIR` shows what a device holds (state,
// certificate, key, CA), exit 0 while its certificate is valid"; usage:
// "0 ... status: a valid certificate is installed". A renewal left pending
// (renew --max-wait 0, or a renew that timed out) must not turn the status
// of a device with a valid certificate into exit 3 (or 1 when the server
// is unreachable) just because a password is available (CHCLIENT_PASSWORD
// in the environment of the timer, or --password-file given): a monitor
// running `chclient status || alert` alerts on a healthy device.
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

// README ("The device client"): "a temporary answer — rate limited, server
// error — is no refusal: the request is still pending, exit 3". chclient
// exits 4 (refused, "correct the cause") for status 10 and 14 whenever the
// answer ends the run: on the first request, and on a retrieve with
// --max-wait 0 (the same answer inside a longer --max-wait ends in exit 3).
// The request is kept with its key and no refusal is recorded, so status
// then says "pending" (exit 3) while the enroll said "refused" (exit 4).
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
