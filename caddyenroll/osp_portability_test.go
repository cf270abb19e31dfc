package caddyenroll

import (
	"context"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/osp"
)

// npConf: gw1.example's route for the dialed numbers 1405… leads to
// donor.example, the network the numbers belong to; its route for the
// routing numbers 1678 555… to recipient.example, the switch a ported
// number moved to. The group has no other route (no catch-all).
const npConf = `group acme
group carrier
device gw1.example acme enabled enrolled
device donor.example carrier enabled enrolled
device recipient.example carrier enabled enrolled
route acme '1405...' donor.example 1
route acme '+1 678 555...' recipient.example 1
`

// npAuthBody is gw1.example's authorization request for a call to
// 14055550123 with the number portability data np carries, as the
// toolkit writes it (DestinationInfo elements after the called number).
func npAuthBody(t *testing.T, np []osp.Info) []byte {
	t.Helper()
	req := &osp.AuthorizationRequest{MessageID: "1", ComponentID: "2", Timestamp: time.Now().UTC(),
		CallIDs: [][]byte{[]byte("call-1")}, SourceInfo: []osp.Info{{Type: "e164", Value: "14045550100"}},
		DestinationInfo: append([]osp.Info{{Type: "e164", Value: "14055550123"}}, np...)}
	body, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// A call to a ported number is routed on the routing number its source
// sends (README, Number portability): the route for 1678 555… leads to
// recipient.example, where the number is served now, while the dialed
// number's route leads to donor.example. The answer and its token keep
// the dialed number, which the terminating gateway compares with the
// call's, and echo the routing number, CIC and npdi. Without a routing
// number (not ported, npdi alone, a CIC alone) the dialed number routes;
// one the route table cannot take is refused with 489, one without a route
// gets 404, never the donor's route.
func TestOSPRoutesOnRoutingNumber(t *testing.T) {
	h := reauthHandler(t, npConf, "gw1.example")
	const from = "192.0.2.1:5060"
	rn := func(v string) osp.Info { return osp.Info{Type: osp.TypeRoutingNumber, Value: v} }
	cic := osp.Info{Type: osp.TypeCIC, Value: "0288"}
	npdi := osp.Info{Type: osp.TypeNPDI, Value: "true"}
	for _, tc := range []struct {
		name   string
		np     []osp.Info
		status osp.Status
		dest   string // the device of the one destination
	}{
		{"not ported", nil, osp.StatusOK, "donor.example"},
		{"ported, as the toolkit sends it", []osp.Info{rn("16785550000"), cic, npdi}, osp.StatusOK, "recipient.example"},
		{"a routing number without npdi", []osp.Info{rn("+1 678-555-0000")}, osp.StatusOK, "recipient.example"},
		{"queried, not ported (npdi alone)", []osp.Info{npdi}, osp.StatusOK, "donor.example"},
		{"a CIC alone", []osp.Info{cic}, osp.StatusOK, "donor.example"},
		{"a routing number without a route", []osp.Info{rn("19995550000"), npdi}, osp.StatusNoRoute, ""},
		{"a routing number that is no number", []osp.Info{rn("D123"), npdi}, osp.StatusDestinationInvalid, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := postOSP(t, h, npAuthBody(t, tc.np), from)
			rsp, err := osp.ParseAuthorisationResponse(out)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if rsp.Status != tc.status {
				t.Fatalf("status %v, want %v\n%s", rsp.Status, tc.status, out)
			}
			if tc.dest == "" {
				if len(rsp.Destinations) != 0 {
					t.Fatalf("destinations %+v", rsp.Destinations)
				}
				return
			}
			if len(rsp.Destinations) != 1 || rsp.Destinations[0].NetworkID != tc.dest {
				t.Fatalf("destinations %+v, want %s", rsp.Destinations, tc.dest)
			}
			d := rsp.Destinations[0]
			want := (&osp.AuthorizationRequest{DestinationInfo: tc.np}).NumberPortability()
			if d.DestinationInfo.Value != "14055550123" || d.NumberPortability != want {
				t.Errorf("destination: called %v, number portability %+v, want 14055550123 and %+v", d.DestinationInfo, d.NumberPortability, want)
			}
			// the terminating gateway checks the token against the call
			// it receives: to the dialed number
			v := &osp.Verifier{AllowUnsigned: true, Now: time.Now}
			call := osp.Call{Calling: "14045550100", Called: "14055550123", CallID: []byte("call-1"), Destination: d.SignalAddress}
			info, err := v.Verify(d.Token, call)
			if err != nil {
				t.Fatalf("token for the dialed number: %v", err)
			}
			if info.NumberPortability != want {
				t.Errorf("token: number portability %+v, want %+v", info.NumberPortability, want)
			}
		})
	}
}

// A call routed on its routing number is extended as it was routed: the
// reauthorization routes on the routing number the call's token carries
// (the dialed number's route leads to donor.example, not to the token's
// destination), and the fresh token carries it again.
func TestOSPReauthorizationRoutesOnTokensRoutingNumber(t *testing.T) {
	h := reauthHandler(t, npConf, "gw1.example")
	const from = "192.0.2.1:5060"
	np := []osp.Info{{Type: osp.TypeRoutingNumber, Value: "16785550000"}, {Type: osp.TypeNPDI, Value: "true"}}
	rsp, err := osp.ParseAuthorisationResponse(postOSP(t, h, npAuthBody(t, np), from))
	if err != nil || !rsp.Status.OK() || len(rsp.Destinations) != 1 || rsp.Destinations[0].NetworkID != "recipient.example" {
		t.Fatalf("authorization: %v %+v", err, rsp)
	}
	token := rsp.Destinations[0].Token
	for i := range 2 { // the fresh token extends the call again
		re := &osp.ReauthorizationRequest{MessageID: "3", ComponentID: "4", Timestamp: time.Now().UTC(), Role: "source",
			CallID: []byte("call-1"), SourceInfo: []osp.Info{{Type: "e164", Value: "14045550100"}},
			DestinationInfo: []osp.Info{{Type: "e164", Value: "14055550123"}}, TransactionID: rsp.TransactionID, Tokens: [][]byte{token}}
		body, err := re.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		rr := reauthAnswer(t, h, body, from)
		if !rr.Status.OK() || rr.Destination == nil || rr.Destination.NetworkID != "recipient.example" ||
			rr.Destination.NumberPortability.RoutingNumber != "16785550000" || rr.Destination.DestinationInfo.Value != "14055550123" {
			t.Fatalf("reauthorization %d: %v %+v", i, rr.Status, rr.Destination)
		}
		token = rr.Destination.Token
	}
}

// Usage reported with number portability data, as the toolkit reports it
// (after the called number), is stored with the routing number, CIC and
// npdi; the called number stays the dialed one.
func TestOSPUsageKeepsNumberPortability(t *testing.T) {
	h := reauthHandler(t, npConf, "gw1.example")
	u := osp.Usage{ComponentID: "5", Timestamp: time.Now().UTC().Truncate(time.Second), Role: "source", TransactionID: 7,
		CallID: []byte("call-1"), SourceInfo: []osp.Info{{Type: "e164", Value: "14045550100"}},
		DestinationInfo: []osp.Info{{Type: "e164", Value: "14055550123"}, {Type: osp.TypeRoutingNumber, Value: "16785550000"},
			{Type: osp.TypeCIC, Value: "0288"}, {Type: osp.TypeNPDI, Value: "true"}},
		DestinationAlternate: []osp.Info{{Type: "transport", Value: "[192.0.2.9]:5060"}}, Duration: 30 * time.Second}
	body, err := (&osp.UsageIndication{MessageID: "4", Usages: []osp.Usage{u}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	cnf, err := osp.ParseUsageConfirmation(postOSP(t, h, body, netip.MustParseAddrPort("192.0.2.1:5060").String()))
	if err != nil || !cnf.Confirmations[0].Status.OK() {
		t.Fatalf("%v %+v", err, cnf)
	}
	list, err := h.app.cdrs(context.Background(), dayRange{})
	if err != nil || len(list) != 1 {
		t.Fatalf("%v %+v", err, list)
	}
	c := list[0]
	if c.Called != "14055550123" || c.RoutingNumber != "16785550000" || c.CIC != "0288" || !c.NPDI {
		t.Errorf("record %+v", c)
	}
}

// The exports name the number portability data in the columns after
// transaction_source; a record without it, or of an earlier version,
// leaves them out of the JSON and empty in the CSV.
func TestCDRNumberPortabilityColumns(t *testing.T) {
	ported := "<DestinationInfo type=\"routingnumber\">\n13243546576</DestinationInfo>\n" +
		"<DestinationInfo type=\"cic\">\nNPCic</DestinationInfo>\n" +
		"<DestinationInfo type=\"npdi\">\ntrue</DestinationInfo>\n"
	const called = "<DestinationInfo type=\"e164\">\n1678</DestinationInfo>\n"
	if i := slices.Index(cdrCSVHeader, "transaction_source"); i < 0 || i+4 > len(cdrCSVHeader) ||
		!reflect.DeepEqual(cdrCSVHeader[i:i+4], []string{"transaction_source", "routing_number", "cic", "npdi"}) {
		t.Fatalf("CSV header %q: the number portability columns come right after transaction_source", cdrCSVHeader)
	}
	for _, tc := range []struct {
		name, np string
		json     map[string]any // nil values: left out
		csv      map[string]string
	}{
		{"as test_app reports it", ported,
			map[string]any{"routing_number": "13243546576", "cic": "NPCic", "npdi": true},
			map[string]string{"routing_number": "13243546576", "cic": "NPCic", "npdi": "true"}},
		{"not reported", "",
			map[string]any{"routing_number": nil, "cic": nil, "npdi": nil},
			map[string]string{"routing_number": "", "cic": "", "npdi": ""}},
		{"a routing number starting with +", "<DestinationInfo type=\"routingnumber\">\n+13243546576</DestinationInfo>\n",
			map[string]any{"routing_number": "+13243546576", "cic": nil, "npdi": nil},
			map[string]string{"routing_number": "'+13243546576", "cic": "", "npdi": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := at("2026-11-25T03:04:45Z")
			a, _, _ := cdrTestApp(t, now)
			b, err := os.ReadFile("../osp/testdata/usage-indication.xml")
			if err != nil {
				t.Fatal(err)
			}
			raw := string(b)
			if strings.Count(raw, called) != 1 {
				t.Fatal("the captured usage's called number")
			}
			ind := parseUsage(t, []byte(strings.Replace(raw, called, called+tc.np, 1)))
			mustStore(t, a, cdrFromUsage(&ind.Usages[0], "gw1", now))
			list, rows := exportCDRs(t, a)
			for name, want := range tc.json {
				if got, ok := list[0][name]; got != want || ok != (want != nil) {
					t.Errorf("JSON %s: %#v (present %v), want %#v", name, got, ok, want)
				}
			}
			for name, want := range tc.csv {
				if rows[0][name] != want {
					t.Errorf("CSV %s: %q, want %q", name, rows[0][name], want)
				}
			}
			if list[0]["called"] != "1678" {
				t.Errorf("called %v, want the dialed 1678", list[0]["called"])
			}
		})
	}
}
