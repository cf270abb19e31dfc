package caddyenroll

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"net/url"
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
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "2001:db8::1"}}, key)
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	return postForm(t, h, "192.0.2.1", url.Values{"operation": {"request"}, "nonce": {base64.StdEncoding.EncodeToString(nonce)},
		"username": {"ops"}, "password": {"right"}, "device": {deviceID}, "customer": {"0"},
		"request": {base64.StdEncoding.EncodeToString(csr)}})
}

// A record an earlier version kept under the file's spelling lower-cased
// is still the device's: read where it is, moved where it belongs at the
// next write, and a copy left beside its replacement (a crash between the
// two) does not count in the revocation state.
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
	if st.Exists(ctx, old) || !st.Exists(ctx, deviceKey("2001:db8::1")) {
		t.Fatalf("after the enrollment: earlier version's copy kept %v, record where it belongs %v; want false, true",
			st.Exists(ctx, old), st.Exists(ctx, deviceKey("2001:db8::1")))
	}
	// a crash left the earlier copy, naming a certificate since revoked
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
