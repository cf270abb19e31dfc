package caddyenroll

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// A device approved while the file lacked it (its enrolled mark deferred:
// the file did not parse) that the operator's next version adds as
// disabled has its certificate revoked, as a device disabled in the file
// has.
func TestDeviceAddedDisabledIsRevoked(t *testing.T) {
	keepPendingCount(t)
	ctx := context.Background()
	st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	h, _ := boundsApp(t, st, &testClock{now: time.Now()}, ApprovalManual, 100, 100)
	h.app.bg = new(backgroundWork)
	h.app.followFileChanges()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if ans := enrollAs(t, h, wire.OpRequest, "ops", "new.example", key); ans.Status != wire.StatusPending {
		t.Fatalf("unknown device: status %d (%s)", ans.Status, ans.Error)
	}
	pending, err := h.app.state.pendingOf(ctx, "new.example")
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending: %v, %v", pending, err)
	}
	// the operator's edit in progress does not parse
	saveRenamed(t, h.app.cfg.path, "enroll enabled\ngroup \"\"\ndevice gw1.example \"\" enabled oops\n")
	if _, err := h.app.cfg.reload(); err == nil {
		t.Fatal("a file that does not parse was taken")
	}
	req, err := h.app.approve(ctx, pending[0].ID, "")
	if err != nil {
		t.Fatal(err)
	}
	// the operator's version adds the device, disabled
	saveRenamed(t, h.app.cfg.path, "enroll enabled\ngroup \"\"\ndevice gw1.example \"\" enabled\ndevice new.example \"\" disabled\n")
	// (the next poll takes it when it reuses the inode of the version in
	// force: it may be being written)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		changed, err := h.app.cfg.reload()
		if err != nil {
			t.Fatal(err)
		}
		if changed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the operator's version is not taken")
		}
	}
	if d := h.app.cfg.device("new.example"); !d.Known || d.Enabled {
		t.Fatalf("the operator's version in force has new.example %+v", d)
	}
	cert, err := x509.ParseCertificate(req.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	serial := strings.ToLower(cert.SerialNumber.Text(16))
	deadline := time.Now().Add(10 * time.Second)
	for {
		rec, err := h.app.cas[profileModern].Lookup(ctx, serial)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Revoked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the certificate of a device the file added as disabled is not revoked")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
