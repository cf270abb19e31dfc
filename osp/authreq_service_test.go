package osp

import (
	"bytes"
	"strings"
	"testing"
)

// A query service (number portability, caller name, STIR) is answered 501
// without routes, whatever the destinations; calls (voice, video, data,
// or no service) are routed.
func TestAuthorizeQueryService(t *testing.T) {
	dests := []Destination{{SignalAddress: "10.0.0.1:5060", Device: "trunk-1"}}
	for _, tc := range []struct {
		service string
		want    Status
	}{
		{"", StatusOK},
		{"voice", StatusOK},
		{"video", StatusOK},
		{"data", StatusOK},
		{"portedNumberQuery", StatusUnimplemented},
		{"cnamQuery", StatusUnimplemented},
		{"stirQuery", StatusUnimplemented},
		{"STIRQUERY", StatusUnimplemented},
	} {
		t.Run("service "+tc.service, func(t *testing.T) {
			doc := readTestdata(t, "authorization-request.xml")
			if tc.service != "" {
				doc = bytes.Replace(doc, []byte("<Service/>"), []byte(`<Service><ServiceType type="`+tc.service+`"/></Service>`), 1)
			}
			req, err := ParseAuthorizationRequest(doc)
			if err != nil || req.Service != tc.service {
				t.Fatalf("%v, service %q", err, req.Service)
			}
			rsp, err := Authorize(req, dests, nil, testNow, 0)
			if err != nil || rsp.Status != tc.want {
				t.Fatalf("%v, status %v, want %v", err, rsp.Status, tc.want)
			}
			out, err := rsp.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParseAuthorisationResponse(out)
			if err != nil || back.Status.Code != tc.want.Code {
				t.Fatalf("%v\n%s", err, out)
			}
			if !tc.want.OK() && (len(back.Destinations) != 0 || back.TransactionID != 0 || strings.Contains(string(out), "<Token")) {
				t.Errorf("a refused query got routes:\n%s", out)
			}
		})
	}
}

// test_app's menu 62 sets the STIR query service before
// RequestAuthorisation: the unmodified toolkit sends it and reports the
// 501 as OSPC_ERR_TRAN_UNIMPLEMENTED (11495).
func TestToolkitQueryService(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the OSP Toolkit's test_app")
	}
	srv := &toolkitServer{t: t, dests: []Destination{{SignalAddress: "127.0.0.2:5060"}}}
	steps := []int{1, 23, 62, 29, 24}
	codes, out := runTestApp(t, srv, steps...)
	if want := []int{0, 0, 0, 11495, 0}; !equalInts(codes, want) {
		t.Fatalf("return codes %v, want %v:\n%s", codes, want, out)
	}
	if len(srv.requests) != 1 || !bytes.Contains(srv.requests[0], []byte(`<ServiceType type="stirQuery"`)) {
		t.Errorf("the request does not ask for the STIR query: %q", srv.requests)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
