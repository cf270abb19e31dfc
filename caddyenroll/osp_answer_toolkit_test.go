package caddyenroll_test

import (
	"strings"
	"testing"

	"github.com/clearinghouse-dev/caddy-clearinghouse/internal/osptk"
)

// test_app's operator names (menu 211: OSPPTransactionSetOperatorName for
// every type, each name its type's, as a source device sets what its
// carrier lookup found) come back in the answer Caddy serves:
// GetOperatorName (251) reads each from the first destination, where the
// OpenSIPS/Kamailio module would add them to the outgoing Request-URI and
// Asterisk sets OSPOUTSPID…; the token still validates (31) and the usage
// is confirmed (32).
func TestOSPToolkitOperatorNames(t *testing.T) {
	bin := osptk.Build(t)
	s := otkStart(t, false)
	cfg := otkTestCfg(t, bin, "http://"+s.httpAddr+"/osp", 1)
	steps := []int{1, 23, 211, 29, 27, 251, 31, 32, 24, 2}
	codes, out := otkRunTestApp(t, bin, cfg, steps...)
	for i, c := range codes {
		if c != 0 {
			t.Fatalf("step %d (menu %d) returned %d:\n%s", i, steps[i], c, out)
		}
	}
	want := "spid = 'spid'\naltspid = 'altspid'\nocn = 'ocn'\nspn = 'spn'\naltspn = 'altspn'\nmcc = 'mcc'\nmnc = 'mnc'\n"
	if got := otkStepOutput(out, 5); !strings.Contains(got, want) {
		t.Errorf("GetOperatorName: want the echo\n%s\ngot:\n%s", want, got)
	}
	if got := otkStepOutput(out, 6); !strings.Contains(got, "authorised = 1") {
		t.Errorf("ValidateAuthorisation: want authorised = 1:\n%s", got)
	}
	if list := s.cdrs(); len(list) != 1 {
		t.Errorf("want 1 CDR, got %+v", list)
	}
}

// test_app asking for the STIR query service (menu 62 before 29) gets OSP
// status 501 from Caddy, which the toolkit reports as 11495
// (OSPC_ERR_TRAN_UNIMPLEMENTED), not routes it would take for the answer;
// the refusal is counted as unsupported_service.
func TestOSPToolkitQueryService(t *testing.T) {
	bin := osptk.Build(t)
	s := otkStart(t, false)
	m := &server{Caddy: s.Caddy, t: t}
	cfg := otkTestCfg(t, bin, "http://"+s.httpAddr+"/osp", 1)
	steps := []int{1, 23, 62, 29, 24, 2}
	codes, out := otkRunTestApp(t, bin, cfg, steps...)
	for i, want := range []int{0, 0, 0, 11495, 0, 0} {
		if codes[i] != want {
			t.Fatalf("step %d (menu %d) returned %d, want %d:\n%s", i, steps[i], codes[i], want, out)
		}
	}
	const authz = "caddy_clearinghouse_authorizations_total"
	for outcome, want := range map[string]float64{"unsupported_service": 1, "authorized": 0} {
		if got := m.metric(authz, map[string]string{"outcome": outcome}); got != want {
			t.Errorf("%s{outcome=%q} = %v, want %v", authz, outcome, got, want)
		}
	}
}

// A refused authorization carries the SIP response for the caller, which
// test_app reads after the failed RequestAuthorisation (29) with
// GetTermCause (256: OSPPTransactionHasTermCause / GetTCCode / GetTCDesc
// for type SIP), as the OpenSIPS module makes it the call's reply: a call
// to +33 (device4.com not enrolled, device5.com disabled: no destination)
// gets 404 Not Found, a STIR query (62) 501 Not Implemented.
func TestOSPToolkitRefusalTermCause(t *testing.T) {
	bin := osptk.Build(t)
	s := otkStart(t, false)
	base := otkTestCfg(t, bin, "http://"+s.httpAddr+"/osp", 1)
	for _, tc := range []struct {
		name   string
		called string
		pre    []int // menu steps before 29
		code   int   // RequestAuthorisation's error
		want   string
	}{
		{"no route", "33123456789", nil, 11503, "TCCode: 404\nTCDesc: Not Found\n"},
		{"query service", otkCalled, []int{62}, 11495, "TCCode: 501\nTCDesc: Not Implemented\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := strings.Replace(base, "\nCALLED="+otkCalled+"\n", "\nCALLED="+tc.called+"\n", 1)
			steps := append(append([]int{1, 23}, tc.pre...), 29, 256, 24, 2)
			codes, out := otkRunTestApp(t, bin, cfg, steps...)
			i := 2 + len(tc.pre)
			for j, c := range codes {
				want := 0
				if j == i {
					want = tc.code
				}
				if c != want {
					t.Fatalf("step %d (menu %d) returned %d, want %d:\n%s", j, steps[j], c, want, out)
				}
			}
			if got := otkStepOutput(out, i+1); !strings.Contains(got, tc.want) {
				t.Errorf("GetTermCause: want\n%s\ngot:\n%s", tc.want, got)
			}
		})
	}
}
