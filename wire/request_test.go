package wire

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// table4Prefix is seed 001 Table 4 up to the CSR, as printed (the nonce there
// is from an older toolkit that did not yet put NULs in it).
const table4Prefix = "operation=request&nonce=1502767911902931&username=mcmanus&password=01234567&device=134217728&customer=0&request="

func table4Request(csr []byte) *Request {
	return &Request{
		Operation: OpRequest, Nonce: []byte("1502767911902931"), Username: "mcmanus", Password: "01234567",
		Device: "134217728", Customer: "0", CSR: csr, CSRField: CSRFieldRequest,
	}
}

func TestDecodeRequestAccepts(t *testing.T) {
	csr := readDER(t, "device.csr.pem")
	std := b64(csr)
	if !strings.ContainsAny(std, "+/") || !strings.HasSuffix(std, "=") {
		t.Fatalf("test CSR should exercise '+', '/' and padding: %s", std)
	}
	esc := escapeAll(std)
	// Table 4's printed body is OCR-damaged; these are clean equivalents with
	// a real CSR, escaped as the toolkit escapes it, and variously wrapped.
	toolkitNonce := []byte("150276791\x0019029\x00")

	tests := []struct {
		name string
		body string
		want *Request
	}{
		{"table 2 getcacert", "operation=getcacert", &Request{Operation: OpGetCACert}},
		{"getcacert trailing CRLF", "operation=getcacert\r\n", &Request{Operation: OpGetCACert}},
		{"getcacert upper case", "OPERATION=GetCACert", &Request{Operation: OpGetCACert}},
		{"getcacert escaped name and value", "%6Fperation=%67etcacert", &Request{Operation: OpGetCACert}},
		{"getcacert empty pairs", "&&operation=getcacert&", &Request{Operation: OpGetCACert}},
		{"table 4 clean", table4Prefix + esc, table4Request(csr)},
		{"table 4 line breaks LF", table4Prefix + wrap(esc, 64, "\n"), table4Request(csr)},
		{"table 4 line breaks escaped CRLF", table4Prefix + wrap(esc, 64, "%0D%0A"), table4Request(csr)},
		{"table 4 raw base64 (+ / = unescaped)", table4Prefix + std, table4Request(csr)},
		{"table 4 raw base64 wrapped", table4Prefix + wrap(std, 76, "\r\n"), table4Request(csr)},
		{"table 4 missing padding", table4Prefix + strings.TrimRight(std, "="), table4Request(csr)},
		{"table 4 URL-safe alphabet", table4Prefix + strings.NewReplacer("+", "-", "/", "_").Replace(std), table4Request(csr)},
		{"table 4 lower-case hex escapes", table4Prefix + strings.NewReplacer("%2B", "%2b", "%2F", "%2f", "%3D", "%3d").Replace(esc), table4Request(csr)},
		{"certreq (Table 1 name)", strings.Replace(table4Prefix, "&request=", "&certreq=", 1) + esc,
			func() *Request { r := table4Request(csr); r.CSRField = CSRFieldCertReq; return r }()},
		{"certreq and request equal", table4Prefix + esc + "&certreq=" + wrap(std, 64, "\n"), table4Request(csr)},
		{"toolkit NUL nonce", "operation=request&nonce=150276791%0019029%00&username=mcmanus&password=01234567&device=134217728&customer=0&request=" + esc,
			func() *Request { r := table4Request(csr); r.Nonce = toolkitNonce; return r }()},
		{"binary nonce", "operation=retrieve&nonce=%00%FF%0A%26%3D+&username=u&password=p&device=1&customer=2",
			&Request{Operation: OpRetrieve, Nonce: []byte{0, 0xff, '\n', '&', '=', ' '}, Username: "u", Password: "p", Device: "1", Customer: "2"}},
		{"empty nonce is absent", "operation=retrieve&nonce=&username=u&password=p&device=1&customer=2",
			&Request{Operation: OpRetrieve, Username: "u", Password: "p", Device: "1", Customer: "2"}},
		{"plus as space in text", "operation=retrieve&username=john+doe&password=a%20b+c&device=007&customer=0",
			&Request{Operation: OpRetrieve, Username: "john doe", Password: "a b c", Device: "007", Customer: "0"}},
		{"utf-8 password", "operation=retrieve&username=u&password=%C3%A9t%C3%A9&device=1&customer=1",
			&Request{Operation: OpRetrieve, Username: "u", Password: "été", Device: "1", Customer: "1"}},
		{"unknown variables kept in order", "operation=getcacert&Zeta=1&alpha=a+b%21&empty=",
			&Request{Operation: OpGetCACert, Extra: []Pair{{"Zeta", "1"}, {"alpha", "a b!"}, {"empty", ""}}}},
		{"variable names case-insensitive", "Operation=Request&USERNAME=u&Password=p&Device=1&CUSTOMER=2&Request=" + esc,
			&Request{Operation: OpRequest, Username: "u", Password: "p", Device: "1", Customer: "2", CSR: csr, CSRField: CSRFieldRequest}},
		{"cacert", "operation=getcacert&cacert=" + esc, &Request{Operation: OpGetCACert, CACert: csr}},
		{"long unknown value kept", "operation=getcacert&blob=" + strings.Repeat("x", 4000),
			&Request{Operation: OpGetCACert, Extra: []Pair{{"blob", strings.Repeat("x", 4000)}}}},
		{"max pairs", "operation=getcacert" + extraPairs(MaxPairs-1), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeRequest([]byte(tt.body))
			if err != nil {
				t.Fatalf("DecodeRequest: %v", err)
			}
			if tt.want != nil && !sameRequest(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("decoded request does not Validate: %v", err)
			}
		})
	}
}

func extraPairs(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString("&v")
		b.WriteString(strings.Repeat("x", i))
		b.WriteString("=1")
	}
	return b.String()
}

func TestDecodeRequestErrors(t *testing.T) {
	csr := readDER(t, "device.csr.pem")
	esc := escapeAll(b64(csr))
	full := "operation=request&username=u&password=p&device=1&customer=2&request=" + esc
	other := escapeAll(b64(append(append([]byte{}, csr...), 0)))
	tests := []struct {
		name  string
		body  string
		class error
		field string
	}{
		{"body too large", "operation=getcacert&x=" + strings.Repeat("a", MaxBody), ErrTooLarge, ""},
		{"empty body", "", ErrMissing, ""},
		{"only CRLF", "\r\n", ErrMissing, ""},
		{"too many pairs", "operation=getcacert" + extraPairs(MaxPairs), ErrTooLarge, ""},
		{"empty name", "operation=getcacert&=x", ErrMalformed, ""},
		{"escaped empty name", "operation=getcacert&%=x", ErrMalformed, ""},
		{"pair without =", "operation", ErrMalformed, "operation"},
		{"unknown pair without =", "operation=getcacert&flag", ErrMalformed, ""},
		{"name too long", "operation=getcacert&" + strings.Repeat("n", MaxNameLen+1) + "=1", ErrTooLarge, ""},
		{"escaped name too long", "operation=getcacert&" + strings.Repeat("%6E", MaxNameLen+1) + "=1", ErrTooLarge, ""},
		{"escaped name one byte too long", "operation=getcacert&%6E" + strings.Repeat("n", MaxNameLen) + "=1", ErrTooLarge, ""},
		{"value too long", "operation=getcacert&request=" + strings.Repeat("A", MaxValueLen+1), ErrTooLarge, "request"},
		{"duplicate operation", "operation=getcacert&operation=getcacert", ErrDuplicate, "operation"},
		{"duplicate differing case", "operation=getcacert&OPERATION=request", ErrDuplicate, "operation"},
		{"duplicate nonce", "operation=getcacert&nonce=1&nonce=1", ErrDuplicate, "nonce"},
		{"duplicate unknown", "operation=getcacert&foo=1&foo=2", ErrDuplicate, ""},
		{"duplicate unknown differing case", "operation=getcacert&foo=1&FOO=2", ErrDuplicate, ""},
		{"duplicate unknown, one escaped", "operation=getcacert&Foo=1&%66oo=1", ErrDuplicate, ""},
		{"bad escape truncated", "operation=getcacert&username=ab%", ErrMalformed, "username"},
		{"bad escape one digit", "operation=getcacert&username=ab%4", ErrMalformed, "username"},
		{"bad escape non-hex", "operation=getcacert&username=%G0", ErrMalformed, "username"},
		{"bad escape g after a digit", "operation=getcacert&username=a%1g", ErrMalformed, "username"},
		// binary nonce: a bad first hex digit is not caught by the text checks
		{"bad escape non-hex first digit in nonce", "operation=getcacert&nonce=%G1", ErrMalformed, "nonce"},
		{"bad escape g in nonce", "operation=getcacert&nonce=%1g", ErrMalformed, "nonce"},
		// base64 value: a bad second hex digit must not turn into a space
		{"bad escape non-hex second digit in request", "operation=getcacert&request=MIIB%2G", ErrMalformed, "request"},
		{"bad escape in nonce", "operation=getcacert&nonce=%0", ErrMalformed, "nonce"},
		{"bad escape in operation", "operation=get%ZZ", ErrMalformed, "operation"},
		{"bad escape in name", "op%ZZ=1", ErrMalformed, ""},
		{"bad escape in unknown value", "operation=getcacert&foo=%%", ErrMalformed, ""},
		{"bad escape in request", "operation=getcacert&request=MII%2", ErrMalformed, "request"},
		{"missing operation", "username=u", ErrMissing, "operation"},
		{"empty operation", "operation=", ErrMissing, "operation"},
		{"unsupported operation", "operation=renew", ErrUnsupportedOperation, "operation"},
		{"one-byte operation", "operation=x", ErrUnsupportedOperation, "operation"},
		{"operation with space", "operation=getcacert+", ErrUnsupportedOperation, "operation"},
		{"request without username", strings.Replace(full, "username=u&", "", 1), ErrMissing, "username"},
		{"request without password", strings.Replace(full, "password=p&", "", 1), ErrMissing, "password"},
		{"request without device", strings.Replace(full, "device=1&", "", 1), ErrMissing, "device"},
		{"request without customer", strings.Replace(full, "customer=2&", "", 1), ErrMissing, "customer"},
		{"request without CSR", strings.Replace(full, "&request="+esc, "", 1), ErrMissing, "request"},
		{"retrieve without username", "operation=retrieve&password=p&device=1&customer=2", ErrMissing, "username"},
		{"device not digits", strings.Replace(full, "device=1", "device=12a", 1), ErrMalformed, "device"},
		{"device signed", strings.Replace(full, "device=1", "device=%2B1", 1), ErrMalformed, "device"},
		{"device colon (after '9')", strings.Replace(full, "device=1", "device=1:2", 1), ErrMalformed, "device"},
		{"device slash (before '0')", strings.Replace(full, "device=1", "device=1%2F2", 1), ErrMalformed, "device"},
		{"device too long", strings.Replace(full, "device=1", "device="+strings.Repeat("9", MaxIDLen+1), 1), ErrTooLarge, "device"},
		{"customer negative", strings.Replace(full, "customer=2", "customer=-2", 1), ErrMalformed, "customer"},
		{"customer space", strings.Replace(full, "customer=2", "customer=2+", 1), ErrMalformed, "customer"},
		{"username NUL", strings.Replace(full, "username=u", "username=u%00", 1), ErrMalformed, "username"},
		{"username control", strings.Replace(full, "username=u", "username=%01u", 1), ErrMalformed, "username"},
		{"username unit separator", strings.Replace(full, "username=u", "username=u%1F", 1), ErrMalformed, "username"},
		{"password newline", strings.Replace(full, "password=p", "password=p%0A", 1), ErrMalformed, "password"},
		{"password DEL", strings.Replace(full, "password=p", "password=%7F", 1), ErrMalformed, "password"},
		{"password invalid UTF-8", strings.Replace(full, "password=p", "password=%FF", 1), ErrMalformed, "password"},
		{"username too long", strings.Replace(full, "username=u", "username="+strings.Repeat("u", MaxTextLen+1), 1), ErrTooLarge, "username"},
		{"nonce too long", "operation=getcacert&nonce=" + strings.Repeat("%00", MaxNonceLen+1), ErrTooLarge, "nonce"},
		{"unknown value too long", "operation=getcacert&foo=" + strings.Repeat("x", MaxValueLen+1), ErrTooLarge, ""},
		{"CSR bad base64 byte", "operation=getcacert&request=MIIB%25", ErrMalformed, "request"},
		{"CSR base64 length", "operation=getcacert&request=MIIBA", ErrMalformed, "request"},
		{"CSR padding in middle", "operation=getcacert&request=QQ%3D%3DQQ%3D%3D", ErrMalformed, "request"},
		{"CSR only padding", "operation=getcacert&request=%3D%3D", ErrMalformed, "request"},
		{"certreq bad base64", "operation=getcacert&certreq=%2A%2A", ErrMalformed, "certreq"},
		{"certreq and request differ", full + "&certreq=" + other, ErrConflict, "certreq"},
		{"cacert bad base64", "operation=getcacert&cacert=.", ErrMalformed, "cacert"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeRequest([]byte(tt.body))
			if got != nil {
				t.Errorf("got a request with an error: %+v", got)
			}
			wantDecodeError(t, err, tt.class, tt.field)
			wantStatus := StatusBadRequest
			if tt.class == ErrUnsupportedOperation {
				wantStatus = StatusUnsupportedOperation
			}
			if s := StatusForError(err); s != wantStatus {
				t.Errorf("StatusForError = %d, want %d", s, wantStatus)
			}
		})
	}
}

// A value sent with an unescaped '&' (a password typed into a script as
// `password=$PW`) is cut there, and its tail arrives as a variable of its
// own. The error's text reaches the device and the server's log: it names
// known variables only, never bytes of an unknown name or value.
func TestDecodeRequestErrorsDoNotEchoUnknownNames(t *testing.T) {
	const secret = "Tail0fAPassw0rd"
	pre := "operation=request&nonce=1&username=u&device=1&customer=2&password=ab&"
	for _, tt := range []struct {
		name, body string
		class      error
	}{
		{"tail without =", pre + secret, ErrMalformed},
		{"tail without = last", "operation=request&password=ab&" + secret + "\r\n", ErrMalformed},
		{"tail escaped", pre + "%54ail0fAPassw0rd", ErrMalformed},
		{"tail as a name given twice", pre + secret + "=1&" + secret + "=2", ErrDuplicate},
		{"tail with a bad escape after =", pre + secret + "=%zz", ErrMalformed},
		{"tail with a long value", pre + secret + "=" + strings.Repeat("x", MaxValueLen+1), ErrTooLarge},
		{"tail with a bad escape in the name", pre + secret + "%zz", ErrMalformed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeRequest([]byte(tt.body))
			if !errors.Is(err, tt.class) {
				t.Fatalf("error %v, want %v", err, tt.class)
			}
			for _, form := range []string{secret, strings.ToLower(secret), "ail0fAPassw0rd"} {
				if strings.Contains(err.Error(), form) {
					t.Errorf("error %q contains the unknown variable's name %q", err, form)
				}
			}
		})
	}
}

// TestEncodeRequestGolden compares EncodeRequest with bodies the real toolkit
// sent (see the comments in testdata/*.golden).
func TestEncodeRequestGolden(t *testing.T) {
	csr := readDER(t, "device.csr.pem")

	if got, want := EncodeRequest(Request{Operation: OpGetCACert}), readGolden(t, "getcacert.golden"); !bytes.Equal(got, want) {
		t.Errorf("getcacert:\n got %q\nwant %q", got, want)
	}
	// Other fields are ignored for getcacert, as the toolkit does.
	if got := EncodeRequest(Request{Operation: OpGetCACert, Username: "u", CSR: csr, Nonce: []byte("n")}); string(got) != "operation=getcacert" {
		t.Errorf("getcacert with extra fields: %q", got)
	}
	if n := len(readGolden(t, "getcacert.golden")); n != 19 {
		t.Errorf("getcacert body is %d bytes; seed Table 2 says Content-Length: 19", n)
	}

	for _, op := range []string{OpRequest, OpRetrieve} {
		want := readGolden(t, op+".golden")
		// The toolkit's nonce is random per run: take it from the capture.
		dec, err := DecodeRequest(want)
		if err != nil {
			t.Fatalf("%s: decoding the capture: %v", op, err)
		}
		if len(dec.Nonce) != 16 || dec.Nonce[15] != 0 || bytes.Count(dec.Nonce, []byte{0}) < 2 {
			t.Errorf("%s: toolkit nonce %q: want 16 bytes of digit runs each ending in NUL", op, dec.Nonce)
		}
		r := Request{
			Operation: op, Nonce: dec.Nonce, Username: "mcmanus", Password: "01234567",
			Device: "134217728", Customer: "0", CSR: csr,
		}
		got := EncodeRequest(r)
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %q\nwant %q", op, got, want)
		}
		if RequestContentType(op) != "text/html" {
			t.Errorf("content type for %s = %q", op, RequestContentType(op))
		}
		r.CSRField = CSRFieldRequest
		if !sameRequest(dec, &r) {
			t.Errorf("%s: decoded capture %+v, want %+v", op, dec, r)
		}
	}
	if RequestContentType(OpGetCACert) != "text/plain" {
		t.Errorf("content type for getcacert = %q", RequestContentType(OpGetCACert))
	}
}

func TestEncodeRequestShape(t *testing.T) {
	csr := []byte{0xfb, 0xff, 0xbf, 0x00} // base64 "+/+/AA==": every escape
	r := Request{Operation: OpRetrieve, Nonce: []byte("1\x00 a+/"), Username: "user name", Password: "p&w=d",
		Device: "1", Customer: "2", CSR: csr, CSRField: CSRFieldCertReq, CACert: []byte{0xff}}
	want := "operation=retrieve&nonce=1%00%20a%2B%2F&username=user%20name&password=p%26w%3Dd&device=1&customer=2" +
		"&certreq=%2B%2F%2B%2FAA%3D%3D&cacert=%2Fw%3D%3D"
	if got := string(EncodeRequest(r)); got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
	// Empty fields are left out, never sent as name=.
	if got := string(EncodeRequest(Request{Operation: OpRetrieve, Device: "5"})); got != "operation=retrieve&device=5" {
		t.Errorf("empty fields: %s", got)
	}
	// AppendRequest appends.
	if got := string(AppendRequest([]byte("x"), Request{Operation: OpGetCACert})); got != "xoperation=getcacert" {
		t.Errorf("AppendRequest: %s", got)
	}
	// Long DER crosses the 48-byte chunking of appendEscapedB64.
	long := bytes.Repeat([]byte{0xfb, 0xef, 0xbe, 0x01}, 100)
	got := EncodeRequest(Request{Operation: OpRequest, CSR: long})
	if want := "operation=request&request=" + escapeAll(b64(long)); string(got) != want {
		t.Errorf("long CSR encoding differs")
	}
	if n := requestLen(&Request{Operation: OpRequest, CSR: long}); n < len(got) {
		t.Errorf("requestLen %d < actual %d", n, len(got))
	}
}

func TestRequestRoundTrip(t *testing.T) {
	csr := readDER(t, "device.csr.pem")
	for _, r := range []Request{
		{Operation: OpGetCACert},
		*table4Request(csr),
		{Operation: OpRequest, Nonce: []byte("150276791\x0019029\x00"), Username: "mcmanus", Password: "p@ss w0rd&=+%", Device: "0", Customer: "18446744073709551615", CSR: csr, CSRField: CSRFieldCertReq},
		{Operation: OpRetrieve, Username: "é", Password: "x", Device: "1", Customer: "1"},
		{Operation: OpRequest, Username: "u", Password: "p", Device: "1", Customer: "1", CSR: csr, CACert: csr},
	} {
		if err := r.Validate(); err != nil {
			t.Fatalf("Validate(%+v): %v", r, err)
		}
		got, err := DecodeRequest(EncodeRequest(r))
		if err != nil {
			t.Fatalf("DecodeRequest(EncodeRequest(%+v)): %v", r, err)
		}
		if len(r.CSR) > 0 && r.CSRField == "" {
			r.CSRField = CSRFieldRequest
		}
		if !sameRequest(got, &r) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, r)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := Request{Operation: OpRequest, Username: "u", Password: "p", Device: "1", Customer: "2", CSR: []byte{0x30}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		edit  func(*Request)
		class error
		field string
	}{
		{"no operation", func(r *Request) { r.Operation = "" }, ErrMissing, "operation"},
		{"upper-case operation", func(r *Request) { r.Operation = "REQUEST" }, ErrUnsupportedOperation, "operation"},
		{"bad CSRField", func(r *Request) { r.CSRField = "csr" }, ErrMalformed, "CSRField"},
		{"CSR too large encoded", func(r *Request) { r.CSR = bytes.Repeat([]byte{0xfb, 0xef, 0xbe}, MaxValueLen/9+1) }, ErrTooLarge, "request"},
		// 12288 bytes encode to exactly MaxValueLen alphanumerics; one '+'
		// (escaped %2B) makes it MaxValueLen+2.
		{"CSR just over encoded", func(r *Request) { r.CSR = append(make([]byte, 3*MaxValueLen/4-1), 0x3e) }, ErrTooLarge, "request"},
		{"CACert too large encoded", func(r *Request) { r.CACert = bytes.Repeat([]byte{0xff}, MaxValueLen/3) }, ErrTooLarge, "cacert"},
		{"nonce too long", func(r *Request) { r.Nonce = make([]byte, MaxNonceLen+1) }, ErrTooLarge, "nonce"},
		{"device letters", func(r *Request) { r.Device = "x" }, ErrMalformed, "device"},
		{"no CSR for request", func(r *Request) { r.CSR = nil }, ErrMissing, "request"},
		{"getcacert bad device still checked", func(r *Request) { r.Operation = OpGetCACert; r.Device = "x" }, ErrMalformed, "device"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ok
			tt.edit(&r)
			wantDecodeError(t, r.Validate(), tt.class, tt.field)
		})
	}
	// retrieve does not need the CSR; getcacert needs only the operation.
	r := ok
	r.Operation, r.CSR = OpRetrieve, nil
	if err := r.Validate(); err != nil {
		t.Errorf("retrieve without CSR: %v", err)
	}
	r = ok
	r.CSR = make([]byte, 3*MaxValueLen/4) // "AAAA...": exactly MaxValueLen encoded
	if err := r.Validate(); err != nil {
		t.Errorf("CSR of exactly MaxValueLen encoded: %v", err)
	}
	if err := (&Request{Operation: OpGetCACert}).Validate(); err != nil {
		t.Errorf("bare getcacert: %v", err)
	}
}

func TestDecodeRequestDoesNotAliasBody(t *testing.T) {
	body := []byte("operation=request&nonce=abc&username=u&password=p&device=1&customer=2&request=MIIB&zz=top")
	r, err := DecodeRequest(body)
	if err != nil {
		t.Fatal(err)
	}
	for i := range body {
		body[i] = '!'
	}
	if string(r.Nonce) != "abc" || r.Username != "u" || r.Extra[0] != (Pair{"zz", "top"}) || len(r.CSR) != 3 {
		t.Errorf("request changed with its body: %+v", r)
	}
}
