package caddyenroll

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
	"github.com/clearinghouse-dev/caddy-clearinghouse/osp"
	"github.com/clearinghouse-dev/caddy-clearinghouse/routing"
)

// device_protocol and non_osp_device repeat; the protocol is one of the
// toolkit's names, as it spells them; a device is named once per setting
// in any spelling. The JSON is device_protocols and non_osp_devices.
func TestCaddyfileDestinationSettings(t *testing.T) {
	cases := []struct {
		name, lines string
		protocols   map[string]string
		nonOSP      []string
		err         string
	}{
		{"none", "", nil, nil, ""},
		{"protocols", "device_protocol gw1.example h323-Q931\n\tdevice_protocol gw2.example iax\n\tdevice_protocol gk.example h323-LRQ\n\tdevice_protocol gw3.example sip",
			map[string]string{"gw1.example": "h323-Q931", "gw2.example": "iax", "gk.example": "h323-LRQ", "gw3.example": "sip"}, nil, ""},
		{"non-OSP devices", "non_osp_device pstn1.example pstn2.example\n\tnon_osp_device pstn3.example",
			nil, []string{"pstn1.example", "pstn2.example", "pstn3.example"}, ""},
		{"both on one device", "device_protocol pstn1.example h323-Q931\n\tnon_osp_device pstn1.example",
			map[string]string{"pstn1.example": "h323-Q931"}, []string{"pstn1.example"}, ""},
		{"case matters", "device_protocol gw1.example H323-Q931", nil, nil,
			`device_protocol gw1.example: "H323-Q931" is not a protocol the OSP Toolkit knows; use one of sip, h323-Q931, h323-LRQ, iax, fax-T37, fax-T38, skype, smpp, xmpp, sms ("h323-Q931": the toolkit compares them case-sensitively), at Testfile:2`},
		{"unknown protocol", "device_protocol gw1.example h323", nil, nil, `device_protocol gw1.example: "h323" is not a protocol`},
		{"no protocol", "device_protocol gw1.example", nil, nil, "device_protocol needs <device> <protocol> (one of sip, h323-Q931"},
		{"three arguments", "device_protocol gw1.example sip iax", nil, nil, "device_protocol needs <device> <protocol>"},
		{"protocol twice", "device_protocol gw1.example sip\n\tdevice_protocol GW1.example. iax", nil, nil,
			"device_protocol GW1.example. is given twice (as gw1.example), at Testfile:3"},
		{"no device", "non_osp_device", nil, nil, "non_osp_device needs <device>..."},
		{"non-OSP twice", "non_osp_device pstn1.example\n\tnon_osp_device PSTN1.example", nil, nil,
			"non_osp_device PSTN1.example is given twice (as pstn1.example), at Testfile:3"},
		{"non-OSP twice on a line", "non_osp_device pstn1.example pstn1.example", nil, nil, "non_osp_device pstn1.example is given twice"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := parseGlobalOption(caddyfile.NewTestDispenser("enroll {\n\t"+c.lines+"\n\tconfig_file ch.conf\n}"), nil)
			wantErr(t, err, c.err)
			if c.err != "" {
				return
			}
			opt := v.(httpcaddyfile.App)
			var got App
			if err := caddy.StrictUnmarshalJSON(opt.Value, &got); err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got.DeviceProtocols, c.protocols) || !slices.Equal(got.NonOSPDevices, c.nonOSP) {
				t.Errorf("device_protocols %v, non_osp_devices %v; want %v and %v", got.DeviceProtocols, got.NonOSPDevices, c.protocols, c.nonOSP)
			}
			for key, set := range map[string]bool{`"device_protocols"`: c.protocols != nil, `"non_osp_devices"`: c.nonOSP != nil} {
				if strings.Contains(string(opt.Value), key) != set {
					t.Errorf("JSON %s: %s present %v, want %v", opt.Value, key, !set, set)
				}
			}
		})
	}
}

// Provision (Validate) refuses in JSON what the Caddyfile refuses: an
// unknown protocol, naming the device and the allowed values; a device
// named twice in any spelling; an empty name.
func TestValidateDestinationSettings(t *testing.T) {
	cases := []struct {
		name      string
		protocols map[string]string
		nonOSP    []string
		err       string
	}{
		{"none", nil, nil, ""},
		{"every toolkit protocol", map[string]string{"a": "sip", "b": "h323-Q931", "c": "h323-LRQ", "d": "iax", "e": "fax-T37",
			"f": "fax-T38", "g": "skype", "h": "smpp", "i": "xmpp", "j": "sms"}, []string{"a", "k"}, ""},
		{"unknown protocol", map[string]string{"gw1": "h.323"}, nil,
			`device_protocol gw1: "h.323" is not a protocol the OSP Toolkit knows; use one of sip, h323-Q931, h323-LRQ, iax, fax-T37, fax-T38, skype, smpp, xmpp, sms`},
		{"wrong case", map[string]string{"gw1": "IAX"}, nil, `("iax": the toolkit compares them case-sensitively)`},
		{"empty protocol", map[string]string{"gw1": ""}, nil, `device_protocol gw1: "" is not a protocol`},
		{"protocol spelled twice", map[string]string{"gw1.example": "sip", "GW1.example": "iax"}, nil, "device_protocol names one device twice: GW1.example and gw1.example"},
		{"empty protocol device", map[string]string{"": "sip"}, nil, "device_protocol: empty device name"},
		{"non-OSP spelled twice", nil, []string{"gw1.example", "GW1.example."}, "non_osp_device names one device twice: gw1.example and GW1.example."},
		{"empty non-OSP device", nil, []string{""}, "non_osp_device: empty device name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := &App{ConfigFile: "x.conf", Approval: ApprovalAuto, UnknownDevices: UnknownPending,
				NonceRetention: caddy.Duration(time.Hour), LockoutBase: caddy.Duration(time.Second), LockoutMax: caddy.Duration(time.Minute),
				DeviceProtocols: c.protocols, NonOSPDevices: c.nonOSP}
			wantErr(t, a.Validate(), c.err)
		})
	}
}

// The settings reach the answer under any spelling of the device: the
// route table gets them under the file's names, and each routed
// destination becomes an answer's with its protocol, "0.0.0" and no token
// for a device that is not an OSP device.
func TestDestinationSettingsReachTheAnswer(t *testing.T) {
	f, err := configfile.Parse("ch.conf", []byte(`group ""
device src.example "" enabled enrolled
device gw1.example "" enabled enrolled
device pstn.example "" enabled enrolled
device gk.example "" enabled enrolled
route "" '...' 'gw1.example' 3 'pstn.example' 0 'gk.example' 0
`))
	if err != nil {
		t.Fatal(err)
	}
	a := &App{
		DeviceProtocols: map[string]string{"GW1.Example.": "h323-Q931", "gk.example": "h323-LRQ", "gone.example": "iax"},
		NonOSPDevices:   []string{"PSTN.example.", "gone.example"},
	}
	tab, err := routing.Build(f, a.routingOptions(f))
	if err != nil {
		t.Fatal(err)
	}
	routed, err := tab.Route("src.example", "1678", 0, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	dests := make([]osp.Destination, len(routed))
	for i, d := range routed {
		dests[i] = ospDestination(d)
	}
	req := &osp.AuthorizationRequest{MessageID: "1", ComponentID: "2", Timestamp: time.Now().UTC(), CallIDs: [][]byte{[]byte("c")},
		SourceInfo: []osp.Info{{Type: "e164", Value: "1404"}}, DestinationInfo: []osp.Info{{Type: "e164", Value: "1678"}}}
	rsp, err := osp.Authorize(req, dests, nil, time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	type dest struct {
		addr, proto, version string
		token                bool
	}
	var got []dest
	for _, d := range rsp.Destinations {
		got = append(got, dest{d.SignalAddress, d.Protocol, d.OSPVersion, len(d.Token) > 0})
	}
	want := []dest{
		{"gw1.example:5060", "h323-Q931", "2.1.1", true},
		{"pstn.example:5060", "sip", "0.0.0", false},
		{"gk.example:5060", "h323-LRQ", "2.1.1", true},
	}
	if !slices.Equal(got, want) {
		t.Errorf("answer %+v\nwant %+v", got, want)
	}
	if b, err := json.Marshal(a); err != nil || !strings.Contains(string(b), `"device_protocols":{`) || !strings.Contains(string(b), `"non_osp_devices":["PSTN.example."`) {
		t.Errorf("JSON %s %v", b, err)
	}
}

// A reauthorization answers with the destination's settings of the moment:
// its protocol, and "0.0.0" once it is marked as not an OSP device, still
// with a token (the toolkit refuses a reauthorization answer without one).
func TestReauthorizationKeepsDestinationSettings(t *testing.T) {
	names := []string{"gw1.example", "gw2.example", "x.example", "t.example"}
	text := strings.Replace(reauthSourceConf, "%s", "enabled", 1)
	h := reauthHandler(t, text, names...)
	from := sourceAddrs(names)
	f, err := configfile.Parse("t.conf", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	h.app.DeviceProtocols = map[string]string{"X.example": "iax"}
	if err := h.app.rebuildRoutes(f); err != nil {
		t.Fatal(err)
	}
	rsp := authorizeCall(t, h, from["gw1.example"])
	if !rsp.Status.OK() || len(rsp.Destinations) != 1 {
		t.Fatalf("authorization: %v %+v", rsp.Status, rsp.Destinations)
	}
	if d := rsp.Destinations[0]; d.Protocol != "iax" || d.OSPVersion != "2.1.1" || len(d.Token) == 0 {
		t.Fatalf("authorization: %+v, want iax, 2.1.1 and a token", d)
	}
	reauth := func() *osp.ReauthorizationResponse {
		t.Helper()
		rr := reauthorize(t, h, rsp.TransactionID, rsp.Destinations[0].Token, from["gw1.example"])
		if !rr.Status.OK() || rr.Destination == nil || len(rr.Destination.Token) == 0 {
			t.Fatalf("reauthorization: %v %+v", rr.Status, rr.Destination)
		}
		return rr
	}
	if d := reauth().Destination; d.Protocol != "iax" || d.OSPVersion != "2.1.1" {
		t.Errorf("reauthorization: %q %q, want iax and 2.1.1", d.Protocol, d.OSPVersion)
	}
	h.app.NonOSPDevices = []string{"x.example"}
	if err := h.app.rebuildRoutes(f); err != nil {
		t.Fatal(err)
	}
	if d := reauth().Destination; d.Protocol != "iax" || d.OSPVersion != "0.0.0" {
		t.Errorf("reauthorization of a device now not an OSP device: %q %q, want iax and 0.0.0", d.Protocol, d.OSPVersion)
	}
}

// Names the file lacks are logged, one WARN per setting naming them all,
// and ignored: a typo, or a device removed from the file.
func TestWarnUnknownDestinationNames(t *testing.T) {
	cs, _, _ := testConfigState(t, "group \"\"\ndevice gw1.example \"\" enabled\n")
	core, logs := observer.New(zap.WarnLevel)
	a := &App{cfg: cs, log: zap.New(core), ConfigFile: "ch.conf",
		DeviceAddresses: map[string]string{"GW1.example": "192.0.2.1", "gone.example": "192.0.2.2"},
		DeviceProtocols: map[string]string{"gw1.example": "iax", "typo.example": "h323-Q931", "gone.example": "iax"},
		NonOSPDevices:   []string{"gw1.example.", "pstn.example"}}
	a.warnUnknownAddresses()
	got := map[string]string{}
	for _, e := range logs.All() {
		got[e.Message] = fmt.Sprint(e.ContextMap()["devices"])
	}
	want := map[string]string{
		"device_address names devices the configuration file lacks; ignored":  "[gone.example]",
		"device_protocol names devices the configuration file lacks; ignored": "[gone.example typo.example]",
		"non_osp_device names devices the configuration file lacks; ignored":  "[pstn.example]",
	}
	if !maps.Equal(got, want) || logs.Len() != len(want) {
		t.Errorf("warnings %v, want %v", got, want)
	}
}
