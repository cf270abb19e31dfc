package caddyenroll

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// The per-device bound of pending requests supersedes only the new
// request's claimant's own (same device and customer ids): anyone holding
// an account password could otherwise name a device of the file that has
// not enrolled yet and push its pending request out with 4 requests of
// their own (the device then answered 8). A claimant with none pending is
// refused (10) once the device has 4.
func TestOtherClaimantCannotSupersedePendingRequest(t *testing.T) {
	keepPendingCount(t)
	ctx := context.Background()
	st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	clock := &testClock{now: time.Now()}
	h, _ := boundsApp(t, st, clock, ApprovalManual, 100, 100)

	legit, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if ans := enrollWithIDs(t, h, wire.OpRequest, "ops", "gw1.example", "1", "0", legit); ans.Status != wire.StatusPending {
		t.Fatalf("legit: status %d", ans.Status)
	}
	var others []string
	for i := 0; i < maxPendingPerDevice+2; i++ {
		time.Sleep(5 * time.Millisecond) // Created order
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if ans := enrollWithIDs(t, h, wire.OpRequest, "acme", "gw1.example", "999", "0", k); ans.Status != wire.StatusPending {
			t.Fatalf("other claimant %d: status %d (%s)", i, ans.Status, ans.Error)
		}
		others = append(others, gw1RequestID(k))
	}
	r, err := h.app.state.request(ctx, gw1RequestID(legit))
	if err != nil {
		t.Fatal(err)
	}
	if r.State != statePending {
		t.Fatalf("the device's own pending request was %s by another claimant's requests (reason %q)", r.State, r.Reason)
	}
	// the other claimant's oldest went, its newest stay
	for i, id := range others {
		r, err := h.app.state.request(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if want := i >= len(others)-(maxPendingPerDevice-1); (r.State == statePending) != want {
			t.Errorf("other claimant's request %d: %s, want pending %v", i, r.State, want)
		}
	}
	// a third claimant, with none pending, is refused
	k3, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if ans := enrollWithIDs(t, h, wire.OpRequest, "acme", "gw1.example", "777", "0", k3); ans.Status != wire.StatusRateLimited {
		t.Fatalf("third claimant: status %d (%s), want %d", ans.Status, ans.Error, wire.StatusRateLimited)
	}
	if r, _ := h.app.state.request(ctx, gw1RequestID(k3)); r != nil {
		t.Fatalf("the refused request was stored: %s", r.State)
	}
	// the device itself, with a new key, supersedes its own older request
	time.Sleep(5 * time.Millisecond)
	legit2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if ans := enrollWithIDs(t, h, wire.OpRequest, "ops", "gw1.example", "1", "0", legit2); ans.Status != wire.StatusPending {
		t.Fatalf("legit, new key: status %d", ans.Status)
	}
	if r, _ := h.app.state.request(ctx, gw1RequestID(legit)); r == nil || r.State != stateRejected {
		t.Fatalf("the device's older request after its newer one: %+v, want rejected", r)
	}
	pending, err := h.app.state.pendingOf(ctx, "gw1.example")
	if err != nil || len(pending) != maxPendingPerDevice {
		t.Fatalf("device has %d pending (%v), want %d", len(pending), err, maxPendingPerDevice)
	}
}
