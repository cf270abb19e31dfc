package caddyenroll

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// A request made while the file lacked its device is issued under approval
// auto when the device asks again once the operator has added it, enabled
// (as a new request would be); the file gets no second line for it. Under
// approval manual it still waits.
func TestUnknownDeviceAddedLaterIsIssuedOnRetry(t *testing.T) {
	for _, tc := range []struct {
		approval string
		want     int
	}{{ApprovalAuto, wire.StatusOK}, {ApprovalManual, wire.StatusPending}} {
		t.Run(tc.approval, func(t *testing.T) {
			keepPendingCount(t)
			st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
			h, _ := boundsApp(t, st, &testClock{now: time.Now()}, tc.approval, 100, 100)
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if ans := enrollAs(t, h, wire.OpRequest, "ops", "new.example", key); ans.Status != wire.StatusPending {
				t.Fatalf("unknown device: status %d (%s)", ans.Status, ans.Error)
			}
			takeVersion(t, h, "enroll enabled\ngroup \"\"\ngroup G\ndevice gw1.example \"\" enabled\ndevice new.example G enabled\n")
			for _, op := range []string{wire.OpRetrieve, wire.OpRequest} {
				if ans := enrollAs(t, h, op, "ops", "new.example", key); ans.Status != tc.want {
					t.Fatalf("%s once the file has the device: status %d (%s), want %d", op, ans.Status, ans.Error, tc.want)
				}
			}
			if tc.want != wire.StatusOK {
				// the operator's list says what the file says now
				ad := &adminAPI{app: h.app, log: zap.NewNop()}
				code, body, _ := adminDo(t, ad, "GET", "/enroll/requests?state=pending")
				var list []RequestInfo
				if err := json.Unmarshal([]byte(body), &list); code != 200 || err != nil || len(list) != 1 || !list[0].KnownDevice {
					t.Fatalf("pending list: %d %s, want the request with known_device true", code, body)
				}
				return
			}
			if d := h.app.cfg.device("new.example"); !d.Enrolled || d.Group != "G" {
				t.Fatalf("device in the file: %+v, want enrolled in group G", d)
			}
			var text string
			h.app.cfg.read(func(f *configfile.File) { text = string(f.Bytes()) })
			if n := strings.Count(text, "new.example"); n != 1 {
				t.Fatalf("the file names new.example %d times:\n%s", n, text)
			}
		})
	}
}

// Once an administrator has approved one of a device's requests made while
// the file lacked it (adding it to the file), its other requests wait for
// them too, under approval auto as well: a retrieve changes nothing.
func TestUnknownDeviceApprovedOthersWait(t *testing.T) {
	keepPendingCount(t)
	ctx := context.Background()
	st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	h, _ := boundsApp(t, st, &testClock{now: time.Now()}, ApprovalAuto, 100, 100)
	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, k := range []*ecdsa.PrivateKey{k1, k2} {
		if ans := enrollAs(t, h, wire.OpRequest, "ops", "new.example", k); ans.Status != wire.StatusPending {
			t.Fatalf("unknown device: status %d (%s)", ans.Status, ans.Error)
		}
		time.Sleep(5 * time.Millisecond) // Created order
	}
	pending, err := h.app.state.pendingOf(ctx, "new.example")
	if err != nil || len(pending) != 2 {
		t.Fatalf("pending: %v, %v", pending, err)
	}
	if _, err := h.app.approve(ctx, pending[0].ID, ""); err != nil {
		t.Fatal(err)
	}
	if d := h.app.cfg.device("new.example"); !d.Known || !d.Enabled {
		t.Fatalf("the approval did not add the device: %+v", d)
	}
	if ans := enrollAs(t, h, wire.OpRetrieve, "ops", "new.example", k2); ans.Status != wire.StatusPending {
		t.Fatalf("the other request after an approval: status %d (%s), want %d", ans.Status, ans.Error, wire.StatusPending)
	}
}
