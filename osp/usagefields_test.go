package osp

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// toolkitStatistics is a <Statistics> as OSPPStatsToElement
// (src/ospstatistics.c) writes it with every kind of value: the packets
// lost OSPPTransactionReportUsage takes, OneWayDelay, a <Metrics> per
// service and metric (delay and jitter per direction, round trip delay
// per leg) and the per-direction scores.
const toolkitStatistics = `<Statistics critical="false">
<LossSent critical="false">
<Packets critical="false">
0</Packets>
<Fraction critical="false">
0</Fraction>
</LossSent>
<OneWayDelay critical="false">
<Minimum critical="false">
10</Minimum>
<Mean critical="false">
20</Mean>
<Variance critical="false">
1.500</Variance>
<Samples critical="false">
100</Samples>
</OneWayDelay>
<Metrics service="voice" type="rtp">
<Jitter direction="source-to-reporter">
<Samples>
50</Samples>
<Mean>
12</Mean>
</Jitter>
<RoundTripDelay type="destination">
<Mean>
40</Mean>
</RoundTripDelay>
</Metrics>
<RFactor direction="source-to-reporter">
80.000</RFactor>
</Statistics>
`

// The elements of a UsageIndication that the toolkit sends and that records
// keep: the counters of attempts (OSPPTransactionSetSetupAttempt,
// OSPPTransactionSetTotalSetupAttempts, written only when set, so 0 is a
// value), the service, and the statistics whole. Marshal writes them back
// in the toolkit's order.
func TestUsageAttemptsServiceStatistics(t *testing.T) {
	const amount = "<Amount>\n30.000</Amount>\n<Increment>\n1</Increment>\n<Unit>\ns</Unit>\n"
	n := func(v int) *int { return &v }
	for _, tc := range []struct {
		name, before, detail string
		attempt, total       *int
		service              ServiceType
		stats                map[string]string
	}{
		{name: "none"},
		{
			name:    "first attempt of one",
			before:  "<DestinationAlternate type=\"deviceId\">\n0</DestinationAlternate>\n<SetupAttempt>\n0</SetupAttempt>\n<TotalSetupAttempts>\n1</TotalSetupAttempts>\n",
			attempt: n(0), total: n(1),
		},
		{
			name:    "third attempt, video",
			before:  "<SetupAttempt>\n3</SetupAttempt>\n<Service>\n<ServiceType type=\"video\"/>\n</Service>\n",
			attempt: n(3), service: "video",
		},
		{
			// such a counter was skipped before it was parsed: the
			// usage is still taken
			name:   "counters that are not numbers",
			before: "<SetupAttempt>\nthird</SetupAttempt>\n<TotalSetupAttempts>\n-1</TotalSetupAttempts>\n",
		},
		{
			name:   "statistics of every kind",
			detail: toolkitStatistics,
			stats: map[string]string{
				"LossSent.Packets": "0", "LossSent.Fraction": "0",
				"OneWayDelay.Minimum": "10", "OneWayDelay.Mean": "20", "OneWayDelay.Variance": "1.500", "OneWayDelay.Samples": "100",
				"Metrics[service:voice,type:rtp].Jitter[direction:source-to-reporter].Samples": "50",
				"Metrics[service:voice,type:rtp].Jitter[direction:source-to-reporter].Mean":    "12",
				"Metrics[service:voice,type:rtp].RoundTripDelay[type:destination].Mean":        "40",
				"RFactor[direction:source-to-reporter]":                                        "80.000",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := strings.Replace(string(toolkitUsage(amount+tc.detail)), "<UsageDetail>\n", tc.before+"<UsageDetail>\n", 1)
			m, err := ParseUsageIndication([]byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			check := func(when string, u Usage) {
				t.Helper()
				if !reflect.DeepEqual(u.SetupAttempt, tc.attempt) || !reflect.DeepEqual(u.TotalSetupAttempts, tc.total) || u.ServiceType != tc.service {
					t.Errorf("%s: attempt %v of %v, service %q; want %v of %v, %q", when, u.SetupAttempt, u.TotalSetupAttempts, u.ServiceType, tc.attempt, tc.total, tc.service)
				}
				var got map[string]string
				if len(u.Statistics) == 1 {
					got = u.Statistics[0].Flatten()
				} else if len(u.Statistics) > 1 {
					t.Fatalf("%s: %d <Statistics>", when, len(u.Statistics))
				}
				if !reflect.DeepEqual(got, tc.stats) {
					t.Errorf("%s: statistics\n%v\nwant\n%v", when, got, tc.stats)
				}
			}
			check("parsed", m.Usages[0])
			out, err := m.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			again, err := ParseUsageIndication(out)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			check("after Marshal", again.Usages[0])
		})
	}
}

// Flatten's names are unambiguous whatever a device puts in element and
// attribute names or attribute values: separators are written %XX, the
// critical attribute is left out, attributes are sorted, and a name that
// comes twice is numbered.
func TestElementFlatten(t *testing.T) {
	e := Element{Name: "Statistics", Children: []Element{
		{Name: "x.y", Value: "1"},
		{Name: "x", Children: []Element{{Name: "y", Value: "2"}}},
		{Name: "M", Attrs: []Attr{{"z", "a]b"}, {"critical", "false"}, {"a", "1,c:2=3;\\"}}, Value: "v"},
		{Name: "Dup", Value: "first"},
		{Name: "Dup", Value: "second"},
		{Name: "Dup", Value: "third"},
		{Name: "Empty"},
		{Name: "Text", Value: "t", Children: []Element{{Name: "In", Value: "i"}}},
		{Name: "Container", Children: []Element{{Name: "In", Value: "=1;2"}}},
	}}
	want := map[string]string{
		"x%2Ey":                            "1",
		"x.y":                              "2",
		"M[a:1%2Cc%3A2%3D3%3B%5C,z:a%5Db]": "v",
		"Dup":                              "first",
		"Dup#2":                            "second",
		"Dup#3":                            "third",
		"Empty":                            "",
		"Text":                             "t",
		"Text.In":                          "i",
		"Container.In":                     "=1;2",
	}
	if got := e.Flatten(); !reflect.DeepEqual(got, want) {
		t.Errorf("Flatten\n%q\nwant\n%q", got, want)
	}
}

// FlattenAll numbers a name again in a later element where Flatten numbers
// one given twice in one element, and a "#" a device puts in a name cannot
// take the place of that numbering.
func TestFlattenAllNumbersAcrossElements(t *testing.T) {
	es := []Element{
		{Name: "Statistics", Children: []Element{{Name: "A", Value: "1"}, {Name: "A", Value: "2"}}},
		{Name: "Statistics", Children: []Element{{Name: "A", Value: "3"}, {Name: "A#2", Value: "x"}}},
	}
	want := map[string]string{"A": "1", "A#2": "2", "A#3": "3", "A%232": "x"}
	if got := FlattenAll(es); !reflect.DeepEqual(got, want) {
		t.Errorf("FlattenAll\n%q\nwant\n%q", got, want)
	}
	// a device repeating one element to the parser's limit: every value kept
	many := Element{Name: "Statistics"}
	for i := range 8000 {
		many.Children = append(many.Children, Element{Name: "P", Value: strconv.Itoa(i)})
	}
	got := many.Flatten()
	if len(got) != 8000 || got["P"] != "0" || got["P#8000"] != "7999" {
		t.Errorf("8000 repeats: %d names, P=%q, P#8000=%q", len(got), got["P"], got["P#8000"])
	}
}
