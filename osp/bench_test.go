package osp

import (
	"testing"
	"time"
)

// BenchmarkAuthorize3 is the server's work for one call: parse the captured
// AuthorizationRequest, build the answer with 3 destinations and 3 signed
// tokens (P-256 token key), write the XML. Compare with BenchmarkSignToken:
// signing is most of it.
func BenchmarkAuthorize3(b *testing.B) {
	p := testPKI(b)
	data := readTestdata(b, "authorization-request.xml")
	dests := []Destination{
		{SignalAddress: "10.0.0.1:5060"},
		{SignalAddress: "10.0.0.2:5060", Device: "trunk-2"},
		{SignalAddress: "gw3.example.net:5060"},
	}
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req, err := ParseAuthorizationRequest(data)
		if err != nil {
			b.Fatal(err)
		}
		rsp, err := Authorize(req, dests, p.signer, now, 0)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := rsp.Marshal(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "auths/s")
}

// BenchmarkSignToken is the bare CMS signature of one TokenInfo (P-256).
func BenchmarkSignToken(b *testing.B) {
	p := testPKI(b)
	info, err := (&TokenInfo{
		Random: "1", SourceInfo: Info{TypeE164, "14048724799"}, DestinationInfo: Info{TypeE164, "1678"},
		SignalAddress: "[10.0.0.1]:5060", CallID: []byte("1"), ValidAfter: testNow, ValidUntil: testNow.Add(time.Minute),
		TransactionID: 1234567, MaxDuration: 4 * time.Hour,
	}).Encode()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := p.signer.Sign(info); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// BenchmarkAuthorize3Unsigned is BenchmarkAuthorize3 with unsigned tokens:
// the cost of everything but the signatures.
func BenchmarkAuthorize3Unsigned(b *testing.B) {
	data := readTestdata(b, "authorization-request.xml")
	dests := []Destination{{SignalAddress: "10.0.0.1:5060"}, {SignalAddress: "10.0.0.2:5060"}, {SignalAddress: "10.0.0.3:5060"}}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		req, err := ParseAuthorizationRequest(data)
		if err != nil {
			b.Fatal(err)
		}
		rsp, err := Authorize(req, dests, nil, now, 0)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := rsp.Marshal(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "auths/s")
}

// BenchmarkVerifyToken is a gateway's check of one signed token (replay
// cache off: every iteration verifies the same token).
func BenchmarkVerifyToken(b *testing.B) {
	p := testPKI(b)
	d := signedResponse(b, Destination{SignalAddress: "127.0.0.2:5060"}).Destinations[0]
	v := &Verifier{Roots: p.roots, Now: fixedClock(testNow)}
	call := callFor(d)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(d.Token, call); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// BenchmarkConfirmUsage parses the captured UsageIndication and writes the
// confirmation.
func BenchmarkConfirmUsage(b *testing.B) {
	data := readTestdata(b, "usage-indication.xml")
	b.ReportAllocs()
	for b.Loop() {
		ind, err := ParseUsageIndication(data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ConfirmUsage(ind, StatusOK, testNow).Marshal(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "usages/s")
}
