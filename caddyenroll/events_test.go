package caddyenroll

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/crypto/bcrypt"

	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// recordedEvent is an event as a handler saw it.
type recordedEvent struct {
	name   string
	origin string
	data   map[string]any
}

// eventRecorder collects what the notifier emits.
type eventRecorder struct {
	mu     sync.Mutex
	events []recordedEvent
	block  chan struct{} // non-nil: Emit waits for it to close
}

func (r *eventRecorder) Emit(_ caddy.Context, name string, data map[string]any) caddy.Event {
	if r.block != nil {
		<-r.block
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, recordedEvent{name: name, data: data})
	return caddy.Event{}
}

func (r *eventRecorder) ShouldEmit(name string) bool { return strings.HasPrefix(name, "enroll_") }

// waitFor returns the events recorded once n are, failing after 10 s.
func (r *eventRecorder) waitFor(t *testing.T, n int) []recordedEvent {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		r.mu.Lock()
		got := slices.Clone(r.events)
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t.Fatalf("%d events recorded, want %d: %v", len(r.events), n, r.events)
	return nil
}

// notifying gives the app a notifier emitting to a recorder, running
// until the test ends.
func notifying(t *testing.T, a *App) *eventRecorder {
	t.Helper()
	return notifyingTo(t, a, new(eventRecorder), eventQueueSize)
}

// notifyingTo is notifying to rec, with a queue of size events.
func notifyingTo(t *testing.T, a *App, rec *eventRecorder, size int) *eventRecorder {
	t.Helper()
	a.events = newNotifier(rec, caddy.Context{}, zap.NewNop())
	a.events.queue = make(chan queuedEvent, size)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { a.events.run(stop); close(done) }()
	t.Cleanup(func() { close(stop); <-done })
	return rec
}

// A request that waits, its approval, a new key's approval (superseding
// the first certificate) and a rejection each emit their event, in order,
// with the data an operator's handler needs and no secret.
func TestEventsOfDecisions(t *testing.T) {
	h, approve := approvingApp(t)
	rec := notifying(t, h.app)

	if code, body := approve("gw1.example"); code != 200 {
		t.Fatalf("approve: %d %s", code, body)
	}
	if code, body := approve("gw1.example"); code != 200 {
		t.Fatalf("approve again: %d %s", code, body)
	}
	rejected := requestPending(t, h, "gw1.example")
	if _, err := h.app.reject(context.Background(), rejected.ID, "not ours"); err != nil {
		t.Fatal(err)
	}
	got := rec.waitFor(t, 7)
	names := make([]string, len(got))
	for i, e := range got {
		names[i] = e.name
	}
	want := []string{eventPending, eventIssued, eventPending, eventIssued, eventRevoked, eventPending, eventRejected}
	if !slices.Equal(names, want) {
		t.Fatalf("events %v, want %v", names, want)
	}
	pending, issued, revoked, rej := got[0].data, got[1].data, got[4].data, got[6].data
	if pending["device"] != "gw1.example" || pending["account"] != "ops" || pending["reason"] != "approval is manual" ||
		pending["client"] != "192.0.2.1" || pending["request"] != issued["request"] || pending["profile"] != profileModern {
		t.Errorf("enroll_pending data %v", pending)
	}
	if s, _ := issued["serial"].(string); s == "" || issued["not_after"] == nil {
		t.Errorf("enroll_issued data %v", issued)
	}
	// the README tells handlers the serial's form: the admin API's,
	// lower-case hex without leading zeros
	if s, _ := issued["serial"].(string); s != "" {
		if n, ok := new(big.Int).SetString(s, 16); !ok || n.Text(16) != s {
			t.Errorf("enroll_issued serial %q is not lower-case hex without leading zeros", s)
		}
	}
	if serials, _ := revoked["serials"].([]string); !slices.Equal(serials, []string{issued["serial"].(string)}) ||
		revoked["reason_text"] != "superseded" || revoked["by"] != "superseded" || revoked["device"] != "gw1.example" {
		t.Errorf("enroll_revoked data %v (first serial %v)", revoked, issued["serial"])
	}
	if rej["request"] != rejected.ID || rej["reason"] != "not ours" {
		t.Errorf("enroll_rejected data %v", rej)
	}
	for _, e := range got {
		for k, v := range e.data {
			if s := fmt.Sprint(v); strings.Contains(s, "right") || strings.Contains(k, "password") || strings.Contains(k, "nonce") {
				t.Errorf("%s: %s=%v", e.name, k, v)
			}
		}
	}
}

// An administrator's revocation emits enroll_revoked with the serials and
// reason of the answer.
func TestEventOfAdminRevocation(t *testing.T) {
	h, approve := approvingApp(t)
	rec := notifying(t, h.app)
	if code, body := approve("gw1.example"); code != 200 {
		t.Fatalf("approve: %d %s", code, body)
	}
	ad := &adminAPI{app: h.app, log: zap.NewNop()}
	code, body, _ := adminDoBody(t, ad, "POST", "/enroll/revoke", `{"device": "gw1.example", "reason": 1}`)
	if code != 200 {
		t.Fatalf("revoke: %d %s", code, body)
	}
	var answer struct{ Revoked []string }
	if err := json.Unmarshal([]byte(body), &answer); err != nil || len(answer.Revoked) != 1 {
		t.Fatalf("revoke answer %s", body)
	}
	got := rec.waitFor(t, 3)[2]
	if serials, _ := got.data["serials"].([]string); got.name != eventRevoked || !slices.Equal(serials, answer.Revoked) ||
		got.data["reason"] != 1 || got.data["reason_text"] != "keyCompromise" || got.data["by"] != "admin" || got.data["device"] != "gw1.example" {
		t.Fatalf("event %s %v, want enroll_revoked of %v", got.name, got.data, answer.Revoked)
	}
}

// Decisions do not wait for the events' handlers (they hold the device's
// lock): with a handler stuck, requests are still answered, the events
// queue up to the bound, the rest are dropped and counted, and the queued
// ones are emitted once it returns.
func TestEventsDoNotBlockDecisions(t *testing.T) {
	h, _ := approvingApp(t)
	rec := notifyingTo(t, h.app, &eventRecorder{block: make(chan struct{})}, 2)
	requestPending(t, h, "gw1.example") // its event taken by the stuck handler
	for len(h.app.events.queue) > 0 {
		time.Sleep(time.Millisecond)
	}
	for range 3 { // two queued, one dropped
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if ans := enrollAs(t, h, wire.OpRequest, "ops", "gw1.example", key); ans.Status != wire.StatusPending {
			t.Fatalf("status %d (%s) while the handler is stuck", ans.Status, ans.Error)
		}
	}
	if d := h.app.events.dropped.Load(); d != 1 {
		t.Fatalf("%d events dropped, want 1", d)
	}
	close(rec.block)
	if got := rec.waitFor(t, 3); len(got) != 3 {
		t.Fatalf("%d events emitted, want 3", len(got))
	}
}

func init() { caddy.RegisterModule(eventsTestHandler{}) }

// eventsTestHandler records the events Caddy's events app hands it.
type eventsTestHandler struct{}

var eventsTestSeen = make(chan recordedEvent, 16)

func (eventsTestHandler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "events.handlers.enroll_test_recorder", New: func() caddy.Module { return new(eventsTestHandler) }}
}

func (eventsTestHandler) Handle(_ context.Context, e caddy.Event) error {
	eventsTestSeen <- recordedEvent{name: e.Name(), origin: e.Origin().CaddyModule().ID.Name(), data: e.Data}
	return nil
}

// Through Caddy's events app: a subscription to enroll_pending by module
// gets the event of a request that waits, from the enroll app.
func TestEventsThroughCaddy(t *testing.T) {
	conf, dir := gw1Config(t)
	hash, _ := bcrypt.GenerateFromPassword([]byte("right"), bcrypt.MinCost)
	a := loadInProcess(t, map[string]any{"module": "file_system", "root": dir}, map[string]any{
		"events": map[string]any{"subscriptions": []any{map[string]any{
			"events": []string{eventPending}, "modules": []string{"enroll"},
			"handlers": []any{map[string]any{"handler": "enroll_test_recorder"}},
		}}},
		"enroll": map[string]any{"config_file": conf, "approval": ApprovalManual,
			"accounts": []any{map[string]any{"username": "ops", "password": string(hash)}}},
	})
	h := &Handler{Profile: profileModern, ContentType: "text/html", MaxBody: wire.MaxBody, app: a, log: a.log}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if ans := enrollAs(t, h, wire.OpRequest, "ops", "gw1.example", key); ans.Status != wire.StatusPending {
		t.Fatalf("status %d (%s)", ans.Status, ans.Error)
	}
	select {
	case e := <-eventsTestSeen:
		if e.name != eventPending || e.origin != "enroll" || e.data["device"] != "gw1.example" || e.data["account"] != "ops" {
			t.Fatalf("event %s from %s: %v", e.name, e.origin, e.data)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no enroll_pending event reached the subscribed handler")
	}
}

// Failed logins that start a lockout emit enroll_lockout, naming the
// account as the log does (a configured account by name, another name by
// its hash: it may be a password typed in the wrong field) and never the
// password tried.
func TestEventOfLockout(t *testing.T) {
	h, _ := boundsApp(t, localLocks{&certmagic.FileStorage{Path: t.TempDir()}}, &testClock{now: time.Now()}, ApprovalManual, 100, 100)
	rec := notifying(t, h.app)
	for _, username := range []string{"ops", "hunter2-typed-here"} {
		for range 5 {
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "gw1.example"}}, key)
			if ans := postForm(t, h, "192.0.2.7", url.Values{"operation": {wire.OpRequest}, "nonce": {"bm9uY2Uxbm9uY2Uy"},
				"username": {username}, "password": {"wrong-password"}, "device": {"1"}, "customer": {"0"},
				"request": {base64.StdEncoding.EncodeToString(csr)}}); ans.Status != wire.StatusBadCredentials {
				t.Fatalf("%s: status %d (%s)", username, ans.Status, ans.Error)
			}
		}
	}
	got := rec.waitFor(t, 2)
	ops, other := got[0].data, got[1].data
	if got[0].name != eventLockout || ops["kind"] != "account" || ops["username"] != "ops" || ops["client"] != "192.0.2.7" ||
		ops["lockout_seconds"].(int64) <= 0 {
		t.Errorf("event %s %v", got[0].name, ops)
	}
	if _, named := other["username"]; named || other["username_hash"] == nil || other["kind"] != "account" {
		t.Errorf("lockout of an unknown name: %v", other)
	}
	for _, e := range got {
		for k, v := range e.data {
			if strings.Contains(fmt.Sprint(v), "wrong-password") || strings.Contains(fmt.Sprint(v), "hunter2") {
				t.Errorf("%s: %s=%v", e.name, k, v)
			}
		}
	}
}

// An event notified while the app stops (a request of the config a
// reload replaces, decided as its notifier drains the queue) is emitted:
// queued after the drain, it was never emitted, nor counted as dropped.
func TestEventNotifiedWhileStopping(t *testing.T) {
	rec := new(eventRecorder)
	n := newNotifier(rec, caddy.Context{}, zap.NewNop())
	stop, done := make(chan struct{}), make(chan struct{})
	go func() { n.run(stop); close(done) }()
	n.beforeQueue = func() { // checked not stopped: the app stops now
		n.beforeQueue = nil
		close(stop)
		select { // until the drain ended, when it does not wait for this event
		case <-done:
		case <-time.After(200 * time.Millisecond):
		}
	}
	n.notify(eventPending, map[string]any{"device": "gw1.example"})
	if got := rec.waitFor(t, 1); got[0].name != eventPending || got[0].data["device"] != "gw1.example" {
		t.Fatalf("emitted %v", got)
	}
	<-done
	n.notify(eventIssued, nil) // after the stop: emitted on its own
	if got := rec.waitFor(t, 2); got[1].name != eventIssued {
		t.Fatalf("emitted after the stop: %v", got)
	}
}

// An administrator's revocation that fails after revoking (forget_ids
// could not store the device's record: the answer is 500) still emits
// enroll_revoked for the certificates it revoked, which the CRL lists:
// an audit trail missed them.
func TestEventOfAdminRevocationFailedAfter(t *testing.T) {
	keepPendingCount(t)
	fail := new(atomic.Bool)
	st := recordFailStorage{Storage: localLocks{&certmagic.FileStorage{Path: t.TempDir()}}, fail: fail, part: path.Join(statePrefix, "devices") + "/"}
	h, _ := boundsApp(t, st, &testClock{now: time.Now()}, ApprovalAuto, 100, 100)
	rec := notifying(t, h.app)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if ans := enrollAs(t, h, wire.OpRequest, "ops", "gw1.example", key); ans.Status != wire.StatusOK {
		t.Fatalf("issuance: status %d (%s)", ans.Status, ans.Error)
	}
	issued := rec.waitFor(t, 1)[0]
	fail.Store(true)
	ad := &adminAPI{app: h.app, log: zap.NewNop()}
	counted := promtest.ToFloat64(metrics.revoked)
	code, body, _ := adminDoBody(t, ad, "POST", "/enroll/revoke", `{"device": "gw1.example", "forget_ids": true}`)
	if code != http.StatusInternalServerError || !strings.Contains(body, "ids are not forgotten") {
		t.Fatalf("revoke with the device record not storable: %d %s", code, body)
	}
	if n := promtest.ToFloat64(metrics.revoked) - counted; n != 1 {
		t.Errorf("%v revocations counted, want 1", n)
	}
	got := rec.waitFor(t, 2)[1]
	if serials, _ := got.data["serials"].([]string); got.name != eventRevoked || !slices.Equal(serials, []string{issued.data["serial"].(string)}) ||
		got.data["by"] != "admin" {
		t.Fatalf("event %s %v, want enroll_revoked of %v", got.name, got.data, issued.data["serial"])
	}
}

// The placeholders of the data, as Caddy's events app gives them to a
// handler (caddy-events-exec's arguments): the README says how the list
// of serials and the reason code read.
func TestEventDataPlaceholders(t *testing.T) {
	data := map[string]any{"serials": []string{"2ce00fe5b46109bdec514a7a9cfe2452", "a78f91cff055dd83396f62f5212566f"}, "reason": 1, "reason_text": "keyCompromise"}
	repl := caddy.NewReplacer()
	repl.Map(func(key string) (any, bool) {
		v, ok := data[strings.TrimPrefix(key, "event.data.")]
		return v, ok
	})
	if got := repl.ReplaceAll("{event.data.serials} {event.data.reason} {event.data.reason_text}", ""); got != "[2ce00fe5b46109bdec514a7a9cfe2452 a78f91cff055dd83396f62f5212566f] 1 keyCompromise" {
		t.Fatalf("placeholders read %q", got)
	}
}

// A handler stuck on an event does not hold up the app's Stop (a reload):
// Stop waited for it, up to its 5 s bound. The events queued are still
// emitted once it returns, and the first one dropped is warned of at once
// (the count followed only at the next event emitted).
func TestStuckEventHandlerDoesNotHoldStop(t *testing.T) {
	core, logs := observer.New(zapcore.WarnLevel)
	a := &App{log: zap.New(core), bg: new(backgroundWork), stop: make(chan struct{}), stopOnce: new(sync.Once), bgCancel: func() {}}
	rec := &eventRecorder{block: make(chan struct{})}
	a.events = newNotifier(rec, caddy.Context{}, a.log)
	a.events.queue = make(chan queuedEvent, 1)
	a.startNotifier()
	a.events.notify(eventPending, map[string]any{"n": 1}) // taken by the stuck handler
	for len(a.events.queue) > 0 {
		time.Sleep(time.Millisecond)
	}
	a.events.notify(eventPending, map[string]any{"n": 2}) // queued
	a.events.notify(eventPending, map[string]any{"n": 3}) // dropped
	if logs.FilterMessage("events dropped: their handlers are too slow").Len() != 1 {
		t.Fatalf("no warning at the first event dropped: %v", logs.All())
	}
	stopped := make(chan struct{})
	go func() { _ = a.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(stopWait / 2):
		t.Fatal("Stop waits for a stuck events handler")
	}
	close(rec.block)
	if got := rec.waitFor(t, 2); len(got) != 2 || got[1].data["n"] != 2 {
		t.Fatalf("emitted %v, want the events 1 and 2", got)
	}
}
