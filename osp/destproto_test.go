package osp

import (
	"strings"
	"testing"
)

// A destination's protocol and OSP status reach the answer's
// <SignalingProtocol> and <OSPVersion> as the toolkit spells and compares
// them; a destination that is not an OSP device gets "0.0.0", no token and
// a named service (the toolkit hands a token-less destination over only
// for a known one), the others a token each.
func TestAuthorizeDestinationProtocolAndNonOSP(t *testing.T) {
	p := testPKI(t)
	dests := []Destination{
		{SignalAddress: "10.0.0.1:5060"},
		{SignalAddress: "10.0.0.2:1720", Protocol: ProtocolH323Q931},
		{SignalAddress: "10.0.0.3:4569", Protocol: ProtocolIAX},
		{SignalAddress: "10.0.0.4:1720", Protocol: ProtocolH323LRQ, NonOSP: true},
		{SignalAddress: "10.0.0.5:5060", NonOSP: true},
	}
	want := []struct {
		proto, version, service string
		token                   bool
	}{
		{"sip", "2.1.1", "", true},
		{"h323-Q931", "2.1.1", "", true},
		{"iax", "2.1.1", "", true},
		{"h323-LRQ", "0.0.0", "voice", false},
		{"sip", "0.0.0", "voice", false},
	}
	rsp, err := Authorize(authRequest(t), dests, p.signer, testNow, 0)
	if err != nil {
		t.Fatal(err)
	}
	out, err := rsp.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := ParseAuthorisationResponse(out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(parsed.Destinations) != len(want) {
		t.Fatalf("%d destinations:\n%s", len(parsed.Destinations), out)
	}
	for i, d := range parsed.Destinations {
		w := want[i]
		if d.Protocol != w.proto || d.OSPVersion != w.version || d.Service != w.service || (len(d.Token) > 0) != w.token {
			t.Errorf("destination %d: protocol %q version %q service %q token %d bytes; want %+v", i, d.Protocol, d.OSPVersion, d.Service, len(d.Token), w)
		}
		if w.token {
			// the token carries no look-ahead: its SignalingProtocol and
			// OSPVersion would tell the terminating gateway where to
			// forward the call next (OSPPTransactionGetLookAheadInfoIfPresent)
			info, err := (&Verifier{Roots: p.roots, Now: fixedClock(testNow)}).Verify(d.Token, Call{"14048724799", "1678", d.CallID, d.SignalAddress})
			if err != nil {
				t.Errorf("destination %d: %v", i, err)
			} else if info.SignalAddress != d.SignalAddress {
				t.Errorf("destination %d: token for %q", i, info.SignalAddress)
			}
		}
	}
	s := string(out)
	for _, frag := range []string{
		"<SignalingProtocol>h323-Q931</SignalingProtocol>",
		"<SignalingProtocol>iax</SignalingProtocol>",
		"<OSPVersion>0.0.0</OSPVersion>",
		`<ServiceType type="voice"/>`,
	} {
		if !strings.Contains(s, frag) {
			t.Errorf("answer lacks %s:\n%s", frag, s)
		}
	}
	if n := strings.Count(s, "<Token "); n != 3 {
		t.Errorf("%d tokens, want 3 (the OSP devices'):\n%s", n, s)
	}

	// an explicit "0.0.0" is the same as NonOSP
	rsp, err = Authorize(authRequest(t), []Destination{{SignalAddress: "10.0.0.5:5060", OSPVersion: OSPVersionDisabled}}, p.signer, testNow, 0)
	if err != nil || rsp.Destinations[0].Token != nil || rsp.Destinations[0].OSPVersion != "0.0.0" {
		t.Errorf("OSPVersion 0.0.0: %v %+v", err, rsp)
	}
	// a request naming its service keeps it
	req := authRequest(t)
	req.Service = "video"
	rsp, err = Authorize(req, dests[4:], p.signer, testNow, 0)
	if err != nil || rsp.Destinations[0].Service != "video" {
		t.Errorf("video: %v %+v", err, rsp)
	}
}

// A protocol the toolkit does not know (or spells otherwise: it compares
// case-sensitively) is a server error, never written: the gateway would
// read OSPC_PROTNAME_UNKNOWN.
func TestAuthorizeUnknownProtocol(t *testing.T) {
	for _, proto := range []string{"H323-Q931", "SIP", "h323", "q931", "sips", " sip"} {
		if rsp, err := Authorize(authRequest(t), []Destination{{SignalAddress: "10.0.0.1:5060", Protocol: proto}}, nil, testNow, 0); err == nil {
			t.Errorf("%q: %+v", proto, rsp)
		} else if !strings.Contains(err.Error(), "h323-Q931") {
			t.Errorf("%q: the error names no allowed value: %v", proto, err)
		}
	}
	for _, proto := range Protocols() {
		if !ValidProtocol(proto) {
			t.Errorf("%q not valid", proto)
		}
		if _, err := Authorize(authRequest(t), []Destination{{SignalAddress: "10.0.0.1:5060", Protocol: proto}}, nil, testNow, 0); err != nil {
			t.Errorf("%q: %v", proto, err)
		}
	}
	if got := strings.Join(Protocols(), " "); got != "sip h323-Q931 h323-LRQ iax fax-T37 fax-T38 skype smpp xmpp sms" {
		t.Errorf("Protocols() = %s", got)
	}
}

// A reauthorization of a call to a destination that is not an OSP device
// keeps its protocol and "0.0.0" but carries a token: the toolkit's
// OSPPTransactionRequestReauthorisation refuses an answer without one.
func TestReauthorizeNonOSPDestination(t *testing.T) {
	p := testPKI(t)
	req := reauthRequest(t, p.signer, Destination{SignalAddress: "10.0.0.9:1720", Device: "gw9"})
	info, err := (&Verifier{Roots: p.roots, Now: fixedClock(testNow)}).VerifyReauthorization(req)
	if err != nil {
		t.Fatal(err)
	}
	rsp, err := Reauthorize(req, info, Destination{Protocol: ProtocolH323Q931, NonOSP: true}, p.signer, testNow, 0)
	if err != nil {
		t.Fatal(err)
	}
	d := rsp.Destination
	if rsp.Status != StatusOK || d == nil || d.Protocol != "h323-Q931" || d.OSPVersion != "0.0.0" || len(d.Token) == 0 {
		t.Fatalf("%+v %+v", rsp, d)
	}
	out, err := rsp.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseReauthorizationResponse(out)
	if err != nil || back.Destination.Protocol != "h323-Q931" || back.Destination.OSPVersion != "0.0.0" || len(back.Destination.Token) == 0 {
		t.Fatalf("%v %+v\n%s", err, back, out)
	}
}
