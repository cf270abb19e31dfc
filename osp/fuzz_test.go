package osp

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The seed corpus of the fuzz targets lives in testdata/fuzz/<Target>/,
// generated from the captures by
//
//	OSP_WRITE_FUZZ_CORPUS=1 go test -run TestWriteFuzzCorpus ./osp/
//
// Each target also adds the captures with f.Add, so it has seeds even
// without the folder. Run one with e.g.
//
//	go test -run '^$' -fuzz FuzzParseRequest -fuzztime 15s ./osp/

var requestSeeds = []string{"authorization-request.xml", "usage-indication.xml"}
var answerSeeds = []string{"authorisation-response-accepted.xml", "usage-confirmation-accepted.xml"}

// usageSeeds are captures of what the toolkit sends that are seeds of
// FuzzParseRequest only: usage-indication-setters.xml has every element
// Usage.Extra and ExtraDetail keep, and its SIP headers hold references
// (&lt;), which the fast parser leaves to encoding/xml (so it is not among
// the documents TestParseTreeFastPath requires to take the fast path).
var usageSeeds = []string{"usage-indication-setters.xml"}

// extraSeeds are hand-made variants that reach the other code paths.
func extraSeeds(t testing.TB) map[string][][]byte {
	req := string(readTestdata(t, "authorization-request.xml"))
	reauth, _ := (&ReauthorizationRequest{MessageID: "1", ComponentID: "2", TransactionID: 7, CallID: []byte("c"),
		SourceInfo: []Info{{TypeE164, "1"}}, DestinationInfo: []Info{{TypeE164, "2"}}, Duration: time.Minute,
		Tokens: [][]byte{readTestdata(t, "token-unsigned-accepted.xml")}}).Marshal()
	capind, _ := (&CapabilitiesIndication{MessageID: "1", ComponentID: "2", OSPVersion: "2.1.1", AlmostOutOfResources: true}).Marshal()
	reauthRsp, _ := (&ReauthorizationResponse{MessageID: "1", ComponentID: "2", Status: StatusOK, TransactionID: 7,
		Destination: &ResponseDestination{SignalAddress: "[1.2.3.4]:5060", Token: []byte("t"), MaxDuration: time.Minute}}).Marshal()
	capcnf, _ := (&CapabilitiesConfirmation{MessageID: "1", ComponentID: "2", Status: StatusNoRoute}).Marshal()
	// number portability data: a destination echoing it, a token carrying it
	npRsp, _ := (&AuthorisationResponse{MessageID: "1", ComponentID: "2", Status: StatusOK, TransactionID: 7,
		Destinations: []ResponseDestination{{SourceInfo: Info{TypeE164, "14048724799"}, DestinationInfo: Info{TypeE164, "1678"},
			NumberPortability: toolkitNPData, SignalAddress: "[1.2.3.4]:5060", Token: []byte("t"), MaxDuration: time.Minute}}}).Marshal()
	// operator names: a destination echoing them
	opRsp, _ := (&AuthorisationResponse{MessageID: "1", ComponentID: "2", Status: StatusOK, TransactionID: 7,
		Destinations: []ResponseDestination{{DestinationInfo: Info{TypeE164, "1678"}, NumberPortability: toolkitNPData,
			OperatorNames: []Info{{TypeSPID, "spid"}, {TypeOCN, "1234"}, {TypeMNC, "01"}},
			SignalAddress: "[1.2.3.4]:5060", Token: []byte("t"), MaxDuration: time.Minute}}}).Marshal()
	npToken, _ := (&TokenInfo{Random: "3", SourceInfo: Info{TypeE164, "14048724799"}, DestinationInfo: Info{TypeE164, "1678"},
		NumberPortability: toolkitNPData, SignalAddress: "[127.0.0.2]:5060", CallID: []byte("1"), ValidAfter: testNow,
		ValidUntil: testNow.Add(time.Minute), TransactionID: 7, MaxDuration: time.Hour}).Encode()
	return map[string][][]byte{
		"FuzzParseRequest": {
			[]byte(strings.ReplaceAll(req, "AuthorizationRequest", "AuthorisationRequest")),
			[]byte(strings.Replace(req, "<Service/>", `<Service><ServiceType type="voice"/></Service><Bogus critical="false"><X/></Bogus>`, 1)),
			[]byte(strings.Replace(req, "<Service/>", `<Bogus>1</Bogus>`, 1)),
			[]byte(`<?xml version="1.0"?><!DOCTYPE Message [<!ENTITY e "x">]><Message/>`),
			reauth, capind,
			// the attempt counters, service, delays of 0 and statistics
			// with attributes that usage records keep
			[]byte(strings.Replace(string(toolkitUsage("<PostDialDelay type=\"destination\">\n0.000</PostDialDelay>\n"+
				"<Amount>\n30.000</Amount>\n<Increment>\n1</Increment>\n<Unit>\ns</Unit>\n"+
				"<PostDialDelay type=\"source\">\n0.000</PostDialDelay>\n"+toolkitStatistics)),
				"<UsageDetail>\n", "<SetupAttempt>\n0</SetupAttempt>\n<TotalSetupAttempts>\n2</TotalSetupAttempts>\n"+
					"<Service>\n<ServiceType type=\"voice\"/>\n</Service>\n<UsageDetail>\n", 1)),
			// number portability data as test_app's menu 210 sends it
			withNP(t, "authorization-request.xml", toolkitNP),
			withNP(t, "usage-indication.xml", toolkitNP),
			// operator names as test_app's menu 211 sends them
			withNP(t, "authorization-request.xml", toolkitNP+toolkitOperatorNames),
		},
		"FuzzParseAnswer": {reauthRsp, capcnf, npRsp, opRsp},
		"FuzzParseTokenInfo": {
			[]byte(`<?xml version="1.0"?><Message>` + strings.TrimPrefix(string(readTestdata(t, "token-unsigned-accepted.xml")), `<?xml version="1.0"?>`) + `</Message>`),
			npToken,
		},
	}
}

func addFiles(f *testing.F, names ...string) {
	for _, n := range names {
		f.Add(readTestdata(f, n))
	}
}

// checkParseError: every refusal is a *ParseError with a non-success
// status, and RefusalFor answers it when it knows the request's kind.
func checkParseError(t *testing.T, err error) {
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("%T %v is not a *ParseError", err, err)
	}
	if pe.Status.OK() || pe.Status.Code == 0 {
		t.Fatalf("status %v for %v", pe.Status, err)
	}
	if isRequest(pe.Kind) {
		ans, rerr := RefusalFor(err, testNow)
		if rerr != nil {
			t.Fatalf("RefusalFor: %v", rerr)
		}
		if _, merr := ans.Marshal(); merr != nil {
			t.Fatalf("refusal does not marshal: %v", merr)
		}
	}
}

// checkStable: what was parsed marshals, parses back, and is stable from
// then on (the first marshal may normalise: trimmed values, whole seconds,
// dropped unknown elements).
func checkStable(t *testing.T, m Message, parse func([]byte) (Message, error)) {
	out, err := m.Marshal()
	if err != nil {
		// Only values that are not XML character data can fail, and the
		// parser never yields those.
		t.Fatalf("marshal of a parsed message: %v", err)
	}
	m2, err := parse(out)
	if err != nil {
		t.Fatalf("re-parse: %v\n%s", err, out)
	}
	out2, err := m2.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	m3, err := parse(out2)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m2, m3) || !bytes.Equal(out, out2) {
		t.Fatalf("not stable:\n%+v\n%+v\n%s\n%s", m2, m3, out, out2)
	}
}

func FuzzParseRequest(f *testing.F) {
	addFiles(f, requestSeeds...)
	addFiles(f, usageSeeds...)
	for _, s := range extraSeeds(f)["FuzzParseRequest"] {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseRequest(data)
		if err != nil {
			checkParseError(t, err)
			return
		}
		if !isRequest(m.Kind()) {
			t.Fatalf("ParseRequest returned a %v", m.Kind())
		}
		checkStable(t, m, ParseRequest)
		if r, ok := m.(*AuthorizationRequest); ok {
			rsp, err := Authorize(r, []Destination{{SignalAddress: "[127.0.0.2]:5060"}}, nil, testNow, 0)
			if err != nil {
				t.Fatalf("Authorize: %v", err)
			}
			out, err := rsp.Marshal()
			if err != nil {
				t.Fatalf("answer does not marshal: %v", err)
			}
			if _, err := ParseAuthorisationResponse(out); err != nil {
				t.Fatalf("answer does not parse: %v\n%s", err, out)
			}
		}
	})
}

func FuzzParseAnswer(f *testing.F) {
	addFiles(f, answerSeeds...)
	for _, s := range extraSeeds(f)["FuzzParseAnswer"] {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseAnswer(data)
		if err != nil {
			checkParseError(t, err)
			return
		}
		if isRequest(m.Kind()) {
			t.Fatalf("ParseAnswer returned a %v", m.Kind())
		}
		checkStable(t, m, ParseAnswer)
	})
}

func FuzzParseTokenInfo(f *testing.F) {
	addFiles(f, "token-unsigned-accepted.xml")
	for _, s := range extraSeeds(f)["FuzzParseTokenInfo"] {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ti, err := ParseTokenInfo(data)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("%T %v", err, err)
			}
			return
		}
		out, err := ti.Encode()
		if err != nil {
			t.Fatalf("encode of a parsed token: %v", err)
		}
		ti2, err := ParseTokenInfo(out)
		if err != nil {
			t.Fatalf("re-parse: %v\n%s", err, out)
		}
		out2, _ := ti2.Encode()
		if !bytes.Equal(out, out2) {
			t.Fatalf("not stable:\n%s\n%s", out, out2)
		}
	})
}

// FuzzVerifyToken feeds arbitrary tokens to a Verifier that trusts the
// test CA and takes unsigned tokens: never a panic, and whatever it accepts
// matches the call.
func FuzzVerifyToken(f *testing.F) {
	p := testPKI(f)
	d := signedResponse(f, Destination{SignalAddress: "127.0.0.2:5060"}).Destinations[0]
	f.Add(d.Token)
	addFiles(f, "token-unsigned-accepted.xml")
	call := callFor(d)
	f.Fuzz(func(t *testing.T, token []byte) {
		v := &Verifier{Roots: p.roots, Now: fixedClock(testNow), AllowUnsigned: true, Skew: time.Hour}
		info, err := v.Verify(token, call)
		if err != nil {
			return
		}
		if info.SourceInfo.Value != call.Calling || info.DestinationInfo.Value != call.Called {
			t.Fatalf("accepted a token for another call: %+v", info)
		}
	})
}

// TestWriteFuzzCorpus (re)writes testdata/fuzz/ from the seeds; it runs
// only with OSP_WRITE_FUZZ_CORPUS=1.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("OSP_WRITE_FUZZ_CORPUS") != "1" {
		t.Skip("set OSP_WRITE_FUZZ_CORPUS=1 to rewrite testdata/fuzz")
	}
	seeds := map[string][][]byte{}
	for _, n := range requestSeeds {
		seeds["FuzzParseRequest"] = append(seeds["FuzzParseRequest"], readTestdata(t, n))
	}
	for _, n := range answerSeeds {
		seeds["FuzzParseAnswer"] = append(seeds["FuzzParseAnswer"], readTestdata(t, n))
	}
	seeds["FuzzParseTokenInfo"] = [][]byte{readTestdata(t, "token-unsigned-accepted.xml")}
	for k, v := range extraSeeds(t) {
		seeds[k] = append(seeds[k], v...)
	}
	for _, n := range usageSeeds {
		seeds["FuzzParseRequest"] = append(seeds["FuzzParseRequest"], readTestdata(t, n))
	}
	seeds["FuzzVerifyToken"] = [][]byte{
		signedResponse(t, Destination{SignalAddress: "127.0.0.2:5060"}).Destinations[0].Token,
		readTestdata(t, "token-unsigned-accepted.xml"),
	}
	for target, list := range seeds {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, b := range list {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(b)))
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
