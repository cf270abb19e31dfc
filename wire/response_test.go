package wire

import (
	"bytes"
	"strings"
	"testing"
)

func TestAppendResponse(t *testing.T) {
	der := []byte{0xfb, 0xff, 0xbf, 0x00} // "+/+/AA==": raw, never escaped in answers
	tests := []struct {
		name string
		r    Response
		want string
	}{
		{"issued", Response{Status: StatusOK, Certificate: der}, "status=0&certificate=+/+/AA==\n"},
		{"pending (Table 5)", Response{Status: StatusPending, Nonce: "A1F0765F71C9E6AD"}, "status=1&nonce=A1F0765F71C9E6AD\n"},
		{"pending binary nonce", Response{Status: StatusPending, Nonce: "1\x00 &+"}, "status=1&nonce=1%00%20%26%2B\n"},
		{"pending no nonce", Response{Status: StatusPending}, "status=1\n"},
		{"empty certificate left out", Response{Status: StatusBadRequest, Certificate: []byte{}}, "status=2\n"},
		{"failure with reason", Response{Status: StatusBadCSR, Error: "key too small & weak: 512 bits"},
			"status=7&error=key%20too%20small%20%26%20weak%3A%20512%20bits\n"},
		{"failure utf-8 reason", Response{Status: StatusRejected, Error: "refusé"}, "status=8&error=refus%C3%A9\n"},
		{"failure newline in reason", Response{Status: StatusServerError, Error: "a\nb"}, "status=14&error=a%0Ab\n"},
		{"failure no reason", Response{Status: StatusRateLimited}, "status=10\n"},
		{"negative status", Response{Status: -3, Error: "x"}, "status=14&error=x\n"},
		{"all fields in order", Response{Status: 0, Certificate: der, Nonce: "n", Error: "e"}, "status=0&certificate=+/+/AA==&nonce=n&error=e\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(AppendResponse(nil, tt.r)); got != tt.want {
				t.Errorf("AppendResponse = %q, want %q", got, tt.want)
			}
			if got := string(AppendResponse([]byte("HDR"), tt.r)); got != "HDR"+tt.want {
				t.Errorf("AppendResponse does not append: %q", got)
			}
			if got := EncodeResponse(tt.r); string(got) != tt.want || cap(got) != len(got) {
				t.Errorf("EncodeResponse = %q (cap %d)", got, cap(got))
			}
			if n := ResponseLen(tt.r); n != len(tt.want) {
				t.Errorf("ResponseLen = %d, want %d", n, len(tt.want))
			}
		})
	}
}

// TestAppendResponseGolden: answers the real toolkit accepted.
func TestAppendResponseGolden(t *testing.T) {
	for _, g := range []struct{ golden, pem string }{
		{"getcacert-answer.golden", "ca.pem"},
		{"request-answer.golden", "device.pem"},
	} {
		want := readGolden(t, g.golden)
		got := AppendResponse(nil, Response{Status: StatusOK, Certificate: readDER(t, g.pem)})
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %q\nwant %q", g.golden, got, want)
		}
		// The toolkit drops the last byte: what it parses must still be whole.
		if got[len(got)-1] != '\n' || bytes.ContainsAny(got[:len(got)-1], " \n\r") {
			t.Errorf("%s: answer must be one line ending in \\n", g.golden)
		}
	}
}

func TestAppendResponseAllocs(t *testing.T) {
	r := Response{Status: StatusOK, Certificate: readDER(t, "ca.pem"), Nonce: "x y", Error: "z"}
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() { buf = AppendResponse(buf[:0], r) }); n != 0 {
		t.Errorf("AppendResponse allocates %v times with room in dst", n)
	}
}

func TestDecodeResponseAccepts(t *testing.T) {
	ca := readDER(t, "ca.pem")
	std := b64(ca)
	tests := []struct {
		name string
		body string
		want Response
	}{
		{"ours with newline", "status=0&certificate=" + std + "\n", Response{Certificate: ca}},
		{"ours with CRLF", "status=0&certificate=" + std + "\r\n", Response{Certificate: ca}},
		{"without newline", "status=0&certificate=" + std, Response{Certificate: ca}},
		{"toolkit view: last byte dropped", "status=0&certificate=" + std, Response{Certificate: ca}},
		{"URL-escaped base64", "status=0&certificate=" + escapeAll(std), Response{Certificate: ca}},
		{"wrapped base64 (Table 3 layout)", "status=0&certificate=" + wrap(std, 65, "\n") + "\n", Response{Certificate: ca}},
		{"indented base64", "status=0&certificate=" + wrap(std, 64, "\n ") + "\n", Response{Certificate: ca}},
		{"cert= (Table 6)", "status=0&cert=" + std + "\n", Response{Certificate: ca}},
		{"certificate= wins over cert=", "status=0&cert=AAAA&certificate=" + std, Response{Certificate: ca}},
		{"first cert-ish name", "status=0&certx=" + std + "&certy=AAAA", Response{Certificate: ca}},
		{"certificate before status", "certificate=" + std + "&status=0", Response{Certificate: ca}},
		{"names case-insensitive", "STATUS=0&Certificate=" + std, Response{Certificate: ca}},
		{"Table 5 pending", "status=1&nonce=A1F0765F71C9E6AD", Response{Status: 1, Nonce: "A1F0765F71C9E6AD"}},
		{"pending escaped nonce", "status=1&nonce=1%00%20x+y", Response{Status: 1, Nonce: "1\x00 x y"}},
		{"failure with reason", "status=7&error=key%20too%20small%26weak\n", Response{Status: 7, Error: "key too small&weak"}},
		{"failure bare", "status=12\n", Response{Status: 12}},
		{"leading zeros", "status=0007", Response{Status: 7}},
		{"max digits", "status=999999999", Response{Status: 999999999}},
		{"unknown and malformed pairs ignored", "hello&status=3&=x&server=TNS&&", Response{Status: 3}},
		{"empty certificate with failure", "status=2&certificate=", Response{Status: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeResponse([]byte(tt.body))
			if err != nil {
				t.Fatalf("DecodeResponse: %v", err)
			}
			if !sameResponse(got, &tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestDecodeResponseTable3AsPrinted: seed 001 Table 3's body as printed (OCR
// line numbers removed; wrapping, indentation and OCR damage kept) still
// yields a status 0 and a DER SEQUENCE of the announced length.
func TestDecodeResponseTable3AsPrinted(t *testing.T) {
	body := strings.Join([]string{
		"status=0&certificate=MIIB9DCCAV2gAwIBAgIRANs4gtN4kbWXlww8YsAjsxMwD",
		"QYJKoZIhvcNAQEEBQAwFTETMBEGA1UEChMKVHJhbnNOZXhh1czAeFw05OTAzMTgwMDA",
		"wMDBaFw0wOTAzMTgyMzU5NTlaMBUxEzARBgNVBAoTC1RyYW5zTmV4dXMwgZ8wDQYJK",
		"oZIhvcNAQEBBQADgY0AMIGJAoGBAKuR4hI8P+g96Go7ihjfdQ+3VjA01pIqNjaSch+",
		"eWWzbBG+q+aISa0sQM53elNuxMudoCFN27J7H4v0LuStDj+wSQzWjP41BOQUXry1tR",
		"",
		"i+qwRaK5VhlwybHejOByURb4Qex5myhEbNWAXOimgCBIB2Exf4k5FJjOMUs795r1Up",
		" XAgMBAAGjRDBCMCIGA1UdEQQbMBmkFzAVMRMWEQYDVQQDEwpPbnNpdGUyLTYyMA8GA",
		" 1UdEwQIMAYBAf8CAQAwCwYDVROPBAQDAgEGMA0GCSqGSIB3DQEBBAUAA4GBAEgeTxN",
		" 56ztf2bzu2Zx1a/e0IWexTeEbjCQNEZaFOLhp50kVB6oQQkX726Oiv0Gx4IJdTv3Y",
		" HYe7BOi1pU0jWlPc/DVkhHd1Q/gDSNFgwAqJCx2nm1-fr9TuEtAUWAxd/PN38//yDyX",
		" Wgx5PKyU9+pyLPgCoAC8D17wMGdh+oTSM",
	}, "\n")
	r, err := DecodeResponse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != 0 || len(r.Certificate) < 4 || !bytes.HasPrefix(r.Certificate, []byte{0x30, 0x82, 0x01, 0xf4}) {
		t.Fatalf("got status %d, certificate % x...", r.Status, r.Certificate[:min(8, len(r.Certificate))])
	}
}

func TestDecodeResponseErrors(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		class error
		field string
	}{
		{"empty", "", ErrMissing, ""},
		{"newline only", "\n", ErrMissing, ""},
		{"too large", "status=2&error=" + strings.Repeat("x", MaxBody), ErrTooLarge, ""},
		{"too many pairs", "status=2" + strings.Repeat("&a=1", MaxPairs), ErrTooLarge, ""},
		{"no status", "certificate=AAAA", ErrMissing, "status"},
		{"empty status", "status=&x=1", ErrMissing, "status"},
		{"status with letter", "status=0a", ErrMalformed, "status"},
		{"status negative", "status=-1", ErrMalformed, "status"},
		{"status plus", "status=+1", ErrMalformed, "status"},
		{"status escaped", "status=%30", ErrMalformed, "status"},
		{"status with space", "status=1 ", ErrMalformed, "status"},
		{"status too long", "status=1234567890", ErrMalformed, "status"},
		{"duplicate status", "status=1&status=1", ErrDuplicate, "status"},
		{"duplicate certificate", "status=0&certificate=AAAA&certificate=AAAA", ErrDuplicate, "certificate"},
		{"duplicate nonce", "status=1&nonce=a&nonce=b", ErrDuplicate, "nonce"},
		{"duplicate error", "status=2&error=a&error=b", ErrDuplicate, "error"},
		{"status 0 without certificate", "status=0", ErrMissing, "certificate"},
		{"status 0 empty certificate", "status=0&certificate=\n", ErrMissing, "certificate"},
		{"bad base64", "status=0&certificate=MII.", ErrMalformed, "certificate"},
		{"bad base64 in cert=", "status=0&cert=A", ErrMalformed, "cert"},
		{"bad escape in certificate", "status=0&certificate=MII%G", ErrMalformed, "certificate"},
		{"bad escape in nonce", "status=1&nonce=%", ErrMalformed, "nonce"},
		{"bad escape in error", "status=2&error=%zz", ErrMalformed, "error"},
		{"bad escape in name", "status=2&%zz=1", ErrMalformed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeResponse([]byte(tt.body))
			if got != nil {
				t.Errorf("got a response with an error: %+v", got)
			}
			wantDecodeError(t, err, tt.class, tt.field)
		})
	}
}

func TestResponseRoundTrip(t *testing.T) {
	ca := readDER(t, "ca.pem")
	for _, r := range []Response{
		{Status: StatusOK, Certificate: ca},
		{Status: StatusPending, Nonce: "A1F0765F71C9E6AD"},
		{Status: StatusPending, Nonce: "\x00\xff &=+%\n"},
		{Status: StatusNonceReused, Error: "nonce reused: different CSR"},
		{Status: 255, Error: "x", Nonce: "y", Certificate: []byte{1}},
	} {
		got, err := DecodeResponse(AppendResponse(nil, r))
		if err != nil {
			t.Fatalf("%+v: %v", r, err)
		}
		if !sameResponse(got, &r) {
			t.Errorf("round trip: got %+v, want %+v", got, r)
		}
		// As the toolkit sees it: without the last byte.
		b := AppendResponse(nil, r)
		if got, err := DecodeResponse(b[:len(b)-1]); err != nil || !sameResponse(got, &r) {
			t.Errorf("without the last byte: %+v, %v", got, err)
		}
	}
}
