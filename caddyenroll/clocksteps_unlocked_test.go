package caddyenroll

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// The answer without the device's lock (a full disk) reads a nonce in the
// buckets of both nonce clocks, as a bind does: after a step of the wall
// clock by more than a bucket, a nonce the device bound to another key
// before it is refused there as on the locked path (it read the wall
// clock's buckets alone, and served the certificate).
func TestIssuedUnlockedNonceClockStep(t *testing.T) {
	h, full, _ := fullDiskApp(t, &testClock{now: time.Now()})
	issued, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if ans := enrollNonce(t, h, wire.OpRequest, issued, "bm9uY2Ux"); ans.Status != wire.StatusOK {
		t.Fatalf("issuance: %+v", ans)
	}
	h.app.Approval = ApprovalManual
	waiting, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if ans := enrollNonce(t, h, wire.OpRequest, waiting, "bm9uY2Uy"); ans.Status != wire.StatusPending {
		t.Fatalf("pending request: %+v", ans)
	}
	// the wall clock steps 3 hours (3 buckets) forward
	start := h.app.state.now()
	h.app.state.sinceStart = func() time.Time { return start }
	h.app.state.now = func() time.Time { return start.Add(3 * time.Hour) }
	if ans := enrollNonce(t, h, wire.OpRetrieve, issued, "bm9uY2Uy"); ans.Status != wire.StatusNonceReused {
		t.Fatalf("the nonce of another key, after the step: status %d, want %d", ans.Status, wire.StatusNonceReused)
	}
	full.Store(true)
	if ans := enrollNonce(t, h, wire.OpRetrieve, issued, "bm9uY2Uy"); ans.Status != wire.StatusNonceReused {
		t.Fatalf("the nonce of another key, after the step, on a full disk: status %d, want %d", ans.Status, wire.StatusNonceReused)
	}
}
