package osp

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestAuthorize(t *testing.T) {
	three := []Destination{{SignalAddress: "10.0.0.1:5060"}, {SignalAddress: "10.0.0.2:5060"}, {SignalAddress: "10.0.0.3:5060"}}
	t.Run("ids echoed, one transaction id, call ids per destination", func(t *testing.T) {
		req := authRequest(t)
		rsp, err := Authorize(req, three, nil, testNow, 0)
		if err != nil {
			t.Fatal(err)
		}
		if rsp.MessageID != req.MessageID || rsp.ComponentID != req.ComponentID || !rsp.Timestamp.Equal(testNow) || rsp.Status != StatusOK {
			t.Fatalf("%+v", rsp)
		}
		if rsp.TransactionID == 0 || rsp.TransactionID>>63 != 0 {
			t.Fatalf("transaction id %d", rsp.TransactionID)
		}
		for i, d := range rsp.Destinations {
			info, err := ParseTokenInfo(d.Token)
			if err != nil {
				t.Fatal(err)
			}
			if info.TransactionID != rsp.TransactionID || string(d.CallID) != string(rune('1'+i)) ||
				string(info.CallID) != string(d.CallID) || info.SignalAddress != d.SignalAddress ||
				!info.ValidUntil.Equal(testNow.Add(DefaultTokenValidity)) || !info.ValidAfter.Equal(testNow.Add(-TokenBackdate)) ||
				d.Protocol != "sip" || d.OSPVersion != "2.1.1" || d.MaxDuration != DefaultMaxDuration {
				t.Errorf("destination %d: %+v / %+v", i, d, info)
			}
		}
		again, _ := Authorize(req, three, nil, testNow, 0)
		if again.TransactionID == rsp.TransactionID {
			t.Error("two authorisations share a transaction id")
		}
	})
	t.Run("one call id for every destination", func(t *testing.T) {
		req := authRequest(t)
		req.CallIDs = req.CallIDs[:1]
		rsp, _ := Authorize(req, three, nil, testNow, 0)
		for _, d := range rsp.Destinations {
			if string(d.CallID) != "1" {
				t.Errorf("call id %q", d.CallID)
			}
		}
		req.CallIDs = nil
		rsp, _ = Authorize(req, three, nil, testNow, 0)
		if d := rsp.Destinations[0]; d.CallID != nil || strings.Contains(string(d.Token), "CallId") {
			t.Errorf("call id without one in the request: %+v", d)
		}
	})
	t.Run("MaximumDestinations", func(t *testing.T) {
		req := authRequest(t)
		req.MaxDestinations = 2
		rsp, _ := Authorize(req, three, nil, testNow, 0)
		if len(rsp.Destinations) != 2 {
			t.Errorf("%d destinations", len(rsp.Destinations))
		}
	})
	t.Run("validity", func(t *testing.T) {
		rsp, err := Authorize(authRequest(t), three[:1], nil, testNow.Add(500*time.Millisecond), 90*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if d := rsp.Destinations[0]; !d.ValidUntil.Equal(testNow.Add(90 * time.Second)) {
			t.Errorf("ValidUntil %v", d.ValidUntil)
		}
		for _, bad := range []time.Duration{-time.Second, time.Millisecond, 25 * time.Hour} {
			if _, err := Authorize(authRequest(t), three, nil, testNow, bad); err == nil {
				t.Errorf("validity %v accepted", bad)
			}
		}
	})

	refusals := []struct {
		name  string
		mod   func(*AuthorizationRequest)
		dests []Destination
		want  Status
	}{
		{"no destination", nil, nil, StatusNoRoute},
		{"calling number too long", func(r *AuthorizationRequest) { r.SourceInfo[0].Value = strings.Repeat("1", MaxNumber+1) }, three, StatusCallingInvalid},
		{"calling number with control character", func(r *AuthorizationRequest) { r.SourceInfo[0].Value = "1\x012" }, three, StatusCallingInvalid},
		{"called number too long", func(r *AuthorizationRequest) { r.DestinationInfo[0].Value = strings.Repeat("1", MaxNumber+1) }, three, StatusDestinationInvalid},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			req := authRequest(t)
			if tc.mod != nil {
				tc.mod(req)
			}
			rsp, err := Authorize(req, tc.dests, nil, testNow, 0)
			if err != nil {
				t.Fatal(err)
			}
			if rsp.Status != tc.want || len(rsp.Destinations) != 0 || rsp.TransactionID != 0 {
				t.Fatalf("%+v", rsp)
			}
			out, err := rsp.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParseAuthorisationResponse(out)
			if err != nil || back.Status != tc.want {
				t.Fatalf("%v %+v", err, back)
			}
		})
	}

	for _, bad := range []Destination{
		{SignalAddress: ""},
		{SignalAddress: "not an address"},
		{SignalAddress: "10.0.0.1:5060", CalledNumber: strings.Repeat("9", MaxNumber+1)},
		{SignalAddress: "10.0.0.1:5060", Device: "a\nb"},
		{SignalAddress: "10.0.0.1:5060", MaxDuration: time.Millisecond},
	} {
		if _, err := Authorize(authRequest(t), []Destination{bad}, nil, testNow, 0); err == nil {
			t.Errorf("destination %+v accepted", bad)
		}
	}
	if _, err := Authorize(nil, three, nil, testNow, 0); err == nil {
		t.Error("nil request")
	}
	if _, err := Authorize(authRequest(t), three, &TokenSigner{}, testNow, 0); err == nil {
		t.Error("signer without key")
	}
}

func TestReauthorize(t *testing.T) {
	p := testPKI(t)
	req := reauthRequest(t, p.signer, Destination{SignalAddress: "10.0.0.9:5060", Device: "gw9"})
	// the request names another destination: the token's is used
	req.DestinationAlternate = []Info{{TypeTransport, "10.6.6.6:5060"}}
	v := &Verifier{Roots: p.roots, Now: fixedClock(testNow)}
	info, err := v.VerifyReauthorization(req)
	if err != nil {
		t.Fatal(err)
	}
	rsp, err := Reauthorize(req, info, Destination{MaxDuration: 30 * time.Minute}, p.signer, testNow, 0)
	if err != nil {
		t.Fatal(err)
	}
	if rsp.Status != StatusOK || rsp.TransactionID != req.TransactionID || rsp.MessageID != "m" || rsp.ComponentID != "c" ||
		rsp.Destination == nil || rsp.Destination.SignalAddress != "[10.0.0.9]:5060" || rsp.Destination.NetworkID != "gw9" ||
		rsp.Destination.MaxDuration != 30*time.Minute {
		t.Fatalf("%+v %+v", rsp, rsp.Destination)
	}
	fresh, err := v.Verify(rsp.Destination.Token, Call{"14048724799", "1678", []byte("1"), "10.0.0.9:5060"})
	if err != nil || fresh.TransactionID != req.TransactionID {
		t.Fatalf("%v %+v", err, fresh)
	}
	out, err := rsp.Marshal()
	if err != nil || !strings.Contains(string(out), "<ReauthorizationResponse ") {
		t.Fatalf("%v\n%s", err, out)
	}

	// misuse by the caller is an error, never a token
	other := *info
	other.TransactionID++
	for name, call := range map[string]func() (*ReauthorizationResponse, error){
		"no token": func() (*ReauthorizationResponse, error) {
			return Reauthorize(req, nil, Destination{}, p.signer, testNow, 0)
		},
		"other transaction": func() (*ReauthorizationResponse, error) {
			return Reauthorize(req, &other, Destination{}, p.signer, testNow, 0)
		},
		"another destination": func() (*ReauthorizationResponse, error) {
			return Reauthorize(req, info, Destination{SignalAddress: "10.6.6.6:5060"}, p.signer, testNow, 0)
		},
		"nil request": func() (*ReauthorizationResponse, error) {
			return Reauthorize(nil, info, Destination{}, p.signer, testNow, 0)
		},
	} {
		if rsp, err := call(); err == nil {
			t.Errorf("%s: %+v", name, rsp)
		}
	}
	// the same destination written differently is fine
	if rsp, err := Reauthorize(req, info, Destination{SignalAddress: "[10.0.0.9]:5060"}, p.signer, testNow, 0); err != nil || rsp.Status != StatusOK {
		t.Errorf("same destination: %v %+v", err, rsp)
	}
	// a token naming no destination is answered 489
	none := *info
	none.SignalAddress = ""
	if rsp, err := Reauthorize(req, &none, Destination{}, p.signer, testNow, 0); err != nil || rsp.Status != StatusDestinationInvalid || rsp.Destination != nil {
		t.Errorf("no destination: %v %+v", err, rsp)
	}
}

func TestConfirmCapabilitiesAndRefuse(t *testing.T) {
	ind := &CapabilitiesIndication{MessageID: "m", ComponentID: "c", AlmostOutOfResources: true}
	c := ConfirmCapabilities(ind, StatusOK, testNow)
	if c.MessageID != "m" || c.ComponentID != "c" || c.Status != StatusOK {
		t.Fatalf("%+v", c)
	}
	for _, req := range []Message{authRequest(t), ind, &ReauthorizationRequest{MessageID: "m", ComponentID: "c", TransactionID: 77},
		&UsageIndication{MessageID: "m", Usages: []Usage{{ComponentID: "a"}, {ComponentID: "b"}}}} {
		ans, err := Refuse(req, StatusServiceUnavailable, testNow)
		if err != nil {
			t.Fatal(err)
		}
		if ans.Kind() != req.Kind().Answer() {
			t.Errorf("%v answered by %v", req.Kind(), ans.Kind())
		}
		out, err := ans.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseAnswer(out)
		if err != nil {
			t.Fatal(err)
		}
		if back.Kind() != ans.Kind() || !strings.Contains(string(out), "<Code>503</Code>") {
			t.Errorf("%s", out)
		}
		// a reauthorization's refusal names the call's transaction, as its
		// success does (TS 101 321; the toolkit compares it first)
		if rr, ok := back.(*ReauthorizationResponse); ok && rr.TransactionID != 77 {
			t.Errorf("reauthorization refused with transaction %d, want 77:\n%s", rr.TransactionID, out)
		}
	}
	if _, err := Refuse(&AuthorisationResponse{}, StatusBadRequest, testNow); !errors.Is(err, ErrUnexpectedKind) {
		t.Errorf("refusing an answer: %v", err)
	}
	if _, err := RefusalFor(errors.New("x"), testNow); !errors.Is(err, ErrUnknownMessage) {
		t.Errorf("RefusalFor(plain error): %v", err)
	}
	if StatusOf(nil) != StatusOK || StatusOf(errors.New("x")) != StatusInternalError {
		t.Error("StatusOf")
	}
}
