package routing

import (
	"reflect"
	"slices"
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
// file or the options. It keeps the previous table's devices when their
// names and groups, the groups and the options are the same, and its
// route index too when nothing but devices' enabled and enrolled flags
// changed. The previous table is left as it was.
func TestUpdateAgreesWithBuild(t *testing.T) {
	src := append(table7Source(t), labLines...)
	opts := Options{SignalAddress: map[string]string{"device1.itsp.com": "192.0.2.1:5070"}}
	cases := []struct {
		name string
		edit func(f *configfile.File, o *Options)
		keep keeps
	}{
		{"nothing", func(*configfile.File, *Options) {}, keepAll},
		{"enrolled", func(f *configfile.File, _ *Options) { f.Devices[2].Enrolled = false }, keepAll},
		{"enabled", func(f *configfile.File, _ *Options) { f.Devices[3].Enabled = true }, keepAll},
		{"flags of many", func(f *configfile.File, _ *Options) {
			for i := range f.Devices {
				f.Devices[i].Enrolled = !f.Devices[i].Enrolled
			}
		}, keepAll},
		{"same address in a new map", func(_ *configfile.File, o *Options) {
			o.SignalAddress = map[string]string{"device1.itsp.com": "192.0.2.1:5070"}
		}, keepAll},
		{"device added", func(f *configfile.File, _ *Options) {
			if err := f.AddDevice("new.example", "Lab", true, true); err != nil {
				t.Fatal(err)
			}
		}, keepNothing},
		{"device removed", func(f *configfile.File, _ *Options) {
			if err := f.RemoveDevice("lab1.example.net"); err != nil {
				t.Fatal(err)
			}
		}, keepNothing},
		{"device renamed", func(f *configfile.File, _ *Options) { f.Devices[1].Name = "device1.other.com" }, keepNothing},
		{"device regrouped", func(f *configfile.File, _ *Options) { f.Devices[1].Group = "Prepaid" }, keepNothing},
		{"weight", func(f *configfile.File, _ *Options) { f.Routes[0].Targets[0].Weight = 7 }, keepDevices},
		{"target", func(f *configfile.File, _ *Options) { f.Routes[0].Targets[3].Device = 0 }, keepDevices},
		{"route line", func(f *configfile.File, _ *Options) { f.Routes[1].Line++ }, keepDevices},
		{"route spelling", func(f *configfile.File, _ *Options) { f.Routes[1].Number = "+1404..." }, keepDevices},
		{"route exact", func(f *configfile.File, _ *Options) { f.Routes[1].Exact = true }, keepDevices},
		{"route prefix", func(f *configfile.File, _ *Options) { f.Routes[1].Prefix = "1405" }, keepDevices},
		{"route group", func(f *configfile.File, _ *Options) { f.Routes[len(f.Routes)-1].Group = "Prepaid" }, keepDevices},
		{"routes reordered", func(f *configfile.File, _ *Options) { f.Routes[0], f.Routes[1] = f.Routes[1], f.Routes[0] }, keepDevices},
		{"route dropped", func(f *configfile.File, _ *Options) { f.Routes = f.Routes[1:] }, keepDevices},
		{"all routes of a group dropped", func(f *configfile.File, _ *Options) {
			f.Routes = slices.DeleteFunc(f.Routes, func(r configfile.Route) bool { return r.Group == "Lab" })
		}, keepDevices},
		{"routes of two groups with names of one length swapped", func(f *configfile.File, _ *Options) {
			for i := range f.Routes {
				switch g := &f.Routes[i].Group; *g {
				case "BT-Concert":
					*g = "HK Telecom"
				case "HK Telecom":
					*g = "BT-Concert"
				}
			}
		}, keepDevices},
		{"group added", func(f *configfile.File, _ *Options) { f.Groups = append(f.Groups, configfile.Group{Name: "Spare"}) }, keepNothing},
		{"protocol", func(_ *configfile.File, o *Options) { o.Protocol = map[string]string{"device2.itsp.com": "iax"} }, keepNothing},
		{"non-OSP", func(_ *configfile.File, o *Options) { o.NonOSP = map[string]bool{"device2.itsp.com": true} }, keepNothing},
		{"port", func(_ *configfile.File, o *Options) { o.DefaultPort = 5080 }, keepNothing},
		{"address", func(_ *configfile.File, o *Options) {
			o.SignalAddress = map[string]string{"device1.itsp.com": "192.0.2.2"}
		}, keepNothing},
		{"max destinations", func(_ *configfile.File, o *Options) { o.MaxDestinations = 1 }, keepNothing},
		{"flags and a weight", func(f *configfile.File, _ *Options) {
			f.Devices[2].Enrolled = false
			f.Routes[0].Targets[0].Weight = 7
		}, keepDevices},
		{"group renamed", func(f *configfile.File, _ *Options) {
			rename := func(g *string) {
				if *g == "Lab" {
					*g = "Bench"
				}
			}
			for i := range f.Groups {
				rename(&f.Groups[i].Name)
			}
			for i := range f.Devices {
				rename(&f.Devices[i].Group)
			}
			for i := range f.Routes {
				rename(&f.Routes[i].Group)
			}
		}, keepNothing},
		{"devices swapped", func(f *configfile.File, _ *Options) {
			f.Devices[0], f.Devices[1] = f.Devices[1], f.Devices[0]
			for i := range f.Routes {
				for j := range f.Routes[i].Targets {
					switch tg := &f.Routes[i].Targets[j]; tg.Device {
					case 0:
						tg.Device = 1
					case 1:
						tg.Device = 0
					}
				}
			}
		}, keepNothing},
		{"device respelled", func(f *configfile.File, _ *Options) { f.Devices[1].Name = "Device1.ITSP.com" }, keepNothing},
		{"address of another device", func(_ *configfile.File, o *Options) {
			o.SignalAddress = map[string]string{"device1.itsp.com": "192.0.2.1:5070", "lab1.example.net": "192.0.2.9"}
		}, keepNothing},
		{"address dropped", func(_ *configfile.File, o *Options) { o.SignalAddress = nil }, keepNothing},
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
			if k := keepsOf(prev, got); k != c.keep {
				t.Errorf("keeps %v, want %v", k, c.keep)
			}
			want := build(t, g, o)
			if a, b := answersOf(t, g, got), answersOf(t, g, want); !reflect.DeepEqual(a, b) {
				t.Errorf("Update answers otherwise than Build:\n%+v\n%+v", a, b)
			}
			if after := answersOf(t, f, prev); !reflect.DeepEqual(before, after) {
				t.Error("the previous table changed")
			}
			// and back: the new table's checksum is of its own routes
			back, err := Update(got, f, opts)
			if err != nil {
				t.Fatal(err)
			}
			if a := answersOf(t, f, back); !reflect.DeepEqual(before, a) {
				t.Errorf("Update back to the first version answers otherwise than it:\n%+v\n%+v", a, before)
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

// keeps is what Update kept of the previous table.
type keeps int

const (
	keepNothing keeps = iota
	keepDevices       // the devices' names and indexes
	keepAll           // and the route index
)

func (k keeps) String() string { return [...]string{"nothing", "devices", "all"}[k] }

func keepsOf(prev, t *Table) keeps {
	switch {
	case !t.SameDevices(prev):
		return keepNothing
	case len(t.targets) > 0 && &t.targets[0] == &prev.targets[0] && &t.groups[0] == &prev.groups[0]:
		return keepAll
	}
	return keepDevices
}

// Routes that Build refuses, Update refuses as well, with the same error,
// and the previous table stays usable.
func TestUpdateRefusesWhatBuildRefuses(t *testing.T) {
	for name, edit := range map[string]func(f *configfile.File){
		"undefined device": func(f *configfile.File) { f.Routes[0].Targets[0].Device = 99 },
		"duplicate route":  func(f *configfile.File) { f.Routes[1] = f.Routes[0] },
		"undefined group":  func(f *configfile.File) { f.Routes[0].Group = "nowhere" },
	} {
		t.Run(name, func(t *testing.T) {
			f, prev := table7(t)
			g := f.Clone()
			edit(g)
			_, berr := Build(g, Options{})
			_, uerr := Update(prev, g, Options{})
			if berr == nil || uerr == nil || berr.Error() != uerr.Error() {
				t.Fatalf("Build: %v; Update: %v", berr, uerr)
			}
			if _, ok := prev.Lookup("", "14045550100"); !ok {
				t.Error("the previous table lost its routes")
			}
		})
	}
}

// A group that no device is in may be renamed with nothing else changing:
// Update then knows the new name and forgets the old one, as Build does
// (the devices' groups alone do not tell).
func TestUpdateGroupWithoutDevicesRenamed(t *testing.T) {
	src := "group \"\"\ngroup 'Spare'\ndevice gw.example \"\" enabled enrolled\nroute \"\" '1...' gw.example 1\n"
	f := parse(t, "g.conf", []byte(src))
	prev := build(t, f, Options{})
	g := f.Clone()
	g.Groups[1].Name = "Other"
	got, err := Update(prev, g, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		group string
		ok    bool
	}{{"Other", true}, {"Spare", false}, {"", true}} {
		if ri, ok := got.Lookup(c.group, "12"); ok != c.ok || ok && ri.Pattern != "1..." {
			t.Errorf("Lookup(%q) = %+v %v, want %v", c.group, ri, ok, c.ok)
		}
	}
}
