package routing

import (
	"fmt"
	"strings"
	"testing"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

// Build takes DefaultPort 1 to 65535 (0 being the default) and refuses
// the rest, rather than building a table whose every device has a port
// OSP cannot send and is never offered.
func TestBuildDefaultPortBounds(t *testing.T) {
	f, _ := table7(t)
	for _, c := range []struct {
		port int
		ok   bool
		want string // device1's address when ok
	}{
		{-1, false, ""},
		{0, true, "device1.itsp.com:5060"},
		{1, true, "device1.itsp.com:1"},
		{65535, true, "device1.itsp.com:65535"},
		{65536, false, ""},
	} {
		tab, err := Build(f, Options{DefaultPort: c.port})
		if (err == nil) != c.ok {
			t.Errorf("DefaultPort %d: err %v, want ok %v", c.port, err, c.ok)
			continue
		}
		if !c.ok {
			continue
		}
		if d, _ := tab.Device("device1.itsp.com"); d.SignalAddress != c.want {
			t.Errorf("DefaultPort %d: address %q, want %q", c.port, d.SignalAddress, c.want)
		}
		if u := tab.Unaddressable(); len(u) != 0 {
			t.Errorf("DefaultPort %d: unaddressable %q", c.port, u)
		}
	}
}

// A route names at most maxTargets devices: one more would overflow the
// count kept beside the exact flag (a route of 32768 devices would read as
// an exact route of none), so Build refuses it.
func TestBuildRouteDeviceLimit(t *testing.T) {
	for _, c := range []struct {
		n  int
		ok bool
	}{{maxTargets, true}, {maxTargets + 1, false}} {
		f := &configfile.File{Groups: []configfile.Group{{Name: ""}}}
		targets := make([]configfile.Target, c.n)
		for i := range c.n {
			f.Devices = append(f.Devices, configfile.Device{Name: fmt.Sprintf("d%d.example", i), Enabled: true, Enrolled: true})
			targets[i] = configfile.Target{Device: int32(i), Weight: 0}
		}
		f.Routes = []configfile.Route{{Number: "1...", Prefix: "1", Targets: targets}}
		tab, err := Build(f, Options{})
		if (err == nil) != c.ok {
			t.Fatalf("%d devices: err %v, want ok %v", c.n, err, c.ok)
		}
		if !c.ok {
			continue
		}
		ri, ok := tab.Lookup("", "12")
		if !ok || ri.Exact {
			t.Errorf("%d devices: Lookup = %+v %v", c.n, ri, ok)
		}
		ds, err := tab.Route("d0.example", "12", 0, nil, nil, nil)
		if err != nil || len(ds) != DefaultMaxDestinations || ds[0].Device != "d1.example" {
			t.Errorf("%d devices: Route = %v %v", c.n, names(ds), err)
		}
	}
}

// A device's name must fit an answer's NetworkID (osp.MaxNumber bytes):
// one byte longer, a name that is a good host name is still never offered
// and is listed by Unaddressable.
func TestLongDeviceNameNotOffered(t *testing.T) {
	fits := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + ".ccc" // 131 bytes
	long := fits + "c"
	f := &configfile.File{
		Groups: []configfile.Group{{Name: ""}},
		Devices: []configfile.Device{
			{Name: "src.example", Enabled: true, Enrolled: true},
			{Name: fits, Enabled: true, Enrolled: true},
			{Name: long, Enabled: true, Enrolled: true},
		},
		Routes: []configfile.Route{{Number: "1...", Prefix: "1", Targets: []configfile.Target{{Device: 1, Weight: 0}, {Device: 2, Weight: 0}}}},
	}
	tab := build(t, f, Options{})
	if u := tab.Unaddressable(); len(u) != 1 || u[0] != long {
		t.Errorf("Unaddressable() = %q, want only the %d-byte name", u, len(long))
	}
	ds, err := tab.Route("src.example", "12", 0, nil, nil, nil)
	if err != nil || len(ds) != 1 || ds[0].Device != fits {
		t.Errorf("Route = %v %v, want only the %d-byte name", names(ds), err, len(fits))
	}
}

// Device finds a device by any spelling of its name, but the empty name
// is nobody's, even when a device's name is blank (its key is "").
func TestDeviceBlankName(t *testing.T) {
	f := &configfile.File{
		Groups:  []configfile.Group{{Name: ""}},
		Devices: []configfile.Device{{Name: " ", Enabled: true, Enrolled: true}, {Name: "GW.example", Enabled: true}},
	}
	tab := build(t, f, Options{})
	for _, c := range []struct {
		name, want string
		ok         bool
	}{
		{"", "", false},
		{"\t", "", false},
		{" ", " ", true},
		{"gw.example.", "GW.example", true},
	} {
		d, ok := tab.Device(c.name)
		if ok != c.ok || d.Name != c.want {
			t.Errorf("Device(%q) = %q %v, want %q %v", c.name, d.Name, ok, c.want, c.ok)
		}
	}
}

// With a nil *rand.Rand the order is still drawn: of two devices of equal
// weight each comes first in some of 200 calls (the chance that one never
// does is 2⁻¹⁹⁹).
func TestNilRandDraws(t *testing.T) {
	f := parse(t, "r.conf", []byte("group g\ndevice src.example g enabled enrolled\n"+
		"device a.example g enabled enrolled\ndevice b.example g enabled enrolled\n"+
		"route g '1...' a.example 1 b.example 1\n"))
	tab := build(t, f, Options{})
	first := map[string]int{}
	for range 200 {
		ds, err := tab.Route("src.example", "12", 0, nil, nil, nil)
		if err != nil || len(ds) != 2 {
			t.Fatalf("Route = %v %v", names(ds), err)
		}
		first[ds[0].Device]++
	}
	if first["a.example"] == 0 || first["b.example"] == 0 {
		t.Errorf("first places over 200 calls: %v", first)
	}
}
