package configfile

import (
	"os"
	"strings"
	"testing"
)

// TestTable7 parses the seed's Table 7 and checks every item it states.
func TestTable7(t *testing.T) {
	f, err := ParseFile("testdata/clearinghouse.conf")
	if err != nil {
		t.Fatal(err)
	}
	if f.Name != "testdata/clearinghouse.conf" {
		t.Errorf("Name = %q", f.Name)
	}
	if got := f.Licenses; len(got) != 1 || got[0] != "software license key" || f.License() != "software license key" {
		t.Errorf("licenses %q", got)
	}
	if !f.HasCrypto || f.Crypto != "keys" {
		t.Errorf("crypto %v %q", f.HasCrypto, f.Crypto)
	}
	if !f.Enroll || !f.Routing || !f.CDRs || !f.SSL {
		t.Errorf("flags %v %v %v %v", f.Enroll, f.Routing, f.CDRs, f.SSL)
	}

	wantGroups := []Group{{"", 12}, {"ACME ITSP", 13}, {"BT-Concert", 14}, {"HK Telecom", 15}, {"Prepaid", 16}}
	if len(f.Groups) != len(wantGroups) {
		t.Fatalf("%d groups", len(f.Groups))
	}
	for i, g := range wantGroups {
		if f.Groups[i] != g {
			t.Errorf("group %d = %+v, want %+v", i, f.Groups[i], g)
		}
	}

	wantDevices := []Device{
		{"device8.isp.com", "", true, true, 17},
		{"device1.itsp.com", "ACME ITSP", true, true, 18},
		{"device2.itsp.com", "ACME ITSP", true, true, 19},
		{"device3.itsp.com", "ACME ITSP", false, true, 20},
		{"device4.carrier.com", "BT-Concert", true, true, 21},
		{"device4.com", "HK Telecom", true, false, 22},
		{"device5.com", "HK Telecom", false, false, 23},
		{"device6.isp.com", "Prepaid", true, true, 24},
		{"device7.isp.com", "Prepaid", true, true, 25},
	}
	if len(f.Devices) != len(wantDevices) {
		t.Fatalf("%d devices", len(f.Devices))
	}
	for i, d := range wantDevices {
		if f.Devices[i] != d {
			t.Errorf("device %d = %+v, want %+v", i, f.Devices[i], d)
		}
		if got, ok := f.Device(d.Name); !ok || *got != d {
			t.Errorf("Device(%q) = %v %v", d.Name, got, ok)
		}
		if j, ok := f.DeviceIndex(d.Name); !ok || j != i {
			t.Errorf("DeviceIndex(%q) = %d %v", d.Name, j, ok)
		}
	}
	if n := len(f.DevicesInGroup("ACME ITSP")); n != 3 {
		t.Errorf("DevicesInGroup(ACME ITSP) = %d devices", n)
	}
	if ds := f.DevicesInGroup(DefaultGroup); len(ds) != 1 || ds[0].Name != "device8.isp.com" {
		t.Errorf("DevicesInGroup(\"\") = %v", ds)
	}

	// The routes of one group of Table 7 (the same for "", ACME ITSP,
	// BT-Concert and HK Telecom; Prepaid has only its catch-all).
	type tw struct {
		dev string
		w   uint32
	}
	usa := []tw{{"device1.itsp.com", 60}, {"device2.itsp.com", 25}, {"device3.itsp.com", 15}, {"device4.carrier.com", 0}}
	atl := []tw{{"device1.itsp.com", 75}, {"device2.itsp.com", 25}, {"device4.carrier.com", 0}}
	eu := []tw{{"device4.com", 1}, {"device5.com", 0}}
	all := []tw{{"device6.isp.com", 100}, {"device7.isp.com", 0}, {"device8.isp.com", 0}}
	type wr struct {
		group, number, prefix string
		targets               []tw
	}
	var want []wr
	for _, g := range []string{"", "ACME ITSP", "BT-Concert", "HK Telecom"} {
		fr6 := "+33 6..."
		if g == "HK Telecom" {
			fr6 = "+33-6..."
		}
		want = append(want,
			wr{g, "+1...", "1", usa},
			wr{g, "+1 404...", "1404", atl},
			wr{g, "+1 770...", "1770", atl},
			wr{g, "+33...", "33", eu},
			wr{g, fr6, "336", eu},
			wr{g, "+46...", "46", eu},
			wr{g, "+46 70...", "4670", eu},
			wr{g, "", "", all},
		)
	}
	want = append(want, wr{"Prepaid", "", "", usa})
	// Table 7 states 33 routes: 8 for each of the groups "", ACME ITSP,
	// BT-Concert and HK Telecom, and the catch-all of Prepaid.
	if len(f.Routes) != 33 || len(want) != 33 {
		t.Fatalf("%d routes, want 33", len(f.Routes))
	}
	for i, w := range want {
		r := f.Routes[i]
		if r.Group != w.group || r.Number != w.number || r.Prefix != w.prefix || r.Exact || r.Line != 26+i {
			t.Errorf("route %d = %q %q %q exact=%v line %d, want %q %q %q line %d",
				i, r.Group, r.Number, r.Prefix, r.Exact, r.Line, w.group, w.number, w.prefix, 26+i)
		}
		if len(r.Targets) != len(w.targets) {
			t.Errorf("route %d: %d targets", i, len(r.Targets))
			continue
		}
		for j, tg := range w.targets {
			if f.TargetName(r.Targets[j]) != tg.dev || r.Targets[j].Weight != tg.w {
				t.Errorf("route %d target %d = %q %d, want %q %d", i, j,
					f.TargetName(r.Targets[j]), r.Targets[j].Weight, tg.dev, tg.w)
			}
		}
	}

	// the file renders back byte for byte, and its canonical form parses
	// to the same configuration
	src, _ := os.ReadFile("testdata/clearinghouse.conf")
	if string(f.Bytes()) != string(src) {
		t.Error("Bytes() differs from the source")
	}
	g, err := Parse("canonical", Format(f))
	if err != nil {
		t.Fatal(err)
	}
	if d := f.Diff(g); d != "" {
		t.Error(d)
	}
	sum := f.Summary()
	for _, s := range []string{"5 groups, 9 devices (7 enabled, 7 enrolled), 33 routes",
		"enroll enabled, routing enabled, cdrs enabled, ssl enabled", "device8.isp.com", "device3.itsp.com (disabled)"} {
		if !strings.Contains(sum, s) {
			t.Errorf("Summary lacks %q:\n%s", s, sum)
		}
	}
}
