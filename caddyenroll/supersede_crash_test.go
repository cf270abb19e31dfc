package caddyenroll

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// switchableFail fails Stores of keys containing *part (while it is set):
// a process killed before that write.
type switchableFail struct {
	certmagic.Storage
	part *atomic.Pointer[string]
}

func (s switchableFail) Store(ctx context.Context, key string, value []byte) error {
	if p := s.part.Load(); p != nil && strings.Contains(key, *p) {
		return errors.New("killed")
	}
	return s.Storage.Store(ctx, key, value)
}

func gw1RequestID(key crypto.Signer) string {
	pub, _ := x509.MarshalPKIXPublicKey(key.Public())
	return requestID(profileModern, "gw1.example", ca.FingerprintHex(pub))
}

// A crash (kill -9) after an issuance's completeIssue and before its
// supersedePending(madeBefore) must not leave the device's older pending
// requests pending for good: an administrator approving one later would
// supersede (revoke) the certificate the device enrolled for. The device
// asking again completes the issuance (resumeIssue), superseding included.
// Emulated by failing the one write the crash would not have made (the
// rejection of the older request), then the device asking again.
func TestCrashBeforeSupersedingIsRepairedOnRetrieve(t *testing.T) {
	keepPendingCount(t)
	ctx := context.Background()
	part := new(atomic.Pointer[string])
	st := localLocks{switchableFail{Storage: &certmagic.FileStorage{Path: t.TempDir()}, part: part}}
	clock := &testClock{now: time.Now()}
	h, _ := boundsApp(t, st, clock, ApprovalManual, 100, 100)

	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if ans := enrollAs(t, h, wire.OpRequest, "ops", "gw1.example", k1); ans.Status != wire.StatusPending {
		t.Fatalf("k1: status %d", ans.Status)
	}
	clock.add(time.Second)
	time.Sleep(10 * time.Millisecond) // Created is time.Now
	if ans := enrollAs(t, h, wire.OpRequest, "ops", "gw1.example", k2); ans.Status != wire.StatusPending {
		t.Fatalf("k2: status %d", ans.Status)
	}
	id1, id2 := gw1RequestID(k1), gw1RequestID(k2)

	// the administrator approves k2's request; the process dies right
	// once the certificate is stored, before the older request is
	// superseded (or that write fails: the approval then reports it, and
	// the device record does not name the certificate yet)
	p := requestKey(id1)
	part.Store(&p)
	_, err := h.app.approve(ctx, id2, "")
	part.Store(nil)
	if err == nil {
		t.Fatal("an approval whose superseding failed reported success")
	}
	if r2, _ := h.app.state.request(ctx, id2); r2 == nil || r2.State != stateIssued {
		t.Fatalf("k2's request after the approval: %+v, want issued", r2)
	}

	// the device asks again: the interrupted issuance is completed
	if ans := enrollAs(t, h, wire.OpRetrieve, "ops", "gw1.example", k2); ans.Status != wire.StatusOK {
		t.Fatalf("k2 retrieve: status %d", ans.Status)
	}
	r1, err := h.app.state.request(ctx, id1)
	if err != nil {
		t.Fatal(err)
	}
	if r1.State == statePending {
		// what that leads to: approving it revokes the device's certificate
		r2, _ := h.app.state.request(ctx, id2)
		_, aerr := h.app.approve(ctx, id1, "")
		rec, _ := h.app.cas[profileModern].Lookup(ctx, r2.Serial)
		t.Fatalf("k1's request made before k2's issued one is still pending after the interrupted issuance was completed; "+
			"approving it: err=%v, k2's certificate revoked=%v (reason %d)", aerr, rec != nil && rec.Revoked, rec.Reason)
	}
}
