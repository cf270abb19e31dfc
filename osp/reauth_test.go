package osp

import (
	"errors"
	"testing"
	"time"
)

// reauthRequest authorises the captured request for dest with signer at
// testNow and returns the reauthorization request the toolkit would send
// for the call (OSPPTransactionBuildReauthRequest): the destination's call
// id and token, the authorisation's numbers and transaction id, and no
// DestinationAlternate.
func reauthRequest(t testing.TB, signer *TokenSigner, dest Destination) *ReauthorizationRequest {
	t.Helper()
	auth := authRequest(t)
	rsp, err := Authorize(auth, []Destination{dest}, signer, testNow, 0)
	if err != nil {
		t.Fatal(err)
	}
	if rsp.Status != StatusOK {
		t.Fatalf("status %v", rsp.Status)
	}
	d := rsp.Destinations[0]
	return &ReauthorizationRequest{
		MessageID: "m", ComponentID: "c", Timestamp: testNow, Role: "source", CallID: d.CallID,
		SourceInfo: auth.SourceInfo, DestinationInfo: auth.DestinationInfo,
		TransactionID: rsp.TransactionID, Duration: 30 * time.Second, Tokens: [][]byte{d.Token},
	}
}

// A reauthorization needs a token this server issued for the very call,
// expired for at most the call's time limit.
func TestVerifyReauthorization(t *testing.T) {
	p := testPKI(t)
	dest := Destination{SignalAddress: "10.0.0.9:5060"}
	good := reauthRequest(t, p.signer, dest)
	validUntil := testNow.Add(DefaultTokenValidity)
	short := reauthRequest(t, p.signer, Destination{SignalAddress: "10.0.0.9:5060", MaxDuration: 10 * time.Minute})
	long := reauthRequest(t, p.signer, Destination{SignalAddress: "10.0.0.9:5060", MaxDuration: 24 * time.Hour})
	unsigned := reauthRequest(t, nil, dest)

	// a device of the same CA signs a token of its own for the call, to a
	// destination of its choosing
	info, err := (&Verifier{Roots: p.roots, Now: fixedClock(testNow)}).VerifyReauthorization(good)
	if err != nil {
		t.Fatal(err)
	}
	forged := *info
	forged.SignalAddress = "[10.6.6.6]:5060"
	forgedXML, err := forged.Encode()
	if err != nil {
		t.Fatal(err)
	}
	byDevice, err := deviceSigner(t, p).Sign(forgedXML)
	if err != nil {
		t.Fatal(err)
	}
	otherCA := otherPKI(t)
	byOtherCA, err := otherCA.signer.Sign(forgedXML)
	if err != nil {
		t.Fatal(err)
	}

	with := func(r *ReauthorizationRequest, mod func(*ReauthorizationRequest)) *ReauthorizationRequest {
		c := *r
		c.Tokens = append([][]byte(nil), r.Tokens...)
		mod(&c)
		return &c
	}
	tests := []struct {
		name string
		v    Verifier
		now  time.Time
		req  *ReauthorizationRequest
		err  error // nil: accepted
	}{
		{"the call's token", Verifier{Roots: p.roots}, testNow, good, nil},
		{"expired, the call in progress", Verifier{Roots: p.roots}, validUntil.Add(3 * time.Hour), good, nil},
		// the toolkit sends the call's first token with every extension
		{"extended past the call's time limit", Verifier{Roots: p.roots}, validUntil.Add(DefaultMaxDuration + time.Hour), good, nil},
		{"at the longest extension", Verifier{Roots: p.roots}, validUntil.Add(MaxReauthorizationDelay), good, nil},
		{"past the longest extension", Verifier{Roots: p.roots}, validUntil.Add(MaxReauthorizationDelay + time.Second), good, ErrTokenExpired},
		{"short time limit, extended", Verifier{Roots: p.roots}, validUntil.Add(11 * time.Minute), short, nil},
		{"long time limit, capped", Verifier{Roots: p.roots}, validUntil.Add(MaxReauthorizationDelay + time.Minute), long, ErrTokenExpired},
		{"past, within skew", Verifier{Roots: p.roots, Skew: time.Minute}, validUntil.Add(MaxReauthorizationDelay + 30*time.Second), good, nil},
		{"not yet valid", Verifier{Roots: p.roots}, testNow.Add(-TokenBackdate - time.Second), good, ErrTokenNotYetValid},
		{"no token", Verifier{Roots: p.roots}, testNow, with(good, func(r *ReauthorizationRequest) { r.Tokens = nil }), ErrTokenMissing},
		{"other transaction id", Verifier{Roots: p.roots}, testNow, with(good, func(r *ReauthorizationRequest) { r.TransactionID++ }), ErrTokenMismatch},
		{"other calling number", Verifier{Roots: p.roots}, testNow, with(good, func(r *ReauthorizationRequest) { r.SourceInfo = []Info{{TypeE164, "14048724798"}} }), ErrTokenMismatch},
		{"other called number", Verifier{Roots: p.roots}, testNow, with(good, func(r *ReauthorizationRequest) { r.DestinationInfo = []Info{{TypeE164, "1679"}} }), ErrTokenMismatch},
		{"other call id", Verifier{Roots: p.roots}, testNow, with(good, func(r *ReauthorizationRequest) { r.CallID = []byte("2") }), ErrTokenMismatch},
		{"no call id", Verifier{Roots: p.roots}, testNow, with(good, func(r *ReauthorizationRequest) { r.CallID = nil }), ErrTokenMismatch},
		{"signed by a device", Verifier{Roots: p.roots}, testNow, with(good, func(r *ReauthorizationRequest) { r.Tokens = [][]byte{byDevice} }), ErrTokenSignerUsage},
		{"signed under another CA", Verifier{Roots: p.roots}, testNow, with(good, func(r *ReauthorizationRequest) { r.Tokens = [][]byte{byOtherCA} }), ErrTokenChain},
		{"pinned to another signer", Verifier{Roots: p.roots, Signers: [][32]byte{fingerprint(otherCA.signer.Cert)}}, testNow, good, ErrTokenSignerPin},
		{"pinned to ours", Verifier{Roots: p.roots, Signers: [][32]byte{fingerprint(p.signer.Cert)}}, testNow, good, nil},
		{"unsigned, not allowed", Verifier{Roots: p.roots}, testNow, unsigned, ErrTokenUnsigned},
		{"unsigned, allowed", Verifier{AllowUnsigned: true}, testNow, unsigned, nil},
		{"garbage", Verifier{Roots: p.roots}, testNow, with(good, func(r *ReauthorizationRequest) { r.Tokens = [][]byte{{0x30, 3, 1, 2, 3}} }), ErrTokenSignature},
		{"garbage, then the call's token", Verifier{Roots: p.roots}, testNow, with(good, func(r *ReauthorizationRequest) { r.Tokens = [][]byte{{0x30, 3, 1, 2, 3}, good.Tokens[0]} }), nil},
		{"a device's, then garbage", Verifier{Roots: p.roots}, testNow, with(good, func(r *ReauthorizationRequest) { r.Tokens = [][]byte{byDevice, {0x30}} }), ErrTokenSignerUsage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.v
			v.Now = fixedClock(tc.now)
			info, err := v.VerifyReauthorization(tc.req)
			if tc.err == nil {
				if err != nil {
					t.Fatal(err)
				}
				if info.TransactionID != tc.req.TransactionID || info.SignalAddress != "[10.0.0.9]:5060" {
					t.Fatalf("%+v", info)
				}
				return
			}
			if !errors.Is(err, tc.err) || info != nil {
				t.Fatalf("err %v (info %+v), want %v", err, info, tc.err)
			}
			for _, other := range []error{ErrTokenMissing, ErrTokenMalformed, ErrTokenUnsigned, ErrTokenSignature, ErrTokenChain,
				ErrTokenSignerUsage, ErrTokenSignerPin, ErrTokenMismatch, ErrTokenNotYetValid, ErrTokenExpired} {
				if other != tc.err && errors.Is(err, other) {
					t.Errorf("err %v is also %v", err, other)
				}
			}
		})
	}
	if _, err := (&Verifier{Roots: p.roots}).VerifyReauthorization(nil); !errors.Is(err, ErrTokenMissing) {
		t.Errorf("nil request: %v", err)
	}
}

// The whole exchange: the new token is for the verified token's
// destination whatever the request names, and a forged one gets nothing.
func TestReauthorizeOnlyWithTheCallsToken(t *testing.T) {
	p := testPKI(t)
	v := &Verifier{Roots: p.roots, Now: fixedClock(testNow)}
	req := reauthRequest(t, p.signer, Destination{SignalAddress: "10.0.0.9:5060"})
	req.DestinationAlternate = []Info{{TypeTransport, "[10.6.6.6]:5060"}}
	info, err := v.VerifyReauthorization(req)
	if err != nil {
		t.Fatal(err)
	}
	rsp, err := Reauthorize(req, info, Destination{}, p.signer, testNow, 0)
	if err != nil || rsp.Status != StatusOK || rsp.Destination.SignalAddress != "[10.0.0.9]:5060" {
		t.Fatalf("%v %+v", err, rsp)
	}
	got, err := v.Verify(rsp.Destination.Token, Call{"14048724799", "1678", []byte("1"), "[10.0.0.9]:5060"})
	if err != nil || got.TransactionID != req.TransactionID {
		t.Fatalf("%v %+v", err, got)
	}

	// an invented transaction, numbers and token of a device's own making
	forged := TokenInfo{SourceInfo: Info{TypeE164, "1"}, DestinationInfo: Info{TypeE164, "2"}, SignalAddress: "[10.6.6.6]:5060",
		CallID: []byte("x"), ValidAfter: testNow.Add(-time.Minute), ValidUntil: testNow.Add(time.Hour), TransactionID: 99}
	xml, err := forged.Encode()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := deviceSigner(t, p).Sign(xml)
	if err != nil {
		t.Fatal(err)
	}
	bad := &ReauthorizationRequest{MessageID: "m", ComponentID: "c", CallID: []byte("x"), TransactionID: 99,
		SourceInfo: []Info{{TypeE164, "1"}}, DestinationInfo: []Info{{TypeE164, "2"}}, Tokens: [][]byte{tok, xml}}
	if info, err := v.VerifyReauthorization(bad); !errors.Is(err, ErrTokenSignerUsage) {
		t.Fatalf("a device's token: %v %+v", err, info)
	}
}
