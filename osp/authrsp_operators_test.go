package osp

import (
	"bytes"
	"strings"
	"testing"
)

// toolkitOperatorNames is what test_app's menu 211 (SetOperatorName for
// every type, each name its type's) adds after the number portability
// data, in the toolkit's element form (src/ospauthreq.c,
// OSPPOperatorNameToElement).
const toolkitOperatorNames = "<DestinationInfo type=\"spid\">\nspid</DestinationInfo>\n" +
	"<DestinationInfo type=\"altspid\">\naltspid</DestinationInfo>\n" +
	"<DestinationInfo type=\"ocn\">\nocn</DestinationInfo>\n" +
	"<DestinationInfo type=\"spn\">\nspn</DestinationInfo>\n" +
	"<DestinationInfo type=\"altspn\">\naltspn</DestinationInfo>\n" +
	"<DestinationInfo type=\"mcc\">\nmcc</DestinationInfo>\n" +
	"<DestinationInfo type=\"mnc\">\nmnc</DestinationInfo>\n"

// The operator names a request carries are echoed in every destination,
// after the number portability data and before the called number, where
// the toolkit reads them by type (OSPPDestInfoFromElement); the token
// stays without them, and the called number stays the one the toolkit and
// ParseAuthorisationResponse find.
func TestAuthorizeOperatorNames(t *testing.T) {
	req, err := ParseAuthorizationRequest(withNP(t, "authorization-request.xml", toolkitNP+toolkitOperatorNames))
	if err != nil {
		t.Fatal(err)
	}
	want := []Info{{TypeSPID, "spid"}, {TypeAltSPID, "altspid"}, {TypeOCN, "ocn"}, {TypeSPN, "spn"},
		{TypeAltSPN, "altspn"}, {TypeMCC, "mcc"}, {TypeMNC, "mnc"}}
	if got := req.OperatorNames(); !sameInfos(got, want) {
		t.Fatalf("request's operator names %v, want %v", got, want)
	}
	if req.Called() != (Info{TypeE164, "1678"}) || req.NumberPortability() != toolkitNPData {
		t.Fatalf("called %v, np %+v", req.Called(), req.NumberPortability())
	}
	dests := []Destination{{SignalAddress: "10.0.0.1:5060", Device: "trunk-1"}, {SignalAddress: "gw.example.net"}}
	rsp, err := Authorize(req, dests, nil, testNow, 0)
	if err != nil || rsp.Status != StatusOK {
		t.Fatalf("%v %+v", err, rsp)
	}
	out, err := rsp.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	wantInfos := "<DestinationInfo type=\"npdi\">true</DestinationInfo>\n" +
		strings.ReplaceAll(toolkitOperatorNames, "\">\n", "\">") +
		"<DestinationInfo type=\"e164\">1678</DestinationInfo>\n"
	if n := strings.Count(string(out), wantInfos); n != len(dests) {
		t.Errorf("%d destinations with\n%s\nin\n%s", n, wantInfos, out)
	}
	back, err := ParseAuthorisationResponse(out)
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range back.Destinations {
		if !sameInfos(d.OperatorNames, want) || d.DestinationInfo != (Info{TypeE164, "1678"}) || d.NumberPortability != toolkitNPData {
			t.Errorf("destination %d parsed back: %v %v %+v", i, d.OperatorNames, d.DestinationInfo, d.NumberPortability)
		}
		if bytes.Contains(rsp.Destinations[i].Token, []byte("spid")) {
			t.Errorf("destination %d: token with operator names: %s", i, rsp.Destinations[i].Token)
		}
	}

	// without operator names nothing of them is written: the answers the
	// toolkit already takes stay byte for byte what they were
	plain, err := Authorize(authRequest(t), dests, nil, testNow, 0)
	if err != nil {
		t.Fatal(err)
	}
	if out, _ := plain.Marshal(); bytes.Contains(out, []byte("spid")) || plain.Destinations[0].OperatorNames != nil {
		t.Errorf("answer without operator names:\n%s", out)
	}
}

// Only names the toolkit can store back (OpName is char[256], filled by
// strncpy) are echoed, the first of each type, in the toolkit's order;
// the others are left out and the call goes on.
func TestOperatorNamesEchoed(t *testing.T) {
	long := strings.Repeat("o", maxOperatorName)
	for _, tc := range []struct {
		name  string
		infos string
		want  []Info
	}{
		{"none", "", nil},
		{"one", `<DestinationInfo type="ocn">1234</DestinationInfo>`, []Info{{TypeOCN, "1234"}}},
		{"toolkit order, first of each type",
			`<DestinationInfo type="mnc">01</DestinationInfo><DestinationInfo type="spid">A</DestinationInfo><DestinationInfo type="spid">B</DestinationInfo>`,
			[]Info{{TypeSPID, "A"}, {TypeMNC, "01"}}},
		{"longest", `<DestinationInfo type="spn">` + long + `</DestinationInfo>`, []Info{{TypeSPN, long}}},
		{"too long", `<DestinationInfo type="spn">` + long + `o</DestinationInfo><DestinationInfo type="mcc">310</DestinationInfo>`, []Info{{TypeMCC, "310"}}},
		{"control character", `<DestinationInfo type="spn">A&#x9;B</DestinationInfo>`, nil},
		{"empty", `<DestinationInfo type="spid"></DestinationInfo>`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := ParseAuthorizationRequest(withNP(t, "authorization-request.xml", tc.infos))
			if err != nil {
				t.Fatal(err)
			}
			rsp, err := Authorize(req, []Destination{{SignalAddress: "10.0.0.1:5060"}}, nil, testNow, 0)
			if err != nil || rsp.Status != StatusOK {
				t.Fatalf("%v %+v", err, rsp)
			}
			if got := rsp.Destinations[0].OperatorNames; !sameInfos(got, tc.want) {
				t.Errorf("echoed %v, want %v", got, tc.want)
			}
			out, _ := rsp.Marshal()
			back, err := ParseAuthorisationResponse(out)
			if err != nil || !sameInfos(back.Destinations[0].OperatorNames, tc.want) || back.Destinations[0].DestinationInfo.Value != "1678" {
				t.Errorf("parsed back: %v %+v\n%s", err, back, out)
			}
		})
	}
}

func sameInfos(a, b []Info) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// test_app sets every operator name (menu 211) and reads them back from
// the answer's first destination (251, OSPPTransactionGetOperatorName):
// the unmodified toolkit finds each echoed name, and the call still
// validates and reports usage.
func TestToolkitOperatorNames(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the OSP Toolkit's test_app")
	}
	srv := &toolkitServer{t: t, dests: []Destination{{SignalAddress: "127.0.0.2:5060"}}}
	steps := []int{1, 23, 211, 29, 27, 251, 31, 32, 24}
	codes, out := runTestApp(t, srv, steps...)
	for i, c := range codes {
		if c != 0 {
			t.Fatalf("step %d (menu %d) returned %d:\n%s", i, steps[i], c, out)
		}
	}
	for _, typ := range operatorNameTypes {
		if want := typ + " = '" + typ + "'\n"; !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "authorised = 1") {
		t.Errorf("the token does not validate:\n%s", out)
	}
	if len(srv.requests) == 0 || !bytes.Contains(srv.requests[0], []byte(toolkitOperatorNames)) {
		t.Errorf("the request lacks\n%s", toolkitOperatorNames)
	}
}
