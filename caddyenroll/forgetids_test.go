package caddyenroll

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// A device's first enrollment binds its device and customer ids (trust on
// first use): when another account enrolled it first, the operator revokes
// it with forget_ids and the device's own ids bind at its next enrollment.
func TestRevokeForgetIDs(t *testing.T) {
	h := fileApp(t, ApprovalAuto, "enroll enabled\ngroup \"\"\ndevice 2001:db8::1 \"\" enabled\n")
	ad := &adminAPI{app: h.app, log: zap.NewNop()}
	if ans := enrollIPv6(t, h, "1"); ans.Status != wire.StatusOK {
		t.Fatalf("the squatter's enrollment: status %d %s", ans.Status, ans.Error)
	}
	if ans := enrollIPv6(t, h, "2"); ans.Status != wire.StatusCustomerMismatch {
		t.Fatalf("the owner before: status %d, want %d", ans.Status, wire.StatusCustomerMismatch)
	}

	// refused: forget_ids without device, and by the CLI
	if code, body, _ := adminDoBody(t, ad, "POST", "/enroll/revoke", `{"serial": "01", "forget_ids": true}`); code != 400 || !strings.Contains(body, "forget_ids needs device") {
		t.Fatalf("forget_ids with serial: %d %s", code, body)
	}
	// a plain revocation keeps the ids
	if code, body, _ := adminDoBody(t, ad, "POST", "/enroll/revoke", `{"device": "2001:db8::1"}`); code != 200 || strings.Contains(body, "ids_forgotten") {
		t.Fatalf("revoke: %d %s", code, body)
	}
	if ans := enrollIPv6(t, h, "2"); ans.Status != wire.StatusCustomerMismatch {
		t.Fatalf("the owner after a plain revocation: status %d, want %d", ans.Status, wire.StatusCustomerMismatch)
	}
	code, body, _ := adminDoBody(t, ad, "POST", "/enroll/revoke", `{"device": "2001:DB8:0::1", "forget_ids": true}`)
	if code != 200 || !strings.Contains(body, `"ids_forgotten": true`) {
		t.Fatalf("revoke with forget_ids: %d %s", code, body)
	}
	if ans := enrollIPv6(t, h, "2"); ans.Status != wire.StatusOK {
		t.Fatalf("the owner after forget_ids: status %d %s", ans.Status, ans.Error)
	}
	if ans := enrollIPv6(t, h, "1"); ans.Status != wire.StatusCustomerMismatch {
		t.Fatalf("the squatter after the owner enrolled: status %d, want %d", ans.Status, wire.StatusCustomerMismatch)
	}
}

// A device whose line is not spelled in normal form has its record, as
// earlier versions wrote it, under its spelling (legacyDeviceKey); an
// instance of such a version sharing the storage keeps writing it there.
// forget_ids must forget the ids of the record enrollment reads, not only
// of the copy where the normal form keeps it.
func TestRevokeForgetIDsOfEarlierVersionsRecord(t *testing.T) {
	ctx := context.Background()
	const spelled = "2001:DB8:0:0::1"
	h := fileApp(t, ApprovalAuto, "enroll enabled\ngroup \"\"\ndevice "+spelled+" \"\" enabled\n")
	h.app.bg = new(backgroundWork) // the refresh copies records where they belong
	ad := &adminAPI{app: h.app, log: zap.NewNop()}
	rec := &DeviceRecord{Device: spelled, DeviceID: "1", Customer: "0", Profile: profileModern, Serial: "abc1", Enrolled: time.Now().UTC()}
	if err := h.app.state.storeJSON(ctx, legacyDeviceKey(spelled), rec); err != nil {
		t.Fatal(err)
	}
	if ans := enrollIPv6(t, h, "2"); ans.Status != wire.StatusCustomerMismatch {
		t.Fatalf("the owner before: status %d, want %d", ans.Status, wire.StatusCustomerMismatch)
	}
	code, body, _ := adminDoBody(t, ad, "POST", "/enroll/revoke", `{"device": "`+spelled+`", "forget_ids": true}`)
	if code != 200 || !strings.Contains(body, `"ids_forgotten": true`) {
		t.Fatalf("revoke with forget_ids: %d %s", code, body)
	}
	h.app.bg.wg.Wait()
	if ans := enrollIPv6(t, h, "2"); ans.Status != wire.StatusOK {
		t.Fatalf("the owner after forget_ids: status %d %s", ans.Status, ans.Error)
	}
}
