package caddyenroll

import (
	"context"
	"testing"

	"go.uber.org/zap"

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
