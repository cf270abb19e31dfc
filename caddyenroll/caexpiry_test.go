package caddyenroll

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

const caDay = 24 * time.Hour

// shortCA is a modern CA whose root ends rootValidity after the clock's
// now, issuing for validity.
func shortCA(t *testing.T, st certmagic.Storage, clock *testClock, rootValidity, validity time.Duration) *ca.CA {
	t.Helper()
	c, _, err := ca.Open(context.Background(), st, ca.Config{Name: "modern", RootValidity: rootValidity, Validity: validity, Now: clock.Now}, "")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The operator hears of a CA that ends before the certificates it issues
// would, and of one that has ended; the metric says when it ends.
func TestCAExpiryWarnings(t *testing.T) {
	for _, tc := range []struct {
		name         string
		root, elapse time.Duration
		level        zapcore.Level // of the line; 0 with msg "" for none
		msg          string
	}{
		{"years left", 10 * 365 * caDay, 0, 0, ""},
		{"less than a certificate's validity", 10 * 365 * caDay, 10*365*caDay - 100*caDay, zapcore.WarnLevel, "operational CA expires before the certificates it issues would"},
		{"expired", 30 * caDay, 31 * caDay, zapcore.ErrorLevel, "operational CA has expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := &testClock{now: time.Now().UTC()}
			c := shortCA(t, localLocks{&certmagic.FileStorage{Path: t.TempDir()}}, clock, tc.root, 365*caDay)
			clock.add(tc.elapse)
			core, logs := observer.New(zapcore.InfoLevel)
			initMetrics()
			a := &App{log: zap.New(core), cas: map[string]*ca.CA{profileModern: c}, clock: clock.Now}
			a.checkCAExpiry()
			var got []observer.LoggedEntry
			for _, e := range logs.All() {
				if strings.Contains(e.Message, "operational CA") {
					got = append(got, e)
				}
			}
			switch {
			case tc.msg == "" && len(got) > 0:
				t.Fatalf("logged %q", got[0].Message)
			case tc.msg != "" && (len(got) != 1 || got[0].Level != tc.level || !strings.HasPrefix(got[0].Message, tc.msg)):
				t.Fatalf("logged %v, want one %v line %q", got, tc.level, tc.msg)
			}
			if v := promtest.ToFloat64(metrics.caNotAfter.WithLabelValues(profileModern)); v != float64(c.Issuer().NotAfter.Unix()) {
				t.Fatalf("ca_not_after_seconds = %v, want %d", v, c.Issuer().NotAfter.Unix())
			}
		})
	}
}

// expiringApp is an enrollment handler (loginTestHandler's) whose modern
// CA ends 30 days after its clock's now.
func expiringApp(t *testing.T, approval string) (*Handler, *testClock) {
	t.Helper()
	h, _ := loginTestHandler(t, 5, 20)
	a := h.app
	st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	clock := &testClock{now: time.Now().UTC()}
	a.storage, a.state, a.clock, a.Approval = st, newStateStore(st, time.Hour), clock.Now, approval
	a.cas = map[string]*ca.CA{profileModern: shortCA(t, st, clock, 30*caDay, 365*caDay)}
	a.Authorities = map[string]*Authority{profileModern: {}}
	a.crypto = new(cryptoRecords)
	a.marks = &markBatcher{apply: a.applyMarks}
	return h, clock
}

// postEnroll sends h a request or retrieve of gw1.example with a new key.
func postEnroll(t *testing.T, h *Handler, op string) *wire.Response {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return enrollAs(t, h, op, "ops", "gw1.example", key)
}

// Once the CA has ended, request and retrieve are refused saying so
// (status 14), under either approval: no certificate it signed could be
// used, and a request left pending could never be approved.
func TestExpiredCARefusesEnrollment(t *testing.T) {
	for _, approval := range []string{ApprovalAuto, ApprovalManual} {
		for _, op := range []string{wire.OpRequest, wire.OpRetrieve} {
			t.Run(approval+"/"+op, func(t *testing.T) {
				h, clock := expiringApp(t, approval)
				clock.add(31 * caDay)
				if ans := postEnroll(t, h, op); ans.Status != wire.StatusServerError || !strings.Contains(ans.Error, "operational CA expired") {
					t.Fatalf("status %d %q, want 14 saying the CA expired", ans.Status, ans.Error)
				}
				if reqs, err := h.app.state.requests(context.Background(), statePending); err != nil || len(reqs) != 0 {
					t.Fatalf("pending requests %v, %v; want none", reqs, err)
				}
			})
		}
	}
}

// The operator hears of an ended CA when devices start failing, not at
// the next daily check: the first refusal logs an ERROR, further ones
// within the hour do not, one after it does again.
func TestExpiredCARefusalLogsError(t *testing.T) {
	h, clock := expiringApp(t, ApprovalAuto)
	core, logs := observer.New(zapcore.InfoLevel)
	h.app.log, h.app.pendingThrottle = zap.New(core), new(throttle)
	errors := func() int {
		n := 0
		for _, e := range logs.All() {
			if e.Level == zapcore.ErrorLevel && strings.HasPrefix(e.Message, "operational CA has expired") {
				n++
			}
		}
		return n
	}
	if why := h.app.caExpired(h.app.cas[profileModern]); why != "" || errors() != 0 {
		t.Fatalf("before the end: %q, %d ERROR lines", why, errors())
	}
	clock.add(31 * caDay)
	for i, want := range []int{1, 1, 1} {
		if ans := postEnroll(t, h, wire.OpRequest); ans.Status != wire.StatusServerError || errors() != want {
			t.Fatalf("refusal %d: status %d, %d ERROR lines, want %d", i, ans.Status, errors(), want)
		}
		clock.add(10 * time.Minute)
	}
	clock.add(caExpiredLogInterval)
	if postEnroll(t, h, wire.OpRequest); errors() != 2 {
		t.Fatalf("an hour later: %d ERROR lines, want 2", errors())
	}
}

// A request left pending when the CA ended cannot be approved: a conflict
// (409) saying why, not a signing failure (500).
func TestExpiredCAApprovalConflict(t *testing.T) {
	h, clock := expiringApp(t, ApprovalManual)
	if ans := postEnroll(t, h, wire.OpRequest); ans.Status != wire.StatusPending {
		t.Fatalf("status %d %q, want pending", ans.Status, ans.Error)
	}
	reqs, err := h.app.state.requests(context.Background(), statePending)
	if err != nil || len(reqs) != 1 {
		t.Fatalf("pending requests %v, %v", reqs, err)
	}
	clock.add(31 * caDay)
	if _, err := h.app.approve(context.Background(), reqs[0].ID, ""); !errors.Is(err, errConflict) || !strings.Contains(err.Error(), "operational CA expired") {
		t.Fatalf("approve: %v; want a conflict saying the CA expired", err)
	}
}

// `caddy enroll ca` tells when the CA stops issuing: an intermediate that
// ends before its root ends it.
func TestCAInfoNotAfterIsTheIssuers(t *testing.T) {
	st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	c, _, err := ca.Open(context.Background(), st, ca.Config{Name: "modern", Intermediate: true, IntermediateValidity: 365 * caDay}, "")
	if err != nil {
		t.Fatal(err)
	}
	ad := &adminAPI{app: &App{storage: st, cas: map[string]*ca.CA{profileModern: c}}, log: zap.NewNop()}
	w := httptest.NewRecorder()
	if err := ad.caInfo(w, httptest.NewRequest(http.MethodGet, "/enroll/ca", nil), profileModern); err != nil {
		t.Fatal(err)
	}
	var info CAInfo
	if err := json.Unmarshal(w.Body.Bytes(), &info); err != nil {
		t.Fatal(err)
	}
	if want := c.Issuer().NotAfter.UTC().Format(time.RFC3339); info.NotAfter != want {
		t.Fatalf("not_after %s, want the intermediate's %s (root's %s)", info.NotAfter, want, c.Root().NotAfter.UTC().Format(time.RFC3339))
	}
}

// A token signer that ends with its CA is kept until then (a new one
// could not last longer: renewing it at every authorization of the CA's
// last minutes was a storm of keys and storage writes); once the CA has
// ended, no signer is made and the error says why.
func TestTokenSignerAtCAEnd(t *testing.T) {
	f := newRefreshFixture(t)
	f.app.log = zap.NewNop()
	c := shortCA(t, f.app.storage, f.clock, 30*caDay, 365*caDay)
	f.app.cas[profileModern] = c
	serial := func() string {
		t.Helper()
		s, err := f.app.tokenSigner(f.ctx, profileModern)
		if err != nil {
			t.Fatal(err)
		}
		if !s.Cert.NotAfter.Equal(c.Issuer().NotAfter) {
			t.Fatalf("signer until %v, want the CA's end %v", s.Cert.NotAfter, c.Issuer().NotAfter)
		}
		return s.Cert.SerialNumber.Text(16)
	}
	first := serial()
	for _, at := range []time.Duration{25 * caDay, 30*caDay - time.Minute, 30*caDay - time.Second} {
		f.clock.now = c.Issuer().NotAfter.Add(at - 30*caDay)
		if got, again := serial(), serial(); got != first || again != first {
			t.Fatalf("%v before the CA's end: signers %s, %s; want the first, %s", 30*caDay-at, got, again, first)
		}
	}
	f.clock.now = c.Issuer().NotAfter
	if _, err := f.app.tokenSigner(f.ctx, profileModern); !errors.Is(err, errCAExpired) {
		t.Fatalf("token signer after the CA's end: %v", err)
	}
}
