package osp

import (
	"strings"
	"testing"
	"time"
)

// toolkitUsage is a UsageIndication as the OSP Toolkit's ReportUsage writes
// it (OSPPUsageIndToElement, src/ospusageind.c), with detail as the
// content of its <UsageDetail>.
func toolkitUsage(detail string) []byte {
	return []byte(`<?xml version="1.0"?><Message messageId="12345673" random="2043134229">
<UsageIndication componentId="12345672">
<Timestamp>
2026-11-25T03:04:41Z</Timestamp>
<Role>
source</Role>
<TransactionId>
1234567</TransactionId>
<CallId encoding="base64">
MQ==</CallId>
<SourceInfo type="e164">
14048724799</SourceInfo>
<DestinationInfo type="e164">
1678</DestinationInfo>
<DestinationAlternate type="transport">
[127.0.0.2]:5060</DestinationAlternate>
<UsageDetail>
` + detail + `</UsageDetail>
</UsageIndication>
</Message>
`)
}

// The toolkit writes one <SignalingProtocol> per protocol type the call has
// (source, destination, na: test_app menu 220 sets all three) and two
// <PostDialDelay>: type="destination" the provider's
// (OSPPTransactionSetProviderPDD, written first), type="source" the
// gateway's own (OSPPUsageToElement, only when it has one). Usage.Protocol
// is the destination's and PostDialDelay the source's, whatever the order
// and whichever others come along.
func TestUsageDetailTypedElements(t *testing.T) {
	const amount = "<Amount>\n30.000</Amount>\n<Increment>\n1</Increment>\n<Unit>\ns</Unit>\n"
	cases := []struct {
		name      string
		detail    string
		protocol  Info
		pdd       time.Duration
		providerP time.Duration
		// reported, 0 included (HasPostDialDelay, HasProviderPostDialDelay)
		hasPDD, hasProviderP bool
	}{
		{
			name: "three protocols as test_app menu 220 sends them",
			detail: "<SignalingProtocol type=\"source\">\nh323-LRQ</SignalingProtocol>\n" +
				"<SignalingProtocol type=\"destination\">\nsip</SignalingProtocol>\n" +
				"<SignalingProtocol type=\"na\">\niax</SignalingProtocol>\n" + amount,
			protocol: Info{"destination", "sip"},
		},
		{
			name:     "source protocol only",
			detail:   "<SignalingProtocol type=\"source\">\nh323-LRQ</SignalingProtocol>\n" + amount,
			protocol: Info{"source", "h323-LRQ"},
		},
		{
			name:     "untyped protocol",
			detail:   "<SignalingProtocol>\nsip</SignalingProtocol>\n" + amount,
			protocol: Info{"", "sip"},
		},
		{
			name:         "provider post dial delay only (IS_PDD_INFO_AVAILABLE=0, menu 237)",
			detail:       "<PostDialDelay type=\"destination\">\n2.010</PostDialDelay>\n" + amount,
			providerP:    2010 * time.Millisecond,
			hasProviderP: true,
		},
		{
			name: "provider and source post dial delay",
			detail: "<PostDialDelay type=\"destination\">\n2.010</PostDialDelay>\n" + amount +
				"<PostDialDelay type=\"source\">\n1.010</PostDialDelay>\n",
			pdd:          1010 * time.Millisecond,
			providerP:    2010 * time.Millisecond,
			hasPDD:       true,
			hasProviderP: true,
		},
		{
			name: "source before provider",
			detail: amount + "<PostDialDelay type=\"source\">\n1.010</PostDialDelay>\n" +
				"<PostDialDelay type=\"destination\">\n2.010</PostDialDelay>\n",
			pdd:          1010 * time.Millisecond,
			providerP:    2010 * time.Millisecond,
			hasPDD:       true,
			hasProviderP: true,
		},
		{
			name:   "untyped post dial delay is the source's",
			detail: amount + "<PostDialDelay>\n1.010</PostDialDelay>\n",
			pdd:    1010 * time.Millisecond,
			hasPDD: true,
		},
		{
			// OSPPMsgFloatToElement writes "%.3f": a delay of 0 the
			// device measured is "0.000", not an absent element
			name: "delays of 0 reported",
			detail: "<PostDialDelay type=\"destination\">\n0.000</PostDialDelay>\n" + amount +
				"<PostDialDelay type=\"source\">\n0.000</PostDialDelay>\n",
			hasPDD:       true,
			hasProviderP: true,
		},
		{
			name:   "no delay reported",
			detail: amount,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseUsageIndication(toolkitUsage(tc.detail))
			if err != nil {
				t.Fatal(err)
			}
			u := m.Usages[0]
			if u.Protocol != tc.protocol {
				t.Errorf("Protocol %+v, want %+v", u.Protocol, tc.protocol)
			}
			if u.PostDialDelay != tc.pdd || u.ProviderPostDialDelay != tc.providerP {
				t.Errorf("PostDialDelay %v ProviderPostDialDelay %v, want %v and %v", u.PostDialDelay, u.ProviderPostDialDelay, tc.pdd, tc.providerP)
			}
			if u.HasPostDialDelay != tc.hasPDD || u.HasProviderPostDialDelay != tc.hasProviderP {
				t.Errorf("HasPostDialDelay %v HasProviderPostDialDelay %v, want %v and %v", u.HasPostDialDelay, u.HasProviderPostDialDelay, tc.hasPDD, tc.hasProviderP)
			}
			if u.Duration != 30*time.Second {
				t.Errorf("Duration %v", u.Duration)
			}
			// Marshal writes both delays back with their types.
			out, err := m.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			again, err := ParseUsageIndication(out)
			if err != nil {
				t.Fatal(err)
			}
			if v := again.Usages[0]; v.PostDialDelay != tc.pdd || v.ProviderPostDialDelay != tc.providerP ||
				v.HasPostDialDelay != tc.hasPDD || v.HasProviderPostDialDelay != tc.hasProviderP {
				t.Errorf("after Marshal: PostDialDelay %v ProviderPostDialDelay %v\n%s", v.PostDialDelay, v.ProviderPostDialDelay, out)
			}
			if tc.providerP > 0 && !strings.Contains(string(out), `<PostDialDelay type="destination">`) {
				t.Errorf("Marshal lost the provider's post dial delay:\n%s", out)
			}
		})
	}
}

// <RoleInfo> (OSPPTransactionSetRoleInfo) follows <Role>: its <State> says
// which report of the call this is (start, stop, interim…); <Format> and
// <VendorInfo> are ignored, and Marshal writes the state back.
func TestUsageRoleInfo(t *testing.T) {
	for _, tc := range []struct{ roleInfo, state string }{
		{"", ""},
		{"<RoleInfo>\n<State>\nstart</State>\n<Format>\nosp</Format>\n<VendorInfo>\nasterisk</VendorInfo>\n</RoleInfo>\n", "start"},
		{"<RoleInfo>\n<State>\nstop</State>\n</RoleInfo>\n", "stop"},
		{"<RoleInfo>\n<Format>\nradius</Format>\n</RoleInfo>\n", ""},
	} {
		raw := strings.Replace(string(toolkitUsage("<Amount>\n30</Amount>\n<Increment>\n1</Increment>\n<Unit>\ns</Unit>\n")),
			"source</Role>\n", "source</Role>\n"+tc.roleInfo, 1)
		m, err := ParseUsageIndication([]byte(raw))
		if err != nil {
			t.Fatalf("%q: %v", tc.roleInfo, err)
		}
		if u := m.Usages[0]; u.RoleState != tc.state || u.Role != "source" {
			t.Errorf("%q: role %q state %q, want source and %q", tc.roleInfo, u.Role, u.RoleState, tc.state)
		}
		out, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseUsageIndication(out)
		if err != nil || again.Usages[0].RoleState != tc.state {
			t.Errorf("%q: after Marshal %v, state lost:\n%s", tc.roleInfo, err, out)
		}
	}
	// an unknown critical element inside is refused, as everywhere
	raw := strings.Replace(string(toolkitUsage("")), "source</Role>\n", "source</Role>\n<RoleInfo><Frob critical=\"true\">1</Frob></RoleInfo>\n", 1)
	if _, err := ParseUsageIndication([]byte(raw)); err == nil {
		t.Error("an unknown critical element in <RoleInfo> was accepted")
	}
}
