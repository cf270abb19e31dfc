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
	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

// During a reload the new config has joined the file's configStates and
// made its route table before it follows the file's changes: a mark the
// old config makes in between is put in force in the new config's file
// (tellOthers) with no onChange yet. Once it follows the file, its route
// table is the version in force, not the one before the mark.
func TestReloadRouteTableFollowsAnEditBeforeItFollowsTheFile(t *testing.T) {
	const v1 = "group \"\"\ndevice gw1.example \"\" enabled\ndevice gw2.example \"\" enabled enrolled\nroute \"\" 1 gw1.example 1\n"
	old := followingApp(t, v1)
	old.cfg.settle = 0

	// the new config, as Provision makes it up to followFileChanges
	cs, err := loadConfigState(old.cfg.path, -1)
	if err != nil {
		t.Fatal(err)
	}
	cs.settle = 0
	cs.join()
	t.Cleanup(cs.leave)
	a := &App{cfg: cs, bgCtx: old.bgCtx, log: zap.NewNop(), authz: &authz{revocations: new(revocations)}, crypto: new(cryptoRecords), storage: old.storage}
	cs.read(func(f *configfile.File) {
		if err := a.rebuildRoutes(f); err != nil {
			t.Fatal(err)
		}
	})

	if err := old.cfg.edit(context.Background(), func(f *configfile.File) error { return f.SetEnrolled("gw1.example", true) }); err != nil {
		t.Fatal(err)
	}
	if d := cs.device("gw1.example"); !d.Enrolled {
		t.Fatalf("the old config's mark is not in force in the new one: %+v", d)
	}

	a.followFileChanges()
	if d, ok := a.router.Load().Device("gw1.example"); !ok || !d.Enrolled {
		t.Errorf("the new config's route table lacks the mark in force: %+v", d)
	}
	if ds, _ := a.router.Load().Route("gw2.example", "1", 0, nil, nil, nil); len(ds) != 1 {
		t.Errorf("the route to the marked device offers %v", ds)
	}
}

// A version another config's edit puts in force in a config a reload
// starts, before it follows the file (tellOthers), may hold an operator's
// save that disables a device (saved after the edit's write, before the
// others were told): the config that edited never took it, and may be
// stopped before its watcher does. The new config revokes the device's
// certificate once it follows the file, as it would had it taken the
// version then.
func TestReloadRevokesWhatAVersionTakenBeforeItFollowsTheFileDisables(t *testing.T) {
	keepPendingCount(t)
	ctx := context.Background()
	st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	h, _ := boundsApp(t, st, &testClock{now: time.Now()}, ApprovalAuto, 100, 100)
	a := h.app
	a.bg = new(backgroundWork)
	a.cfg.settle = 0
	a.cfg.read(func(f *configfile.File) {
		if err := a.rebuildRoutes(f); err != nil {
			t.Fatal(err)
		}
	})
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ans := enrollAs(t, h, wire.OpRequest, "ops", "gw1.example", key)
	if ans.Status != wire.StatusOK {
		t.Fatalf("enrollment: status %d (%s)", ans.Status, ans.Error)
	}
	cert, err := x509.ParseCertificate(ans.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	serial := strings.ToLower(cert.SerialNumber.Text(16))

	// the operator disables it; another config's edit tells this one
	saveRenamed(t, a.cfg.path, "enroll enabled\ngroup \"\"\ndevice gw1.example \"\" disabled enrolled\n")
	a.cfg.edits.Lock()
	changed, err := a.cfg.pollEditsHeld(true)
	a.cfg.edits.Unlock()
	if !changed || err != nil {
		t.Fatalf("the version told: %v %v", changed, err)
	}

	a.followFileChanges()
	if d, ok := a.router.Load().Device("gw1.example"); !ok || d.Enabled {
		t.Errorf("the route table has gw1.example %+v, want it disabled", d)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		rec, err := a.cas[profileModern].Lookup(ctx, serial)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Revoked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the certificate of the device the version disabled is not revoked")
		}
	}
}

// A mark the old config makes after the new config read the file, before
// it joined the file's configStates, is not told to it (tellOthers): once
// it follows the file, it takes the version on disk, as a config that
// does not watch the file (watch_interval negative) would otherwise miss
// it, in the file and in its route table, until its own next edit.
func TestReloadTakesAnEditMadeBeforeItJoined(t *testing.T) {
	const v1 = "group \"\"\ndevice gw1.example \"\" enabled\ndevice gw2.example \"\" enabled enrolled\nroute \"\" 1 gw1.example 1\n"
	old := followingApp(t, v1)
	old.cfg.settle = 0

	cs, err := loadConfigState(old.cfg.path, -1)
	if err != nil {
		t.Fatal(err)
	}
	cs.settle = 0
	if err := old.cfg.edit(context.Background(), func(f *configfile.File) error { return f.SetEnrolled("gw1.example", true) }); err != nil {
		t.Fatal(err)
	}
	cs.join()
	t.Cleanup(cs.leave)
	a := &App{cfg: cs, bgCtx: old.bgCtx, log: zap.NewNop(), authz: &authz{revocations: new(revocations)}, crypto: new(cryptoRecords), storage: old.storage}
	cs.read(func(f *configfile.File) {
		if err := a.rebuildRoutes(f); err != nil {
			t.Fatal(err)
		}
	})
	a.followFileChanges()
	if d := cs.device("gw1.example"); !d.Enrolled {
		t.Errorf("the old config's mark is not in force in the new one: %+v", d)
	}
	if d, ok := a.router.Load().Device("gw1.example"); !ok || !d.Enrolled {
		t.Errorf("the new config's route table lacks the mark: %+v", d)
	}
}
