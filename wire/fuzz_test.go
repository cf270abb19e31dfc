package wire

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// Seed corpora live in testdata/fuzz/<FuzzName>/ (Table 2/4/5/6 bodies, the
// captured toolkit bodies, answers, and the error cases of the table tests).

func checkDecodeError(t *testing.T, err error) {
	t.Helper()
	var de *DecodeError
	if !errors.As(err, &de) || de.Err == nil || de.Msg == "" {
		t.Fatalf("error is not a classified *DecodeError: %#v", err)
	}
}

// canonical is what EncodeRequest can carry of r: no Extra, nothing but the
// operation for getcacert, CSRField spelled out.
func canonical(r *Request) Request {
	if r.Operation == OpGetCACert {
		return Request{Operation: OpGetCACert}
	}
	c := *r
	c.Extra = nil
	if len(c.CSR) == 0 {
		c.CSRField = ""
	} else if c.CSRField == "" {
		c.CSRField = CSRFieldRequest
	}
	return c
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte("operation=getcacert"))
	f.Add([]byte("operation=request&nonce=150276791%0019029%00&username=mcmanus&password=01234567&device=134217728&customer=0&request=MIIB%2B%2F%3D%3D"))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := DecodeRequest(body)
		if err != nil {
			if r != nil {
				t.Fatal("request and error")
			}
			checkDecodeError(t, err)
			return
		}
		if r.Operation != OpGetCACert && r.Operation != OpRequest && r.Operation != OpRetrieve {
			t.Fatalf("operation %q", r.Operation)
		}
		if len(r.Nonce) > MaxNonceLen || len(r.Extra) > MaxPairs {
			t.Fatal("bounds not enforced")
		}
		for i := range r.Extra {
			for _, o := range r.Extra[:i] {
				if strings.EqualFold(o.Name, r.Extra[i].Name) && isASCII(o.Name+r.Extra[i].Name) {
					t.Fatalf("unknown variable %q given twice (as %q)", r.Extra[i].Name, o.Name)
				}
			}
		}
		if err := r.Validate(); err != nil {
			// Only the re-encoded size can differ from what was accepted
			// (raw base64 sent unescaped grows when escaped).
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("decoded request does not Validate: %v", err)
			}
			return
		}
		c := canonical(r)
		enc := EncodeRequest(c)
		r2, err := DecodeRequest(enc)
		if err != nil {
			t.Fatalf("DecodeRequest(EncodeRequest(%+v)) = %v\nbody %q", c, err, enc)
		}
		if !sameRequest(r2, &c) {
			t.Fatalf("round trip\n got %+v\nwant %+v", r2, c)
		}
		if !bytes.Equal(EncodeRequest(*r2), enc) {
			t.Fatal("encoding is not canonical")
		}
	})
}

func FuzzRequestRoundTrip(f *testing.F) {
	f.Add(uint8(1), []byte("150276791\x0019029\x00"), "mcmanus", "01234567", "134217728", "0", []byte{0x30, 0x82, 0xfb, 0xff}, []byte(nil), false)
	f.Add(uint8(2), []byte(nil), "u v", "p&=+%", "1", "2", []byte(nil), []byte{0xff}, true)
	f.Add(uint8(0), []byte(nil), "", "", "", "", []byte(nil), []byte(nil), false)
	f.Fuzz(func(t *testing.T, op uint8, nonce []byte, user, pass, dev, cust string, csr, cacert []byte, certreq bool) {
		r := Request{
			Operation: [...]string{OpGetCACert, OpRequest, OpRetrieve}[op%3],
			Nonce:     nonce, Username: user, Password: pass, Device: dev, Customer: cust, CSR: csr, CACert: cacert,
		}
		if certreq {
			r.CSRField = CSRFieldCertReq
		}
		if r.Validate() != nil {
			return
		}
		c := canonical(&r)
		got, err := DecodeRequest(EncodeRequest(r))
		if err != nil {
			t.Fatalf("valid %+v: %v", r, err)
		}
		if !sameRequest(got, &c) {
			t.Fatalf("round trip\n got %+v\nwant %+v", got, c)
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	f.Add([]byte("status=0&certificate=MIIB+/==\n"))
	f.Add([]byte("status=1&nonce=A1F0765F71C9E6AD"))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := DecodeResponse(body)
		if err != nil {
			if r != nil {
				t.Fatal("response and error")
			}
			checkDecodeError(t, err)
			return
		}
		if r.Status < 0 || r.Status == StatusOK && len(r.Certificate) == 0 {
			t.Fatalf("accepted %+v", r)
		}
		enc := AppendResponse(nil, *r)
		if enc[len(enc)-1] != '\n' || bytes.Count(enc, []byte("\n")) != 1 || bytes.IndexByte(enc, ' ') >= 0 {
			t.Fatalf("answer %q is not one line ending in \\n", enc)
		}
		if len(enc) > MaxBody {
			return
		}
		r2, err := DecodeResponse(enc)
		if err != nil {
			t.Fatalf("DecodeResponse(AppendResponse(%+v)) = %v", r, err)
		}
		if !sameResponse(r2, r) {
			t.Fatalf("round trip\n got %+v\nwant %+v", r2, r)
		}
		// What the toolkit parses: the body minus its last byte.
		if r3, err := DecodeResponse(enc[:len(enc)-1]); err != nil || !sameResponse(r3, r) {
			t.Fatalf("without the last byte: %+v, %v", r3, err)
		}
	})
}

func FuzzResponseRoundTrip(f *testing.F) {
	f.Add(0, []byte{0x30, 0x82}, "", "")
	f.Add(1, []byte(nil), "A1F0765F71C9E6AD", "")
	f.Add(7, []byte(nil), "", "key too small & weak")
	f.Fuzz(func(t *testing.T, status int, cert []byte, nonce, errText string) {
		r := Response{Status: status, Certificate: cert, Nonce: nonce, Error: errText}
		if status < 0 || status > 999999999 || status == StatusOK && len(cert) == 0 || ResponseLen(r) > MaxBody {
			return
		}
		enc := AppendResponse(nil, r)
		if len(enc) != ResponseLen(r) {
			t.Fatalf("ResponseLen %d, len %d", ResponseLen(r), len(enc))
		}
		got, err := DecodeResponse(enc)
		if err != nil {
			t.Fatalf("valid %+v: %v", r, err)
		}
		if !sameResponse(got, &r) {
			t.Fatalf("round trip\n got %+v\nwant %+v", got, r)
		}
	})
}

func FuzzDecodeBase64Loose(f *testing.F) {
	f.Add([]byte("MIIB+/=="))
	f.Add([]byte("MIIB /w==\r\n"))
	f.Fuzz(func(t *testing.T, s []byte) {
		out, err := DecodeBase64Loose(s)
		if err != nil {
			if out != nil {
				t.Fatal("output and error")
			}
			checkDecodeError(t, err)
			return
		}
		if len(out) == 0 {
			t.Fatal("success with no data")
		}
		// Whatever was accepted re-encodes canonically and decodes back.
		if again, err := DecodeBase64Loose([]byte(base64.StdEncoding.EncodeToString(out))); err != nil || !bytes.Equal(again, out) {
			t.Fatalf("re-decode: %x, %v", again, err)
		}
		// Strictly valid base64 must decode to the same bytes.
		if std, err := base64.StdEncoding.DecodeString(string(s)); err == nil && len(std) > 0 && !bytes.ContainsAny(s, "\r\n") && !bytes.Equal(std, out) {
			t.Fatalf("std %x, loose %x", std, out)
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
