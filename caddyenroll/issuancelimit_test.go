package caddyenroll

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// Under approval auto a known device gets at most max_issued_per_device
// certificates within issuance_window: a new key beyond waits (held), is
// issued when the device asks again once the window allows, or when an
// administrator approves it; repeats of an issued key are answered; the
// count survives a restart; approval manual is not held.
func TestIssuanceLimit(t *testing.T) {
	type step struct {
		op      string // request (new key), again (last key), retrieve (last key), approve, reject (last key), advance, restart
		status  int
		revoked int // the device's revoked certificates after the step
	}
	for _, tc := range []struct {
		name     string
		approval string
		steps    []step
	}{
		{"held then issued when the window allows", ApprovalAuto, []step{
			{"request", 0, 0},
			{"request", 0, 1},
			{"request", 1, 1},  // third key in the window: held
			{"again", 1, 1},    // asking again: still held
			{"retrieve", 1, 1}, // still held
			{"advance", 0, 1},
			{"retrieve", 0, 2}, // window moved on: issued, the previous revoked
			{"again", 0, 2},    // a repeat of an issued key is answered
			{"request", 0, 3},
			{"request", 1, 3},
		}},
		{"administrator approves a held request", ApprovalAuto, []step{
			{"request", 0, 0},
			{"request", 0, 1},
			{"request", 1, 1},
			{"approve", 0, 2},
			{"retrieve", 0, 2},
			{"request", 1, 2}, // three in the window now
		}},
		{"administrator rejects a held request", ApprovalAuto, []step{
			{"request", 0, 0},
			{"request", 0, 1},
			{"request", 1, 1},
			{"reject", 8, 1},
			{"retrieve", 8, 1},
		}},
		{"the count survives a restart", ApprovalAuto, []step{
			{"request", 0, 0},
			{"request", 0, 1},
			{"restart", 0, 1},
			{"request", 1, 1},
			{"restart", 0, 1},
			{"retrieve", 1, 1},
			{"advance", 0, 1},
			{"restart", 0, 1},
			{"retrieve", 0, 2},
		}},
		{"approval manual is not held", ApprovalManual, []step{
			{"request", 1, 0},
			{"approve", 0, 0},
			{"request", 1, 0},
			{"approve", 0, 1},
			{"request", 1, 1},
			{"approve", 0, 2},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keepPendingCount(t)
			ctx := context.Background()
			st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
			clock := &testClock{now: time.Now()}
			var authority *ca.CA
			open := func() *Handler {
				h, _ := boundsApp(t, st, clock, tc.approval, 100, 100)
				h.app.MaxIssuedPerDevice, h.app.IssuanceWindow = 2, caddy.Duration(time.Hour)
				if authority == nil { // a restart keeps the CA (the file would name it)
					authority = h.app.cas[profileModern]
				}
				h.app.cas[profileModern] = authority
				return h
			}
			h := open()
			var key crypto.Signer
			for i, s := range tc.steps {
				var ans *wire.Response
				switch s.op {
				case "request":
					key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
					ans = enrollAs(t, h, wire.OpRequest, "ops", "gw1.example", key)
				case "again":
					ans = enrollAs(t, h, wire.OpRequest, "ops", "gw1.example", key)
				case "retrieve":
					ans = enrollAs(t, h, wire.OpRetrieve, "ops", "gw1.example", key)
				case "approve", "reject":
					pub, _ := x509.MarshalPKIXPublicKey(key.Public())
					id := requestID(profileModern, "gw1.example", ca.FingerprintHex(pub))
					var err error
					if s.op == "approve" {
						_, err = h.app.approve(ctx, id, "")
					} else {
						_, err = h.app.reject(ctx, id, "not now")
					}
					if err != nil {
						t.Fatalf("step %d: %s: %v", i, s.op, err)
					}
					// decided, it is no longer held
					req, err := h.app.state.request(ctx, id)
					if err != nil || req.Held || strings.Contains(req.Reason, "held") {
						t.Fatalf("step %d: %s: stored %v held %v reason %q (%v), still held", i, s.op, req.State, req.Held, req.Reason, err)
					}
				case "advance":
					clock.add(time.Hour + time.Minute)
				case "restart":
					h.app.bgCancel()
					h = open()
				}
				if ans != nil && ans.Status != s.status {
					t.Fatalf("step %d: %s: status %d %q, want %d", i, s.op, ans.Status, ans.Error, s.status)
				}
				if ans != nil && s.status == wire.StatusPending && tc.approval == ApprovalAuto {
					reqs, err := h.app.state.pending(ctx)
					if err != nil || len(reqs) != 1 || !reqs[0].Held || !strings.Contains(reqs[0].Reason, "max_issued_per_device") {
						t.Fatalf("step %d: pending %+v (%v), want one held request saying why", i, reqs, err)
					}
				}
				if ans != nil && ans.Status == wire.StatusOK || s.op == "approve" || s.op == "reject" {
					if n, err := h.app.state.pendingMarkers(ctx); err != nil || n != 0 {
						t.Fatalf("step %d: %s: %d pending markers left after the issuance (%v)", i, s.op, n, err)
					}
				}
				recs, err := h.app.cas[profileModern].Records(ctx, "gw1.example")
				if err != nil {
					t.Fatal(err)
				}
				revoked := 0
				for _, r := range recs {
					if r.Revoked {
						revoked++
					}
				}
				if revoked != s.revoked {
					t.Fatalf("step %d: %s: %d revoked certificates, want %d", i, s.op, revoked, s.revoked)
				}
				rec, err := h.app.state.device(ctx, "gw1.example")
				if err != nil {
					t.Fatal(err)
				}
				if rec != nil && len(rec.Issued) > 2 {
					t.Fatalf("step %d: the device record keeps %d issuances, more than the bound", i, len(rec.Issued))
				}
			}
		})
	}
}

// A device record of an earlier version (no issuance list) counts its
// current certificate.
func TestRecentIssuedLegacyRecord(t *testing.T) {
	now := time.Now()
	rec := &DeviceRecord{Serial: "01", Enrolled: now.Add(-time.Minute)}
	if got := rec.recentIssued(now.Add(-time.Hour)); len(got) != 1 || got[0].Serial != "01" {
		t.Fatalf("recent %+v, want the current certificate", got)
	}
	if got := rec.recentIssued(now); len(got) != 0 {
		t.Fatalf("recent %+v, want none after the window", got)
	}
	a := &App{MaxIssuedPerDevice: 1, IssuanceWindow: caddy.Duration(time.Hour)}
	if why := a.issuanceHeld(rec, now); !strings.Contains(why, "max_issued_per_device") {
		t.Fatalf("held %q, want held", why)
	}
	if why := a.issuanceHeld(nil, now); why != "" {
		t.Fatalf("a device without record held: %q", why)
	}
}

// The bound's settings: Caddyfile and JSON; 0 is the default, negative and
// windows under a minute are refused.
func TestIssuanceLimitSettings(t *testing.T) {
	for _, c := range []struct {
		option string
		n      int
		window time.Duration
		err    string
	}{
		{"", defaultMaxIssuedPerDevice, defaultIssuanceWindow, ""},
		{"max_issued_per_device 20", 20, defaultIssuanceWindow, ""},
		{"max_issued_per_device 3 24h", 3, 24 * time.Hour, ""},
		{"max_issued_per_device 3 1d", 3, 24 * time.Hour, ""},
		{"max_issued_per_device", 0, 0, "wrong argument count"},
		{"max_issued_per_device 1 1h 2", 0, 0, "wrong argument count"},
		{"max_issued_per_device 0", 0, 0, "not a positive number"},
		{"max_issued_per_device -1", 0, 0, "not a positive number"},
		{"max_issued_per_device many", 0, 0, "not a positive number"},
		{"max_issued_per_device 2 soon", 0, 0, `max_issued_per_device window "soon" is not a duration: write a number and a unit`},
		{"max_issued_per_device 2 30", 0, 0, `max_issued_per_device window "30" is not a duration`},
		{"max_issued_per_device 2 -1h", 0, 0, "not a positive duration"},
		{"max_issued_per_device 2 30s", 0, 0, "issuance_window must be at least 1m0s, not 30s"},
		{"json negative", 0, 0, "max_issued_per_device must not be negative"},
		{"json nanoseconds", 0, 0, "a number in JSON is nanoseconds"},
	} {
		t.Run(c.option, func(t *testing.T) {
			app := App{ConfigFile: "ch.conf"}
			switch c.option {
			case "json negative":
				app.MaxIssuedPerDevice = -1
			case "json nanoseconds":
				app.IssuanceWindow = 3600
			default:
				d := caddyfile.NewTestDispenser("enroll {\n\tconfig_file ch.conf\n\t" + c.option + "\n}")
				v, err := parseGlobalOption(d, nil)
				if err != nil {
					if c.err == "" || !strings.Contains(err.Error(), c.err) {
						t.Fatalf("error %v, want %q", err, c.err)
					}
					return
				}
				if err := json.Unmarshal(v.(httpcaddyfile.App).Value, &app); err != nil {
					t.Fatal(err)
				}
			}
			err := validateProvisioned(&app)
			if (c.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.err) {
				t.Fatalf("error %v, want %q", err, c.err)
			}
			if err != nil && strings.Contains(err.Error(), "nanoseconds") != (c.option == "json nanoseconds") {
				t.Fatalf("error %v: the JSON nanoseconds hint belongs only to a tiny JSON number", err)
			}
			if err == nil && (app.maxIssued() != c.n || app.issuanceWindow() != c.window) {
				t.Fatalf("bound %d per %v, want %d per %v", app.maxIssued(), app.issuanceWindow(), c.n, c.window)
			}
		})
	}
}

// `caddy enroll pending` shows a held request as such, and the admin API's
// JSON says held.
func TestHeldRequestShown(t *testing.T) {
	req := &Request{ID: "abc", Device: "gw1.example", Profile: profileModern, State: statePending, Held: true,
		Reason: "held for approval: …", Created: time.Now()}
	body, err := json.Marshal([]RequestInfo{requestInfo(req)})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), `"held":true`) {
		t.Fatalf("admin JSON %s lacks held", body)
	}
	var out strings.Builder
	if err := printAdminAnswer(&out, "/enroll/pending", body, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "pending (held: max_issued_per_device)") {
		t.Fatalf("table:\n%s", out.String())
	}
	req.Held = false
	body, _ = json.Marshal([]RequestInfo{requestInfo(req)})
	out.Reset()
	if err := printAdminAnswer(&out, "/enroll/pending", body, false); err != nil || strings.Contains(out.String(), "held") {
		t.Fatalf("table of a request not held:\n%s (%v)", out.String(), err)
	}
}

// The default bound leaves room for ordinary renewals of short-lived
// certificates (a renewal every two thirds of the validity: 24h
// certificates renew about 11 times a week), and a bound set below them
// is logged under approval auto.
func TestIssuanceBoundFollowsValidity(t *testing.T) {
	for _, c := range []struct {
		validity time.Duration
		set      int
		approval string
		want     int
		warn     bool
	}{
		{365 * 24 * time.Hour, 0, ApprovalAuto, 5, false},
		{90 * 24 * time.Hour, 0, ApprovalAuto, 5, false},
		{24 * time.Hour, 0, ApprovalAuto, 2*11 + 3, false},
		{time.Hour, 0, ApprovalAuto, 2*252 + 3, false},
		{24 * time.Hour, 5, ApprovalAuto, 5, true},
		{24 * time.Hour, 10, ApprovalAuto, 10, true},
		{24 * time.Hour, 11, ApprovalAuto, 11, false}, // room for the renewals, none more
		{365 * 24 * time.Hour, 1, ApprovalAuto, 1, false},
		{24 * time.Hour, 5, ApprovalManual, 5, false},
	} {
		c2, _, err := ca.Open(context.Background(), ca.NewMemStore(), ca.Config{Name: profileModern, Validity: c.validity}, "")
		if err != nil {
			t.Fatal(err)
		}
		core, logs := observer.New(zapcore.WarnLevel)
		a := &App{Approval: c.approval, MaxIssuedPerDevice: c.set, log: zap.New(core), cas: map[string]*ca.CA{profileModern: c2}}
		a.settleIssuanceBound()
		if a.maxIssued() != c.want || (logs.Len() > 0) != c.warn {
			t.Errorf("validity %v, set %d, %s: bound %d, %d warnings; want %d, warning %v", c.validity, c.set, c.approval, a.maxIssued(), logs.Len(), c.want, c.warn)
		}
	}
}

// A held request's reason says until when it waits as the window moves on:
// asked about again while still held, it names the new time.
func TestHeldReasonFollowsWindow(t *testing.T) {
	keepPendingCount(t)
	ctx := context.Background()
	st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	clock := &testClock{now: time.Now()}
	h, _ := boundsApp(t, st, clock, ApprovalAuto, 100, 100)
	h.app.MaxIssuedPerDevice, h.app.IssuanceWindow = 2, caddy.Duration(time.Hour)
	newKey := func() crypto.Signer { k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader); return k }
	reason := func(k crypto.Signer) string {
		pub, _ := x509.MarshalPKIXPublicKey(k.Public())
		req, err := h.app.state.request(ctx, requestID(profileModern, "gw1.example", ca.FingerprintHex(pub)))
		if err != nil || req == nil {
			t.Fatalf("request: %v", err)
		}
		return req.Reason
	}
	step := func(op string, k crypto.Signer, want int) {
		t.Helper()
		if ans := enrollAs(t, h, op, "ops", "gw1.example", k); ans.Status != want {
			t.Fatalf("%s: status %d %q, want %d", op, ans.Status, ans.Error, want)
		}
	}
	step(wire.OpRequest, newKey(), 0) // T
	clock.add(30 * time.Minute)
	step(wire.OpRequest, newKey(), 0) // T+30m
	k3, k4 := newKey(), newKey()
	step(wire.OpRequest, k3, 1) // held until T+60m
	step(wire.OpRequest, k4, 1)
	before := reason(k4)
	clock.add(31 * time.Minute)
	step(wire.OpRetrieve, k3, 0) // T+61m: issued; the window now holds T+30m and T+61m
	step(wire.OpRetrieve, k4, 1)
	if after := reason(k4); after == before || !strings.Contains(after, "max_issued_per_device") {
		t.Fatalf("reason %q, was %q: want the new time", after, before)
	}
}

// A device held again and again is logged at WARN at the first hold and
// then at most every pendingWarnInterval, naming the account.
func TestHeldWarnThrottled(t *testing.T) {
	keepPendingCount(t)
	st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	clock := &testClock{now: time.Now()}
	h, logs := boundsApp(t, st, clock, ApprovalAuto, 100, 100)
	h.app.MaxIssuedPerDevice, h.app.IssuanceWindow = 1, caddy.Duration(24*time.Hour)
	enroll := func(want int) {
		t.Helper()
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if ans := enrollAs(t, h, wire.OpRequest, "ops", "gw1.example", k); ans.Status != want {
			t.Fatalf("status %d %q, want %d", ans.Status, ans.Error, want)
		}
	}
	warns := func() int {
		return logs.FilterMessage("enrollment held for approval: the device reached max_issued_per_device").FilterField(zap.String("username", "ops")).Len()
	}
	enroll(0)
	for range 3 {
		enroll(1)
	}
	if n := warns(); n != 1 {
		t.Fatalf("%d WARN lines for 3 holds in a row, want 1", n)
	}
	clock.add(pendingWarnInterval + time.Second)
	enroll(1)
	if n := warns(); n != 2 {
		t.Fatalf("%d WARN lines after the interval, want 2", n)
	}
}
