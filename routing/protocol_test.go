package routing

import (
	"slices"
	"strings"
	"testing"
)

// Destinations carry the protocol and OSP status Options give their
// devices (Table 7: device1 calling 1678 gets device2, then device4).
func TestDestinationProtocolAndNonOSP(t *testing.T) {
	f, _ := table7(t)
	o := Options{
		Protocol: map[string]string{
			"device2.itsp.com": "h323-Q931",
			"device6.isp.com":  "",          // none: the default
			"device9.nowhere":  "not-known", // not a device: ignored
		},
		NonOSP: map[string]bool{"device4.carrier.com": true, "device2.itsp.com": false, "device9.nowhere": true},
	}
	tab := build(t, f, o)
	ds, err := tab.Route("device1.itsp.com", "1678", 0, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Destination{
		{Device: "device2.itsp.com", Group: "ACME ITSP", Weight: 25, SignalAddress: "device2.itsp.com:5060", Protocol: "h323-Q931"},
		{Device: "device4.carrier.com", Group: "BT-Concert", Weight: 0, SignalAddress: "device4.carrier.com:5060", NonOSP: true},
	}
	if !slices.Equal(ds, want) {
		t.Errorf("Route = %+v\nwant %+v", ds, want)
	}
	if d, _ := tab.Device("DEVICE4.carrier.com"); !d.NonOSP || d.Protocol != "" {
		t.Errorf("Device: %+v", d)
	}
	if d, _ := tab.Device("device6.isp.com"); d.NonOSP || d.Protocol != "" {
		t.Errorf("Device: %+v", d)
	}

	// Update with other protocols or OSP status builds the devices again:
	// an edit of the settings alone reaches the answers
	o2 := Options{Protocol: map[string]string{"device2.itsp.com": "iax"}}
	up, err := Update(tab, f, o2)
	if err != nil {
		t.Fatal(err)
	}
	if up.SameDevices(tab) {
		t.Error("Update kept the devices of other protocols")
	}
	ds, _ = up.Route("device1.itsp.com", "1678", 0, nil, nil, nil)
	if len(ds) != 2 || ds[0].Protocol != "iax" || ds[1].NonOSP {
		t.Errorf("after Update: %+v", ds)
	}
	if same, _ := Update(up, f, o2); !same.SameDevices(up) {
		t.Error("Update with the same options built the devices again")
	}
}

// A device's protocol must be one the toolkit knows, spelled as it
// compares (case-sensitively).
func TestBuildRejectsUnknownProtocol(t *testing.T) {
	f, _ := table7(t)
	for _, p := range []string{"H323-Q931", "SIP", "q931", "h323"} {
		_, err := Build(f, Options{Protocol: map[string]string{"device2.itsp.com": p}})
		if err == nil || !strings.Contains(err.Error(), "device2.itsp.com") || !strings.Contains(err.Error(), "h323-LRQ") {
			t.Errorf("%q: %v", p, err)
		}
	}
}
