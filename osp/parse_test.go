package osp

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseCapturedAuthorizationRequest(t *testing.T) {
	r := authRequest(t)
	want := &AuthorizationRequest{
		MessageID:   "20431342291",
		Random:      "2043134229",
		ComponentID: "20431342290",
		Timestamp:   time.Date(2026, 11, 25, 3, 4, 41, 0, time.UTC),
		CallIDs: [][]byte{
			[]byte("1"), []byte("2"), []byte("3"), []byte("4"),
			[]byte("5"), []byte("6"), []byte("7"), []byte("8"),
		},
		SourceInfo:      []Info{{TypeE164, "14048724799"}},
		SourceAlternate: []Info{{TypeSubscriber, "919404556#4444"}},
		DestinationInfo: []Info{{TypeE164, "1678"}},
		MaxDestinations: 8,
		CustomerID:      "1000",
		DeviceID:        "1000",
	}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("parsed\n%+v\nwant\n%+v", r, want)
	}
	if r.Calling() != (Info{TypeE164, "14048724799"}) || r.Called() != (Info{TypeE164, "1678"}) {
		t.Errorf("Calling %v Called %v", r.Calling(), r.Called())
	}
	if r.Kind() != KindAuthorizationRequest {
		t.Errorf("kind %v", r.Kind())
	}
}

func TestParseCapturedUsageIndication(t *testing.T) {
	m, err := ParseUsageIndication(readTestdata(t, "usage-indication.xml"))
	if err != nil {
		t.Fatal(err)
	}
	want := &UsageIndication{
		MessageID: "12345673",
		Random:    "2043134229",
		Usages: []Usage{{
			ComponentID:          "12345672",
			Timestamp:            time.Date(2026, 11, 25, 3, 4, 41, 0, time.UTC),
			Role:                 "source",
			TransactionID:        1234567,
			CallID:               []byte("1"),
			SourceInfo:           []Info{{TypeE164, "14048724799"}},
			SourceAlternate:      []Info{{TypeSubscriber, "919404556#4444"}},
			DestinationInfo:      []Info{{TypeE164, "1678"}},
			DestinationAlternate: []Info{{TypeTransport, "[127.0.0.2]:5060"}},
			GroupID:              "E4596A7B-2C27-11D9-816A-EA39F2B2CD06",
			Protocol:             Info{"destination", "sip"},
			Protocols:            []Info{{"destination", "sip"}},
			Duration:             30 * time.Second,
			PostDialDelay:        1010 * time.Millisecond,
			HasPostDialDelay:     true,
			ReleaseSource:        "unknown",
			// packets lost as test_app's ReportUsage gives them
			Statistics: []Element{{Name: "Statistics", Attrs: []Attr{{"critical", "false"}}, Children: []Element{
				{Name: "LossSent", Attrs: []Attr{{"critical", "false"}}, Children: []Element{
					{Name: "Packets", Attrs: []Attr{{"critical", "false"}}, Value: "1"},
					{Name: "Fraction", Attrs: []Attr{{"critical", "false"}}, Value: "2"},
				}},
				{Name: "LossReceived", Attrs: []Attr{{"critical", "false"}}, Children: []Element{
					{Name: "Packets", Attrs: []Attr{{"critical", "false"}}, Value: "100"},
					{Name: "Fraction", Attrs: []Attr{{"critical", "false"}}, Value: "10"},
				}},
			}}},
			CustomerID: "1000",
			DeviceID:   "1000",
		}},
	}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("parsed\n%+v\nwant\n%+v", m, want)
	}
	if u := m.Usages[0]; u.Calling().Value != "14048724799" || u.Called().Value != "1678" {
		t.Errorf("Calling/Called %v %v", u.Calling(), u.Called())
	}
	wantStats := map[string]string{"LossSent.Packets": "1", "LossSent.Fraction": "2",
		"LossReceived.Packets": "100", "LossReceived.Fraction": "10"}
	if got := m.Usages[0].Statistics[0].Flatten(); !reflect.DeepEqual(got, wantStats) {
		t.Errorf("statistics %v, want %v", got, wantStats)
	}
}

func TestParseCapturedAuthorisationResponse(t *testing.T) {
	r, err := ParseAuthorisationResponse(readTestdata(t, "authorisation-response-accepted.xml"))
	if err != nil {
		t.Fatal(err)
	}
	token := readTestdata(t, "token-unsigned-accepted.xml")
	want := &AuthorisationResponse{
		MessageID:     "9",
		Random:        "8",
		ComponentID:   "9476230650",
		Timestamp:     testNow,
		Status:        StatusOK,
		TransactionID: 1234567,
		Destinations: []ResponseDestination{{
			SourceInfo:      Info{TypeE164, "14048724799"},
			Protocol:        "sip",
			OSPVersion:      "2.1.1",
			DestinationInfo: Info{TypeE164, "1678"},
			SignalAddress:   "[127.0.0.2]:5060",
			Token:           token,
			ValidAfter:      time.Date(2026, 11, 25, 3, 11, 44, 0, time.UTC),
			ValidUntil:      time.Date(2026, 11, 25, 3, 22, 44, 0, time.UTC),
			MaxDuration:     14400 * time.Second,
			CallID:          []byte("1"),
		}},
	}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("parsed\n%+v\nwant\n%+v", r, want)
	}
}

func TestParseCapturedUsageConfirmation(t *testing.T) {
	c, err := ParseUsageConfirmation(readTestdata(t, "usage-confirmation-accepted.xml"))
	if err != nil {
		t.Fatal(err)
	}
	want := &UsageConfirmation{MessageID: "77", Random: "5", Confirmations: []Confirmation{{
		ComponentID: "12345672", Timestamp: time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC), Status: StatusOK,
	}}}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("parsed\n%+v\nwant\n%+v", c, want)
	}
}

func TestParseCapturedToken(t *testing.T) {
	ti, err := ParseTokenInfo(readTestdata(t, "token-unsigned-accepted.xml"))
	if err != nil {
		t.Fatal(err)
	}
	want := &TokenInfo{
		Random:          "3",
		SourceInfo:      Info{TypeE164, "14048724799"},
		DestinationInfo: Info{TypeE164, "1678"},
		SignalAddress:   "[127.0.0.2]:5060",
		CallID:          []byte("1"),
		ValidAfter:      time.Date(2026, 11, 25, 3, 11, 44, 0, time.UTC),
		ValidUntil:      time.Date(2026, 11, 25, 3, 22, 44, 0, time.UTC),
		TransactionID:   1234567,
		MaxDuration:     14400 * time.Second,
	}
	if !reflect.DeepEqual(ti, want) {
		t.Fatalf("parsed\n%+v\nwant\n%+v", ti, want)
	}
}

// Every captured message survives parse → Marshal → parse unchanged.
func TestRoundTripCaptures(t *testing.T) {
	for _, name := range []string{
		"authorization-request.xml", "usage-indication.xml",
		"authorisation-response-accepted.xml", "usage-confirmation-accepted.xml",
	} {
		t.Run(name, func(t *testing.T) {
			data := readTestdata(t, name)
			m1, err := parseAny(data)
			if err != nil {
				t.Fatal(err)
			}
			out, err := m1.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			m2, err := parseAny(out)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if !reflect.DeepEqual(m1, m2) {
				t.Fatalf("round trip changed the message\n%+v\n%+v", m1, m2)
			}
		})
	}
}

func parseAny(data []byte) (Message, error) {
	m, err := ParseRequest(data)
	if errors.Is(err, ErrUnexpectedKind) {
		return ParseAnswer(data)
	}
	return m, err
}

// Both spellings of Authorization/Authorisation are taken, and a component
// without the <Message> wrapper, as the toolkit's parsers take them.
func TestParseSpellingsAndBareComponent(t *testing.T) {
	req := string(readTestdata(t, "authorization-request.xml"))
	for _, v := range []string{
		strings.ReplaceAll(req, "AuthorizationRequest", "AuthorisationRequest"),
		`<?xml version="1.0"?><AuthorizationRequest componentId="5"><SourceInfo type="e164">1</SourceInfo><DestinationInfo type="e164">2</DestinationInfo></AuthorizationRequest>`,
	} {
		if _, err := ParseAuthorizationRequest([]byte(v)); err != nil {
			t.Errorf("%v\n%s", err, v)
		}
	}
	rsp := string(readTestdata(t, "authorisation-response-accepted.xml"))
	if _, err := ParseAuthorisationResponse([]byte(strings.ReplaceAll(rsp, "AuthorisationResponse", "AuthorizationResponse"))); err != nil {
		t.Error(err)
	}
}

const minimalReq = `<?xml version="1.0"?><Message messageId="m1" random="1"><AuthorizationRequest componentId="c1">` +
	`<SourceInfo type="e164">1</SourceInfo><DestinationInfo type="e164">2</DestinationInfo>%s</AuthorizationRequest></Message>`

func withElem(extra string) []byte {
	return []byte(strings.Replace(minimalReq, "%s", extra, 1))
}

// MaximumDestinations is only an upper bound: a larger one than
// maxDestinationsLimit, even beyond int, is lowered to it, not refused.
func TestMaximumDestinations(t *testing.T) {
	tests := []struct {
		value string
		want  int
	}{
		{"0", 0},
		{"8", 8},
		{"\n8\n", 8},
		{"1000", 1000},
		{"1001", 1000},
		{"100000", 1000},
		{"18446744073709551615", 1000},
		{"99999999999999999999", 1000},
		{"99999999999999999999999", 1000},
		{strings.Repeat("0", 30) + "7", 7},
	}
	for _, tc := range tests {
		r, err := ParseAuthorizationRequest(withElem("<MaximumDestinations>" + tc.value + "</MaximumDestinations>"))
		if err != nil {
			t.Errorf("%q: %v", tc.value, err)
			continue
		}
		if r.MaxDestinations != tc.want {
			t.Errorf("%q: MaxDestinations %d, want %d", tc.value, r.MaxDestinations, tc.want)
		}
	}
}

// Unknown elements: skipped when critical="false" (any case) or when the
// name is in the OSP vocabulary; refused with 412 otherwise — also when
// the critical attribute is absent, as the toolkit (OSPPMsgElemIsCritical)
// and ETSI TS 101 321 treat elements as critical by default.
func TestCriticalElements(t *testing.T) {
	tests := []struct {
		name  string
		extra string
		ok    bool
	}{
		{"unknown non-critical", `<Frobnicate critical="false">x</Frobnicate>`, true},
		{"unknown non-critical upper case", `<Frobnicate critical="FALSE"><Deep>1</Deep></Frobnicate>`, true},
		{"unknown critical", `<Frobnicate critical="true">x</Frobnicate>`, false},
		{"unknown, attribute absent", `<Frobnicate>x</Frobnicate>`, false},
		{"unknown, critical not a boolean", `<Frobnicate critical="no">x</Frobnicate>`, false},
		{"vocabulary element not used here", `<JIP>404</JIP><CallingPartyInfo><UserName>u</UserName></CallingPartyInfo>`, true},
		{"vocabulary element marked critical", `<UserAgent critical="true">x</UserAgent>`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseAuthorizationRequest(withElem(tc.extra))
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrCriticalElement) {
				t.Fatalf("err %v, want ErrCriticalElement", err)
			}
			if st := StatusOf(err); st != StatusUnsupportedCritical {
				t.Errorf("status %v", st)
			}
			// The refusal echoes the request's ids.
			ans, err2 := RefusalFor(err, testNow)
			if err2 != nil {
				t.Fatal(err2)
			}
			rsp := ans.(*AuthorisationResponse)
			if rsp.MessageID != "m1" || rsp.ComponentID != "c1" || rsp.Status.Code != 412 {
				t.Errorf("refusal %+v", rsp)
			}
		})
	}
	// At <Message> level and inside nested structures too.
	msgLevel := `<?xml version="1.0"?><Message messageId="m"><Bogus>1</Bogus><UsageConfirmation componentId="c"><Status><Code>200</Code></Status></UsageConfirmation></Message>`
	if _, err := ParseUsageConfirmation([]byte(msgLevel)); !errors.Is(err, ErrCriticalElement) {
		t.Errorf("message level: %v", err)
	}
	nested := `<?xml version="1.0"?><Message messageId="m"><UsageConfirmation componentId="c"><Status><Code>200</Code><Bogus/></Status></UsageConfirmation></Message>`
	if _, err := ParseUsageConfirmation([]byte(nested)); !errors.Is(err, ErrCriticalElement) {
		t.Errorf("nested: %v", err)
	}
	nestedOK := strings.Replace(nested, "<Bogus/>", `<Bogus critical="false"/>`, 1)
	if _, err := ParseUsageConfirmation([]byte(nestedOK)); err != nil {
		t.Errorf("nested non-critical: %v", err)
	}
}

// A critical element beside the component, at <Message> level, is refused
// with 412 wherever it stands: before the component as after it, the
// refusal is the component's answer echoing its ids (never an HTTP 400 for
// a message whose kind is known).
func TestCriticalElementBesideComponent(t *testing.T) {
	auth := `<AuthorizationRequest componentId="c1"><SourceInfo type="e164">1</SourceInfo><DestinationInfo type="e164">2</DestinationInfo></AuthorizationRequest>`
	usage := `<UsageIndication componentId="u1"/><UsageIndication componentId="u2"/>`
	tests := []struct {
		name string
		body string
		kind Kind
		ids  []string
	}{
		{"after an authorisation request", auth + `<Bogus/>`, KindAuthorizationRequest, []string{"c1"}},
		{"before an authorisation request", `<Bogus/>` + auth, KindAuthorizationRequest, []string{"c1"}},
		{"before usage indications", `<Bogus>1</Bogus>` + usage, KindUsageIndication, []string{"u1", "u2"}},
		{"between usage indications", strings.Replace(usage, "/><", "/><Bogus/><", 1), KindUsageIndication, []string{"u1", "u2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRequest([]byte(`<?xml version="1.0"?><Message messageId="m1">` + tc.body + `</Message>`))
			if !errors.Is(err, ErrCriticalElement) {
				t.Fatalf("err %v, want ErrCriticalElement", err)
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Kind != tc.kind || pe.MessageID != "m1" || !reflect.DeepEqual(pe.ComponentIDs, tc.ids) {
				t.Fatalf("error %+v, want kind %v, message m1, components %v", pe, tc.kind, tc.ids)
			}
			ans, err := RefusalFor(err, testNow)
			if err != nil {
				t.Fatalf("RefusalFor: %v", err)
			}
			if ans.Kind() != tc.kind.Answer() {
				t.Errorf("answer %v", ans.Kind())
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	deep := strings.Repeat("<Statistics critical=\"false\">", 20) + strings.Repeat("</Statistics>", 20)
	many := strings.Repeat(`<JIP>1</JIP>`, DefaultLimits.MaxElements+1)
	tests := []struct {
		name   string
		data   []byte
		err    error
		status Status
		kind   Kind // the kind the error knows, KindUnknown when none
	}{
		{"empty", nil, ErrMalformed, StatusParseFailed, KindUnknown},
		{"not XML", []byte("hello"), ErrMalformed, StatusParseFailed, KindUnknown},
		{"truncated", withElem("")[:60], ErrMalformed, StatusParseFailed, KindUnknown},
		{"mismatched tags", []byte(`<Message><AuthorizationRequest></Message></AuthorizationRequest>`), ErrMalformed, StatusParseFailed, KindUnknown},
		{"two roots", append(withElem(""), "<Message/>"...), ErrMalformed, StatusParseFailed, KindUnknown},
		{"attribute twice", []byte(`<Message messageId="1" random="2" messageId="3"><AuthorizationRequest componentId="1"/></Message>`), ErrMalformed, StatusParseFailed, KindUnknown},
		{"component attribute twice", []byte(strings.Replace(minimalReq, `<AuthorizationRequest`, `<AuthorizationRequest critical="false" critical="true"`, 1)), ErrMalformed, StatusParseFailed, KindUnknown},
		{"xmlns twice", []byte(`<Message xmlns="a" xmlns="b"/>`), ErrMalformed, StatusParseFailed, KindUnknown},
		{"text after root", append(withElem(""), "junk"...), ErrMalformed, StatusParseFailed, KindUnknown},
		{"undeclared entity", withElem(`<JIP>&xxe;</JIP>`), ErrMalformed, StatusParseFailed, KindUnknown},
		{"DOCTYPE", []byte(`<?xml version="1.0"?><!DOCTYPE Message [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>` +
			strings.TrimPrefix(string(withElem("<JIP>&xxe;</JIP>")), `<?xml version="1.0"?>`)), ErrDOCTYPE, StatusParseFailed, KindUnknown},
		{"DOCTYPE without subset", []byte(`<!DOCTYPE Message SYSTEM "http://example.com/x.dtd"><Message/>`), ErrDOCTYPE, StatusParseFailed, KindUnknown},
		{"encoding", []byte(`<?xml version="1.0" encoding="ISO-8859-1"?><Message/>`), ErrEncoding, StatusEncodingNotSupported, KindUnknown},
		{"invalid UTF-8", withElem("<JIP>\xff\xfe</JIP>"), ErrMalformed, StatusParseFailed, KindUnknown},
		{"oversize", withElem(strings.Repeat(" ", DefaultLimits.MaxBytes)), ErrTooLarge, StatusBadRequest, KindUnknown},
		{"too deep", withElem(deep), ErrTooDeep, StatusBadRequest, KindUnknown},
		{"too many elements", withElem(many), ErrTooManyElements, StatusBadRequest, KindUnknown},
		{"unknown root", []byte(`<Hello/>`), ErrUnknownMessage, StatusBadRequest, KindUnknown},
		{"empty Message", []byte(`<Message messageId="1"/>`), ErrUnknownMessage, StatusBadRequest, KindUnknown},
		{"unsupported component", []byte(`<Message><PricingIndication componentId="1"/></Message>`), ErrUnsupported, StatusUnimplemented, KindUnsupported},
		{"answer sent as request", readTestdata(t, "usage-confirmation-accepted.xml"), ErrUnexpectedKind, StatusBadRequest, KindUsageConfirmation},
		{"mixed components", []byte(`<Message><UsageIndication componentId="1"/><AuthorizationRequest componentId="2"/></Message>`), ErrUnknownMessage, StatusBadRequest, KindUsageIndication},
		{"two authorisation requests", []byte(strings.Replace(minimalReq, "%s</AuthorizationRequest>", "</AuthorizationRequest><AuthorizationRequest/>", 1)), ErrInvalidValue, StatusBadRequest, KindAuthorizationRequest},
		{"no calling number", []byte(`<Message><AuthorizationRequest><DestinationInfo type="e164">2</DestinationInfo></AuthorizationRequest></Message>`), ErrMissingElement, StatusBadRequest, KindAuthorizationRequest},
		{"no called number", []byte(`<Message><AuthorizationRequest><SourceInfo type="e164">2</SourceInfo><DestinationInfo type="routingnumber">9</DestinationInfo></AuthorizationRequest></Message>`), ErrMissingElement, StatusBadRequest, KindAuthorizationRequest},
		{"bad base64 call id", withElem(`<CallId encoding="base64">!!!</CallId>`), ErrInvalidValue, StatusBadRequest, KindAuthorizationRequest},
		{"unknown call id encoding", withElem(`<CallId encoding="hex">00</CallId>`), ErrInvalidValue, StatusBadRequest, KindAuthorizationRequest},
		{"call id too long", withElem(`<CallId>` + strings.Repeat("a", MaxCallIDBytes+1) + `</CallId>`), ErrInvalidValue, StatusBadRequest, KindAuthorizationRequest},
		{"bad timestamp", withElem(`<Timestamp>yesterday</Timestamp>`), ErrInvalidValue, StatusBadRequest, KindAuthorizationRequest},
		{"bad max destinations", withElem(`<MaximumDestinations>-1</MaximumDestinations>`), ErrInvalidValue, StatusBadRequest, KindAuthorizationRequest},
		{"signed max destinations", withElem(`<MaximumDestinations>+5</MaximumDestinations>`), ErrInvalidValue, StatusBadRequest, KindAuthorizationRequest},
		{"empty max destinations", withElem(`<MaximumDestinations/>`), ErrInvalidValue, StatusBadRequest, KindAuthorizationRequest},
		{"non-numeric max destinations", withElem(`<MaximumDestinations>1e3</MaximumDestinations>`), ErrInvalidValue, StatusBadRequest, KindAuthorizationRequest},
		{"usage unit", []byte(strings.Replace(string(readTestdata(t, "usage-indication.xml")), "\ns</Unit>", "\nmin</Unit>", 1)), ErrInvalidValue, StatusBadRequest, KindUsageIndication},
		{"usage amount", []byte(strings.Replace(string(readTestdata(t, "usage-indication.xml")), "30.000", "NaN", 1)), ErrInvalidValue, StatusBadRequest, KindUsageIndication},
		{"usage transaction id", []byte(strings.Replace(string(readTestdata(t, "usage-indication.xml")), "\n1234567<", "\n12x4567<", 1)), ErrInvalidValue, StatusBadRequest, KindUsageIndication},
		{"reauth without transaction id", []byte(`<Message><ReauthorizationRequest componentId="1"><SourceInfo>1</SourceInfo><DestinationInfo>2</DestinationInfo></ReauthorizationRequest></Message>`), ErrMissingElement, StatusBadRequest, KindReauthorizationRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseRequest(tc.data)
			if err == nil {
				t.Fatalf("parsed %+v", m)
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("%T is not a *ParseError", err)
			}
			if pe.Status != tc.status || StatusOf(err) != tc.status {
				t.Errorf("status %v, want %v", pe.Status, tc.status)
			}
			if pe.Kind != tc.kind {
				t.Errorf("kind %v, want %v", pe.Kind, tc.kind)
			}
			_, rerr := RefusalFor(err, testNow)
			if isRequest(tc.kind) != (rerr == nil) {
				t.Errorf("RefusalFor: %v", rerr)
			}
		})
	}
}

// A refusal for a batch of usage indications confirms each with the
// refusal status, echoing each componentId.
func TestRefusalForUsageBatch(t *testing.T) {
	bad := `<?xml version="1.0"?><Message messageId="mm"><UsageIndication componentId="a"/><UsageIndication componentId="b"><Bogus/></UsageIndication></Message>`
	_, err := ParseUsageIndication([]byte(bad))
	ans, err2 := RefusalFor(err, testNow)
	if err2 != nil {
		t.Fatal(err, err2)
	}
	c := ans.(*UsageConfirmation)
	if c.MessageID != "mm" || len(c.Confirmations) != 2 || c.Confirmations[0].ComponentID != "a" ||
		c.Confirmations[1].ComponentID != "b" || c.Confirmations[1].Status != StatusUnsupportedCritical {
		t.Fatalf("%+v", c)
	}
	if _, err := Refuse(&UsageIndication{}, StatusOK, testNow); err == nil {
		t.Error("a refusal with 200")
	}
}

// A request of another kind than the Parse… function wants is refused
// with its own kind's answer, which echoes its messageId and componentIds
// as RefusalFor promises.
func TestRefusalForUnexpectedRequestKind(t *testing.T) {
	_, err := ParseAuthorizationRequest(readTestdata(t, "usage-indication.xml"))
	if !errors.Is(err, ErrUnexpectedKind) {
		t.Fatalf("err %v, want ErrUnexpectedKind", err)
	}
	ans, rerr := RefusalFor(err, testNow)
	if rerr != nil {
		t.Fatal(err, rerr)
	}
	c, ok := ans.(*UsageConfirmation)
	if !ok {
		t.Fatalf("%T, want *UsageConfirmation", ans)
	}
	if c.MessageID != "12345673" || len(c.Confirmations) != 1 || c.Confirmations[0].ComponentID != "12345672" ||
		c.Confirmations[0].Status != StatusBadRequest {
		t.Fatalf("%+v", c)
	}
}

// Values are trimmed (the toolkit writes "<Tag>\nvalue</Tag>"); CDATA and
// character references are decoded; comments and processing instructions
// are ignored.
func TestParseRequestWithLimits(t *testing.T) {
	data := readTestdata(t, "usage-indication.xml")
	lim := DefaultLimits
	lim.MaxDepth = 5 // the capture nests 6 deep (Statistics/LossSent/Packets)
	if _, err := ParseRequestWithLimits(data, lim); !errors.Is(err, ErrTooDeep) {
		t.Errorf("depth 5: %v", err)
	}
	lim = DefaultLimits
	lim.MaxElements = 20
	if _, err := ParseRequestWithLimits(data, lim); !errors.Is(err, ErrTooManyElements) {
		t.Errorf("20 elements: %v", err)
	}
	lim = DefaultLimits
	lim.MaxAttrs = 1
	if _, err := ParseRequestWithLimits(data, lim); !errors.Is(err, ErrTooManyElements) {
		t.Errorf("1 attribute: %v", err)
	}
	lim.MaxAttrs, lim.MaxBytes = 16, len(data)-1
	if _, err := ParseRequestWithLimits(data, lim); !errors.Is(err, ErrTooLarge) {
		t.Errorf("size: %v", err)
	}
}

func TestParseLexical(t *testing.T) {
	data := withElem("<!-- c --><?pi x?><CallId><![CDATA[a<b]]></CallId><CustomerId critical=\"false\">&#x31;0</CustomerId>")
	r, err := ParseAuthorizationRequest(data)
	if err != nil {
		t.Fatal(err)
	}
	if string(r.CallIDs[0]) != "a<b" || r.CustomerID != "10" {
		t.Errorf("%q %q", r.CallIDs[0], r.CustomerID)
	}
	ascii := bytes.Replace(withElem(""), []byte(`<?xml version="1.0"?>`), []byte(`<?xml version="1.0" encoding="US-ASCII"?>`), 1)
	if _, err := ParseAuthorizationRequest(ascii); err != nil {
		t.Error(err)
	}
	if _, err := ParseAuthorizationRequest(append([]byte("\xef\xbb\xbf"), withElem("")...)); err != nil {
		t.Errorf("byte order mark: %v", err)
	}
}

func TestParseAllKinds(t *testing.T) {
	now := testNow
	msgs := []Message{
		&ReauthorizationRequest{MessageID: "1", ComponentID: "2", Timestamp: now, Role: "source", CallID: []byte("cid"),
			SourceInfo: []Info{{TypeE164, "111"}}, DestinationInfo: []Info{{TypeE164, "222"}},
			DestinationAlternate: []Info{{TypeTransport, "[10.0.0.1]:5060"}},
			TransactionID:        42, Duration: 90 * time.Second, Tokens: [][]byte{[]byte("tok")}, CustomerID: "1000", DeviceID: "7"},
		&ReauthorizationResponse{MessageID: "1", ComponentID: "2", Timestamp: now, Status: StatusOK, TransactionID: 42,
			Destination: &ResponseDestination{SignalAddress: "[10.0.0.1]:5060", Token: []byte("tok"), MaxDuration: time.Hour, CallID: []byte("cid"),
				ValidAfter: now, ValidUntil: now.Add(time.Minute), NetworkID: "trunk7", Protocol: "sip", OSPVersion: "2.1.1"}},
		&CapabilitiesIndication{MessageID: "3", ComponentID: "4", Timestamp: now, DeviceInfo: []Info{{TypeTransport, "[10.0.0.2]"}},
			SourceAlternate: []Info{{TypeNetwork, "SrcNetworkId"}}, OSPVersion: "2.1.1", AlmostOutOfResources: true},
		&CapabilitiesConfirmation{MessageID: "3", ComponentID: "4", Timestamp: now, Status: StatusOK},
		&UsageIndication{MessageID: "5", Usages: []Usage{
			{ComponentID: "a", Role: "destination", TransactionID: 9, Duration: 61500 * time.Millisecond,
				StartTime: now, EndTime: now.Add(time.Minute), AlertTime: now, ConnectTime: now,
				TermCauses: []TermCause{{Type: "q850", Code: 16, Description: "normal"}}},
			{ComponentID: "b", Role: "source", TransactionID: 9},
		}},
		&UsageConfirmation{MessageID: "5", Confirmations: []Confirmation{{ComponentID: "a", Timestamp: now, Status: StatusOK}, {ComponentID: "b", Timestamp: now, Status: StatusBadRequest}}},
		&AuthorisationResponse{MessageID: "6", ComponentID: "7", Timestamp: now, Status: StatusNoRoute},
	}
	for _, m := range msgs {
		t.Run(m.Kind().String(), func(t *testing.T) {
			out, err := m.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseAny(out)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if !reflect.DeepEqual(got, m) {
				t.Fatalf("round trip\n%+v\n%+v\n%s", got, m, out)
			}
		})
	}
}

// The writers refuse values that are not XML character data instead of
// writing a document nobody can parse.
func TestWriterRefusesNonXML(t *testing.T) {
	r := &AuthorizationRequest{SourceInfo: []Info{{TypeE164, "1\x00"}}, DestinationInfo: []Info{{TypeE164, "2"}}}
	if _, err := r.Marshal(); err == nil {
		t.Error("NUL written")
	}
	r.SourceInfo[0].Value = "a&b<c\"d"
	out, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseAuthorizationRequest(out)
	if err != nil || back.SourceInfo[0].Value != "a&b<c\"d" {
		t.Fatalf("%v %+v", err, back)
	}
}

func TestNormalizeSignalAddress(t *testing.T) {
	good := map[string]string{
		"[127.0.0.2]:5060":    "[127.0.0.2]:5060",
		"127.0.0.2:5060":      "[127.0.0.2]:5060",
		"127.0.0.2":           "[127.0.0.2]",
		"[::1]:5060":          "[::1]:5060",
		"::1":                 "[::1]",
		"[::ffff:1.2.3.4]:5":  "[1.2.3.4]:5",
		"GW1.Carrier.com:112": "gw1.carrier.com:112",
		"gw1.carrier.com":     "gw1.carrier.com",
		"gw:05060":            "gw:5060",
	}
	for in, want := range good {
		got, err := NormalizeSignalAddress(in)
		if err != nil || got != want {
			t.Errorf("%q: %q %v, want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "[1.2.3.4", "[1.2.3.4]x", "[1.2.3.4]:", "[host]:5060", "host:", "host:0",
		"host:65536", "host:+5", "bad host:5060", "a<b:5", "-a.b:5", "[fe80::1%eth0]:5", strings.Repeat("a", 262)} {
		if got, err := NormalizeSignalAddress(in); err == nil {
			t.Errorf("%q accepted as %q", in, got)
		}
	}
}

// The bounds the README and doc.go state (256 KiB, 16 levels, 8192
// elements), as numbers: the tests above take DefaultLimits' own values,
// which a raised bound raises with them.
func TestDefaultLimitsAsDocumented(t *testing.T) {
	for _, c := range []struct {
		name string
		data []byte
		err  error
	}{
		{"256 KiB and a byte", withElem(strings.Repeat(" ", 256<<10)), ErrTooLarge},
		{"17 levels", withElem(strings.Repeat("<Statistics>", 15) + strings.Repeat("</Statistics>", 15)), ErrTooDeep},
		{"8193 elements", withElem(strings.Repeat("<JIP>1</JIP>", 8193)), ErrTooManyElements},
	} {
		if _, err := ParseRequest(c.data); !errors.Is(err, c.err) {
			t.Errorf("%s: %v, want %v", c.name, err, c.err)
		}
	}
}
