package wire

import (
	"bytes"
	"testing"
)

// BenchmarkDecodeRequest decodes the body the real toolkit sent for
// `enroll -function request` (testdata/request.golden: RSA-2048 CSR, ~1 KB).
func BenchmarkDecodeRequest(b *testing.B) {
	body := readGolden(b, "request.golden")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeRequest(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendResponse encodes a getcacert answer (testdata/ca.pem, 767 B
// DER) into a reused buffer, as the handler's hot path does.
func BenchmarkAppendResponse(b *testing.B) {
	r := Response{Status: StatusOK, Certificate: readDER(b, "ca.pem")}
	buf := make([]byte, 0, ResponseLen(r))
	b.SetBytes(int64(ResponseLen(r)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendResponse(buf[:0], r)
	}
	if got, err := DecodeResponse(buf); err != nil || !bytes.Equal(got.Certificate, r.Certificate) {
		b.Fatalf("the answer does not decode back: %v", err)
	}
}

func BenchmarkEncodeRequest(b *testing.B) {
	r := Request{Operation: OpRequest, Nonce: []byte("150276791\x0019029\x00"), Username: "mcmanus",
		Password: "01234567", Device: "134217728", Customer: "0", CSR: readDER(b, "device.csr.pem")}
	b.ReportAllocs()
	var enc []byte
	for b.Loop() {
		enc = EncodeRequest(r)
	}
	if got, err := DecodeRequest(enc); err != nil || !bytes.Equal(got.CSR, r.CSR) || got.Username != r.Username {
		b.Fatalf("the request does not decode back: %v", err)
	}
}

func BenchmarkDecodeResponse(b *testing.B) {
	body := readGolden(b, "request-answer.golden")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeResponse(body); err != nil {
			b.Fatal(err)
		}
	}
}
