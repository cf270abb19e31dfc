package routing

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestTable7Route(t *testing.T) {
	f, tab := table7Lab(t)
	excl := func(devs ...string) func(string) bool {
		return func(d string) bool { return !slices.Contains(devs, d) }
	}
	tests := []struct {
		name     string
		source   string
		called   string
		max      int
		eligible func(string) bool
		want     []string // exact order; nil when wantSet is used or an error is expected
		wantSet  []string // positive-weight devices in any order, then wantTail in order
		wantTail []string
		err      error
	}{
		// ACME ITSP '+1...' (device1 60, device2 25, device3 15, device4.carrier 0):
		// device1 is the source, device3 is disabled
		{name: "seed example", source: "device1.itsp.com", called: "1678",
			want: []string{"device2.itsp.com", "device4.carrier.com"}},
		{name: "seed example with +", source: "device1.itsp.com", called: "+1678",
			want: []string{"device2.itsp.com", "device4.carrier.com"}},
		// ACME ITSP '+1 404...' (device1 75, device2 25, device4.carrier 0)
		{name: "1404 prefix", source: "device1.itsp.com", called: "14048724799",
			want: []string{"device2.itsp.com", "device4.carrier.com"}},
		{name: "separators", source: "device1.itsp.com", called: "+1 404-872.4799",
			want: []string{"device2.itsp.com", "device4.carrier.com"}},
		{name: "source device2", source: "device2.itsp.com", called: "14048724799",
			want: []string{"device1.itsp.com", "device4.carrier.com"}},
		// HK Telecom '+33-6...': device4.com is the source (and not enrolled),
		// device5.com is disabled
		{name: "HK +33-6", source: "device4.com", called: "33612345678", err: ErrNoDestination},
		// BT-Concert '+33 6...': device4.com not enrolled, device5.com disabled
		{name: "BT +33 6 none usable", source: "device4.carrier.com", called: "+33 6 12 34 56 78", err: ErrNoDestination},
		// Prepaid has only its catch-all (device1 60, device2 25, device3 15, device4.carrier 0)
		{name: "Prepaid catch-all", source: "device6.isp.com", called: "4930123456",
			wantSet: []string{"device1.itsp.com", "device2.itsp.com"}, wantTail: []string{"device4.carrier.com"}},
		{name: "Prepaid catch-all beats default +1", source: "device7.isp.com", called: "1678",
			wantSet: []string{"device1.itsp.com", "device2.itsp.com"}, wantTail: []string{"device4.carrier.com"}},
		// default group source: "" '+1...'
		{name: "default group source", source: "device8.isp.com", called: "1678",
			wantSet: []string{"device1.itsp.com", "device2.itsp.com"}, wantTail: []string{"device4.carrier.com"}},
		// default group catch-all: device6 100, device7 0, device8 0 (source)
		{name: "default catch-all", source: "device8.isp.com", called: "4930123456",
			want: []string{"device6.isp.com", "device7.isp.com"}},
		// Lab has no catch-all: 1404... falls back to "" '+1 404...'
		{name: "fallback to default group", source: "lab1.example.net", called: "14048724799",
			wantSet: []string{"device1.itsp.com", "device2.itsp.com"}, wantTail: []string{"device4.carrier.com"}},
		{name: "fallback to default catch-all", source: "lab1.example.net", called: "4930123456",
			want: []string{"device6.isp.com", "device7.isp.com", "device8.isp.com"}},
		// exact vs prefix in Lab
		{name: "exact beats same-length prefix", source: "lab1.example.net", called: "1678", want: []string{"lab2.example.net"}},
		{name: "exact with separators", source: "lab1.example.net", called: "+1-678", want: []string{"lab2.example.net"}},
		{name: "longer number: prefix", source: "lab1.example.net", called: "16781", want: []string{"lab3.example.net"}},
		{name: "shorter prefix", source: "lab1.example.net", called: "1679", want: []string{"device8.isp.com"}},
		{name: "own prefix beats default exact", source: "lab1.example.net", called: "442079460000", want: []string{"lab2.example.net"}},
		{name: "exact in default group beats its prefix", source: "lab1.example.net", called: "14045550100", want: []string{"device8.isp.com"}},
		{name: "own group prefix over default exact", source: "lab1.example.net", called: "16785550100", want: []string{"lab3.example.net"}},
		// eligibility hook
		{name: "eligible excludes device2", source: "device1.itsp.com", called: "1678",
			eligible: excl("device2.itsp.com"), want: []string{"device4.carrier.com"}},
		{name: "eligible excludes all", source: "device1.itsp.com", called: "1678",
			eligible: excl("device2.itsp.com", "device4.carrier.com"), err: ErrNoDestination},
		// max destinations
		{name: "max 1", source: "device1.itsp.com", called: "1678", max: 1, want: []string{"device2.itsp.com"}},
		{name: "max 1 weight-0 only", source: "lab1.example.net", called: "4930123456", max: 1,
			eligible: excl("device6.isp.com"), want: []string{"device7.isp.com"}},
		{name: "max 2 of 3", source: "lab1.example.net", called: "4930123456", max: 2,
			want: []string{"device6.isp.com", "device7.isp.com"}},
		// errors
		{name: "unknown source", source: "device9.isp.com", called: "1678", err: ErrUnknownSource},
		{name: "empty source", source: "", called: "1678", err: ErrUnknownSource},
		{name: "empty number", source: "device1.itsp.com", called: "", err: ErrInvalidNumber},
		{name: "letters", source: "device1.itsp.com", called: "1-800-FLOWERS", err: ErrInvalidNumber},
		{name: "pattern", source: "device1.itsp.com", called: "1...", err: ErrInvalidNumber},
		{name: "double dot", source: "device1.itsp.com", called: "1..2", err: ErrInvalidNumber},
		{name: "late plus", source: "device1.itsp.com", called: "1+2", err: ErrInvalidNumber},
		{name: "tab", source: "device1.itsp.com", called: "\t1678", err: ErrInvalidNumber},
		{name: "33 digits", source: "device1.itsp.com", called: strings.Repeat("1", 33), err: ErrInvalidNumber},
		{name: "32 digits", source: "device1.itsp.com", called: strings.Repeat("1", 32),
			want: []string{"device2.itsp.com", "device4.carrier.com"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for seed := uint64(0); seed < 20; seed++ {
				prefix := []Destination{{Device: "sentinel"}}
				got, err := tab.Route(tc.source, tc.called, tc.max, newRand(seed), tc.eligible, prefix)
				if got[0].Device != "sentinel" {
					t.Fatalf("dst[0] overwritten: %+v", got[0])
				}
				got = got[1:]
				if tc.err != nil {
					if err != tc.err || len(got) != 0 {
						t.Fatalf("Route = %v, %v; want error %v", names(got), err, tc.err)
					}
					return
				}
				if err != nil {
					t.Fatalf("Route: %v", err)
				}
				if tc.want != nil && !slices.Equal(names(got), tc.want) {
					t.Fatalf("seed %d: Route = %v, want %v", seed, names(got), tc.want)
				}
				if tc.wantSet != nil {
					n := len(tc.wantSet)
					if len(got) != n+len(tc.wantTail) {
						t.Fatalf("Route = %v, want %v in any order then %v", names(got), tc.wantSet, tc.wantTail)
					}
					head := slices.Sorted(slices.Values(names(got[:n])))
					if !slices.Equal(head, tc.wantSet) || !slices.Equal(names(got[n:]), tc.wantTail) {
						t.Fatalf("Route = %v, want %v in any order then %v", names(got), tc.wantSet, tc.wantTail)
					}
				}
				info, ok := tab.Lookup(deviceGroup(t, tab, tc.source), tc.called)
				if !ok {
					t.Fatal("Lookup found nothing")
				}
				r := &f.Routes[routeAtLine(t, f, info.Line)]
				limit := 10
				if tc.max > 0 {
					limit = tc.max
				}
				checkDestinations(t, f, r, tc.source, limit, got, tc.eligible)
			}
		})
	}
}

func deviceGroup(t *testing.T, tab *Table, name string) string {
	d, ok := tab.Device(name)
	if !ok {
		t.Fatalf("no device %q", name)
	}
	return d.Group
}

func routeAtLine(t testing.TB, f *fileT, line int) int {
	t.Helper()
	for i := range f.Routes {
		if f.Routes[i].Line == line {
			return i
		}
	}
	t.Fatalf("no route on line %d", line)
	return -1
}

func TestTable7Lookup(t *testing.T) {
	f, tab := table7Lab(t)
	tests := []struct {
		group, called string
		want          RouteInfo
	}{
		{"ACME ITSP", "1678", RouteInfo{Group: "ACME ITSP", Pattern: "+1...", Line: 34}},
		{"ACME ITSP", "14048724799", RouteInfo{Group: "ACME ITSP", Pattern: "+1 404...", Line: 35}},
		{"ACME ITSP", "1404", RouteInfo{Group: "ACME ITSP", Pattern: "+1 404...", Line: 35}},
		{"ACME ITSP", "140", RouteInfo{Group: "ACME ITSP", Pattern: "+1...", Line: 34}},
		{"ACME ITSP", "17705551234", RouteInfo{Group: "ACME ITSP", Pattern: "+1 770...", Line: 36}},
		{"ACME ITSP", "4670123", RouteInfo{Group: "ACME ITSP", Pattern: "+46 70...", Line: 40}},
		{"ACME ITSP", "467", RouteInfo{Group: "ACME ITSP", Pattern: "+46...", Line: 39}},
		{"ACME ITSP", "999", RouteInfo{Group: "ACME ITSP", Pattern: "", Line: 41}},
		{"HK Telecom", "33612345678", RouteInfo{Group: "HK Telecom", Pattern: "+33-6...", Line: 54}},
		{"HK Telecom", "+33 6 12 34 56 78", RouteInfo{Group: "HK Telecom", Pattern: "+33-6...", Line: 54}},
		{"HK Telecom", "33512345678", RouteInfo{Group: "HK Telecom", Pattern: "+33...", Line: 53}},
		{"BT-Concert", "33612345678", RouteInfo{Group: "BT-Concert", Pattern: "+33 6...", Line: 46}},
		{"Prepaid", "14048724799", RouteInfo{Group: "Prepaid", Pattern: "", Line: 58}},
		{"", "14048724799", RouteInfo{Group: "", Pattern: "+1 404...", Line: 27}},
		{"", "14045550100", RouteInfo{Group: "", Pattern: "+1 404 555 0100", Exact: true, Line: 68}},
		{"", "140455501001", RouteInfo{Group: "", Pattern: "+1 404...", Line: 27}},
		{"Lab", "14048724799", RouteInfo{Group: "", Pattern: "+1 404...", Fallback: true, Line: 27}},
		{"Lab", "14045550100", RouteInfo{Group: "", Pattern: "+1 404 555 0100", Exact: true, Fallback: true, Line: 68}},
		{"Lab", "1", RouteInfo{Group: "", Pattern: "+1...", Fallback: true, Line: 26}},
		{"Lab", "5", RouteInfo{Group: "", Pattern: "", Fallback: true, Line: 33}},
		{"Lab", "1678", RouteInfo{Group: "Lab", Pattern: "+1 678", Exact: true, Line: 64}},
		{"Lab", "16780", RouteInfo{Group: "Lab", Pattern: "+1 678...", Line: 65}},
		{"Lab", "167", RouteInfo{Group: "Lab", Pattern: "1 67...", Line: 66}},
		{"Lab", "442079460000", RouteInfo{Group: "Lab", Pattern: "+44...", Line: 63}},
	}
	for _, tc := range tests {
		got, ok := tab.Lookup(tc.group, tc.called)
		if !ok || got != tc.want {
			t.Errorf("Lookup(%q, %q) = %+v %v, want %+v", tc.group, tc.called, got, ok, tc.want)
		}
		i, fb := refMatch(f, tc.group, tc.called)
		if i < 0 || f.Routes[i].Line != tc.want.Line || fb != tc.want.Fallback {
			t.Errorf("reference disagrees for %q %q: route %d fallback %v", tc.group, tc.called, i, fb)
		}
	}
	for _, bad := range [][2]string{{"Nope", "1678"}, {"ACME ITSP", ""}, {"ACME ITSP", "1..."}, {"ACME ITSP", "x"}} {
		if got, ok := tab.Lookup(bad[0], bad[1]); ok {
			t.Errorf("Lookup(%q, %q) = %+v, want nothing", bad[0], bad[1], got)
		}
	}
}

func TestNoRoute(t *testing.T) {
	src := `group ""
group g
group h
device a g enabled enrolled
device b h enabled enrolled
device c "" enabled enrolled
route g '+1...' b 1
route "" '+44...' c 1
`
	f := parse(t, "noroute.conf", []byte(src))
	tab := build(t, f, Options{})
	if _, err := tab.Route("a", "331234", 0, nil, nil, nil); err != ErrNoRoute {
		t.Errorf("a -> 331234: %v, want ErrNoRoute", err)
	}
	if ds, err := tab.Route("a", "441234", 0, nil, nil, nil); err != nil || !slices.Equal(names(ds), []string{"c"}) {
		t.Errorf("a -> 441234: %v %v, want [c] by fallback", names(ds), err)
	}
	if _, err := tab.Route("b", "1555", 0, nil, nil, nil); err != ErrNoRoute {
		t.Errorf("b -> 1555: %v, want ErrNoRoute (g's route is not h's)", err)
	}
	// no default group at all
	f2 := parse(t, "nodefault.conf", []byte("group g\ndevice a g enabled enrolled\ndevice b g enabled enrolled\nroute g '+1...' b 1\n"))
	tab2 := build(t, f2, Options{})
	if _, err := tab2.Route("a", "441234", 0, nil, nil, nil); err != ErrNoRoute {
		t.Errorf("no default group: %v, want ErrNoRoute", err)
	}
	if ds, err := tab2.Route("a", "1441234", 0, nil, nil, nil); err != nil || len(ds) != 1 {
		t.Errorf("no default group, +1: %v %v", names(ds), err)
	}
	// nil table
	var nilTab *Table
	if _, err := nilTab.Route("a", "1", 0, nil, nil, nil); err != ErrUnknownSource {
		t.Errorf("nil table: %v", err)
	}
	if _, ok := nilTab.Lookup("", "1"); ok || nilTab.Len() != 0 {
		t.Error("nil table Lookup")
	}
	if _, ok := nilTab.Device("a"); ok {
		t.Error("nil table Device")
	}
}

func TestMaxDestinationsOption(t *testing.T) {
	f, _ := table7(t)
	tab := build(t, f, Options{MaxDestinations: 2})
	// device8 -> 1678: device1, device2 (positive), device4.carrier (0)
	for _, max := range []int{0, -1, 2, 3, 100} {
		ds, err := tab.Route("device8.isp.com", "1678", max, newRand(1), nil, nil)
		if err != nil || len(ds) != 2 || ds[0].Weight == 0 || ds[1].Weight == 0 {
			t.Errorf("max %d: %v %v, want the two positive devices", max, names(ds), err)
		}
	}
	ds, _ := tab.Route("device8.isp.com", "1678", 1, newRand(1), nil, nil)
	if len(ds) != 1 {
		t.Errorf("max 1: %v", names(ds))
	}
	if _, err := Build(f, Options{MaxDestinations: -1}); err == nil {
		t.Error("MaxDestinations -1 accepted")
	}
}

func TestSignalAddress(t *testing.T) {
	f, _ := table7(t)
	tab := build(t, f, Options{
		DefaultPort: 5061,
		SignalAddress: map[string]string{
			"device2.itsp.com":    "192.0.2.7",
			"device4.carrier.com": "[2001:db8::1]:5070",
			"device9.nowhere":     "ignored:1",
		},
	})
	ds, err := tab.Route("device1.itsp.com", "1678", 0, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Destination{
		{Device: "device2.itsp.com", Group: "ACME ITSP", Weight: 25, SignalAddress: "[192.0.2.7]:5061"},
		{Device: "device4.carrier.com", Group: "BT-Concert", Weight: 0, SignalAddress: "[2001:db8::1]:5070"},
	}
	if !slices.Equal(ds, want) {
		t.Errorf("Route = %+v\nwant %+v", ds, want)
	}
	d, ok := tab.Device("device6.isp.com")
	if !ok || d != (DeviceInfo{Name: "device6.isp.com", Group: "Prepaid", Enabled: true, Enrolled: true, SignalAddress: "device6.isp.com:5061"}) {
		t.Errorf("Device = %+v %v", d, ok)
	}
	_, tab5060 := table7(t)
	if d, _ := tab5060.Device("device4.com"); d.SignalAddress != "device4.com:5060" || d.Enrolled || !d.Enabled {
		t.Errorf("default address: %+v", d)
	}

	good := map[string]string{
		"gw.example.com":      "gw.example.com:5060",
		"gw.example.com:5080": "gw.example.com:5080",
		"[gw.example.com]":    "gw.example.com:5060",
		"[gw.example.com]:1":  "gw.example.com:1",
		"10.0.0.1:65535":      "[10.0.0.1]:65535",
		"2001:db8::5":         "[2001:db8::5]:5060",
		"[2001:db8::5]:5062":  "[2001:db8::5]:5062",
		"[fe80::1]:05060":     "[fe80::1]:5060",
	}
	for in, want := range good {
		if got, err := signalAddress(in, "5060"); err != nil || got != want {
			t.Errorf("signalAddress(%q) = %q %v, want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", ":5060", "[]:5060", "[gw", "[gw]x", "gw:", "gw:0", "gw:65536", "gw:+5", "gw:-1", "g w:5060", "[gw]:50 60", "a/b", "gw:http"} {
		if got, err := signalAddress(bad, "5060"); err == nil {
			t.Errorf("signalAddress(%q) = %q, want error", bad, got)
		}
	}
	if _, err := Build(f, Options{SignalAddress: map[string]string{"device1.itsp.com": "bad host"}}); err == nil || !strings.Contains(err.Error(), "device1.itsp.com") {
		t.Errorf("bad address: %v", err)
	}
	if _, err := Build(f, Options{DefaultPort: 70000}); err == nil {
		t.Error("port 70000 accepted")
	}
}

func TestBuildRejects(t *testing.T) {
	f, _ := table7(t)
	mod := func(edit func(f2 *fileT)) error {
		g := f.Clone()
		edit(g)
		_, err := Build(g, Options{})
		return err
	}
	cases := map[string]func(g *fileT){
		"undefined route group":   func(g *fileT) { g.Routes[0].Group = "nope" },
		"undefined device group":  func(g *fileT) { g.Devices[0].Group = "nope" },
		"bad prefix":              func(g *fileT) { g.Routes[0].Prefix = "1a" },
		"long prefix":             func(g *fileT) { g.Routes[0].Prefix = strings.Repeat("1", 33) },
		"exact without digits":    func(g *fileT) { g.Routes[7].Exact = true },
		"no targets":              func(g *fileT) { g.Routes[0].Targets = nil },
		"bad target":              func(g *fileT) { g.Routes[0].Targets = []targetT{{Device: 99, Weight: 1}} },
		"negative target":         func(g *fileT) { g.Routes[0].Targets = []targetT{{Device: -1, Weight: 1}} },
		"target past the devices": func(g *fileT) { g.Routes[0].Targets = []targetT{{Device: int32(len(g.Devices)), Weight: 1}} },
		"target twice":            func(g *fileT) { g.Routes[0].Targets = []targetT{{Device: 1, Weight: 1}, {Device: 1, Weight: 0}} },
		"duplicate route":         func(g *fileT) { g.Routes[1].Prefix = "1" },
		"duplicate group":         func(g *fileT) { g.Groups = append(g.Groups, g.Groups[1]) },
		"duplicate device":        func(g *fileT) { g.Devices = append(g.Devices, g.Devices[1]) },
		"unnamed device":          func(g *fileT) { g.Devices[0].Name = "" },
	}
	for name, edit := range cases {
		if err := mod(edit); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.HasPrefix(err.Error(), "routing: ") {
			t.Errorf("%s: error %q lacks the package prefix", name, err)
		}
	}
	if err := mod(func(g *fileT) { g.Routes[1].Exact = true }); err != nil {
		t.Errorf("exact and prefix with the same digits: %v", err)
	}
	if _, err := Build(nil, Options{}); err == nil {
		t.Error("nil file accepted")
	}
}

func TestDestinationAppend(t *testing.T) {
	_, tab := table7(t)
	dst := make([]Destination, 0, 8)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		dst, err = tab.Route("device1.itsp.com", "+1 404 872 4799", 0, newRandNoAlloc, func(string) bool { return true }, dst[:0])
		if err != nil {
			panic(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Route allocates %.1f times", allocs)
	}
	if _, err := tab.Route("device1.itsp.com", "1", 0, nil, nil, dst[:0]); err != nil {
		t.Fatal(err)
	}
	if errors.Is(ErrNoRoute, ErrNoDestination) {
		t.Error("distinct errors")
	}
}

var newRandNoAlloc = newRand(7)

func TestTableStats(t *testing.T) {
	f, tab := table7(t)
	if tab.Len() != len(f.Routes) || tab.Len() != 33 {
		t.Errorf("Len = %d, want 33", tab.Len())
	}
	if n := tab.Size(); n <= 0 || n > 64<<10 {
		t.Errorf("Size = %d", n)
	}
	var nilTab *Table
	if nilTab.Size() != 0 {
		t.Error("nil Size")
	}
	if _, ok := tab.Device("device9.isp.com"); ok {
		t.Error("Device of an unknown name")
	}
}

// TestSignalAddressOSPCanSend: an explicit address is accepted only if OSP
// can send it (osp.NormalizeSignalAddress refuses a zoned IPv6 address and
// a host that is no host name, and osp.Authorize then refuses the whole
// call), so that device_address is refused when the server starts, not on
// every call to a route holding the device.
func TestSignalAddressOSPCanSend(t *testing.T) {
	for _, bad := range []string{
		"[fe80::1%eth0]:5060", "fe80::1%eth0", "[a:b]:5060", "a..b", ".gw", "-gw.example", "gw-.example",
		"gw!.example", "gw%1", "a*b:5060", "x,y", "é.example", strings.Repeat("a", 64) + ".example",
		strings.Repeat("abcdefgh.", 28) + "com",
	} {
		if got, err := signalAddress(bad, "5060"); err == nil {
			t.Errorf("signalAddress(%q) = %q, want error", bad, got)
		}
	}
	for in, want := range map[string]string{
		"gw_1.example":     "gw_1.example:5060",
		"gw.example.:5070": "gw.example.:5070",
		"GW.Example":       "GW.Example:5060",
	} {
		if got, err := signalAddress(in, "5060"); err != nil || got != want {
			t.Errorf("signalAddress(%q) = %q %v, want %q", in, got, err, want)
		}
	}
}

// TestSignalAddressIPCanonical: a device named by an IP address in another
// spelling (IPv4-mapped, upper-case or uncompressed IPv6, a trailing dot,
// brackets) gets "[ip]:port" with the address as configfile.DeviceKey and
// OSP write it, not a host name or the mapped form.
func TestSignalAddressIPCanonical(t *testing.T) {
	for in, want := range map[string]string{
		"::ffff:192.0.2.10":   "[192.0.2.10]:5060",
		"192.0.2.10.":         "[192.0.2.10]:5060",
		"[::FFFF:192.0.2.10]": "[192.0.2.10]:5060",
		"2001:DB8:0::1":       "[2001:db8::1]:5060",
		"gw.example.":         "gw.example.:5060",
	} {
		if got := defaultSignalAddress(in, "5060"); got != want {
			t.Errorf("defaultSignalAddress(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"::ffff:192.0.2.10":        "[192.0.2.10]:5060",
		"[::ffff:192.0.2.10]:5070": "[192.0.2.10]:5070",
		"[2001:DB8:0::1]:5070":     "[2001:db8::1]:5070",
	} {
		if got, err := signalAddress(in, "5060"); err != nil || got != want {
			t.Errorf("signalAddress(%q) = %q %v, want %q", in, got, err, want)
		}
	}
}

// A device whose name is neither a host name nor an IP address without
// zone, and that has no explicit address, is never offered as a
// destination (its address would make OSP refuse the whole answer) and is
// listed by Unaddressable; given an address, it is offered.
func TestUnaddressableDevicesNotOffered(t *testing.T) {
	src := "group g\n" +
		"device src.example g enabled enrolled\n" +
		"device 'GW 1' g enabled enrolled\n" +
		"device 'fe80::1%eth0' g enabled enrolled\n" +
		"device gw2.example g enabled enrolled\n" +
		"route g '1...' 'GW 1' 90 'fe80::1%eth0' 90 gw2.example 10\n"
	f := parse(t, "t.conf", []byte(src))
	tab := build(t, f, Options{})
	if got := tab.Unaddressable(); !slices.Equal(got, []string{"GW 1", "fe80::1%eth0"}) {
		t.Errorf("Unaddressable() = %q", got)
	}
	for seed := range uint64(20) {
		dests, err := tab.Route("src.example", "1678", 10, newRand(seed), nil, nil)
		if err != nil || len(dests) != 1 || dests[0].Device != "gw2.example" {
			t.Fatalf("seed %d: %+v %v, want only gw2.example", seed, dests, err)
		}
	}
	// the source may still call, and Device still reports the flags
	if d, ok := tab.Device("GW 1"); !ok || !d.Enabled || !d.Enrolled {
		t.Errorf("Device(GW 1) = %+v %v", d, ok)
	}
	tab = build(t, f, Options{SignalAddress: map[string]string{"GW 1": "192.0.2.1"}})
	if got := tab.Unaddressable(); !slices.Equal(got, []string{"fe80::1%eth0"}) {
		t.Errorf("with an address: Unaddressable() = %q", got)
	}
	found := false
	for seed := range uint64(20) {
		dests, _ := tab.Route("src.example", "1678", 10, newRand(seed), nil, nil)
		for _, d := range dests {
			found = found || (d.Device == "GW 1" && d.SignalAddress == "[192.0.2.1]:5060")
		}
	}
	if !found {
		t.Error("GW 1 with a device address is never offered")
	}
}
