package osp

import (
	"strings"
	"testing"
)

// A device name goes to the source as the destination's network id only
// when gateways can put it unescaped into a SIP URI parameter (OpenSIPS
// appends ";networkid=<id>" to the Request-URI); the token names the
// device whatever its name, for the terminating side and reauthorization.
func TestAuthorizeNetworkIDForSource(t *testing.T) {
	for _, tc := range []struct {
		device string
		sent   bool
	}{
		{"device2.itsp.com", true},
		{"trunk-1", true},
		{"AT&T", true},
		{"[2001:db8::1]:5060", true},
		{"a_b.c!~*'()/+$", true},
		{"GW 1", false},
		{"a;b", false},
		{"a@b", false},
		{"x=y", false},
		{"Télécom", false},
		{"a%20b", false}, // an escape would be read back as a space
		{`"q"`, false},
		{"a>b", false},
	} {
		t.Run(tc.device, func(t *testing.T) {
			rsp, err := Authorize(authRequest(t), []Destination{{SignalAddress: "10.0.0.1:5060", Device: tc.device}}, nil, testNow, 0)
			if err != nil || rsp.Status != StatusOK {
				t.Fatalf("%v %+v", err, rsp)
			}
			out, err := rsp.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParseAuthorisationResponse(out)
			if err != nil {
				t.Fatal(err)
			}
			d := back.Destinations[0]
			want := ""
			if tc.sent {
				want = tc.device
			}
			if d.NetworkID != want || strings.Contains(string(out), `<DestinationAlternate type="network">`) != tc.sent {
				t.Errorf("destination's network id %q, want %q:\n%s", d.NetworkID, want, out)
			}
			info, err := ParseTokenInfo(d.Token)
			if err != nil || info.NetworkID != tc.device {
				t.Errorf("token's network id %q (%v), want %q", info.NetworkID, err, tc.device)
			}
		})
	}
}

// A reauthorization's destination follows the same rule; its token keeps
// the device the call's token named.
func TestReauthorizeNetworkIDForSource(t *testing.T) {
	rsp, err := Authorize(authRequest(t), []Destination{{SignalAddress: "10.0.0.1:5060", Device: "GW 1"}}, nil, testNow, 0)
	if err != nil {
		t.Fatal(err)
	}
	info, err := ParseTokenInfo(rsp.Destinations[0].Token)
	if err != nil {
		t.Fatal(err)
	}
	req := &ReauthorizationRequest{MessageID: "m", ComponentID: "c", TransactionID: info.TransactionID, CallID: info.CallID,
		SourceInfo: []Info{info.SourceInfo}, DestinationInfo: []Info{info.DestinationInfo}}
	rr, err := Reauthorize(req, info, Destination{}, nil, testNow, 0)
	if err != nil || rr.Status != StatusOK {
		t.Fatalf("%v %+v", err, rr)
	}
	again, err := ParseTokenInfo(rr.Destination.Token)
	if rr.Destination.NetworkID != "" || err != nil || again.NetworkID != "GW 1" {
		t.Errorf("destination %q, token %q (%v)", rr.Destination.NetworkID, again.NetworkID, err)
	}
}
