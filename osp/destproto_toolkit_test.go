package osp

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// The unmodified toolkit reads each destination's protocol and OSP status
// as answered (test_app's menu 39 GetDestProtocol and 40
// IsDestOSPEnabled after 27 GetFirstDestination and 28
// GetNextDestination), and hands over a destination that is not an OSP
// device without a token: the gateways built on it (Asterisk, OpenSIPS,
// Kamailio) send such a destination none.
func TestToolkitDestinationProtocolAndNonOSP(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the OSP Toolkit's test_app")
	}
	dests := []Destination{
		{SignalAddress: "127.0.0.2:1720", Protocol: ProtocolH323Q931},
		{SignalAddress: "127.0.0.3:4569", Protocol: ProtocolIAX, NonOSP: true},
		{SignalAddress: "127.0.0.4:5060", NonOSP: true},
		{SignalAddress: "127.0.0.5:1719", Protocol: ProtocolH323LRQ},
	}
	steps := []int{1, 23, 29, 27, 39, 40, 28, 39, 40, 28, 39, 40, 28, 39, 40}
	t.Run("as answered", func(t *testing.T) {
		t.Parallel()
		srv := &toolkitServer{t: t, dests: dests, signer: testPKI(t).signer}
		codes, out := runTestApp(t, srv, steps...)
		for i, c := range codes {
			if c != 0 {
				t.Fatalf("step %d (menu %d) returned %d:\n%s", i, steps[i], c, out)
			}
		}
		want := []string{
			"Destination Protocol is H.323-Q931", "Destination is OSP Enabled",
			"Destination Protocol is IAX", "Destination is Not OSP Enabled",
			"Destination Protocol is SIP", "Destination is Not OSP Enabled",
			"Destination Protocol is H.323-LRQ", "Destination is OSP Enabled",
		}
		got := regexp.MustCompile(`Destination (Protocol is \S+|is (Not )?OSP Enabled)`).FindAllString(out, -1)
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("toolkit read\n%q\nwant\n%q\n%s", got, want, out)
		}
		for _, a := range []string{"[127.0.0.2]:1720", "[127.0.0.3]:4569", "[127.0.0.4]:5060", "[127.0.0.5]:1719"} {
			if !strings.Contains(out, "\n"+a+"\n") {
				t.Errorf("no destination %s:\n%s", a, out)
			}
		}
	})
	t.Run("a token-less destination needs its service", func(t *testing.T) {
		t.Parallel()
		// without <ServiceType>, OSPPTransactionGetDestination refuses a
		// destination without token: OSPC_ERR_TRAN_TOKEN_INVALID (11270)
		srv := &toolkitServer{t: t, dests: dests[1:2], rewrite: func(b []byte) []byte {
			return regexp.MustCompile(`<Service>\s*<ServiceType type="[a-z]+"/>\s*</Service>`).ReplaceAll(b, []byte("<Service/>"))
		}}
		codes, out := runTestApp(t, srv, 1, 23, 29, 27)
		if codes[2] != 0 || codes[3] != 11270 {
			t.Fatalf("RequestAuthorisation, GetFirstDestination returned %v, want 0 and 11270:\n%s", codes[2:4], out)
		}
		if n := len(srv.requests); n != 1 || !bytes.Contains(srv.requests[0], []byte("<AuthorizationRequest")) {
			t.Errorf("%d requests", n)
		}
	})
}
