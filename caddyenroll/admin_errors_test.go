package caddyenroll

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// failingLoads is a storage whose Loads of keys containing a part fail.
type failingLoads struct {
	certmagic.Storage

	mu   sync.Mutex
	part string // "": none fail
}

func (s *failingLoads) Load(ctx context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	part := s.part
	s.mu.Unlock()
	if part != "" && strings.Contains(key, part) {
		return nil, errors.New("input/output error")
	}
	return s.Storage.Load(ctx, key)
}

func (s *failingLoads) failLoads(part string) {
	s.mu.Lock()
	s.part = part
	s.mu.Unlock()
}

// A certificate lookup that storage fails, or whose record does not
// decode, is a server error, never "no certificate"; an invalid serial is
// the request's fault.
func TestAdminSerialLookupErrors(t *testing.T) {
	ctx := context.Background()
	fs := &failingLoads{Storage: &certmagic.FileStorage{Path: t.TempDir()}}
	st := localLocks{fs}
	c, is := caIssuing(t, st, "gw1.example")
	ad := &adminAPI{app: &App{storage: st, state: newStateStore(st, 0), cas: map[string]*ca.CA{profileModern: c}}, log: zap.NewNop()}
	type call struct {
		method, uri, body string
		code              int
		want              string
	}
	check := func(what string, calls []call) {
		t.Helper()
		for _, c := range calls {
			if code, body, _ := adminDoBody(t, ad, c.method, c.uri, c.body); code != c.code || !strings.Contains(body, c.want) {
				t.Errorf("%s: %s %s %s: %d %s\nwant %d with %q", what, c.method, c.uri, c.body, code, body, c.code, c.want)
			}
		}
	}
	check("readable storage", []call{
		{"GET", "/enroll/certificates/" + strings.ToUpper(is.Serial), "", 200, "gw1.example"},
		{"GET", "/enroll/certificates/1f", "", 404, "no certificate with serial 1f"},
		{"GET", "/enroll/certificates/xyz", "", 400, "invalid serial number"},
		{"GET", "/enroll/certificates/0", "", 400, "invalid serial number"},
		{"POST", "/enroll/revoke", `{"serial": "1f"}`, 404, "no certificate with serial 1f"},
		{"POST", "/enroll/revoke", `{"serial": "g1"}`, 400, "invalid serial number"},
	})
	fs.failLoads("/issued/")
	check("failing storage", []call{
		{"GET", "/enroll/certificates/" + is.Serial, "", 500, "input/output error"},
		{"GET", "/enroll/certificates/1f", "", 500, "input/output error"},
		{"GET", "/enroll/certificates/xyz", "", 400, "invalid serial number"},
		{"POST", "/enroll/revoke", `{"serial": "` + is.Serial + `"}`, 500, "input/output error"},
	})
	fs.failLoads("")
	keys, err := st.List(ctx, "clearinghouse/ca", true)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if strings.HasSuffix(k, "/issued/"+is.Serial+".json") {
			if err := st.Store(ctx, k, []byte(`{"serial": `)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := c.Lookup(ctx, is.Serial); err == nil || errors.Is(err, ca.ErrNotFound) {
		t.Fatalf("the corrupt record is not where the CA looks: %v", err)
	}
	check("corrupt record", []call{
		{"GET", "/enroll/certificates/" + is.Serial, "", 500, "looking up serial"},
		{"POST", "/enroll/revoke", `{"serial": "` + is.Serial + `"}`, 500, "looking up serial"},
	})
}

// Revoking a device while the configuration file does not parse revokes
// its certificates and keeps the clearing of its enrolled flag for when
// the file parses again (the answer says so); a device that enrolled again
// meanwhile keeps its flag.
func TestAdminRevokeWithAnInvalidFile(t *testing.T) {
	ctx := context.Background()
	const good = "group \"\"\ndevice gw1.example \"\" enabled enrolled\ndevice gw2.example \"\" enabled enrolled\n"
	a, c, is, path := fileAppIssuing(t, good, "gw1.example")
	for _, d := range []string{"gw1.example", "gw2.example"} {
		if err := a.state.putDevice(ctx, &DeviceRecord{Device: d, Profile: profileModern, Serial: is.Serial}); err != nil {
			t.Fatal(err)
		}
	}
	ad := &adminAPI{app: a, log: zap.NewNop()}
	if err := os.WriteFile(path, []byte("group \"\"\ndevice gw1.example nogroup enabled enrolled\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"gw1.example", "gw2.example"} {
		code, msg, _ := adminDoBody(t, ad, "POST", "/enroll/revoke", `{"device": "`+d+`"}`)
		if code != 200 || !strings.Contains(msg, "will be marked not enrolled once it does") {
			t.Fatalf("revoke of %s with an invalid file: %d %s, want 200 and a note", d, code, msg)
		}
	}
	if revoked, err := c.IsRevoked(ctx, is.Serial); err != nil || !revoked {
		t.Errorf("certificate not revoked (%v)", err)
	}
	// gw2 enrolls again meanwhile: its record names a new certificate, good
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "gw2.example"}}, key)
	again, err := c.Issue(ctx, csr, "gw2.example", ca.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.state.putDevice(ctx, &DeviceRecord{Device: "gw2.example", Profile: profileModern, Serial: again.Serial}); err != nil {
		t.Fatal(err)
	}
	a.noteRevoked(profileModern, "gw2.example", nil, false)

	if a.applyDeferredMarks(ctx) {
		t.Fatal("deferred marks applied to a file that does not parse")
	}
	if err := os.WriteFile(path, []byte(good), 0o640); err != nil {
		t.Fatal(err)
	}
	if !a.applyDeferredMarks(ctx) {
		t.Fatal("deferred marks left once the file parses")
	}
	f, err := configfile.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := f.Device("gw1.example"); d.Enrolled {
		t.Errorf("gw1.example still marked enrolled once the file parses:\n%s", f.Bytes())
	}
	if d, _ := f.Device("gw2.example"); !d.Enrolled {
		t.Errorf("gw2.example, enrolled again, lost its flag:\n%s", f.Bytes())
	}
}

// fileAppIssuing is a fileEditingApp on a new file of text and a new
// storage, whose CA issued device a certificate (recorded, is).
func fileAppIssuing(t *testing.T, text, device string) (a *App, c *ca.CA, is *ca.Issued, file string) {
	t.Helper()
	cs, file, dir := testConfigState(t, text)
	st := localLocks{&certmagic.FileStorage{Path: filepath.Join(dir, "data")}}
	c, is = caIssuing(t, st, device)
	if err := c.Record(context.Background(), is); err != nil {
		t.Fatal(err)
	}
	return fileEditingApp(cs, st, c), c, is, file
}

// fileEditingApp is an app on the file cs and the storage st, with the CA
// c: enough to revoke, mark and unmark devices.
func fileEditingApp(cs *configState, st certmagic.Storage, c *ca.CA) *App {
	initMetrics()
	a := &App{cfg: cs, storage: st, state: newStateStore(st, 0), cas: map[string]*ca.CA{profileModern: c},
		log: zap.NewNop(), bgCtx: context.Background(), authz: &authz{revocations: new(revocations)}}
	a.marks = &markBatcher{apply: a.applyMarks}
	return a
}

// caIssuing opens a modern CA on st and issues (without recording) a
// certificate for device.
func caIssuing(t *testing.T, st ca.Store, device string) (*ca.CA, *ca.Issued) {
	t.Helper()
	ctx := context.Background()
	c, _, err := ca.Open(ctx, st, ca.Config{Name: "modern"}, "")
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: device}}, key)
	if err != nil {
		t.Fatal(err)
	}
	is, err := c.Issue(ctx, csr, device, ca.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	return c, is
}

// approvingApp is a manual-approval app whose approve(device) makes a
// request of the device (a new key) and approves it through the admin
// API, returning the answer's code and body.
func approvingApp(t *testing.T) (*Handler, func(device string) (int, string)) {
	keepPendingCount(t)
	st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	h, _ := boundsApp(t, st, &testClock{now: time.Now()}, ApprovalManual, 100, 100)
	h.app.ConfigFile = h.app.cfg.path
	h.app.cfg.settle = 10 * time.Millisecond
	ad := &adminAPI{app: h.app, log: zap.NewNop()}
	return h, func(device string) (int, string) {
		t.Helper()
		code, body, _ := adminDoBody(t, ad, "POST", "/enroll/approve/"+requestPending(t, h, device).ID, "")
		return code, body
	}
}

// requestPending makes a request of device with a new key, which must
// wait for approval, and returns it.
func requestPending(t *testing.T, h *Handler, device string) *Request {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if ans := enrollAs(t, h, wire.OpRequest, "ops", device, key); ans.Status != wire.StatusPending {
		t.Fatalf("%s: status %d (%s)", device, ans.Status, ans.Error)
	}
	reqs, err := h.app.state.pendingOf(context.Background(), device)
	if err != nil || len(reqs) != 1 {
		t.Fatalf("pending of %s: %v %v", device, reqs, err)
	}
	return reqs[0]
}

// Approving a request of a device the file lacks while the file does not
// parse issues the certificate and keeps the device's addition for when the
// file parses again; the answer says so, as a revoke's does: the device is
// not in the file (nor in `caddy enroll devices`) until then.
func TestAdminApproveWithAnInvalidFile(t *testing.T) {
	h, approve := approvingApp(t)
	if code, body := approve("new1.example"); code != 200 || strings.Contains(body, "note") {
		t.Fatalf("approval with a valid file: %d %s, want 200 without a note", code, body)
	}
	saveRenamed(t, h.app.cfg.path, "enroll enabled\ngroup \"\"\ndevice gw1.example nogroup enabled\n")
	time.Sleep(20 * time.Millisecond) // settled
	code, body := approve("new2.example")
	if code != 200 || !strings.Contains(body, `"state": "issued"`) {
		t.Fatalf("approval with an invalid file: %d %s, want 200, issued", code, body)
	}
	if d := h.app.cfg.device("new2.example"); d.Known {
		t.Fatalf("new2.example is in the file that does not parse: %+v", d)
	}
	if !strings.Contains(body, `"note"`) || !strings.Contains(body, "new2.example will be added to it once it does") {
		t.Errorf("approval with an invalid file: %s\nwant a note saying the device is added once the file parses", body)
	}
}

// The note of an answer whose edit of the configuration file waits in
// storage says why the file cannot be edited: a file that is missing, or
// that cannot be written (a read-only ConfigMap), parses well enough with
// `caddy enroll check` once it is back, and "does not parse" would send the
// operator looking for errors it does not have.
func TestAdminNoteSaysWhyTheFileWaits(t *testing.T) {
	h, approve := approvingApp(t)
	if code, body := approve("new1.example"); code != 200 || strings.Contains(body, "note") {
		t.Fatalf("approval with the file in place: %d %s, want 200 without a note", code, body)
	}
	if err := os.Remove(h.app.cfg.path); err != nil {
		t.Fatal(err)
	}
	code, approved := approve("new2.example")
	code2, revoked, _ := adminDoBody(t, &adminAPI{app: h.app, log: zap.NewNop()}, "POST", "/enroll/revoke", `{"device": "new1.example"}`)
	for _, a := range []struct {
		what string
		code int
		body string
	}{{"approval", code, approved}, {"revoke", code2, revoked}} {
		if a.code != 200 || !strings.Contains(a.body, `"note"`) {
			t.Fatalf("%s with the file missing: %d %s, want 200 and a note", a.what, a.code, a.body)
		}
		if strings.Contains(a.body, "does not parse") || !strings.Contains(a.body, "no such file") {
			t.Errorf("%s with the file missing: %s\nwant a note naming why the file cannot be edited, not that it does not parse", a.what, a.body)
		}
	}
}

// A device of the file whose name no certificate can hold ('GW 1', which
// OSP identifies by its source_address) is revoked by name as any device
// of the file: it has no certificate, and it is unmarked enrolled, which
// is what takes it out of call authorization. Only a name the file lacks
// is refused.
func TestAdminRevokeUncertifiableDevice(t *testing.T) {
	const text = "group \"\"\ndevice 'GW 1' \"\" enabled enrolled\ndevice gw2.example \"\" enabled enrolled\n"
	cs, path, dir := testConfigState(t, text)
	st := localLocks{&certmagic.FileStorage{Path: filepath.Join(dir, "data")}}
	c, _ := caIssuing(t, st, "gw2.example")
	initMetrics()
	a := &App{cfg: cs, ConfigFile: path, storage: st, state: newStateStore(st, 0), cas: map[string]*ca.CA{profileModern: c},
		log: zap.NewNop(), bgCtx: context.Background(), authz: &authz{revocations: new(revocations)}}
	a.marks = &markBatcher{apply: a.applyMarks}
	ad := &adminAPI{app: a, log: zap.NewNop()}
	for _, body := range []string{`{"device": "GW 1"}`, `{"device": "GW 1", "reason": 1}`} {
		code, msg, _ := adminDoBody(t, ad, "POST", "/enroll/revoke", body)
		if code != 200 || !strings.Contains(msg, `"revoked": []`) {
			t.Fatalf("revoke %s: %d %s, want 200 with no certificate", body, code, msg)
		}
	}
	f, err := configfile.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := f.Device("GW 1"); d.Enrolled {
		t.Errorf("'GW 1' still marked enrolled:\n%s", f.Bytes())
	}
	if code, msg, _ := adminDoBody(t, ad, "POST", "/enroll/revoke", `{"device": "GW 3"}`); code != 400 || !strings.Contains(msg, "not a DNS name") {
		t.Errorf("revoke of a name the file lacks and no certificate can hold: %d %s, want 400", code, msg)
	}
}

// An abbreviated request id that several requests share is refused naming
// them, so that the operator knows how many characters to give: the other
// may be a decided request, which `caddy enroll pending` does not list.
func TestAdminAmbiguousIDNamesTheCandidates(t *testing.T) {
	ctx := context.Background()
	st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	a := &App{storage: st, state: newStateStore(st, 0), log: zap.NewNop()}
	ad := &adminAPI{app: a, log: zap.NewNop()}
	ids := []string{"abcdef0123456789abcdef0123456789", "abcdef9876543210abcdef0123456789"}
	for i, id := range ids {
		state := []string{stateRejected, statePending}[i]
		if err := a.state.storeJSON(ctx, requestKey(id), &Request{ID: id, Device: "gw1.example", State: state}); err != nil {
			t.Fatal(err)
		}
	}
	code, msg, _ := adminDoBody(t, ad, "POST", "/enroll/approve/abcdef", "")
	if code != 400 || !strings.Contains(msg, "ambiguous") || !strings.Contains(msg, ids[0]) || !strings.Contains(msg, ids[1]) {
		t.Errorf("approve of a shared prefix: %d %s, want 400 naming both requests", code, msg)
	}
}

// A group given with the approval of a device the file has (in another
// group) is not applied, and the answer says so in a note rather than say
// nothing (the operator may have meant to move it); a group the file lacks
// is refused, a typo.
func TestAdminApproveGroupOfAKnownDevice(t *testing.T) {
	h := fileApp(t, ApprovalManual, "enroll enabled\ngroup \"\"\ngroup Prepaid\ndevice gw1.example \"\" enabled\n")
	ad := &adminAPI{app: h.app, log: zap.NewNop()}
	uri := "/enroll/approve/" + requestPending(t, h, "gw1.example").ID
	if code, body, _ := adminDoBody(t, ad, "POST", uri, `{"group":"Prepayd"}`); code != 400 || !strings.Contains(body, `group "Prepayd" is not in the configuration file`) {
		t.Fatalf("approval into a group the file lacks: %d %s, want 400", code, body)
	}
	code, body, _ := adminDoBody(t, ad, "POST", uri, `{"group":"Prepaid"}`)
	if code != 200 || !strings.Contains(body, `"state": "issued"`) || !strings.Contains(body, `the group \"Prepaid\" given was not applied`) {
		t.Fatalf("approval into another group: %d %s, want 200 with a note that the group was not applied", code, body)
	}
	if d := h.app.cfg.device("gw1.example"); d.Group != "" {
		t.Fatalf("gw1.example moved to group %q", d.Group)
	}
}

// A pending request of a profile no longer configured (the legacy CA
// removed from the Caddyfile while it waited) cannot be approved: a
// conflict with the configuration, said so, not a server error.
func TestAdminApproveOfARemovedProfile(t *testing.T) {
	keepPendingCount(t)
	ctx := context.Background()
	st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	h, _ := boundsApp(t, st, &testClock{now: time.Now()}, ApprovalManual, 100, 100)
	if _, ok := h.app.cas[profileLegacy]; ok {
		t.Fatal("the fixture has a legacy CA")
	}
	req := &Request{ID: "0123456789abcdef0123456789abcdef", Profile: profileLegacy, Device: "gw1.example",
		DeviceID: "1", Customer: "0", State: statePending, Created: time.Now()}
	if err := h.app.state.putRequest(ctx, req); err != nil {
		t.Fatal(err)
	}
	ad := &adminAPI{app: h.app, log: zap.NewNop()}
	code, body, _ := adminDoBody(t, ad, "POST", "/enroll/approve/"+req.ID, "")
	if code != 409 || !strings.Contains(body, `no "legacy" CA is configured`) || !strings.Contains(body, "reject the request") {
		t.Fatalf("approval: %d %s, want 409 saying the legacy CA is not configured", code, body)
	}
	if code, body, _ := adminDoBody(t, ad, "POST", "/enroll/reject/"+req.ID, `{"reason":"legacy profile retired"}`); code != 200 {
		t.Fatalf("reject: %d %s", code, body)
	}
}

// failingAfterLock fails the Loads of keys containing part once a device's
// lock is taken: a request found, then unreadable under the lock.
type failingAfterLock struct {
	*failingLoads
	part string
}

func (s failingAfterLock) Lock(ctx context.Context, name string) error {
	if err := s.failingLoads.Lock(ctx, name); err != nil {
		return err
	}
	if strings.HasPrefix(name, "clearinghouse_enroll_") {
		s.failLoads(s.part)
	}
	return nil
}

// A pending request that storage fails to read again under its device's
// lock is a server error (500), as an unreadable certificate record is:
// answered 404 it reads as "no such request", which it may well be.
func TestAdminDecisionOnAnUnreadableRequest(t *testing.T) {
	ctx := context.Background()
	fs := &failingLoads{Storage: &certmagic.FileStorage{Path: t.TempDir()}}
	st := localLocks{failingAfterLock{fs, "/requests/"}}
	a := &App{storage: st, state: newStateStore(st, 0), log: zap.NewNop()}
	req := &Request{ID: requestID(profileModern, "gw1.example", "ab"), Profile: profileModern, Device: "gw1.example",
		PublicKeySHA256: "ab", State: statePending, Created: time.Now(), Updated: time.Now()}
	if err := a.state.putRequest(ctx, req); err != nil {
		t.Fatal(err)
	}
	ad := &adminAPI{app: a, log: zap.NewNop()}
	for _, action := range []string{"approve", "reject"} {
		fs.failLoads("")
		code, body, _ := adminDoBody(t, ad, "POST", "/enroll/"+action+"/"+req.ID, "")
		if code != 500 || !strings.Contains(body, "input/output error") {
			t.Errorf("%s of a request unreadable under the lock: %d %s, want 500 with the storage's error", action, code, body)
		}
	}
}

// An approval that both leaves the given group unapplied and keeps the
// device's mark for when the file parses again says both in its note: the
// second must not hide the first.
func TestAdminApproveNoteKeepsBoth(t *testing.T) {
	h := fileApp(t, ApprovalManual, "enroll enabled\ngroup \"\"\ngroup Prepaid\ndevice gw1.example \"\" enabled\n")
	h.app.ConfigFile = h.app.cfg.path
	h.app.cfg.settle = 10 * time.Millisecond
	ad := &adminAPI{app: h.app, log: zap.NewNop()}
	uri := "/enroll/approve/" + requestPending(t, h, "gw1.example").ID
	saveRenamed(t, h.app.cfg.path, "enroll enabled\ngroup \"\"\ndevice gw1.example nogroup enabled\n")
	time.Sleep(20 * time.Millisecond) // settled
	code, body, _ := adminDoBody(t, ad, "POST", uri, `{"group":"Prepaid"}`)
	if code != 200 || !strings.Contains(body, `"state": "issued"`) {
		t.Fatalf("approval with an invalid file: %d %s, want 200, issued", code, body)
	}
	for _, want := range []string{`the group \"Prepaid\" given was not applied`, "gw1.example will be marked enrolled once it does"} {
		if !strings.Contains(body, want) {
			t.Errorf("approval into another group with an invalid file: %s\nwant a note saying %q", body, want)
		}
	}
}
