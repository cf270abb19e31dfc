package osp

import (
	"bytes"
	"fmt"
	"regexp"
	"testing"
)

// A source that fails over reports every destination it tried in one
// UsageIndication message (OSPPUsageIndToElement writes one component per
// destination), and an answer may hold up to 100 destinations (the enroll
// app's largest max_destinations). The message the toolkit writes for a
// call that tried them all must parse: refused, the call's records are all
// lost and the toolkit retries it until it gives up. Each attempt here is
// the captured component with what a failed attempt adds (termination
// cause, the destination's network id, the call's times).
func TestUsageIndicationOfEveryDestination(t *testing.T) {
	capture := readTestdata(t, "usage-indication.xml")
	comp := regexp.MustCompile(`(?s)<UsageIndication .*</UsageIndication>\n`).Find(capture)
	if comp == nil {
		t.Fatal("no component in the capture")
	}
	comp = bytes.Replace(comp, []byte("<UsageDetail>\n"), []byte("<UsageDetail>\n"+
		"<TerminationCause type=\"q850\">\n<TCCode>\n34</TCCode>\n<Description>\nno circuit/channel available</Description>\n</TerminationCause>\n"+
		"<StartTime>\n2026-11-25T03:04:41Z</StartTime>\n<EndTime>\n2026-11-25T03:04:43Z</EndTime>\n"+
		"<AlertTime>\n2026-11-25T03:04:42Z</AlertTime>\n<ConnectTime>\n2026-11-25T03:04:42Z</ConnectTime>\n"), 1)
	comp = bytes.Replace(comp, []byte("</DestinationAlternate>\n"), []byte("</DestinationAlternate>\n"+
		"<DestinationAlternate type=\"network\">\ndevice2.itsp.com</DestinationAlternate>\n"+
		"<DeviceInfo type=\"transport\">\n[127.0.0.1]</DeviceInfo>\n"), 1)
	const attempts = 100
	var msg bytes.Buffer
	msg.WriteString(`<?xml version="1.0"?><Message messageId="12345673" random="2043134229">` + "\n")
	for i := range attempts {
		msg.Write(bytes.Replace(comp, []byte(`componentId="12345672"`), fmt.Appendf(nil, `componentId="%d"`, 12345672+i), 1))
	}
	msg.WriteString("</Message>\n")
	ind, err := ParseUsageIndication(msg.Bytes())
	if err != nil {
		t.Fatalf("%d attempts, %d bytes: %v", attempts, msg.Len(), err)
	}
	if len(ind.Usages) != attempts {
		t.Fatalf("%d usages, want %d", len(ind.Usages), attempts)
	}
}
