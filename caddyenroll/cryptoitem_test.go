package caddyenroll

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap/zaptest/observer"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// takeVersion saves text as the file and waits until the watcher's poll
// has it in force.
func takeVersion(t *testing.T, h *Handler, text string) {
	t.Helper()
	saveRenamed(t, h.app.cfg.path, text)
	// (a version reusing the inode of the one in force may be being
	// written: a later poll takes it)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		changed, err := h.app.cfg.reload()
		if err != nil {
			t.Fatal(err)
		}
		if changed {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the version is not taken")
		}
	}
}

// watchingApp is boundsApp (approval auto) following the file's changes
// as a started app does, with the other-CA report's grace shortened.
func watchingApp(t *testing.T, st certmagic.Storage) (*Handler, *observer.ObservedLogs) {
	t.Helper()
	keepPendingCount(t)
	h, logs := boundsApp(t, st, &testClock{now: time.Now()}, ApprovalAuto, 100, 100)
	h.app.bg = new(backgroundWork)
	h.app.stop = make(chan struct{})
	h.app.followFileChanges()
	grace := otherCAGrace
	otherCAGrace = 50 * time.Millisecond
	t.Cleanup(func() { otherCAGrace = grace })
	return h, logs
}

// otherCA is a crypto entry like param naming another CA.
func otherCA(param string) string {
	if other := param[:len(param)-4] + "0000"; other != param {
		return other
	}
	return param[:len(param)-4] + "1111"
}

// A crypto item edited while the server runs to name another CA (an
// operator's edit, or another instance sharing the file that renewed the
// CA) stops issuance of that profile until a reload, and no device is
// marked enrolled in a file that names a CA it did not enroll with; the
// operator is told at ERROR. Named again, the CA issues again.
func TestCryptoItemNamingAnotherCAStopsIssuance(t *testing.T) {
	ctx := context.Background()
	h, logs := watchingApp(t, localLocks{&certmagic.FileStorage{Path: t.TempDir()}})
	ours := h.app.cas[profileModern].CryptoParam()
	other := otherCA(ours)
	newKey := func() *ecdsa.PrivateKey { k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader); return k }
	file := func(crypto string) string {
		return "crypto " + crypto + "\nenroll enabled\ngroup \"\"\ndevice gw1.example \"\" enabled\ndevice gw2.example \"\" enabled\n"
	}
	takeVersion(t, h, file(ours))
	if ans := enrollAs(t, h, wire.OpRequest, "ops", "gw1.example", newKey()); ans.Status != wire.StatusOK {
		t.Fatalf("the file names the CA in use: status %d (%s)", ans.Status, ans.Error)
	}

	takeVersion(t, h, file(other))
	for deadline := time.Now().Add(5 * time.Second); logs.FilterMessageSnippet("names another operational CA").Len() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no ERROR line naming the other CA")
		}
	}
	ans := enrollAs(t, h, wire.OpRequest, "ops", "gw2.example", newKey())
	if ans.Status != wire.StatusServerError || !strings.Contains(ans.Error, "reload") {
		t.Fatalf("the file names another CA: status %d (%s), want %d saying to reload", ans.Status, ans.Error, wire.StatusServerError)
	}
	if d := h.app.cfg.device("gw2.example"); d.Enrolled {
		t.Fatal("gw2.example marked enrolled in a file that names another CA")
	}
	if rec, err := h.app.state.device(ctx, "gw2.example"); err != nil || rec != nil {
		t.Fatalf("gw2.example has a record (%v, %v): a certificate was issued", rec, err)
	}

	takeVersion(t, h, file(ours))
	if ans := enrollAs(t, h, wire.OpRequest, "ops", "gw2.example", newKey()); ans.Status != wire.StatusOK {
		t.Fatalf("the file names the CA in use again: status %d (%s)", ans.Status, ans.Error)
	}
	// an item removed: a new CA at the next reload, said at WARN; issuance goes on
	takeVersion(t, h, strings.TrimPrefix(file(ours), "crypto "+ours+"\n"))
	if n := logs.FilterMessageSnippet("no crypto item any more").Len(); n != 1 {
		t.Fatalf("%d WARN lines on the crypto item removed, want 1", n)
	}
	if ans := enrollAs(t, h, wire.OpRequest, "ops", "gw1.example", newKey()); ans.Status != wire.StatusOK {
		t.Fatalf("crypto item removed: status %d (%s)", ans.Status, ans.Error)
	}
}

// Another instance renewing the CA writes the file moments before this one
// issues: the issuance looks at the file on disk (the watcher may not have
// yet) and refuses; a mark made meanwhile never marks a device enrolled in
// a version that names another CA (an approved device is added, not
// marked).
func TestRenewalByAnotherInstanceSeenAtIssuance(t *testing.T) {
	h, _ := watchingApp(t, localLocks{&certmagic.FileStorage{Path: t.TempDir()}})
	ours := h.app.cas[profileModern].CryptoParam()
	other := otherCA(ours)
	file := func(crypto string) string {
		return "crypto " + crypto + "\nenroll enabled\ngroup \"\"\ndevice gw1.example \"\" enabled\ndevice gw2.example \"\" enabled\n"
	}
	takeVersion(t, h, file(ours))
	// (the version in force kept open: the new one gets another inode, and
	// is not taken for one being written in place)
	inForce, err := os.Open(h.app.cfg.path)
	if err != nil {
		t.Fatal(err)
	}
	defer inForce.Close()
	saveRenamed(t, h.app.cfg.path, file(other))
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if ans := enrollAs(t, h, wire.OpRequest, "ops", "gw1.example", key); ans.Status != wire.StatusServerError || !strings.Contains(ans.Error, "reload") {
		t.Fatalf("the file on disk names another CA: status %d (%s), want %d saying to reload", ans.Status, ans.Error, wire.StatusServerError)
	}

	// marks of this instance's certificates that reach that version
	ctx := context.Background()
	if err := h.app.markEnrolled(ctx, "gw2.example", "", profileModern, false); err != nil {
		t.Fatal(err)
	}
	if err := h.app.markEnrolled(ctx, "new.example", "", profileModern, true); err != nil {
		t.Fatal(err)
	}
	f, err := configfile.ParseFile(h.app.cfg.path)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := f.Device("gw2.example"); d.Enrolled {
		t.Error("gw2.example marked enrolled in a file that names another CA")
	}
	if d, ok := f.Device("new.example"); !ok || !d.Enabled || d.Enrolled {
		t.Errorf("approved new.example in the file: %+v (present %v), want added, enabled, not enrolled", d, ok)
	}
}
