package caddyenroll

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/certmagic"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/crypto/bcrypt"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// boundsApp is an enrollment handler on st with the accounts ops and acme
// (password "right"), gw1.example the file's only device, unknown devices
// pending, and the pending bounds given; its logs are observed.
func boundsApp(t *testing.T, st certmagic.Storage, clock *testClock, approval string, maxPending, perAccount int) (*Handler, *observer.ObservedLogs) {
	t.Helper()
	cs, _, _ := testConfigState(t, "enroll enabled\ngroup \"\"\ndevice gw1.example \"\" enabled\n")
	hash, _ := bcrypt.GenerateFromPassword([]byte("right"), bcrypt.MinCost)
	accts, err := newAccounts([]Account{{Username: "ops", Password: string(hash)}, {Username: "acme", Password: string(hash)}})
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	initMetrics()
	a := &App{cfg: cs, accounts: accts, log: zap.New(core), known: newKnownAddresses(),
		limiter: newLimiter(5, time.Minute, time.Hour), addrLimiter: newLimiter(20, time.Minute, time.Hour),
		Approval: approval, UnknownDevices: UnknownPending, MaxPending: maxPending, MaxPendingPerAccount: perAccount,
		storage: st, state: newStateStore(st, time.Hour), clock: clock.Now, pendingThrottle: new(throttle),
		authz: &authz{revocations: new(revocations)}, crypto: new(cryptoRecords)}
	a.state.now = clock.Now
	a.bgCtx, a.bgCancel = context.WithCancel(context.Background())
	t.Cleanup(a.bgCancel)
	c, _, err := ca.Open(context.Background(), st, ca.Config{Name: profileModern}, "")
	if err != nil {
		t.Fatal(err)
	}
	a.cas = map[string]*ca.CA{profileModern: c}
	a.Authorities = map[string]*Authority{profileModern: {}}
	a.marks = &markBatcher{apply: a.applyMarks}
	return &Handler{Profile: profileModern, ContentType: "text/html", MaxBody: wire.MaxBody, app: a, log: a.log}, logs
}

// enrollAs sends h an operation for device with key, as account, with
// device id 1 and customer 0.
func enrollAs(t *testing.T, h *Handler, op, account, device string, key crypto.Signer) *wire.Response {
	t.Helper()
	return enrollWithIDs(t, h, op, account, device, "1", "0", key)
}

// enrollWithIDs is enrollAs with the device and customer ids given.
func enrollWithIDs(t *testing.T, h *Handler, op, account, device, deviceID, customer string, key crypto.Signer) *wire.Response {
	t.Helper()
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	return postEnrollment(t, h, op, account, device, deviceID, customer, base64.StdEncoding.EncodeToString(nonce), key)
}

// enrollNonce is enrollAs of gw1.example as ops with the nonce given: for
// tests that repeat a request's nonce, or send another key's.
func enrollNonce(t *testing.T, h *Handler, op string, key crypto.Signer, nonce string) *wire.Response {
	t.Helper()
	return postEnrollment(t, h, op, "ops", "gw1.example", "1", "0", nonce, key)
}

// postEnrollment sends h an operation of device with a CSR of key, as account
// (password "right") from 192.0.2.1, with the ids and nonce given.
func postEnrollment(t *testing.T, h *Handler, op, account, device, deviceID, customer, nonce string, key crypto.Signer) *wire.Response {
	t.Helper()
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: device}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return postForm(t, h, "192.0.2.1", url.Values{"operation": {op}, "nonce": {nonce},
		"username": {account}, "password": {"right"}, "device": {deviceID}, "customer": {customer},
		"request": {base64.StdEncoding.EncodeToString(csr)}})
}

// fileApp is boundsApp on a file storage of its own (bounds 100), with
// the configuration file's text: the devices and flags of a test.
func fileApp(t *testing.T, approval, text string) *Handler {
	t.Helper()
	keepPendingCount(t)
	st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	h, _ := boundsApp(t, st, &testClock{now: time.Now()}, approval, 100, 100)
	saveRenamed(t, h.app.cfg.path, text)
	if _, err := h.app.cfg.reload(); err != nil {
		t.Fatal(err)
	}
	return h
}

// keepPendingCount restores the process's pending count after the test,
// and starts it at 0 (a fresh process).
func keepPendingCount(t *testing.T) {
	initMetrics()
	pendingCount.mu.Lock()
	old := pendingCount.n
	pendingCount.mu.Unlock()
	pendingSet(0)
	t.Cleanup(func() { pendingSet(old) })
}

const (
	refusedAccount = "too many requests of this account are pending"
	refusedTotal   = "too many requests are pending"
)

// New pending requests are bounded per account and in total; a device
// asking again about its pending request is answered, a decision makes
// room, the counts hold across a restart on the same storage, and an
// issuance under auto approval is not bounded. After every step the
// pending gauge is the number of pending requests in storage.
func TestPendingBounds(t *testing.T) {
	type step struct {
		op, account, device string // op: request, again (same key), retrieve, newkey, reject, restart
		status              int
		errText             string
	}
	for _, tc := range []struct {
		name                 string
		approval             string
		maxPending, perAcct  int
		steps                []step
		wantByAccount        map[string]int // pending markers per account at the end
		wantRefusedNotStored []string       // devices whose refused request left nothing
	}{
		{"per account", ApprovalManual, 100, 2, []step{
			{"request", "ops", "a.example", 1, ""},
			{"request", "ops", "b.example", 1, ""},
			{"request", "ops", "c.example", 10, refusedAccount},
			{"retrieve", "ops", "c.example", 11, ""},
			{"retrieve", "ops", "a.example", 1, ""},
			{"again", "ops", "a.example", 1, ""},
			{"newkey", "ops", "b.example", 10, refusedAccount},
			{"request", "acme", "c.example", 1, ""},
			{"reject", "", "a.example", 0, ""},
			{"request", "ops", "d.example", 1, ""},
			{"request", "ops", "e.example", 10, refusedAccount},
		}, map[string]int{"ops": 2, "acme": 1}, []string{"e.example"}},
		{"total", ApprovalManual, 3, 100, []step{
			{"request", "ops", "a.example", 1, ""},
			{"request", "acme", "b.example", 1, ""},
			{"request", "ops", "gw1.example", 1, ""},
			{"request", "acme", "d.example", 10, refusedTotal},
			{"again", "ops", "a.example", 1, ""},
			{"retrieve", "acme", "b.example", 1, ""},
			{"reject", "", "b.example", 0, ""},
			{"request", "acme", "d.example", 1, ""},
			{"request", "ops", "e.example", 10, refusedTotal},
		}, map[string]int{"ops": 1, "acme": 1}, []string{"e.example"}}, // gw1.example is the file's
		{"known devices per account", ApprovalManual, 100, 1, []step{
			{"request", "ops", "a.example", 1, ""},
			{"request", "ops", "gw1.example", 1, ""}, // the file's: not the account's bound
			{"newkey", "ops", "gw1.example", 1, ""},
			{"request", "ops", "b.example", 10, refusedAccount},
		}, map[string]int{"ops": 1}, []string{"b.example"}},
		{"restart", ApprovalManual, 3, 2, []step{
			{"request", "ops", "a.example", 1, ""},
			{"request", "ops", "b.example", 1, ""},
			{"restart", "", "", 0, ""},
			{"request", "ops", "c.example", 10, refusedAccount},
			{"request", "acme", "d.example", 1, ""},
			{"restart", "", "", 0, ""},
			{"request", "acme", "e.example", 10, refusedTotal},
			{"retrieve", "ops", "a.example", 1, ""},
		}, map[string]int{"ops": 2, "acme": 1}, []string{"c.example", "e.example"}},
		{"auto approval issues beyond the bounds", ApprovalAuto, 1, 1, []step{
			{"request", "ops", "x.example", 1, ""},
			{"request", "ops", "gw1.example", 0, ""},
			{"request", "acme", "y.example", 10, refusedTotal},
		}, map[string]int{"ops": 1}, []string{"y.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keepPendingCount(t)
			ctx := context.Background()
			st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
			clock := &testClock{now: time.Now()}
			h, _ := boundsApp(t, st, clock, tc.approval, tc.maxPending, tc.perAcct)
			keys := map[string]crypto.Signer{}
			key := func(device string, fresh bool) crypto.Signer {
				if keys[device] == nil || fresh {
					keys[device], _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				}
				return keys[device]
			}
			for i, s := range tc.steps {
				var ans *wire.Response
				switch s.op {
				case "request", "again":
					ans = enrollAs(t, h, wire.OpRequest, s.account, s.device, key(s.device, false))
				case "newkey":
					ans = enrollAs(t, h, wire.OpRequest, s.account, s.device, key(s.device, true))
				case "retrieve":
					ans = enrollAs(t, h, wire.OpRetrieve, s.account, s.device, key(s.device, false))
				case "reject":
					pub, _ := x509.MarshalPKIXPublicKey(key(s.device, false).Public())
					id := requestID(profileModern, s.device, ca.FingerprintHex(pub))
					if _, err := h.app.reject(ctx, id, "test"); err != nil {
						t.Fatalf("step %d: reject %s: %v", i, s.device, err)
					}
				case "restart":
					// a new process on the same storage: counts from it
					h.app.bgCancel()
					pendingSet(0)
					h, _ = boundsApp(t, st, clock, tc.approval, tc.maxPending, tc.perAcct)
					h.app.refreshOnce()
				}
				if ans != nil && (ans.Status != s.status || !strings.Contains(ans.Error, s.errText)) {
					t.Fatalf("step %d: %s %s as %s: status %d %q, want %d %q", i, s.op, s.device, s.account, ans.Status, ans.Error, s.status, s.errText)
				}
				n, err := h.app.state.pendingMarkers(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if g := promtest.ToFloat64(metrics.pending); g != float64(n) {
					t.Fatalf("step %d: pending gauge %v, %d pending in storage", i, g, n)
				}
			}
			for _, acct := range []string{"ops", "acme"} {
				n, err := h.app.state.pendingByCount(ctx, acct, 1000, always)
				if err != nil || n != tc.wantByAccount[acct] {
					t.Errorf("%s: %d pending by its index (%v), want %d", acct, n, err, tc.wantByAccount[acct])
				}
			}
			for _, d := range tc.wantRefusedNotStored {
				pub, _ := x509.MarshalPKIXPublicKey(keys[d].Public())
				if r, err := h.app.state.request(ctx, requestID(profileModern, d, ca.FingerprintHex(pub))); r != nil || err != nil {
					t.Errorf("%s: the refused request is stored: %+v %v", d, r, err)
				}
			}
		})
	}
}

// A refusal by a bound is logged at WARN naming the account (never the
// password), the first time and then at most once per pendingWarnInterval
// per bound; every refusal is at DEBUG, as other status 10 refusals are.
func TestPendingBoundWarnings(t *testing.T) {
	keepPendingCount(t)
	st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	clock := &testClock{now: time.Now()}
	h, logs := boundsApp(t, st, clock, ApprovalManual, 3, 1)
	newKey := func() crypto.Signer { k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader); return k }
	var all []observer.LoggedEntry
	warns := func() []observer.LoggedEntry {
		var out []observer.LoggedEntry
		for _, e := range logs.TakeAll() {
			all = append(all, e)
			if e.Level == zapcore.WarnLevel && strings.HasPrefix(e.Message, "pending request refused") {
				out = append(out, e)
			}
		}
		return out
	}
	for _, s := range []struct {
		account, device string
		advance         time.Duration
		status          int
		warn            string // the WARN's bound ("" none); it names account
	}{
		{"ops", "a.example", 0, 1, ""},
		{"ops", "b.example", 0, 10, "max_pending_per_account"},
		{"ops", "c.example", time.Minute, 10, ""},
		{"acme", "c.example", 0, 1, ""},
		{"acme", "d.example", 0, 10, "max_pending_per_account"},
		{"ops", "e.example", pendingWarnInterval, 10, "max_pending_per_account"},
		{"ops", "e.example", 0, 10, ""},
	} {
		clock.add(s.advance)
		if ans := enrollAs(t, h, wire.OpRequest, s.account, s.device, newKey()); ans.Status != s.status {
			t.Fatalf("%s %s: status %d %q, want %d", s.account, s.device, ans.Status, ans.Error, s.status)
		}
		got := warns()
		if s.warn == "" {
			if len(got) != 0 {
				t.Fatalf("%s %s: logged %v, want no WARN", s.account, s.device, got)
			}
			continue
		}
		if len(got) != 1 {
			t.Fatalf("%s %s: %d WARN lines, want 1", s.account, s.device, len(got))
		}
		f := got[0].ContextMap()
		if f["username"] != s.account || f["device"] != s.device || f[s.warn] == nil {
			t.Errorf("%s %s: WARN fields %v, want username, device and %s", s.account, s.device, f, s.warn)
		}
	}
	// the total: the third account-less place goes, then the bound holds
	h.app.MaxPendingPerAccount = 10
	enrollAs(t, h, wire.OpRequest, "ops", "f.example", newKey())
	if ans := enrollAs(t, h, wire.OpRequest, "ops", "g.example", newKey()); ans.Status != wire.StatusRateLimited || !strings.Contains(ans.Error, refusedTotal) {
		t.Fatalf("over the total: status %d %q", ans.Status, ans.Error)
	}
	if got := warns(); len(got) != 1 || got[0].ContextMap()["max_pending"] == nil || got[0].ContextMap()["username"] != "ops" {
		t.Fatalf("over the total: WARN %v", got)
	}
	warns()
	for _, e := range all {
		b, _ := json.Marshal(e.ContextMap())
		if strings.Contains(string(b), `"right"`) {
			t.Fatalf("a log line holds the password: %s %s", e.Message, b)
		}
		if e.Message == "enrollment refused" && e.ContextMap()["status"] == int64(wire.StatusRateLimited) && e.Level != zapcore.DebugLevel {
			t.Fatalf("a refusal by a bound logged at %v", e.Level)
		}
	}
}

// The account's count is its index's markers; at the bound they are read,
// and a marker whose request is no longer pending (a crash after the
// decision) does not count, and is removed once old enough. Reading them
// is done at most once per pendingMarkerGrace.
func TestPendingByCountStaleMarkers(t *testing.T) {
	ctx := context.Background()
	st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	clock := &testClock{now: time.Now()}
	s := newStateStore(st, time.Hour)
	s.now = clock.Now
	for _, r := range []*Request{
		{ID: "aaaaaa01", Device: "a.example", Username: "ops", State: statePending},
		{ID: "bbbbbb02", Device: "b.example", Username: "ops", State: statePending},
		{ID: "cccccc03", Device: "c.example", Username: "acme", State: statePending},
	} {
		if err := s.putRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// decided, and a crash before its markers were removed
	if err := s.storeJSON(ctx, requestKey("bbbbbb02"), &Request{ID: "bbbbbb02", Device: "b.example", Username: "ops", State: stateRejected}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		limit   int
		verify  bool
		advance time.Duration
		want    int
		marker  bool // the stale marker still there after
	}{
		{3, true, 0, 2, true},                             // under the limit: the markers
		{2, false, 0, 2, true},                            // at it, not verified: the markers
		{2, true, 0, 1, true},                             // verified: the stale one not counted, too young to go
		{2, true, markerStaleAge + time.Second, 1, false}, // and removed once old
		{2, true, 0, 1, false},
	} {
		clock.add(c.advance)
		n, err := s.pendingByCount(ctx, "ops", c.limit, func() bool { return c.verify })
		if err != nil || n != c.want {
			t.Fatalf("%+v: count %d, %v", c, n, err)
		}
		if got := st.Exists(ctx, pendingByKey("ops", "bbbbbb02")); got != c.marker {
			t.Fatalf("%+v: stale marker there: %v", c, got)
		}
	}
	if n, _ := s.pendingByCount(ctx, "acme", 1, always); n != 1 {
		t.Fatalf("acme: %d", n)
	}

	// the app verifies at most once per pendingMarkerGrace per account
	th := new(throttle)
	now := time.Now()
	for _, c := range []struct {
		key  string
		at   time.Duration
		want bool
	}{
		{"verify:ops", 0, true},
		{"verify:ops", time.Second, false},
		{"verify:acme", time.Second, true},
		{"verify:ops", pendingMarkerGrace, true},
		{"verify:ops", pendingMarkerGrace + time.Second, false},
		{"verify:ops", -time.Hour, true}, // a clock set back
	} {
		if got := th.due(c.key, now.Add(c.at), pendingMarkerGrace); got != c.want {
			t.Errorf("due(%s at %v) = %v, want %v", c.key, c.at, got, c.want)
		}
	}
	if !(*throttle)(nil).due("x", now, time.Hour) {
		t.Error("a nil throttle throttles")
	}
}

// Pending requests stored by versions without the per-account index are
// indexed by account once; a decision removes the account's marker.
func TestIndexPendingBy(t *testing.T) {
	ctx := context.Background()
	st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	s := newStateStore(st, time.Hour)
	old := []*Request{
		{ID: "aaaaaa01", Device: "a.example", Username: "ops", State: statePending},
		{ID: "bbbbbb02", Device: "b.example", State: statePending}, // no account recorded
		{ID: "cccccc03", Device: "c.example", Username: "ops", State: stateIssued},
	}
	for _, r := range old { // as earlier versions stored them
		if r.State == statePending {
			if err := st.Store(ctx, pendingKey(r.ID), []byte(r.ID)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.storeJSON(ctx, requestKey(r.ID), r); err != nil {
			t.Fatal(err)
		}
	}
	count := func() int {
		t.Helper()
		n, err := s.pendingByCount(ctx, "ops", 100, always)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 0 {
		t.Fatalf("before indexing: %d", n)
	}
	if err := s.indexPendingBy(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 1 {
		t.Fatalf("after indexing: %d, want 1", n)
	}
	if keys, _ := s.list(ctx, statePrefix+"/pending-by"); len(keys) != 1 {
		t.Fatalf("accounts indexed: %v, want ops only", keys)
	}
	old[0].State = stateRejected
	if err := s.putRequest(ctx, old[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.unindexRequest(ctx, old[0]); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.pendingByCount(ctx, "ops", 100, func() bool { return false }); n != 0 {
		t.Fatalf("after the decision: %d markers", n)
	}
}

// The bounds' settings: 0 is the default, negative is refused; the
// Caddyfile refuses an explicit 0.
func TestPendingBoundsSettings(t *testing.T) {
	for _, c := range []struct {
		option    string
		total, pa int
		err       string
	}{
		{"", 0, 0, ""},
		{"max_pending 500", 500, 0, ""},
		{"max_pending_per_account 7", 0, 7, ""},
		{"max_pending 0", 0, 0, "max_pending 0 is not a setting"},
		{"max_pending_per_account", 0, 0, "wrong argument count"},
		{"max_pending many", 0, 0, "not an integer"},
		{"max_pending -1", -1, 0, "must not be negative"},
		{"max_pending_per_account -5", 0, -5, "must not be negative"},
	} {
		t.Run(c.option, func(t *testing.T) {
			d := caddyfile.NewTestDispenser("enroll {\n\tconfig_file ch.conf\n\t" + c.option + "\n}")
			v, err := parseGlobalOption(d, nil)
			if err == nil {
				var app App
				if err = json.Unmarshal(v.(httpcaddyfile.App).Value, &app); err != nil {
					t.Fatal(err)
				}
				if app.MaxPending != c.total || app.MaxPendingPerAccount != c.pa {
					t.Fatalf("max_pending %d, per account %d; want %d, %d", app.MaxPending, app.MaxPendingPerAccount, c.total, c.pa)
				}
				err = validateProvisioned(&app)
				if err == nil && (app.maxPending() != max(c.total, defaultMaxPending*boolInt(c.total == 0)) ||
					app.maxPendingPerAccount() != max(c.pa, defaultMaxPendingPerAccount*boolInt(c.pa == 0))) {
					t.Fatalf("bounds %d, %d", app.maxPending(), app.maxPendingPerAccount())
				}
			}
			if (c.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.err) {
				t.Fatalf("error %v, want %q", err, c.err)
			}
		})
	}
}

// validateProvisioned validates app with the settings Provision fills in
// given (the ones a test does not look at).
func validateProvisioned(app *App) error {
	app.Approval, app.UnknownDevices, app.FailuresAllowed = ApprovalAuto, UnknownPending, 5
	app.LockoutBase, app.LockoutMax, app.NonceRetention = 1e9, 1e10, 36e11
	return app.Validate()
}

func always() bool { return true }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// A marker a crash left (its request decided) does not hold an account at
// its bound: the markers are read when they reach it (not before, which
// would spend the once-per-pendingMarkerGrace reading early), and the
// stale one is removed once old.
func TestPendingBoundStaleMarker(t *testing.T) {
	keepPendingCount(t)
	ctx := context.Background()
	st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	clock := &testClock{now: time.Now()}
	h, _ := boundsApp(t, st, clock, ApprovalManual, 100, 3)
	phantom := &Request{ID: "0123456789abcdef0123456789abcdef", Device: "p.example", Username: "ops", State: statePending}
	if err := h.app.state.putRequest(ctx, phantom); err != nil {
		t.Fatal(err)
	}
	phantom.State = stateRejected
	if err := h.app.state.storeJSON(ctx, requestKey(phantom.ID), phantom); err != nil {
		t.Fatal(err)
	}
	keys := map[string]crypto.Signer{}
	for i, s := range []struct {
		device  string
		advance time.Duration
		status  int
		phantom bool // its marker still there after
	}{
		{"a.example", 0, 1, true},
		{"b.example", 0, 1, true},
		{"c.example", 0, 1, true}, // 3 markers: read, 2 pending
		{"d.example", 0, 10, true},
		{"d.example", markerStaleAge + time.Second, 10, false},
		{"reject a.example", 0, 0, false},
		{"d.example", 0, 1, false},
	} {
		clock.add(s.advance)
		if dev, ok := strings.CutPrefix(s.device, "reject "); ok {
			pub, _ := x509.MarshalPKIXPublicKey(keys[dev].Public())
			if _, err := h.app.reject(ctx, requestID(profileModern, dev, ca.FingerprintHex(pub)), "test"); err != nil {
				t.Fatal(err)
			}
		} else {
			keys[s.device], _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if ans := enrollAs(t, h, wire.OpRequest, "ops", s.device, keys[s.device]); ans.Status != s.status {
				t.Fatalf("step %d: %s: status %d %q, want %d", i, s.device, ans.Status, ans.Error, s.status)
			}
		}
		if got := st.Exists(ctx, pendingByKey("ops", phantom.ID)); got != s.phantom {
			t.Fatalf("step %d: stale marker there: %v", i, got)
		}
	}
}

// A throttle forgets keys done longer ago than any interval it is asked
// about, as its map grows: keys of made-up device names held one after
// another over months do not pile up; a key done recently still throttles.
func TestThrottleForgetsOldKeys(t *testing.T) {
	th := new(throttle)
	start := time.Now()
	const rounds, perRound = 20, 2000
	for r := range rounds {
		now := start.Add(time.Duration(r) * 3 * time.Hour)
		for i := range perRound {
			if !th.due(fmt.Sprintf("warn:held:%d-%d", r, i), now, pendingWarnInterval) {
				t.Fatalf("round %d: a new key throttled", r)
			}
		}
		if th.due(fmt.Sprintf("warn:held:%d-0", r), now.Add(time.Minute), pendingWarnInterval) {
			t.Fatalf("round %d: a key done a minute ago is due again", r)
		}
	}
	if n := len(th.last); n > 3*perRound {
		t.Errorf("%d keys kept after %d rounds of %d keys 3 h apart; want at most %d", n, rounds, perRound, 3*perRound)
	}
	// a key forgotten is due, as it would have been anyway
	if !th.due("warn:held:0-1", start.Add(rounds*3*time.Hour), pendingWarnInterval) {
		t.Error("a key done 60 h ago throttled")
	}
}
