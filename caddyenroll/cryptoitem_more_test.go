package caddyenroll

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"strings"
	"testing"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// The file names another CA of the legacy profile only (another instance
// renewed the legacy CA alone: "a profile's entry alone renews that CA").
// The modern CA is still the one the file names, so a modern enrollment is
// issued, and its device is marked enrolled: only marks of the renewed
// profile's certificates are held back.
func TestModernMarkNotBlockedByLegacyRenewal(t *testing.T) {
	st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	legacy, _, err := ca.Open(context.Background(), st, ca.Config{Name: profileLegacy, Profile: ca.ProfileLegacy}, "")
	if err != nil {
		t.Fatal(err)
	}
	h, logs := watchingApp(t, st)
	h.app.cas[profileLegacy] = legacy
	h.app.followFileChanges() // again, with the legacy CA
	modern := h.app.cas[profileModern].CryptoParam()
	otherLeg := otherCA(legacy.CryptoParam())
	takeVersion(t, h, "crypto '"+modern+" "+otherLeg+"'\nenroll enabled\ngroup \"\"\ndevice gw1.example \"\" enabled\n")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if ans := enrollAs(t, h, wire.OpRequest, "ops", "gw1.example", key); ans.Status != wire.StatusOK {
		t.Fatalf("modern CA still named: status %d (%s)", ans.Status, ans.Error)
	}
	f, err := configfile.ParseFile(h.app.cfg.path)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := f.Device("gw1.example"); !d.Enrolled {
		t.Fatal("gw1.example got a certificate of the modern CA, which the file still names, but is not marked enrolled (the legacy entry changed)")
	}
	// the legacy entry deleted alone: said at WARN, as the whole item is
	takeVersion(t, h, "crypto "+modern+"\nenroll enabled\ngroup \"\"\ndevice gw1.example \"\" enabled enrolled\n")
	if n := logs.FilterMessageSnippet("no longer names the CA of a profile").FilterField(zap.String("profile", profileLegacy)).Len(); n != 1 {
		t.Fatalf("%d WARN lines on the legacy entry deleted, want 1", n)
	}
}

// An operator's edit that spells the CA in use otherwise (the fingerprint
// in capitals, which ca.ParseCryptoParams and Open accept) names the same
// CA: issuance goes on.
func TestSameCASpelledOtherwiseStillIssues(t *testing.T) {
	h, _ := watchingApp(t, localLocks{&certmagic.FileStorage{Path: t.TempDir()}})
	ours := h.app.cas[profileModern].CryptoParam()
	i := strings.LastIndexByte(ours, ':')
	upper := ours[:i+1] + strings.ToUpper(ours[i+1:])
	if p, err := ca.ParseCryptoParams(upper); err != nil || p.String() != ours {
		t.Fatalf("%s does not parse as %s: %v", upper, ours, err)
	}
	takeVersion(t, h, "crypto "+upper+"\nenroll enabled\ngroup \"\"\ndevice gw1.example \"\" enabled\n")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if ans := enrollAs(t, h, wire.OpRequest, "ops", "gw1.example", key); ans.Status != wire.StatusOK {
		t.Fatalf("the file names the CA in use (spelled %s): status %d (%s)", upper, ans.Status, ans.Error)
	}
}

// An operator saves a version that does not parse, and an issuance looks
// at the file before the watcher does: the watcher still reports it (the
// ERROR "configuration file changed but is invalid").
func TestInvalidVersionSeenFirstByIssuanceIsStillReported(t *testing.T) {
	h, logs := watchingApp(t, localLocks{&certmagic.FileStorage{Path: t.TempDir()}})
	ours := h.app.cas[profileModern].CryptoParam()
	takeVersion(t, h, "crypto "+ours+"\nenroll enabled\ngroup \"\"\ndevice gw1.example \"\" enabled\ndevice gw2.example \"\" enabled\n")
	inForce, err := os.Open(h.app.cfg.path) // the new version gets another inode
	if err != nil {
		t.Fatal(err)
	}
	defer inForce.Close()
	saveRenamed(t, h.app.cfg.path, "crypto "+ours+"\nenroll enabled\ngroup \"\"\ndevice gw1.example \"\" enabled\ndevice gw2.example \"\" bogus\n")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ans := enrollAs(t, h, wire.OpRequest, "ops", "gw1.example", key)
	t.Logf("enrollment: status %d (%s)", ans.Status, ans.Error)
	h.app.watchOnce()
	if logs.FilterMessageSnippet("changed but is invalid").Len() == 0 {
		t.Fatal("the invalid version was never reported at ERROR (an issuance polled it first)")
	}
}
