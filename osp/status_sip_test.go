package osp

import (
	"bytes"
	"encoding/xml"
	"strconv"
	"strings"
	"testing"
)

// toolkitTermCause reads the response-level <TerminationCause> of an
// AuthorisationResponse the way the toolkit does (OSPPAuthRspFromElement
// takes it among the component's children, OSPPTermCauseFromElement its
// type attribute, a numeric TCCode and a Description): found is false when
// the component has none.
func toolkitTermCause(t *testing.T, data []byte) (typ string, code int, desc string, found bool) {
	t.Helper()
	var msg struct {
		Component struct {
			XMLName xml.Name
			Causes  []struct {
				Type   string `xml:"type,attr"`
				TCCode string `xml:"TCCode"`
				Desc   string `xml:"Description"`
			} `xml:"TerminationCause"`
		} `xml:",any"`
	}
	if err := xml.Unmarshal(data, &msg); err != nil {
		t.Fatalf("%v:\n%s", err, data)
	}
	if msg.Component.XMLName.Local != "AuthorisationResponse" {
		t.Fatalf("component %q, want AuthorisationResponse:\n%s", msg.Component.XMLName.Local, data)
	}
	switch len(msg.Component.Causes) {
	case 0:
		return "", 0, "", false
	case 1:
	default:
		t.Fatalf("%d response-level TerminationCauses:\n%s", len(msg.Component.Causes), data)
	}
	c := msg.Component.Causes[0]
	n, err := strconv.ParseUint(c.TCCode, 10, 32) // OSPPMsgCodeFromElement
	if err != nil {
		t.Fatalf("TCCode %q: %v", c.TCCode, err)
	}
	return c.Type, int(n), c.Desc, true
}

// A refusal of an AuthorizationRequest carries the SIP response for the
// caller as the toolkit reads it, and parses back; statuses the table does
// not know carry none.
func TestRefusalSIPCause(t *testing.T) {
	req := authRequest(t)
	for _, tc := range []struct {
		st   Status
		code int
		desc string
	}{
		{StatusUnauthorized, 403, "Forbidden"},
		{StatusNoRoute, 404, "Not Found"},
		{StatusDestinationInvalid, 484, "Address Incomplete"},
		{StatusServiceUnavailable, 503, "Service Unavailable"},
		{StatusUnimplemented, 501, "Not Implemented"},
		{StatusInternalError, 500, "Server Internal Error"},
		{StatusBadRequest, 500, "Server Internal Error"},
		{StatusCallingInvalid, 403, "Forbidden"},
		{StatusSecurityProblem, 403, "Forbidden"},
		{StatusCallRateExceeded, 503, "Service Unavailable"},
		{StatusDecline, 603, "Decline"},
		{Status{599, "other"}, 0, ""},
	} {
		t.Run(tc.st.String(), func(t *testing.T) {
			m, err := Refuse(req, tc.st, testNow)
			if err != nil {
				t.Fatal(err)
			}
			data, err := m.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			typ, code, desc, found := toolkitTermCause(t, data)
			if found != (tc.code != 0) || code != tc.code || desc != tc.desc || (found && typ != "sip") {
				t.Fatalf("TerminationCause type=%q %d %q (found %v), want sip %d %q:\n%s", typ, code, desc, found, tc.code, tc.desc, data)
			}
			if found {
				want := "<TerminationCause type=\"sip\">\n<TCCode>" + strconv.Itoa(tc.code) + "</TCCode>\n<Description>" + tc.desc + "</Description>\n</TerminationCause>\n"
				// after the Status, as the component's child
				if !bytes.Contains(data, []byte("</Status>\n"+want)) {
					t.Errorf("want %s in:\n%s", want, data)
				}
			}
			back, err := ParseAuthorisationResponse(data)
			if err != nil {
				t.Fatal(err)
			}
			if back.Status.Code != tc.st.Code {
				t.Errorf("status %v, want %v", back.Status, tc.st)
			}
			switch {
			case !found && back.TermCause != nil:
				t.Errorf("parsed back a cause %+v from none", back.TermCause)
			case found && (back.TermCause == nil || *back.TermCause != TermCause{Type: TermCauseSIP, Code: tc.code, Description: tc.desc}):
				t.Errorf("parsed back %+v", back.TermCause)
			}
		})
	}
}

// Authorize's own refusals (no route, query service, unusable numbers)
// carry the cause too; its success none, and a reauthorization refusal
// none (the toolkit's OSPPReauthRspFromElement would refuse the answer
// for an element it does not handle).
func TestAuthorizeSIPCause(t *testing.T) {
	req := authRequest(t)
	rsp, err := Authorize(req, nil, nil, testNow, 0)
	if err != nil {
		t.Fatal(err)
	}
	data, err := rsp.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if typ, code, desc, ok := toolkitTermCause(t, data); !ok || typ != "sip" || code != 404 || desc != "Not Found" {
		t.Errorf("no route: cause %q %d %q (%v), want sip 404 Not Found:\n%s", typ, code, desc, ok, data)
	}

	rsp, err = Authorize(req, []Destination{{SignalAddress: "10.0.0.1:5060"}}, nil, testNow, 0)
	if err != nil {
		t.Fatal(err)
	}
	data, err = rsp.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, ok := toolkitTermCause(t, data); ok || rsp.TermCause != nil {
		t.Errorf("success with a termination cause:\n%s", data)
	}

	m, err := Refuse(&ReauthorizationRequest{MessageID: "m", ComponentID: "c", TransactionID: 7}, StatusNoRoute, testNow)
	if err != nil {
		t.Fatal(err)
	}
	data, err = m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "TerminationCause") {
		t.Errorf("reauthorization refusal with a termination cause:\n%s", data)
	}
}
