package caddyenroll_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// Through a real Caddy: an account's new pending requests of unknown
// devices stop at max_pending_per_account, all accounts' at max_pending
// (status 10, a WARN naming the account); a device asking again about its
// pending request is answered; the bounds hold after a kill -9 and
// restart, and a rejection makes room.
func TestPendingBoundsThroughCaddy(t *testing.T) {
	s := startServer(t, serverOpts{approval: "manual", extra: "max_pending 3\n\t\tmax_pending_per_account 2"})
	const gauge = "caddy_clearinghouse_enroll_pending"
	csrs := map[string][]byte{}
	ask := func(op, account, device string, status int, errText string) {
		t.Helper()
		if csrs[device] == nil {
			_, csrs[device] = p256CSR(t, device)
		}
		r := enrollReq(op, t, csrs[device])
		if account == "cust" {
			r.Username, r.Customer = "cust", "1000"
		}
		if a := s.do(r); a.Status != status || !strings.Contains(a.Error, errText) {
			t.Fatalf("%s %s as %s: status %d %q, want %d %q", op, device, account, a.Status, a.Error, status, errText)
		}
	}
	const perAccount, total = "of this account are pending", "too many requests are pending"
	ask(wire.OpRequest, "demo", "new-a.example", wire.StatusPending, "")
	ask(wire.OpRequest, "demo", "new-b.example", wire.StatusPending, "")
	ask(wire.OpRequest, "demo", "new-c.example", wire.StatusRateLimited, perAccount)
	ask(wire.OpRetrieve, "demo", "new-c.example", wire.StatusNotFound, "")
	ask(wire.OpRequest, "demo", "new-a.example", wire.StatusPending, "")
	ask(wire.OpRetrieve, "demo", "new-b.example", wire.StatusPending, "")
	ask(wire.OpRequest, "cust", "new-x.example", wire.StatusPending, "")
	ask(wire.OpRequest, "cust", "new-y.example", wire.StatusRateLimited, total)
	if g := s.metric(gauge, nil); g != 3 {
		t.Fatalf("pending gauge %v, want 3", g)
	}
	var warned []string
	for _, line := range strings.Split(s.Logs(), "\n") {
		var e struct {
			Level, Msg, Username string
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Level == "warn" && strings.HasPrefix(e.Msg, "pending request refused") {
			warned = append(warned, e.Username)
		}
		if strings.Contains(line, "demo-password") {
			t.Fatalf("the password in the log: %s", line)
		}
	}
	if strings.Join(warned, " ") != "demo cust" {
		t.Fatalf("WARN lines for %q, want demo's and cust's", warned)
	}

	s.Restart(s.tlsAddr, s.httpAddr)
	s.waitTLS()
	waitFor(t, "the pending count at start", func() bool { return s.metric(gauge, nil) == 3 })
	ask(wire.OpRequest, "demo", "new-c.example", wire.StatusRateLimited, perAccount)
	ask(wire.OpRequest, "cust", "new-y.example", wire.StatusRateLimited, total)
	ask(wire.OpRetrieve, "demo", "new-a.example", wire.StatusPending, "")

	var rejected string
	for _, p := range s.pending() {
		if p.Device == "new-a.example" {
			rejected = p.ID
		}
	}
	if code, body := s.Admin("POST", "/enroll/reject/"+rejected, `{"reason":"not ours"}`); code != 200 {
		t.Fatalf("reject: %d %s", code, body)
	}
	ask(wire.OpRetrieve, "demo", "new-a.example", wire.StatusRejected, "")
	ask(wire.OpRequest, "cust", "new-y.example", wire.StatusPending, "")
	ask(wire.OpRequest, "demo", "new-c.example", wire.StatusRateLimited, total)
	if p := s.pending(); len(p) != 3 {
		t.Fatalf("%d pending, want 3: %+v", len(p), p)
	}
	if g := s.metric(gauge, nil); g != 3 {
		t.Fatalf("pending gauge %v, want 3", g)
	}
}
