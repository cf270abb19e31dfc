package caddyenroll

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// A device disabled while its request waits is answered DeviceDisabled
// (6), by request and retrieve alike, not Pending: the request it made is
// never looked up for a disabled device.
func TestDisabledDeviceRequestPending(t *testing.T) {
	h := fileApp(t, ApprovalManual, "enroll enabled\ngroup \"\"\ndevice gw1.example \"\" enabled\n")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if ans := enrollAs(t, h, wire.OpRequest, "ops", "gw1.example", key); ans.Status != wire.StatusPending {
		t.Fatalf("request: status %d %s, want pending", ans.Status, ans.Error)
	}
	saveRenamed(t, h.app.cfg.path, "enroll enabled\ngroup \"\"\ndevice gw1.example \"\" disabled\n")
	if _, err := h.app.cfg.reload(); err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{wire.OpRetrieve, wire.OpRequest} {
		if ans := enrollAs(t, h, op, "ops", "gw1.example", key); ans.Status != wire.StatusDeviceDisabled {
			t.Errorf("%s once disabled: status %d %s, want %d", op, ans.Status, ans.Error, wire.StatusDeviceDisabled)
		}
	}
}

// Likewise a device the file lacks, once unknown devices are refused: its
// waiting request is answered UnknownDevice (5), not Pending.
func TestUnknownDeviceRefusedPending(t *testing.T) {
	h := fileApp(t, ApprovalManual, "enroll enabled\ngroup \"\"\ndevice gw1.example \"\" enabled\n")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if ans := enrollAs(t, h, wire.OpRequest, "ops", "new.example", key); ans.Status != wire.StatusPending {
		t.Fatalf("request: status %d %s, want pending", ans.Status, ans.Error)
	}
	h.app.UnknownDevices = UnknownRefuse
	for _, op := range []string{wire.OpRetrieve, wire.OpRequest} {
		if ans := enrollAs(t, h, op, "ops", "new.example", key); ans.Status != wire.StatusUnknownDevice {
			t.Errorf("%s once unknown devices are refused: status %d %s, want %d", op, ans.Status, ans.Error, wire.StatusUnknownDevice)
		}
	}
}
