package caddyenroll

import (
	"context"
	"slices"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

// A mark changes only a device's flag: the route table answers with it at
// once, while the index of devices by address (and the warning about
// devices without an address) are kept, not made again at every mark; a
// version that adds a device makes them again.
func TestMarkKeepsTheAddressIndex(t *testing.T) {
	cs, _, _ := testConfigState(t, `group ""
device gw1.example "" enabled
device gw2.example "" enabled enrolled
device 'gw 3' "" enabled enrolled
route "" "" gw1.example 1 gw2.example 1
`)
	core, logs := observer.New(zapcore.WarnLevel)
	a := &App{cfg: cs, bgCtx: context.Background(), log: zap.New(core), crypto: new(cryptoRecords),
		authz: &authz{revocations: new(revocations)}, DeviceAddresses: map[string]string{"GW1.example": "192.0.2.1"}}
	cs.read(func(f *configfile.File) {
		if err := a.rebuildRoutes(f); err != nil {
			t.Fatal(err)
		}
	})
	a.followFileChanges()
	warnings := func() int {
		return logs.FilterMessageSnippet("never offered as call destinations").Len()
	}
	callees := func() []string {
		ds, _ := a.router.Load().Route("gw2.example", "1", 0, nil, nil, nil)
		var out []string
		for _, d := range ds {
			out = append(out, d.Device)
		}
		return out
	}
	idx := a.authz.deviceByAddr.Load()
	if got := callees(); len(got) != 0 || warnings() != 1 {
		t.Fatalf("before the mark: callees %v, %d warnings", got, warnings())
	}

	if errs := a.applyMarks([]mark{{Device: "gw1.example"}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if d, _ := a.router.Load().Device("gw1.example"); !d.Enrolled {
		t.Error("the route table does not have the mark")
	}
	if got := callees(); !slices.Equal(got, []string{"gw1.example"}) {
		t.Errorf("after the mark: callees %v", got)
	}
	if a.authz.deviceByAddr.Load() != idx {
		t.Error("the address index was made again for a mark")
	}
	if n := warnings(); n != 1 {
		t.Errorf("%d warnings after a mark, want 1 (the first)", n)
	}
	if got := a.devicesAt("192.0.2.1:5060"); !slices.Equal(got, []string{"gw1.example"}) {
		t.Errorf("devicesAt: %v", got)
	}

	if errs := a.applyMarks([]mark{{Device: "gw4.example", Add: true}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if a.authz.deviceByAddr.Load() == idx {
		t.Error("the address index was kept for a new device")
	}
	if got := a.devicesAt("GW4.example:5060"); !slices.Equal(got, []string{"gw4.example"}) {
		t.Errorf("devicesAt of the new device: %v", got)
	}
	if n := warnings(); n != 2 {
		t.Errorf("%d warnings after a new device, want 2", n)
	}
}
