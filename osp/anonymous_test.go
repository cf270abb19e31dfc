package osp

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// emptyCalling rewrites the test request's calling number into the empty
// SourceInfo a gateway sends for a call without caller id, in either
// spelling of an empty element.
func emptyCalling(t *testing.T, form string) *AuthorizationRequest {
	t.Helper()
	xml := strings.Replace(string(readTestdata(t, "authorization-request.xml")),
		"<SourceInfo type=\"e164\">\n14048724799</SourceInfo>", form, 1)
	if !strings.Contains(xml, form) {
		t.Fatal("test request without its SourceInfo")
	}
	req, err := ParseAuthorizationRequest([]byte(xml))
	if err != nil {
		t.Fatal(err)
	}
	if c := req.Calling(); c != (Info{TypeE164, ""}) {
		t.Fatalf("calling number %+v", c)
	}
	return req
}

// A call without caller id (Asterisk, FreeSWITCH, OpenSIPS and Kamailio
// send "" as its calling number) is routed: its tokens carry an empty
// SourceInfo, which the terminating side compares with the call's empty
// calling number, and its reauthorization extends it. An empty called
// number is still refused (489).
func TestAuthorizeEmptyCallingNumber(t *testing.T) {
	p := testPKI(t)
	dests := []Destination{{SignalAddress: "10.0.0.1:5060"}, {SignalAddress: "10.0.0.2:5060"}}
	for _, form := range []string{`<SourceInfo type="e164"></SourceInfo>`, `<SourceInfo type="e164"/>`} {
		t.Run(form, func(t *testing.T) {
			req := emptyCalling(t, form)
			rsp, err := Authorize(req, dests, p.signer, testNow, 0)
			if err != nil {
				t.Fatal(err)
			}
			if rsp.Status != StatusOK || len(rsp.Destinations) != 2 || rsp.TransactionID == 0 {
				t.Fatalf("status %v, %d destinations", rsp.Status, len(rsp.Destinations))
			}
			out, err := rsp.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParseAuthorisationResponse(out)
			if err != nil || back.Status != StatusOK || len(back.Destinations) != 2 {
				t.Fatalf("%v %+v", err, back)
			}
			v := &Verifier{Roots: p.roots, Now: fixedClock(testNow)}
			for i, d := range rsp.Destinations {
				info, err := v.Verify(d.Token, Call{Calling: "", Called: "1678", CallID: d.CallID, Destination: d.SignalAddress})
				if err != nil {
					t.Fatalf("destination %d: %v", i, err)
				}
				if info.SourceInfo != (Info{TypeE164, ""}) || info.TransactionID != rsp.TransactionID {
					t.Fatalf("destination %d: token %+v", i, info)
				}
				// a token of a call without caller id authorises no call with one
				if _, err := (&Verifier{Roots: p.roots, Now: fixedClock(testNow)}).Verify(d.Token,
					Call{Calling: "14048724799", Called: "1678", CallID: d.CallID}); !errors.Is(err, ErrTokenMismatch) {
					t.Fatalf("destination %d with a calling number: %v", i, err)
				}
			}

			// reauthorization, as the toolkit sends it: the empty
			// SourceInfo again, and the call's first token
			reauth := &ReauthorizationRequest{MessageID: "m", ComponentID: "c", Timestamp: testNow, Role: "source",
				CallID: rsp.Destinations[0].CallID, SourceInfo: req.SourceInfo, DestinationInfo: req.DestinationInfo,
				TransactionID: rsp.TransactionID, Duration: 30 * time.Second, Tokens: [][]byte{rsp.Destinations[0].Token}}
			b, err := reauth.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if reauth, err = ParseReauthorizationRequest(b); err != nil {
				t.Fatal(err)
			}
			info, err := v.VerifyReauthorization(reauth)
			if err != nil {
				t.Fatal(err)
			}
			ext, err := Reauthorize(reauth, info, Destination{}, p.signer, testNow, 0)
			if err != nil {
				t.Fatal(err)
			}
			if ext.Status != StatusOK || ext.Destination == nil {
				t.Fatalf("reauthorization: %+v", ext)
			}
			if _, err := v.Verify(ext.Destination.Token, Call{Calling: "", Called: "1678", Destination: "10.0.0.1:5060"}); err != nil {
				t.Fatalf("reauthorization token: %v", err)
			}
		})
	}

	refusals := []struct {
		name string
		mod  func(*AuthorizationRequest)
		want Status
	}{
		{"empty called number", func(r *AuthorizationRequest) { r.DestinationInfo[0].Value = "" }, StatusDestinationInvalid},
		{"both empty", func(r *AuthorizationRequest) {
			r.SourceInfo[0].Value, r.DestinationInfo[0].Value = "", ""
		}, StatusDestinationInvalid},
		{"calling number too long", func(r *AuthorizationRequest) {
			r.SourceInfo[0].Value = strings.Repeat("1", MaxNumber+1)
		}, StatusCallingInvalid},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			req := authRequest(t)
			tc.mod(req)
			rsp, err := Authorize(req, dests, p.signer, testNow, 0)
			if err != nil {
				t.Fatal(err)
			}
			if rsp.Status != tc.want || len(rsp.Destinations) != 0 {
				t.Fatalf("status %v, %d destinations; want %v", rsp.Status, len(rsp.Destinations), tc.want)
			}
		})
	}
}

// A usage indication of a call without caller id parses with an empty
// calling number (the clearinghouse stores it as it is).
func TestUsageEmptyCallingNumber(t *testing.T) {
	ind := &UsageIndication{MessageID: "7", Usages: []Usage{{
		ComponentID: "8", Timestamp: testNow, Role: "source", TransactionID: 42, CallID: []byte("c"),
		SourceInfo: []Info{{TypeE164, ""}}, DestinationInfo: []Info{{TypeE164, "1678"}}, Duration: 5 * time.Second,
	}}}
	b, err := ind.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseUsageIndication(b)
	if err != nil {
		t.Fatal(err)
	}
	if u := back.Usages[0]; u.Calling() != (Info{TypeE164, ""}) || u.Called().Value != "1678" {
		t.Fatalf("%+v", u)
	}
}
