package osp

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// usage-indication-setters.xml is the UsageIndication the OSP Toolkit's
// test_app sent, byte for byte, after every setter its menu has for a
// usage: 1, 23, 55 (pricing), 222 (network and switch ids), 29, 27, 200
// (role info), 220 (protocols), 221 (codecs), 222, 223 (session ids), 224
// (custom info), 226 (call party info), 227, 228 (transfer), 229, 230,
// 231, 233, 234 (user agent), 235 (media addresses), 236 (proxy
// addresses), 238 (JIP), 239, 240 (charging vector), 241, 242 (STIR), 216
// (realms), 218 (SIP headers), 217, 211 (operator names), 245 (redirect),
// 32, 24, captured with toolkitServer.

// The elements of a toolkit's usage that no field of Usage holds are kept
// whole, in message order, in Extra (children of <UsageIndication>, and
// of <RoleInfo> other than State) and ExtraDetail (of <UsageDetail>);
// every <SignalingProtocol> in Protocols. Marshal writes them back.
func TestUsageKeepsToolkitElements(t *testing.T) {
	m, err := ParseUsageIndication(readTestdata(t, "usage-indication-setters.xml"))
	if err != nil {
		t.Fatal(err)
	}
	u := m.Usages[0]
	names := func(es []Element) string {
		var s []string
		for _, e := range es {
			s = append(s, e.Name)
		}
		return strings.Join(s, " ")
	}
	wantExtra := "RoleInfo PricingIndication CustomInfo CustomInfo CallingPartyInfo CalledPartyInfo TransferId TransferStatus " +
		"SourceRealm DestinationRealm ContactSourceInfo DiversionSourceInfo DiversionSourceInfo DiversionSourceInfo " +
		"FromSourceInfo FromSourceInfo FromSourceInfo FromSourceInfo IdBypassSourceInfo IdentitySourceInfo " +
		"AssertedIdSourceInfo AssertedIdSourceInfo AssertedIdSourceInfo AssertedIdSourceInfo " +
		"ChargeInfoSourceInfo ChargeInfoSourceInfo ChargeInfoSourceInfo " +
		"RemotePartyIdSourceInfo RemotePartyIdSourceInfo RemotePartyIdSourceInfo " +
		"RequestDestinationInfo ToDestinationInfo ToDestinationInfo DiversionDeviceInfo ApplicationId " +
		"NetworkTranslatedCalledNumber ServiceProviderId ServiceProviderId SystemId CDRProxy JIP CallType CallCategory " +
		"NetworkType SipRequestDate SdpFingerprint SdpFingerprint SdpFingerprint ChargingVector SubscriberRatePlan UserAgent " +
		"StirInfo StirInfo OriginalRedirectOnBehalfOf LastRedirectOnBehalfOf OriginalRedirectReason LastRedirectReason"
	if got := names(u.Extra); got != wantExtra {
		t.Errorf("Extra\n%s\nwant\n%s", got, wantExtra)
	}
	wantDetail := "Codec Codec Codec Codec SessionId SessionId SessionId SessionId SessionId " +
		"SourceAudioAddress SourceVideoAddress DestinationAudioAddress DestinationVideoAddress"
	if got := names(u.ExtraDetail); got != wantDetail {
		t.Errorf("ExtraDetail\n%s\nwant\n%s", got, wantDetail)
	}
	wantProtocols := []Info{{"source", "h323-LRQ"}, {"destination", "h323-Q931"}, {"na", "iax"}}
	if !reflect.DeepEqual(u.Protocols, wantProtocols) || u.Protocol != wantProtocols[1] {
		t.Errorf("Protocols %v, Protocol %v", u.Protocols, u.Protocol)
	}
	if u.RoleState != "stop1" || u.GroupID != "E4596A7B-2C27-11D9-816A-EA39F2B2CD06" {
		t.Errorf("RoleState %q GroupID %q", u.RoleState, u.GroupID)
	}
	flat := FlattenAll([]Element{{Children: u.Extra}, {Children: u.ExtraDetail}})
	for k, v := range map[string]string{
		"RoleInfo.Format":                                         "radius",
		"RoleInfo.VendorInfo":                                     "cisco",
		"PricingIndication.Amount":                                "0.100",
		"PricingIndication.Currency":                              "USD",
		"CustomInfo[encoding:base64,index:1]":                     "Q3VzdG9tSW5mb19maXJzdA==",
		"CallingPartyInfo.UserId":                                 "callinguserid",
		"CalledPartyInfo.UserGroup":                               "calledusergroup",
		"ChargingVector[type:icidvalue]":                          "PCVICID",
		"UserAgent":                                               "Cisco-SIPGateway/IOS-12.x",
		"JIP":                                                     "404526",
		"StirInfo[type:verification].Attestation":                 "B",
		"SdpFingerprint#3":                                        "fingerprint3",
		"RemotePartyIdSourceInfo[type:sip]":                       `"'Eric Smith' of AT&T" <sip:2001@att.com>;privacy=off;screen=no`,
		"Codec[service:video,type:destination]":                   "alaw",
		"SessionId[encoding:base64,type:correlation]":             "Y29ycmVsYXRpb25jYWxsaWQ=",
		"DestinationAudioAddress":                                 "[172.16.0.1]:6002",
		"StirInfo[type:authentication].OutOfBand.CpsResponseCode": "200",
	} {
		if flat[k] != v {
			t.Errorf("%s = %q, want %q", k, flat[k], v)
		}
	}

	// written back: the same usage parses from what Marshal writes
	out, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	m2, err := ParseUsageIndication(out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !reflect.DeepEqual(m2.Usages[0], u) {
		t.Errorf("after Marshal\n%+v\nwant\n%+v", m2.Usages[0], u)
	}
}

// Unknown elements are kept when marked critical="false" and refused
// otherwise, at every level, as before they were kept.
func TestUsageExtraUnknownElements(t *testing.T) {
	const amount = "<Amount>\n30.000</Amount>\n<Increment>\n1</Increment>\n<Unit>\ns</Unit>\n"
	usage := func(before, detail string) []byte {
		return []byte(strings.Replace(string(toolkitUsage(amount+detail)), "<UsageDetail>\n", before+"<UsageDetail>\n", 1))
	}
	vendor := Element{Name: "Vendor", Attrs: []Attr{{"critical", "false"}}, Children: []Element{{Name: "X", Value: "1"}}}
	for _, tc := range []struct {
		name          string
		doc           []byte
		extra, detail []Element
		critical      bool
	}{
		{name: "none", doc: usage("", "")},
		{name: "in the indication", doc: usage(`<Vendor critical="false"><X>1</X></Vendor>`, ""), extra: []Element{vendor}},
		{name: "in the detail", doc: usage("", `<Vendor critical="false"><X>1</X></Vendor>`), detail: []Element{vendor}},
		{
			name:  "in RoleInfo",
			doc:   usage("<RoleInfo>\n<State>\nstop</State>\n<Vendor critical=\"false\"><X>1</X></Vendor>\n</RoleInfo>\n", ""),
			extra: []Element{{Name: "RoleInfo", Children: []Element{vendor}}},
		},
		{
			name:  "in Group",
			doc:   usage("<Group>\n<GroupId>\ng</GroupId>\n<Vendor critical=\"false\"><X>1</X></Vendor>\n</Group>\n", ""),
			extra: []Element{{Name: "Group", Children: []Element{vendor}}},
		},
		{name: "critical in the indication", doc: usage("<Vendor>1</Vendor>", ""), critical: true},
		{name: "critical in the detail", doc: usage("", `<Vendor critical="true">1</Vendor>`), critical: true},
		{name: "critical in RoleInfo", doc: usage("<RoleInfo><Vendor>1</Vendor></RoleInfo>", ""), critical: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseUsageIndication(tc.doc)
			if tc.critical {
				if !errors.Is(err, ErrCriticalElement) {
					t.Fatalf("err %v, want ErrCriticalElement", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			u := m.Usages[0]
			if !reflect.DeepEqual(u.Extra, tc.extra) || !reflect.DeepEqual(u.ExtraDetail, tc.detail) {
				t.Errorf("Extra %+v ExtraDetail %+v, want %+v %+v", u.Extra, u.ExtraDetail, tc.extra, tc.detail)
			}
		})
	}
}
