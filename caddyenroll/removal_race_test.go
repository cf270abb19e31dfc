package caddyenroll

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// beforeLock runs hook (once) just before the storage lock named lock is
// taken: what another goroutine could do while a request waits for it.
type beforeLock struct {
	certmagic.Storage
	lock string
	done *atomic.Bool
	hook func()
}

func (s beforeLock) Lock(ctx context.Context, name string) error {
	if name == s.lock && s.done.CompareAndSwap(false, true) {
		s.hook()
	}
	return s.Storage.Lock(ctx, name)
}

// A device removed from the configuration file while its request waits for
// the device lock (enroll read the file before the lock) gets no
// certificate under approval auto: it is an unknown device now (pending,
// or status 5 under unknown_devices refuse), and its removal's revocation
// may already have run.
func TestDeviceRemovedWhileWaitingForLockIsNotIssued(t *testing.T) {
	for _, tc := range []struct {
		unknown string
		want    int
	}{{UnknownPending, wire.StatusPending}, {UnknownRefuse, wire.StatusUnknownDevice}} {
		t.Run(tc.unknown, func(t *testing.T) { testDeviceRemovedWhileWaiting(t, tc.unknown, tc.want) })
	}
}

func testDeviceRemovedWhileWaiting(t *testing.T, unknown string, want int) {
	keepPendingCount(t)
	inner := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	var h *Handler
	st := beforeLock{Storage: inner, lock: deviceLockName("gw1.example"), done: new(atomic.Bool)}
	st.hook = func() {
		// the operator removes the device; the watcher takes the new version
		path := h.app.cfg.path
		saveRenamed(t, path, "enroll enabled\ngroup \"\"\ndevice gw2.example \"\" enabled\n")
		if _, err := h.app.cfg.reload(); err != nil {
			t.Fatal(err)
		}
		if d := h.app.cfg.device("gw1.example"); d.Known {
			t.Fatalf("file still has gw1.example")
		}
		// the removal's revocation runs (under the device lock) before the
		// waiting request gets the lock
		h.app.revokeDisabledDevice("gw1.example", time.Now())
	}
	clock := &testClock{now: time.Now()}
	h, _ = boundsApp(t, st, clock, ApprovalAuto, 100, 100)
	h.app.UnknownDevices = unknown
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ans := enrollAs(t, h, wire.OpRequest, "ops", "gw1.example", key)
	if ans.Status == wire.StatusOK {
		cert, _ := x509.ParseCertificate(ans.Certificate)
		rec, err := h.app.cas[profileModern].Lookup(context.Background(), strings.ToLower(cert.SerialNumber.Text(16)))
		if err != nil {
			t.Fatal(err)
		}
		t.Fatalf("device removed from the file (and its removal's revocation run) before its request was decided got a certificate (status 0, revoked=%v); want pending (1) as an unknown device", rec.Revoked)
	}
	if ans.Status != want {
		t.Fatalf("status %d (%s), want %d as for an unknown device", ans.Status, ans.Error, want)
	}
}
