package caddyenroll

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
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

// lockHooked is a storage that, once armed, runs hook the next time the
// lock name is asked for, before taking it.
type lockHooked struct {
	localLocks
	name  string
	armed atomic.Bool
	hook  func()
}

func (s *lockHooked) Lock(ctx context.Context, name string) error {
	if name == s.name && s.armed.CompareAndSwap(true, false) {
		s.hook()
	}
	return s.localLocks.Lock(ctx, name)
}

// Two operators revoke the two certificates of a cloned gateway's key for
// key compromise at the same moment: the one revoking d1.example by name
// finds d2.example's certificate of the key not yet revoked, and while it
// waits for d2.example's lock the other revokes that certificate by serial
// (and counts it). Each certificate is counted once in
// caddy_clearinghouse_certificates_revoked_total: 2, not 3.
func TestSameKeysRevokedConcurrentlyCountedOnce(t *testing.T) {
	ctx := context.Background()
	keepPendingCount(t)
	st := &lockHooked{localLocks: localLocks{&certmagic.FileStorage{Path: t.TempDir()}}, name: deviceLockName("d2.example")}
	h, _ := boundsApp(t, st, &testClock{now: time.Now()}, ApprovalAuto, 100, 100)
	saveRenamed(t, h.app.cfg.path, "enroll enabled\ngroup \"\"\ndevice d1.example \"\" enabled\ndevice d2.example \"\" enabled\n")
	if _, err := h.app.cfg.reload(); err != nil {
		t.Fatal(err)
	}
	h.app.bg = new(backgroundWork)
	ad := &adminAPI{app: h.app, log: zap.NewNop()}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // a cloned gateway image
	for _, d := range []string{"d1.example", "d2.example"} {
		if ans := enrollWithIDs(t, h, wire.OpRequest, "ops", d, "1", "0", key); ans.Status != wire.StatusOK {
			t.Fatalf("enrolling %s: status %d %s", d, ans.Status, ans.Error)
		}
	}
	recs, err := h.app.cas[profileModern].Records(ctx, "d2.example")
	if err != nil || len(recs) != 1 {
		t.Fatalf("records of d2.example: %v, %v", recs, err)
	}
	var other string
	st.hook = func() {
		code, body, _ := adminDoBody(t, ad, "POST", "/enroll/revoke", `{"serial": "`+recs[0].Serial+`", "reason": 1}`)
		other = body
		if code != 200 {
			t.Errorf("the other operator's revoke: %d %s", code, body)
		}
	}
	st.armed.Store(true)
	before := promtest.ToFloat64(metrics.revoked)
	code, body, _ := adminDoBody(t, ad, "POST", "/enroll/revoke", `{"device": "d1.example", "reason": 1}`)
	h.app.bg.wg.Wait()
	if code != 200 || !strings.Contains(body, recs[0].Serial) || !strings.Contains(other, recs[0].Serial) {
		t.Fatalf("revokes: %d %s; the other %s", code, body, other)
	}
	if got := promtest.ToFloat64(metrics.revoked) - before; got != 2 {
		t.Errorf("certificates revoked counted %v times, want 2", got)
	}
}
