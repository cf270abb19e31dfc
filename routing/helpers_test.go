package routing

import (
	"math/rand/v2"
	"os"
	"slices"
	"testing"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

type (
	fileT   = configfile.File
	targetT = configfile.Target
)

const table7Path = "../configfile/testdata/clearinghouse.conf"

// labLines extend Table 7 (lines 59 on) with a group 'Lab' that has no
// catch-all, exact and prefix routes, and an exact route of the default
// group.
const labLines = `group 'Lab'
device 'lab1.example.net' 'Lab' enabled enrolled
device 'lab2.example.net' 'Lab' enabled enrolled
device 'lab3.example.net' 'Lab' enabled enrolled
route 'Lab' '+44...' 'lab2.example.net' 1
route 'Lab' '+1 678' 'lab2.example.net' 1
route 'Lab' '+1 678...' 'lab3.example.net' 1
route 'Lab' '1 67...' 'device8.isp.com' 1
route "" '+44 20 7946 0000' 'device8.isp.com' 1
route "" '+1 404 555 0100' 'device8.isp.com' 1
`

func table7Source(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile(table7Path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func parse(t testing.TB, name string, data []byte) *configfile.File {
	t.Helper()
	f, err := configfile.Parse(name, data)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func build(t testing.TB, f *configfile.File, o Options) *Table {
	t.Helper()
	tab, err := Build(f, o)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// table7 is the table of the seed's Table 7.
func table7(t testing.TB) (*configfile.File, *Table) {
	f := parse(t, "clearinghouse.conf", table7Source(t))
	return f, build(t, f, Options{})
}

// table7Lab is Table 7 followed by labLines.
func table7Lab(t testing.TB) (*configfile.File, *Table) {
	src := append(table7Source(t), labLines...)
	f := parse(t, "lab.conf", src)
	return f, build(t, f, Options{})
}

func names(ds []Destination) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Device
	}
	return out
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)) }

// refTable is the matching rule written plainly: a map from (group,
// digits, exact) to route index, probed for the exact number and then for
// every prefix of the number from the longest, in the source's group and
// then in the default group.
type refTable struct {
	f      *configfile.File
	routes map[refKey]int
	hasDef bool
}

type refKey struct {
	group, digits string
	exact         bool
}

func newRef(f *configfile.File) *refTable {
	r := &refTable{f: f, routes: map[refKey]int{}}
	for i := range f.Routes {
		rt := &f.Routes[i]
		r.routes[refKey{rt.Group, rt.Prefix, rt.Exact}] = i
	}
	_, r.hasDef = f.Group("")
	return r
}

// match returns the index of the route for a call from group to called, or
// -1, and whether it came from the default group.
func (r *refTable) match(group, called string) (int, bool) {
	num, exact, err := configfile.NormalizeNumber(called)
	if err != nil || !exact {
		return -1, false
	}
	find := func(g string) int {
		if i, ok := r.routes[refKey{g, num, true}]; ok {
			return i
		}
		for l := len(num); l >= 0; l-- {
			if i, ok := r.routes[refKey{g, num[:l], false}]; ok {
				return i
			}
		}
		return -1
	}
	if i := find(group); i >= 0 {
		return i, false
	}
	if group == "" || !r.hasDef {
		return -1, false
	}
	i := find("")
	return i, i >= 0
}

func refMatch(f *configfile.File, group, called string) (int, bool) {
	return newRef(f).match(group, called)
}

// checkDestinations checks the invariants of a Route answer for a call
// from src over route r of f.
func checkDestinations(t testing.TB, f *configfile.File, r *configfile.Route, src string, limit int, ds []Destination, eligible func(string) bool) {
	t.Helper()
	if len(ds) == 0 || len(ds) > limit {
		t.Fatalf("%d destinations, limit %d", len(ds), limit)
	}
	var order []string
	weights := map[string]uint32{}
	for _, tg := range r.Targets {
		name := f.TargetName(tg)
		order = append(order, name)
		weights[name] = tg.Weight
	}
	seen := map[string]bool{}
	zeroAt := -1
	for i, d := range ds {
		dev, ok := f.Device(d.Device)
		switch {
		case !ok:
			t.Fatalf("unknown device %q", d.Device)
		case seen[d.Device]:
			t.Fatalf("device %q twice: %v", d.Device, names(ds))
		case d.Device == src:
			t.Fatalf("source %q offered", src)
		case !dev.Enabled || !dev.Enrolled:
			t.Fatalf("unusable device %q offered", d.Device)
		case eligible != nil && !eligible(d.Device):
			t.Fatalf("ineligible device %q offered", d.Device)
		case d.Group != dev.Group:
			t.Fatalf("device %q group %q, want %q", d.Device, d.Group, dev.Group)
		case d.Weight != weights[d.Device]:
			t.Fatalf("device %q weight %d, want %d", d.Device, d.Weight, weights[d.Device])
		}
		if _, ok := weights[d.Device]; !ok {
			t.Fatalf("device %q not in the route", d.Device)
		}
		seen[d.Device] = true
		if d.Weight == 0 {
			if zeroAt < 0 {
				zeroAt = i
			}
		} else if zeroAt >= 0 {
			t.Fatalf("positive weight after weight 0: %v", names(ds))
		}
	}
	if zeroAt >= 0 {
		// zeros in route order
		var zs []string
		for _, d := range ds[zeroAt:] {
			zs = append(zs, d.Device)
		}
		pos := func(n string) int { return slices.Index(order, n) }
		if !slices.IsSortedFunc(zs, func(a, b string) int { return pos(a) - pos(b) }) {
			t.Fatalf("weight-0 devices out of route order: %v", zs)
		}
	}
}
