package caddyenroll_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/clearinghouse-dev/caddy-clearinghouse/internal/osptk"
)

// The shipped legacy example with `device_protocol device2.itsp.com
// h323-Q931` and `non_osp_device device4.carrier.com`: the unmodified
// test_app reads Table 7's two destinations (RequestAuthorisation 29,
// GetFirstDestination 27, GetNextDestination 28) with their protocol
// (menu 39) and OSP status (40): an H.323 OSP device, then a SIP device
// that is not OSP enabled, handed over without a token (every step
// returns 0). Reauthorizations: TestReauthorizationKeepsDestinationSettings
// (test_app ends in a segmentation fault at its menu 38 here).
func TestOSPToolkitDestinationProtocol(t *testing.T) {
	bin := osptk.Build(t)
	s := startLegacy(t, legOpts{extraGlobal: "\t\tdevice_protocol device2.itsp.com h323-Q931\n\t\tnon_osp_device DEVICE4.carrier.com\n"})
	cfg := otkTestCfg(t, bin, "http://"+s.httpAddr+"/osp", 1)
	steps := []int{1, 23, 29, 27, 39, 40, 28, 39, 40}
	codes, out := otkRunTestApp(t, bin, cfg, steps...)
	for i, c := range codes {
		if c != 0 {
			t.Fatalf("step %d (menu %d) returned %d:\n%s", i, steps[i], c, out)
		}
	}
	if got := otkStepOutput(out, 3); !strings.Contains(got, "\n"+otkFirst+"\n") {
		t.Errorf("GetFirstDestination: want %s:\n%s", otkFirst, got)
	}
	if got := otkStepOutput(out, 6); !strings.Contains(got, "\n"+otkSecond+"\n") {
		t.Errorf("GetNextDestination: want %s:\n%s", otkSecond, got)
	}
	read := regexp.MustCompile(`Destination (Protocol is \S+|is (Not )?OSP Enabled)`).FindAllString(out, -1)
	wantRead := []string{
		"Destination Protocol is H.323-Q931", "Destination is OSP Enabled",
		"Destination Protocol is SIP", "Destination is Not OSP Enabled",
	}
	if strings.Join(read, "|") != strings.Join(wantRead, "|") {
		t.Errorf("test_app read %q, want %q:\n%s", read, wantRead, out)
	}
}
