package routing

import (
	"reflect"
	"testing"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

// answers is everything a table tells: its devices, every route lookup
// and route answer (fixed seed) for every source device and a set of
// numbers covering every pattern of f.
type answers struct {
	Len           int
	Unaddressable []string
	Devices       []DeviceInfo
	Lookups       []RouteInfo
	Routes        [][]Destination
	Errs          []error
}

func answersOf(t *testing.T, f *configfile.File, tab *Table) answers {
	t.Helper()
	var a answers
	a.Len, a.Unaddressable = tab.Len(), tab.Unaddressable()
	var numbers []string
	for _, r := range f.Routes {
		numbers = append(numbers, r.Prefix+"1", r.Prefix+"0000000", r.Prefix)
	}
	numbers = append(numbers, "999", "14045550100", "33612345678")
	for _, d := range f.Devices {
		info, _ := tab.Device(d.Name)
		a.Devices = append(a.Devices, info)
		for _, n := range numbers {
			ri, _ := tab.Lookup(d.Group, n)
			a.Lookups = append(a.Lookups, ri)
			ds, err := tab.Route(d.Name, n, 0, newRand(uint64(len(a.Routes))), nil, nil)
			a.Routes = append(a.Routes, ds)
			a.Errs = append(a.Errs, err)
		}
	}
	return a
}

// Update answers exactly as Build does for every kind of change of the
// file or the options, and reuses the previous table's routes and names
// only when nothing but devices' enabled and enrolled flags changed. The
// previous table is left as it was.
func TestUpdateAgreesWithBuild(t *testing.T) {
	src := append(table7Source(t), labLines...)
	opts := Options{SignalAddress: map[string]string{"device1.itsp.com": "192.0.2.1:5070"}}
	cases := []struct {
		name   string
		edit   func(f *configfile.File, o *Options)
		shared bool
	}{
		{"nothing", func(*configfile.File, *Options) {}, true},
		{"enrolled", func(f *configfile.File, _ *Options) { f.Devices[2].Enrolled = false }, true},
		{"enabled", func(f *configfile.File, _ *Options) { f.Devices[3].Enabled = true }, true},
		{"flags of many", func(f *configfile.File, _ *Options) {
			for i := range f.Devices {
				f.Devices[i].Enrolled = !f.Devices[i].Enrolled
			}
		}, true},
		{"same address in a new map", func(_ *configfile.File, o *Options) {
			o.SignalAddress = map[string]string{"device1.itsp.com": "192.0.2.1:5070"}
		}, true},
		{"device added", func(f *configfile.File, _ *Options) {
			if err := f.AddDevice("new.example", "Lab", true, true); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"device removed", func(f *configfile.File, _ *Options) {
			if err := f.RemoveDevice("lab1.example.net"); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"device renamed", func(f *configfile.File, _ *Options) { f.Devices[1].Name = "device1.other.com" }, false},
		{"device regrouped", func(f *configfile.File, _ *Options) { f.Devices[1].Group = "Prepaid" }, false},
		{"weight", func(f *configfile.File, _ *Options) { f.Routes[0].Targets[0].Weight = 7 }, false},
		{"target", func(f *configfile.File, _ *Options) { f.Routes[0].Targets[3].Device = 0 }, false},
		{"route line", func(f *configfile.File, _ *Options) { f.Routes[1].Line++ }, false},
		{"route spelling", func(f *configfile.File, _ *Options) { f.Routes[1].Number = "+1404..." }, false},
		{"route exact", func(f *configfile.File, _ *Options) { f.Routes[1].Exact = true }, false},
		{"route prefix", func(f *configfile.File, _ *Options) { f.Routes[1].Prefix = "1405" }, false},
		{"route group", func(f *configfile.File, _ *Options) { f.Routes[len(f.Routes)-1].Group = "Prepaid" }, false},
		{"routes reordered", func(f *configfile.File, _ *Options) { f.Routes[0], f.Routes[1] = f.Routes[1], f.Routes[0] }, false},
		{"route dropped", func(f *configfile.File, _ *Options) { f.Routes = f.Routes[1:] }, false},
		{"port", func(_ *configfile.File, o *Options) { o.DefaultPort = 5080 }, false},
		{"address", func(_ *configfile.File, o *Options) {
			o.SignalAddress = map[string]string{"device1.itsp.com": "192.0.2.2"}
		}, false},
		{"max destinations", func(_ *configfile.File, o *Options) { o.MaxDestinations = 1 }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := parse(t, "lab.conf", src).Clone()
			prev := build(t, f, opts)
			before := answersOf(t, f, prev)
			g := f.Clone()
			o := opts
			c.edit(g, &o)
			got, err := Update(prev, g, o)
			if err != nil {
				t.Fatal(err)
			}
			if shared := got.SameDevices(prev); shared != c.shared {
				t.Errorf("SameDevices = %v, want %v", shared, c.shared)
			}
			want := build(t, g, o)
			if a, b := answersOf(t, g, got), answersOf(t, g, want); !reflect.DeepEqual(a, b) {
				t.Errorf("Update answers otherwise than Build:\n%+v\n%+v", a, b)
			}
			if after := answersOf(t, f, prev); !reflect.DeepEqual(before, after) {
				t.Error("the previous table changed")
			}
		})
	}
}

// An unaddressable device stays unusable whatever its flags, after
// Update as after Build; a nil previous table builds.
func TestUpdateUnaddressable(t *testing.T) {
	src := "group \"\"\ndevice 'gw 1' \"\" enabled enrolled\ndevice gw2.example \"\" enabled enrolled\nroute \"\" \"\" 'gw 1' 1 gw2.example 1\n"
	f := parse(t, "u.conf", []byte(src))
	prev, err := Update(nil, f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.Devices[0].Enrolled = false
	mid, _ := Update(prev, f, Options{})
	f.Devices[0].Enrolled = true
	got, _ := Update(mid, f, Options{})
	if !got.SameDevices(prev) {
		t.Fatal("flags alone rebuilt the table")
	}
	if a, b := answersOf(t, f, got), answersOf(t, f, build(t, f, Options{})); !reflect.DeepEqual(a, b) {
		t.Errorf("Update answers otherwise than Build:\n%+v\n%+v", a, b)
	}
	if ds, _ := got.Route("gw2.example", "1", 0, nil, nil, nil); len(ds) != 0 {
		t.Errorf("unaddressable device offered: %v", ds)
	}
}
