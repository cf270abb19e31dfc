package caddyenroll

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

// followingApp is an App following the file of text as a started one
// does (route table, address index), with its transaction ids made.
func followingApp(t *testing.T, text string) *App {
	t.Helper()
	cs, _, dir := testConfigState(t, text)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	a := &App{cfg: cs, bgCtx: ctx, log: zap.NewNop(), authz: &authz{revocations: new(revocations)}, crypto: new(cryptoRecords),
		storage: localLocks{&certmagic.FileStorage{Path: filepath.Join(dir, "data")}}}
	cs.read(func(f *configfile.File) {
		if err := a.rebuildRoutes(f); err != nil {
			t.Fatal(err)
		}
	})
	a.followFileChanges()
	if _, err := a.transactionIDs(ctx); err != nil {
		t.Fatal(err)
	}
	return a
}

// The index of devices by transaction-id tag is made again when a version
// of the file that changes the devices is put in force, not by the first
// usage record after it; a record looked up right after the change gets
// the new version's answer: a device added is a source, one removed is
// not, one spelled otherwise is named as the file now spells it.
func TestTransactionSourceRightAfterDevicesChange(t *testing.T) {
	const head = "group \"\"\n"
	a := followingApp(t, head+"device gw1.example \"\" enabled\ndevice gw2.example \"\" enabled\ndevice gw3.example \"\" enabled\n")
	ids := a.authz.txIDs
	idOf := func(device string) uint64 { return ids.For(configfile.DeviceKey(device)).New() }
	steps := []struct {
		name string
		edit func(f *configfile.File) error
		id   string // the device the id is made for
		want string // its source as the file names it now; "" not issued
	}{
		{"added", func(f *configfile.File) error { return f.AddDevice("new.example", "", true, false) }, "new.example", "new.example"},
		{"removed", func(f *configfile.File) error { return f.RemoveDevice("gw2.example") }, "gw2.example", ""},
		{"renamed", func(f *configfile.File) error {
			if err := f.RemoveDevice("gw3.example"); err != nil {
				return err
			}
			return f.AddDevice("GW3.Example.", "", true, false)
		}, "gw3.example", "GW3.Example."},
	}
	for _, s := range steps {
		byAddr := a.authz.deviceByAddr.Load()
		if err := a.cfg.edit(context.Background(), s.edit); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if a.authz.deviceByAddr.Load() == byAddr {
			t.Fatalf("%s: the devices' index was not made again", s.name)
		}
		// at once: the index may still be being made
		issued, source := a.transactionSource(ids, idOf(s.id), "")
		if issued != (s.want != "") || source != s.want {
			t.Errorf("%s: id of %s: issued %v source %q, want %q", s.name, s.id, issued, source, s.want)
		}
	}
	// the index of the last version was made without a lookup's asking
	a.cfg.mu.Lock()
	a.cfg.onChange(a.cfg.file, nil) // the same devices: kept
	a.cfg.mu.Unlock()
	byAddr := a.authz.deviceByAddr.Load()
	if err := a.cfg.edit(context.Background(), func(f *configfile.File) error { return f.AddDevice("later.example", "", true, false) }); err != nil {
		t.Fatal(err)
	}
	if a.authz.deviceByAddr.Load() == byAddr {
		t.Fatal("the devices' index was not made again")
	}
	deadline := time.Now().Add(5 * time.Second)
	for ix := a.authz.sources.Load(); ix == nil || ix.byAddr != a.authz.deviceByAddr.Load(); ix = a.authz.sources.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the index of sources by tag is not made when the devices change")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if issued, source := a.transactionSource(ids, idOf("later.example"), ""); !issued || source != "later.example" {
		t.Errorf("later.example: issued %v source %q", issued, source)
	}
}

// The index of sources is made from the previous one with the devices
// that changed: those gone and added, not those that only moved to
// another address; many devices at one address (none of their own) are
// compared as sets.
func TestChangedDevices(t *testing.T) {
	many := func(extra ...string) []string {
		var out []string
		for i := range 40 {
			out = append(out, "d"+string(rune('a'+i%26))+string(rune('a'+i/26))+".example")
		}
		return append(out, extra...)
	}
	for _, tc := range []struct {
		name        string
		old, now    map[string][]string
		gone, added []string
	}{
		{"same", map[string][]string{"a:5060": {"a"}}, map[string][]string{"a:5060": {"a"}}, nil, nil},
		{"added", map[string][]string{"a:5060": {"a"}}, map[string][]string{"a:5060": {"a"}, "b:5060": {"b"}}, nil, []string{"b"}},
		{"removed", map[string][]string{"a:5060": {"a"}, "b:5060": {"b"}}, map[string][]string{"a:5060": {"a"}}, []string{"b"}, nil},
		{"moved", map[string][]string{"a:5060": {"a"}, "b:5060": {"b"}}, map[string][]string{"a:5060": {"a"}, "c:5060": {"b"}}, nil, nil},
		{"respelled", map[string][]string{"a:5060": {"a"}}, map[string][]string{"a:5060": {"A."}}, []string{"a"}, []string{"A."}},
		{"joined a shared address", map[string][]string{"x:5060": {"a"}, "b:5060": {"b"}}, map[string][]string{"x:5060": {"a", "b"}}, nil, nil},
		{"many at one address", map[string][]string{"": many("x")}, map[string][]string{"": many("y")}, []string{"x"}, []string{"y"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gone, added := changedDevices(tc.old, tc.now)
			slices.Sort(gone)
			slices.Sort(added)
			if !slices.Equal(gone, tc.gone) || !slices.Equal(added, tc.added) {
				t.Errorf("gone %q added %q, want %q %q", gone, added, tc.gone, tc.added)
			}
		})
	}
}
