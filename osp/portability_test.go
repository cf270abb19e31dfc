package osp

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// toolkitCalled is the called number as the toolkit writes it, and
// toolkitNP what OSPPTransactionSetNumberPortability(…, "13243546576",
// "NPCic", 1) — test_app's menu 210 — adds right after it, in an
// AuthorizationRequest and a UsageIndication alike (src/ospauthreq.c
// OSPPNPRnToElement, OSPPNPCicToElement, OSPPNPNpdiToElement;
// src/ospusageind.c), byte for byte as TestToolkitNumberPortability
// captures it.
const (
	toolkitCalled = "<DestinationInfo type=\"e164\">\n1678</DestinationInfo>\n"
	toolkitNP     = "<DestinationInfo type=\"routingnumber\">\n13243546576</DestinationInfo>\n" +
		"<DestinationInfo type=\"cic\">\nNPCic</DestinationInfo>\n" +
		"<DestinationInfo type=\"npdi\">\ntrue</DestinationInfo>\n"
)

// toolkitNPData is toolkitNP parsed.
var toolkitNPData = NumberPortability{RoutingNumber: "13243546576", CIC: "NPCic", NPDI: true}

// withNP is a captured request (testdata name) with np after its called
// number, where the toolkit writes number portability data.
func withNP(t testing.TB, name, np string) []byte {
	t.Helper()
	doc := string(readTestdata(t, name))
	if strings.Count(doc, toolkitCalled) != 1 {
		t.Fatalf("%s: want the called number once", name)
	}
	return []byte(strings.Replace(doc, toolkitCalled, toolkitCalled+np, 1))
}

// slowPath makes a document the fast parser declines (a character
// reference in the calling number), so that encoding/xml parses it.
func slowPath(doc []byte) []byte {
	return bytes.Replace(doc, []byte("\n14048724799</SourceInfo>"), []byte("\n&#49;4048724799</SourceInfo>"), 1)
}

// The number portability data the toolkit sends is read from
// AuthorizationRequest and UsageIndication, through either parser; the
// called number stays the dialed one, wherever the qualifiers are.
func TestParseNumberPortability(t *testing.T) {
	for _, tc := range []struct {
		name, np string
		want     NumberPortability
	}{
		{"as the toolkit writes it", toolkitNP, toolkitNPData},
		{"none", "", NumberPortability{}},
		{"routing number alone", "<DestinationInfo type=\"routingnumber\">\n13243546576</DestinationInfo>\n",
			NumberPortability{RoutingNumber: "13243546576"}},
		{"npdi alone: queried, not ported", "<DestinationInfo type=\"npdi\">\ntrue</DestinationInfo>\n", NumberPortability{NPDI: true}},
		{"npdi in capitals (the toolkit compares case-insensitively)", "<DestinationInfo type=\"npdi\">TRUE</DestinationInfo>", NumberPortability{NPDI: true}},
		{"npdi false", "<DestinationInfo type=\"npdi\">false</DestinationInfo>", NumberPortability{}},
		{"empty routing number", "<DestinationInfo type=\"routingnumber\"/>", NumberPortability{}},
		{"the first of each type", "<DestinationInfo type=\"routingnumber\">1</DestinationInfo><DestinationInfo type=\"routingnumber\">2</DestinationInfo>",
			NumberPortability{RoutingNumber: "1"}},
		{"operator names are not number portability", "<DestinationInfo type=\"spid\">\nspid</DestinationInfo>\n", NumberPortability{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, name := range requestSeeds {
				doc := withNP(t, name, tc.np)
				for path, d := range map[string][]byte{"fast": doc, "encoding/xml": slowPath(doc)} {
					if _, fast := parseTreeFast(d, DefaultLimits); fast != (path == "fast") {
						t.Fatalf("%s: the fast parser took it: %v", path, fast)
					}
					m, err := ParseRequest(d)
					if err != nil {
						t.Fatalf("%s %s: %v", name, path, err)
					}
					var got NumberPortability
					var called Info
					switch r := m.(type) {
					case *AuthorizationRequest:
						got, called = r.NumberPortability(), r.Called()
					case *UsageIndication:
						got, called = r.Usages[0].NumberPortability(), r.Usages[0].Called()
					}
					if got != tc.want || called != (Info{TypeE164, "1678"}) {
						t.Errorf("%s %s: %+v, called %v; want %+v, called 1678", name, path, got, called, tc.want)
					}
				}
			}
		})
	}
	// before the called number too (not the toolkit's order)
	doc := strings.Replace(string(readTestdata(t, "authorization-request.xml")), toolkitCalled, toolkitNP+toolkitCalled, 1)
	r, err := ParseAuthorizationRequest([]byte(doc))
	if err != nil || r.NumberPortability() != toolkitNPData || r.Called() != (Info{TypeE164, "1678"}) {
		t.Errorf("qualifiers first: %v %+v %v", err, r.NumberPortability(), r.Called())
	}
	// a routing number is no called number; and an element outside the
	// vocabulary is refused unless marked critical="false"
	for _, tc := range []struct {
		doc  []byte
		want error
	}{
		{[]byte(strings.Replace(doc, toolkitCalled, "", 1)), ErrMissingElement},
		{withNP(t, "authorization-request.xml", "<RoutingNumber>13243546576</RoutingNumber>"), ErrCriticalElement},
		{withNP(t, "authorization-request.xml", `<RoutingNumber critical="false">13243546576</RoutingNumber>`), nil},
	} {
		if _, err := ParseRequest(tc.doc); !errors.Is(err, tc.want) {
			t.Errorf("%v, want %v:\n%s", err, tc.want, tc.doc)
		}
	}
}

// An authorization of a request with number portability data echoes it in
// every destination (where OSPPTransactionGetNumberPortabilityParameters
// reads it) and token, before the called number, which stays the dialed
// one: the toolkit takes a token's last DestinationInfo as the number the
// terminating gateway compares (OSPPTokenInfoFromElement), and earlier
// readers the last of a destination. The answer and token parse back, and
// the token verifies for the dialed number.
func TestAuthorizeNumberPortability(t *testing.T) {
	p := testPKI(t)
	req, err := ParseAuthorizationRequest(withNP(t, "authorization-request.xml", toolkitNP))
	if err != nil {
		t.Fatal(err)
	}
	dests := []Destination{{SignalAddress: "10.0.0.1:5060", Device: "trunk-1"}, {SignalAddress: "gw.example.net"}}
	rsp, err := Authorize(req, dests, p.signer, testNow, 0)
	if err != nil || rsp.Status != StatusOK {
		t.Fatalf("%v %+v", err, rsp)
	}
	out, err := rsp.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	const wantInfos = "<DestinationInfo type=\"routingnumber\">13243546576</DestinationInfo>\n" +
		"<DestinationInfo type=\"cic\">NPCic</DestinationInfo>\n" +
		"<DestinationInfo type=\"npdi\">true</DestinationInfo>\n" +
		"<DestinationInfo type=\"e164\">1678</DestinationInfo>\n"
	if n := strings.Count(string(out), wantInfos); n != len(dests) {
		t.Errorf("%d destinations with\n%s\nin\n%s", n, wantInfos, out)
	}
	back, err := ParseAuthorisationResponse(out)
	if err != nil {
		t.Fatal(err)
	}
	v := &Verifier{Roots: p.roots, Now: fixedClock(testNow)}
	for i, d := range back.Destinations {
		if d.DestinationInfo != (Info{TypeE164, "1678"}) || d.NumberPortability != toolkitNPData {
			t.Errorf("destination %d parsed back: %v %+v", i, d.DestinationInfo, d.NumberPortability)
		}
		info, err := v.Verify(d.Token, Call{Calling: "14048724799", Called: "1678", CallID: d.CallID, Destination: d.SignalAddress})
		if err != nil {
			t.Fatalf("destination %d: token for the dialed number: %v", i, err)
		}
		if info.DestinationInfo != (Info{TypeE164, "1678"}) || info.NumberPortability != toolkitNPData {
			t.Errorf("destination %d: token %v %+v", i, info.DestinationInfo, info.NumberPortability)
		}
		if _, err := v.Verify(d.Token, Call{Calling: "14048724799", Called: "13243546576", CallID: d.CallID, Destination: d.SignalAddress}); !errors.Is(err, ErrTokenMismatch) {
			t.Errorf("destination %d: token for the routing number: %v, want a mismatch", i, err)
		}
	}
	// the token's XML: the qualifiers come before the called number, the
	// one the toolkit keeps
	unsigned, err := Authorize(req, dests[:1], nil, testNow, 0)
	if err != nil {
		t.Fatal(err)
	}
	tok := string(unsigned.Destinations[0].Token)
	if !strings.Contains(tok, strings.ReplaceAll(wantInfos, "\n", "")) ||
		strings.LastIndex(tok, "<DestinationInfo") != strings.Index(tok, `<DestinationInfo type="e164">`) {
		t.Errorf("token %s", tok)
	}

	// without number portability data, nothing of it is written
	plain, err := Authorize(authRequest(t), dests, nil, testNow, 0)
	if err != nil {
		t.Fatal(err)
	}
	out, _ = plain.Marshal()
	if bytes.Contains(out, []byte("routingnumber")) || bytes.Contains(plain.Destinations[0].Token, []byte("npdi")) {
		t.Errorf("answer without number portability:\n%s", out)
	}

	// what is echoed must be something the toolkit can store
	for _, tc := range []struct {
		name string
		np   string
		want Status
	}{
		{"routing number with a control character", "<DestinationInfo type=\"routingnumber\">1324&#x9;3546576</DestinationInfo>", StatusDestinationInvalid},
		{"routing number too long", "<DestinationInfo type=\"routingnumber\">" + strings.Repeat("1", MaxNumber+1) + "</DestinationInfo>", StatusDestinationInvalid},
		{"CIC too long", "<DestinationInfo type=\"cic\">" + strings.Repeat("2", MaxNumber+1) + "</DestinationInfo>", StatusDestinationInvalid},
		{"longest routing number and CIC", "<DestinationInfo type=\"routingnumber\">" + strings.Repeat("1", MaxNumber) +
			"</DestinationInfo><DestinationInfo type=\"cic\">" + strings.Repeat("2", MaxNumber) + "</DestinationInfo>", StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := ParseAuthorizationRequest(withNP(t, "authorization-request.xml", tc.np))
			if err != nil {
				t.Fatal(err)
			}
			rsp, err := Authorize(req, dests, nil, testNow, 0)
			if err != nil || rsp.Status != tc.want {
				t.Fatalf("%v, status %v, want %v", err, rsp.Status, tc.want)
			}
		})
	}
}

// A reauthorization's fresh token keeps the call's number portability
// data, so that every extension can be routed as the authorization was.
func TestReauthorizeKeepsNumberPortability(t *testing.T) {
	p := testPKI(t)
	req, err := ParseAuthorizationRequest(withNP(t, "authorization-request.xml", toolkitNP))
	if err != nil {
		t.Fatal(err)
	}
	rsp, err := Authorize(req, []Destination{{SignalAddress: "10.0.0.9:5060"}}, p.signer, testNow, 0)
	if err != nil {
		t.Fatal(err)
	}
	d := rsp.Destinations[0]
	reauth := &ReauthorizationRequest{MessageID: "m", ComponentID: "c", Timestamp: testNow, Role: "source", CallID: d.CallID,
		SourceInfo: req.SourceInfo, DestinationInfo: req.DestinationInfo, TransactionID: rsp.TransactionID, Tokens: [][]byte{d.Token}}
	v := &Verifier{Roots: p.roots, Now: fixedClock(testNow)}
	info, err := v.VerifyReauthorization(reauth)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumberPortability != toolkitNPData {
		t.Fatalf("verified token: %+v", info.NumberPortability)
	}
	again, err := Reauthorize(reauth, info, Destination{}, p.signer, testNow, 0)
	if err != nil || again.Status != StatusOK {
		t.Fatalf("%v %+v", err, again)
	}
	if nd := again.Destination; nd.NumberPortability != toolkitNPData || nd.DestinationInfo != (Info{TypeE164, "1678"}) {
		t.Errorf("answer: %+v %v", nd.NumberPortability, nd.DestinationInfo)
	}
	next, err := v.Verify(again.Destination.Token, Call{Calling: "14048724799", Called: "1678", CallID: d.CallID, Destination: d.SignalAddress})
	if err != nil || next.NumberPortability != toolkitNPData {
		t.Errorf("fresh token: %v %+v", err, next)
	}
}

// The unmodified toolkit's test_app with number portability data (menu
// 210: OSPPTransactionSetNumberPortability(…, "13243546576", "NPCic", 1))
// sends it as toolkitNP after the called number, in its
// AuthorizationRequest and its UsageIndication; reads the echo back with
// OSPPTransactionGetNumberPortabilityParameters (250); and validates the
// token, whose called number is the dialed one, for the call to 1678 (31).
func TestToolkitNumberPortability(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the OSP Toolkit's test_app")
	}
	srv := &toolkitServer{t: t, dests: []Destination{{SignalAddress: "127.0.0.2:5060"}}}
	steps := []int{1, 23, 210, 29, 27, 250, 31, 32, 24}
	codes, out := runTestApp(t, srv, steps...)
	for i, c := range codes {
		if c != 0 {
			t.Fatalf("step %d (menu %d) returned %d:\n%s", i, steps[i], c, out)
		}
	}
	for _, want := range []string{"rn = '13243546576'\n", "cic = 'NPCic'\n", "npdi = 1\n", "authorised = 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if len(srv.requests) != 2 {
		t.Fatalf("%d requests", len(srv.requests))
	}
	for i, body := range srv.requests {
		if !bytes.Contains(body, []byte(toolkitCalled+toolkitNP)) {
			t.Errorf("request %d lacks the called number and\n%s\n%s", i, toolkitNP, body)
		}
	}
	ind, err := ParseUsageIndication(srv.requests[1])
	if err != nil || ind.Usages[0].NumberPortability() != toolkitNPData {
		t.Errorf("usage: %v %+v", err, ind)
	}
}
