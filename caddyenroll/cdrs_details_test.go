package caddyenroll

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/clearinghouse-dev/caddy-clearinghouse/osp"
)

// capturedSettersUsage is the UsageIndication test_app sent after every
// setter its menu has for a usage (osp/testdata/usage-indication-setters.xml),
// parsed.
func capturedSettersUsage(t *testing.T) *osp.UsageIndication {
	t.Helper()
	raw, err := os.ReadFile("../osp/testdata/usage-indication-setters.xml")
	if err != nil {
		t.Fatal(err)
	}
	return parseUsage(t, raw)
}

// csvPairsOf reads a statistics or details cell back (splitCSVList, then
// each item's first "=").
func csvPairsOf(cell string) map[string]string {
	out := map[string]string{}
	for _, it := range splitCSVList(cell) {
		k, v, _ := strings.Cut(it, "=")
		out[k] = v
	}
	return out
}

// What the toolkit reports beyond the record's columns (call party info,
// pricing, codecs, session ids, network and switch ids, proxy addresses,
// every signaling protocol, custom info, charging vector, STIR…), which
// earlier versions dropped, is in the record's details and both exports:
// the JSON's "details" object and the CSV's last column, with the values
// exactly as the device wrote them.
func TestCDRKeepsToolkitDetails(t *testing.T) {
	if cdrCSVHeader[len(cdrCSVHeader)-1] != "details" {
		t.Fatalf("CSV header %q: details is not the last column", cdrCSVHeader)
	}
	now := at("2026-11-27T15:42:00Z")
	a, _, _ := cdrTestApp(t, now)
	ind := capturedSettersUsage(t)
	mustStore(t, a, cdrFromUsage(&ind.Usages[0], "gw1", now))
	list, rows := exportCDRs(t, a)
	if len(list) != 1 {
		t.Fatalf("%d records", len(list))
	}
	jd, _ := list[0]["details"].(map[string]any)
	cd := csvPairsOf(rows[0]["details"])
	for k, want := range map[string]string{
		"CallingPartyInfo.UserName":                 "callingusername",
		"CallingPartyInfo.UserId":                   "callinguserid",
		"CallingPartyInfo.UserGroup":                "callingusergroup",
		"CalledPartyInfo.UserId":                    "calleduserid",
		"PricingIndication.Amount":                  "0.100",
		"PricingIndication.Increment":               "60",
		"PricingIndication.Unit":                    "s",
		"PricingIndication.Currency":                "USD",
		"Codec[service:voice,type:source]":          "g729",
		"Codec[service:video,type:destination]":     "alaw",
		"SessionId[encoding:base64,type:source]":    "c291cmNlY2FsbGlk",
		"SignalingProtocol[type:source]":            "h323-LRQ",
		"SignalingProtocol[type:destination]":       "h323-Q931",
		"SignalingProtocol[type:na]":                "iax",
		"SourceAlternate[type:network]":             "SrcNetworkId",
		"SourceAlternate[type:switchId]":            "SrcSwitchId",
		"SourceAlternate[type:ingress]":             "[172.16.0.1]:5060",
		"SourceAlternate[type:egress]":              "[192.168.0.1]:5070",
		"DestinationAlternate[type:switchId]":       "DestSwitchId",
		"DestinationInfo[type:spid]":                "spid",
		"CustomInfo[index:17]":                      "true",
		"ChargingVector[type:icidvalue]":            "PCVICID",
		"UserAgent":                                 "Cisco-SIPGateway/IOS-12.x",
		"SourceRealm":                               "SourceRealm",
		"JIP":                                       "404526",
		"RoleInfo.VendorInfo":                       "cisco",
		"StirInfo[type:authentication].Attestation": "A",
		"LastRedirectReason":                        "No route to specified transit network",
		"RemotePartyIdSourceInfo[type:sip]":         `"'Eric Smith' of AT&T" <sip:2001@att.com>;privacy=off;screen=no`,
		"DestinationVideoAddress":                   "gateway.transnexus.com:6003",
	} {
		if jd[k] != want {
			t.Errorf("JSON details %s: %#v, want %q", k, jd[k], want)
		}
		if cd[k] != want {
			t.Errorf("CSV details %s: %q, want %q", k, cd[k], want)
		}
	}
	if len(cd) != len(jd) {
		t.Errorf("CSV details has %d values, JSON %d", len(cd), len(jd))
	}
	// the modeled ones stay in their columns only
	for _, k := range []string{"Amount", "CustomerId", "Statistics.LossSent.Packets", "Timestamp", "RoleInfo.State", "Group.GroupId"} {
		if _, ok := jd[k]; ok {
			t.Errorf("JSON details has %s, which a column holds", k)
		}
	}
}

// The details cell is device text like the statistics cell: a value
// holding ";", "\", separators or line breaks stays one value, a name
// cannot be forged by a value, and no cell starts with a formula for a
// spreadsheet splitting on ",", ";" or tabs.
func TestCDRDetailsCellExact(t *testing.T) {
	now := at("2026-11-27T15:42:00Z")
	a, _, _ := cdrTestApp(t, now)
	u := capturedUsage(t).Usages[0]
	u.SourceInfo, u.DestinationInfo, u.SourceAlternate, u.DestinationAlternate, u.Protocols = nil, nil, nil, nil, nil
	u.Extra = []osp.Element{
		{Name: "-x", Value: "=cmd|' /C calc'!A0"}, // the cell starts with this name
		{Name: "UserAgent", Value: "a;b=c\\d,\"e\"\n\t@SUM(1)"},
		{Name: "CustomInfo", Attrs: []osp.Attr{{Name: "index", Value: "1;x=y"}}, Value: "v"},
	}
	want := map[string]string{"-x": "=cmd|' /C calc'!A0", "UserAgent": "a;b=c\\d,\"e\"\n\t@SUM(1)", "CustomInfo[index:1%3Bx%3Dy]": "v"}
	mustStore(t, a, cdrFromUsage(&u, "gw1", now))
	list, rows := exportCDRs(t, a)
	jd := map[string]string{}
	for k, v := range list[0]["details"].(map[string]any) {
		jd[k] = v.(string)
	}
	if !reflect.DeepEqual(jd, want) {
		t.Errorf("JSON details %q, want %q", jd, want)
	}
	if cell := rows[0]["details"]; !strings.HasPrefix(cell, "'-x=") {
		t.Errorf("details cell %q does not start with an apostrophe", cell)
	} else if got := csvPairsOf(cell); !reflect.DeepEqual(got, want) {
		t.Errorf("CSV details %q reads as %q, want %q", cell, got, want)
	}
}
