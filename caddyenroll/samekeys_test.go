package caddyenroll

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// A device whose certificates were revoked for key compromise before (by
// an earlier version, which left the other devices' certificates of the
// key alone, or by a revocation whose revocation of those failed: the
// operator is told to try again) is revoked again by name for key
// compromise: the other devices' certificates of its keys are revoked
// then, as for a first revocation.
func TestKeyCompromiseRevokedAgainRevokesSameKeys(t *testing.T) {
	ctx := context.Background()
	h := fileApp(t, ApprovalAuto, "enroll enabled\ngroup \"\"\ndevice d1.example \"\" enabled\ndevice d2.example \"\" enabled\n")
	h.app.bg = new(backgroundWork)
	ad := &adminAPI{app: h.app, log: zap.NewNop()}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // a cloned gateway image
	for _, d := range []string{"d1.example", "d2.example"} {
		if ans := enrollWithIDs(t, h, wire.OpRequest, "ops", d, "1", "0", key); ans.Status != wire.StatusOK {
			t.Fatalf("enrolling %s: status %d %s", d, ans.Status, ans.Error)
		}
	}
	c := h.app.cas[profileModern]
	serial := func(d string) ca.Record {
		t.Helper()
		recs, err := c.Records(ctx, d)
		if err != nil || len(recs) != 1 {
			t.Fatalf("records of %s: %v, %v", d, recs, err)
		}
		return recs[0]
	}
	// what an earlier version did
	if err := c.Revoke(ctx, serial("d1.example").Serial, ca.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	code, body, _ := adminDoBody(t, ad, "POST", "/enroll/revoke", `{"device": "d1.example", "reason": 1}`)
	h.app.bg.wg.Wait()
	if code != 200 {
		t.Fatalf("revoke: %d %s", code, body)
	}
	r2 := serial("d2.example")
	if !r2.Revoked || r2.Reason != ca.ReasonKeyCompromise || !strings.Contains(body, r2.Serial) {
		t.Fatalf("d2.example's certificate of the compromised key: revoked %v, reason %d; answer %s", r2.Revoked, r2.Reason, body)
	}
}
