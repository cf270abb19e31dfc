package caddyenroll

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"path"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// The device record (ids of the first enrollment, current certificate,
// issuance count) is found by every spelling of the device's name, as its
// lock and request ids are: an operator respelling an IP device's line
// ("2001:db8:0:0::1" as "2001:db8::1", the same device) must not let it
// enroll with other device and customer ids, nor start its
// max_issued_per_device count afresh.
func TestIPRespellingKeepsDeviceRecord(t *testing.T) {
	keepPendingCount(t)
	ctx := context.Background()
	st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	clock := &testClock{now: time.Now()}
	h, _ := boundsApp(t, st, clock, ApprovalAuto, 100, 100)
	setFile := func(text string) {
		saveRenamed(t, h.app.cfg.path, text)
		if _, err := h.app.cfg.reload(); err != nil {
			t.Fatal(err)
		}
	}
	setFile("enroll enabled\ngroup \"\"\ndevice 2001:db8:0:0::1 \"\" enabled\n")
	if d := h.app.cfg.device("2001:db8::1"); !d.Known {
		t.Fatal("file does not have the device")
	}
	enroll := func(deviceID string) *wire.Response { return enrollIPv6(t, h, deviceID) }
	if ans := enroll("1"); ans.Status != wire.StatusOK {
		t.Fatalf("first enrollment: status %d %s", ans.Status, ans.Error)
	}
	if ans := enroll("2"); ans.Status != wire.StatusCustomerMismatch {
		t.Fatalf("before the respelling: status %d, want 13", ans.Status)
	}
	// the operator respells the line (same device: same lock, same request ids)
	setFile("enroll enabled\ngroup \"\"\ndevice 2001:db8::1 \"\" enabled\n")
	rec, err := h.app.state.device(ctx, h.app.cfg.device("2001:db8::1").Name)
	if err != nil {
		t.Fatal(err)
	}
	if ans := enroll("2"); ans.Status != wire.StatusCustomerMismatch {
		t.Fatalf("after respelling the device's line: another device id got status %d, want 13 (device record found: %v)", ans.Status, rec != nil)
	}
}

// enrollIPv6 enrolls device 2001:db8::1 with a new key and the device id.
func enrollIPv6(t *testing.T, h *Handler, deviceID string) *wire.Response {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return enrollWithIDs(t, h, wire.OpRequest, "ops", "2001:db8::1", deviceID, "0", key)
}

// A record an earlier version kept under the file's spelling lower-cased
// is still the device's: read where it is, written where it belongs and
// where that version reads it (instances of it may share the storage), the
// newer copy taken when they differ, and copied where it belongs at start
// so that the device respelled since finds it. A stale copy does not count
// in the revocation state.
func TestDeviceRecordOfEarlierVersionIsFound(t *testing.T) {
	keepPendingCount(t)
	ctx := context.Background()
	st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	h, _ := boundsApp(t, st, &testClock{now: time.Now()}, ApprovalAuto, 100, 100)
	const spelled = "2001:DB8:0:0::1"
	saveRenamed(t, h.app.cfg.path, "enroll enabled\ngroup \"\"\ndevice "+spelled+" \"\" enabled\n")
	if _, err := h.app.cfg.reload(); err != nil {
		t.Fatal(err)
	}
	old := legacyDeviceKey(spelled)
	if old == "" || old == deviceKey(spelled) {
		t.Fatalf("legacy key %q, key %q: want two keys", old, deviceKey(spelled))
	}
	stale := &DeviceRecord{Device: spelled, DeviceID: "1", Customer: "0", Profile: profileModern, Serial: "abc1"}
	if err := h.app.state.storeJSON(ctx, old, stale); err != nil {
		t.Fatal(err)
	}
	if ans := enrollIPv6(t, h, "2"); ans.Status != wire.StatusCustomerMismatch {
		t.Fatalf("other device id against the earlier version's record: status %d, want %d", ans.Status, wire.StatusCustomerMismatch)
	}
	ans := enrollIPv6(t, h, "1")
	if ans.Status != wire.StatusOK {
		t.Fatalf("enrollment: status %d (%s)", ans.Status, ans.Error)
	}
	var atOld, atNew DeviceRecord
	if ok, err := h.app.state.loadJSON(ctx, old, &atOld); !ok || err != nil {
		t.Fatalf("the earlier version's copy after the enrollment: %v, %v", ok, err)
	}
	if ok, err := h.app.state.loadJSON(ctx, deviceKey("2001:db8::1"), &atNew); !ok || err != nil {
		t.Fatalf("the record where it belongs after the enrollment: %v, %v", ok, err)
	}
	if atOld.Serial != atNew.Serial || atNew.Serial == "abc1" {
		t.Fatalf("copies after the enrollment name %s and %s, want the new certificate in both", atOld.Serial, atNew.Serial)
	}
	// an instance of the earlier version updates its copy: the newer is read
	newer := atOld
	newer.Serial, newer.Enrolled = "abc2", atNew.Enrolled.Add(time.Minute)
	if err := h.app.state.storeJSON(ctx, old, &newer); err != nil {
		t.Fatal(err)
	}
	if rec, err := h.app.state.device(ctx, spelled); err != nil || rec == nil || rec.Serial != "abc2" {
		t.Fatalf("device record with a newer copy where the earlier version keeps it: %+v, %v; want serial abc2", rec, err)
	}
	if err := h.app.state.storeJSON(ctx, old, &atOld); err != nil {
		t.Fatal(err)
	}
	// a crash left the earlier copy stale, naming a certificate since revoked
	if err := h.app.state.storeJSON(ctx, old, stale); err != nil {
		t.Fatal(err)
	}
	res, err := h.app.scanAllDevices(ctx, map[string]bool{profileModern + "/abc1": true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.status) != 0 {
		t.Fatalf("revocation scan took the earlier version's stale copy: %v", res.status)
	}
	// without the record that replaced it, the copy is the device's record
	if err := st.Delete(ctx, deviceKey(spelled)); err != nil {
		t.Fatal(err)
	}
	if res, err = h.app.scanAllDevices(ctx, map[string]bool{profileModern + "/abc1": true}); err != nil {
		t.Fatal(err)
	}
	if !res.status["2001:db8::1"] || !res.complete {
		t.Fatalf("scan of the earlier version's record alone: %v, want 2001:db8::1 revoked", res.status)
	}
	h.app.noteRevoked(profileModern, spelled, nil, true)
	if h.app.eligible("2001:db8::1") || h.app.eligible("[2001:db8:0::1]") {
		t.Fatal("a device noted revoked under one spelling is eligible under another")
	}
}

// A device an earlier version enrolled under a spelling that is not its
// normal form keeps its record when the operator respells its line after
// the upgrade: the record is copied where it belongs at start.
func TestDeviceRecordOfEarlierVersionFoundAfterRespelling(t *testing.T) {
	keepPendingCount(t)
	ctx := context.Background()
	st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	h, _ := boundsApp(t, st, &testClock{now: time.Now()}, ApprovalAuto, 100, 100)
	const spelled = "2001:DB8:0:0::1"
	rec := &DeviceRecord{Device: spelled, DeviceID: "1", Customer: "0", Profile: profileModern, Serial: "abc1", Enrolled: time.Now().UTC()}
	if err := h.app.state.storeJSON(ctx, legacyDeviceKey(spelled), rec); err != nil {
		t.Fatal(err)
	}
	copyAtStart(t, h)
	// an instance of the earlier version sharing the storage writes its
	// copy again; the next start copies the newer
	newer := *rec
	newer.DeviceID, newer.Enrolled = "3", rec.Enrolled.Add(time.Minute)
	if err := h.app.state.storeJSON(ctx, legacyDeviceKey(spelled), &newer); err != nil {
		t.Fatal(err)
	}
	copyAtStart(t, h)
	takeVersion(t, h, "enroll enabled\ngroup \"\"\ndevice 2001:db8::1 \"\" enabled\n")
	if ans := enrollIPv6(t, h, "1"); ans.Status != wire.StatusCustomerMismatch {
		t.Fatalf("the first device id after the respelling: status %d, want %d (the newer copy has id 3)", ans.Status, wire.StatusCustomerMismatch)
	}
	if ans := enrollIPv6(t, h, "3"); ans.Status != wire.StatusOK {
		t.Fatalf("the device id of the newer copy after the respelling: status %d (%s), want 0", ans.Status, ans.Error)
	}
}

// copyAtStart runs the full revocation scan of a start and the copies of
// device records it finds where earlier versions keep them.
func copyAtStart(t *testing.T, h *Handler) {
	t.Helper()
	res, err := h.app.scanAllDevices(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.elsewhere) == 0 {
		t.Fatal("the full scan found no record where earlier versions keep it")
	}
	h.app.copyDeviceRecords(context.Background(), res.elsewhere)
}

// During a rolling upgrade an instance of the earlier version keeps a
// device's record and pending markers under the file's spelling; when the
// operator respells the line while this instance runs (no start to copy
// them), the new version of the file has them taken where this one looks.
func TestRespelledWhileRunningTakesEarlierVersionsState(t *testing.T) {
	ctx := context.Background()
	st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	h, _ := watchingApp(t, st)
	const spelled = "2001:DB8:0:0::1"
	takeVersion(t, h, "enroll enabled\ngroup \"\"\ndevice "+spelled+" \"\" enabled\n")
	// what the earlier version wrote meanwhile
	rec := &DeviceRecord{Device: spelled, DeviceID: "1", Customer: "0", Profile: profileModern, Serial: "abc1", Enrolled: time.Now().UTC()}
	if err := h.app.state.storeJSON(ctx, legacyDeviceKey(spelled), rec); err != nil {
		t.Fatal(err)
	}
	req := &Request{ID: "eeeeee05", Device: spelled, DeviceID: "1", Customer: "0", State: statePending, Created: time.Now().UTC()}
	if err := h.app.state.storeJSON(ctx, requestKey(req.ID), req); err != nil {
		t.Fatal(err)
	}
	if err := st.Store(ctx, path.Join(legacyPendingOfDir(spelled), req.ID), h.app.state.markerValue(req.ID)); err != nil {
		t.Fatal(err)
	}
	takeVersion(t, h, "enroll enabled\ngroup \"\"\ndevice 2001:db8::1 \"\" enabled\n")
	h.app.bg.wg.Wait()
	if ans := enrollIPv6(t, h, "2"); ans.Status != wire.StatusCustomerMismatch {
		t.Fatalf("other device id after the respelling: status %d, want %d", ans.Status, wire.StatusCustomerMismatch)
	}
	reqs, err := h.app.state.pendingOf(ctx, "2001:db8::1")
	if err != nil || len(reqs) != 1 || reqs[0].ID != req.ID {
		t.Fatalf("pending requests of the respelled device: %v, %v; want the earlier version's %s", reqs, err, req.ID)
	}
}
