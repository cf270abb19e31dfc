package wire

import (
	"bytes"
	"encoding/base64"
	"strconv"
	"unicode/utf8"
)

// Operations (values of `operation=`), canonical lower case.
const (
	OpGetCACert = "getcacert"
	OpRequest   = "request"
	OpRetrieve  = "retrieve"
)

// Names of the variables the CSR may travel in: Table 4 and the toolkit use
// "request", Table 1 names it "certreq".
const (
	CSRFieldRequest = "request"
	CSRFieldCertReq = "certreq"
)

// Content types. The toolkit posts getcacert as text/plain (OSPC_COMM_TEXT_MSG)
// and request/retrieve as text/html (OSPC_ENROLL_CONTENT_TYPE); the decoder
// ignores the content type. ContentTypeResponse is the text/plain of Tables
// 3, 5 and 6; the claims say text/html, which the Caddy handler sends by
// default (its content_type). The toolkit only checks that some
// Content-Type header is present.
const (
	ContentTypeGetCACert = "text/plain"
	ContentTypeRequest   = "text/html"
	ContentTypeResponse  = "text/plain"
)

// Bounds enforced by DecodeRequest (and, where noted, DecodeResponse).
const (
	MaxBody     = 64 << 10 // bytes of body (requests and responses)
	MaxPairs    = 32       // variable=value pairs (requests and responses)
	MaxNameLen  = 64       // bytes of a decoded variable name
	MaxValueLen = 16 << 10 // bytes of one encoded (on-the-wire) request value
	MaxNonceLen = 256      // bytes of a decoded nonce
	MaxTextLen  = 256      // bytes of a decoded username or password
	MaxIDLen    = 20       // digits of a device or customer id (toolkit: 20)
)

// RequestContentType returns the Content-Type the toolkit sends for op.
func RequestContentType(op string) string {
	if op == OpGetCACert {
		return ContentTypeGetCACert
	}
	return ContentTypeRequest
}

// Pair is a variable the decoder does not know, kept (decoded, any bytes,
// bounded by MaxValueLen like every value) for logging. Log it with care:
// the tail of a value sent with an unescaped '&' (a password) arrives as
// one, which is why DecodeRequest's errors never name an unknown variable.
type Pair struct {
	Name, Value string
}

// Request is one enrollment request (Table 1, Table 2, Table 4).
type Request struct {
	Operation string // OpGetCACert, OpRequest or OpRetrieve (decoded case-insensitively, stored lower case)
	Nonce     []byte // binary; may contain NUL (the toolkit's does); nil if absent
	Username  string
	Password  string
	Device    string // decimal digits
	Customer  string // decimal digits
	CSR       []byte // DER PKCS#10; travels as base64 in `request=` or `certreq=`
	CSRField  string // variable the CSR travels in: "request" (default when encoding) or "certreq"
	CACert    []byte // DER, Table 1 `cacert=` (no known client sends it)
	Extra     []Pair // unknown variables in body order (decoded); never encoded
}

// field indexes of the known request variables
const (
	fOperation = iota
	fNonce
	fUsername
	fPassword
	fDevice
	fCustomer
	fRequest
	fCertReq
	fCACert
	nFields
)

var fieldNames = [nFields]string{"operation", "nonce", "username", "password", "device", "customer", "request", "certreq", "cacert"}

func lookupField(name []byte) int {
	for i, n := range fieldNames {
		if equalFoldASCII(name, n) {
			return i
		}
	}
	return -1
}

// DecodeRequest decodes a request body (server side), whatever its
// Content-Type: `name=value` pairs joined by '&', RFC 1738 %XX escapes in
// names and values, '+' as space (HTML forms) except in base64 values, where
// '+' is base64's own. Trailing CR/LF and empty pairs ("a=1&&b=2&") are
// ignored. Variable names and the operation are matched case-insensitively.
// Unknown variables land in Extra. The result satisfies Validate.
//
// Callers reading from a connection should read at most MaxBody+1 bytes
// (http.MaxBytesReader) so that an oversized body is reported as ErrTooLarge.
// Errors are *DecodeError; StatusForError maps them to the answer's status.
func DecodeRequest(body []byte) (*Request, error) {
	if len(body) > MaxBody {
		return nil, derr("", ErrTooLarge, "body of "+strconv.Itoa(len(body))+" bytes exceeds "+strconv.Itoa(MaxBody))
	}
	body = trimEOL(body)
	if len(body) == 0 {
		return nil, derr("", ErrMissing, "empty body")
	}

	var (
		raw   [nFields][]byte
		seen  uint16
		extra [MaxPairs]struct {
			name string
			val  []byte
			off  int
		} // unknown variables
		nExtra  int
		pairs   int
		nameBuf [MaxNameLen]byte
	)
	for rest, off := body, 0; ; {
		seg, next, more := cutByte(rest, '&')
		if len(seg) > 0 {
			pairs++
			if pairs > MaxPairs {
				return nil, derr("", ErrTooLarge, "more than "+strconv.Itoa(MaxPairs)+" variables")
			}
			rawName, rawVal, ok := cutByte(seg, '=')
			if len(rawName) == 0 {
				return nil, derr("", ErrMalformed, "empty variable name at offset "+strconv.Itoa(off))
			}
			name, err := decodeName(nameBuf[:0], rawName)
			if err != nil {
				return nil, err
			}
			f := lookupField(name)
			// An error names known variables only: an unknown "name" may be
			// the tail of a value (a password) sent with an unescaped '&',
			// and the error reaches the device and the server's log.
			field, what := "", "the unknown variable at offset "+strconv.Itoa(off)+": "
			if f >= 0 {
				field, what = fieldNames[f], ""
			}
			if !ok {
				return nil, derr(field, ErrMalformed, "no '=' after the variable name at offset "+strconv.Itoa(off))
			}
			if len(rawVal) > MaxValueLen {
				return nil, derr(field, ErrTooLarge, what+"value of "+strconv.Itoa(len(rawVal))+" bytes exceeds "+strconv.Itoa(MaxValueLen))
			}
			if f >= 0 {
				if seen&(1<<f) != 0 {
					return nil, derr(fieldNames[f], ErrDuplicate, "given more than once")
				}
				seen |= 1 << f
				raw[f] = rawVal
			} else {
				for i := 0; i < nExtra; i++ {
					if equalFoldNames(extra[i].name, name) { // in any case, as known names
						return nil, derr("", ErrDuplicate, what+"given more than once")
					}
				}
				extra[nExtra].name, extra[nExtra].val, extra[nExtra].off = string(name), rawVal, off
				nExtra++
			}
		}
		if !more {
			break
		}
		off += len(seg) + 1
		rest = next
	}

	r := new(Request)

	if op := raw[fOperation]; len(op) > 0 {
		var err error
		if r.Operation, err = decodeOperation(op); err != nil {
			return nil, err
		}
	}

	// Text values are decoded into one buffer, converted to one string, and
	// sliced: two allocations for all of them.
	size := len(raw[fUsername]) + len(raw[fPassword]) + len(raw[fDevice]) + len(raw[fCustomer])
	for i := 0; i < nExtra; i++ {
		size += len(extra[i].val)
	}
	txt := make([]byte, 0, size)
	var ends [4 + MaxPairs]int
	for i, f := range [...]int{fUsername, fPassword, fDevice, fCustomer} {
		var err error
		if txt, err = appendUnescape(txt, raw[f], true); err != nil {
			return nil, withField(err, fieldNames[f])
		}
		ends[i] = len(txt)
	}
	for i := 0; i < nExtra; i++ {
		var err error
		if txt, err = appendUnescape(txt, extra[i].val, true); err != nil {
			// not named, as above
			return nil, derr("", ErrMalformed, "the unknown variable at offset "+strconv.Itoa(extra[i].off)+
				": value: "+err.(*DecodeError).Msg)
		}
		ends[4+i] = len(txt)
	}
	s := string(txt)
	sub := func(i int) string {
		if i == 0 {
			return s[:ends[0]]
		}
		return s[ends[i-1]:ends[i]]
	}
	r.Username, r.Password, r.Device, r.Customer = sub(0), sub(1), sub(2), sub(3)
	if nExtra > 0 {
		r.Extra = make([]Pair, nExtra)
		for i := range r.Extra {
			r.Extra[i] = Pair{Name: extra[i].name, Value: sub(4 + i)}
		}
	}

	// nonce: binary, NUL allowed
	if v := raw[fNonce]; len(v) > 0 {
		n, err := appendUnescape(make([]byte, 0, len(v)), v, true)
		if err != nil {
			return nil, withField(err, "nonce")
		}
		if len(n) > 0 {
			r.Nonce = n
		}
	}

	// base64 values: %XX only, '+' stays '+'
	var err error
	if r.CSR, err = decodeB64Field("request", raw[fRequest]); err != nil {
		return nil, err
	}
	var certreq []byte
	if certreq, err = decodeB64Field("certreq", raw[fCertReq]); err != nil {
		return nil, err
	}
	switch {
	case r.CSR != nil && certreq != nil:
		if !bytes.Equal(r.CSR, certreq) {
			return nil, derr("certreq", ErrConflict, "both request= and certreq= given, with different CSRs")
		}
		r.CSRField = CSRFieldRequest
	case r.CSR != nil:
		r.CSRField = CSRFieldRequest
	case certreq != nil:
		r.CSR, r.CSRField = certreq, CSRFieldCertReq
	}
	if r.CACert, err = decodeB64Field("cacert", raw[fCACert]); err != nil {
		return nil, err
	}

	if err := r.check(false); err != nil {
		return nil, err
	}
	return r, nil
}

// decodeOperation decodes the value of operation= (raw, as sent) to one
// of the Op constants, matched case-insensitively.
func decodeOperation(raw []byte) (string, error) {
	var buf [16]byte
	v, err := appendUnescape(buf[:0], raw, true)
	if err != nil {
		return "", withField(err, "operation")
	}
	switch {
	case equalFoldASCII(v, OpGetCACert):
		return OpGetCACert, nil
	case equalFoldASCII(v, OpRequest):
		return OpRequest, nil
	case equalFoldASCII(v, OpRetrieve):
		return OpRetrieve, nil
	}
	return "", unsupportedOperation(string(v))
}

// unsupportedOperation is the error for an operation that is not one of
// the three, quoting at most its first 32 bytes.
func unsupportedOperation(op string) error {
	if len(op) > 32 {
		op = op[:32]
	}
	return derr("operation", ErrUnsupportedOperation, strconv.Quote(op)+" is not getcacert, request or retrieve")
}

func decodeName(dst, raw []byte) ([]byte, error) {
	if len(raw) > 3*MaxNameLen {
		return nil, derr("", ErrTooLarge, "variable name longer than "+strconv.Itoa(MaxNameLen)+" bytes")
	}
	if !needsUnescape(raw, true) {
		if len(raw) > MaxNameLen {
			return nil, derr("", ErrTooLarge, "variable name longer than "+strconv.Itoa(MaxNameLen)+" bytes")
		}
		return raw, nil
	}
	var tmp [3 * MaxNameLen]byte
	n, err := appendUnescape(tmp[:0], raw, true)
	if err != nil {
		return nil, withField(err, "")
	}
	if len(n) > MaxNameLen {
		return nil, derr("", ErrTooLarge, "variable name longer than "+strconv.Itoa(MaxNameLen)+" bytes")
	}
	if len(n) == 0 {
		return nil, derr("", ErrMalformed, "empty variable name")
	}
	return append(dst, n...), nil
}

func decodeB64Field(field string, v []byte) ([]byte, error) {
	if len(v) == 0 {
		return nil, nil
	}
	if needsUnescape(v, false) {
		u, err := appendUnescape(make([]byte, 0, len(v)), v, false)
		if err != nil {
			return nil, withField(err, field)
		}
		v = u
	}
	der, err := DecodeBase64Loose(v)
	if err != nil {
		return nil, withField(err, field)
	}
	return der, nil
}

// Validate checks r as DecodeRequest would accept it, so that
// DecodeRequest(EncodeRequest(r)) succeeds: operation known (lower case);
// for request and retrieve username, password, device and customer present,
// and for request the CSR too; device/customer decimal digits (≤ 20);
// username/password valid UTF-8 without control bytes (≤ 256 bytes); nonce
// ≤ 256 bytes (any bytes, NUL included); CSRField "", "request" or "certreq";
// encoded CSR/CACert within MaxValueLen. The nonce is optional: the
// toolkit always sends one, but the seed calls it recommended, not required.
// For getcacert only the operation is required; other fields are checked if set.
func (r *Request) Validate() error { return r.check(true) }

func (r *Request) check(full bool) error {
	switch r.Operation {
	case OpGetCACert, OpRequest, OpRetrieve:
	case "":
		return derr("operation", ErrMissing, "missing")
	default:
		return unsupportedOperation(r.Operation)
	}
	if len(r.Nonce) > MaxNonceLen {
		return derr("nonce", ErrTooLarge, "longer than "+strconv.Itoa(MaxNonceLen)+" bytes")
	}
	if err := checkText("username", r.Username); err != nil {
		return err
	}
	if err := checkText("password", r.Password); err != nil {
		return err
	}
	if err := checkDigits("device", r.Device); err != nil {
		return err
	}
	if err := checkDigits("customer", r.Customer); err != nil {
		return err
	}
	if full {
		// What DecodeRequest bounded on the wire, bounded here on the values
		// EncodeRequest will write.
		switch r.CSRField {
		case "", CSRFieldRequest, CSRFieldCertReq:
		default:
			return derr("CSRField", ErrMalformed, strconv.Quote(r.CSRField)+" is not request or certreq")
		}
		if n := escapedB64Len(r.CSR); n > MaxValueLen {
			return derr("request", ErrTooLarge, "encoded CSR of "+strconv.Itoa(n)+" bytes exceeds "+strconv.Itoa(MaxValueLen))
		}
		if n := escapedB64Len(r.CACert); n > MaxValueLen {
			return derr("cacert", ErrTooLarge, "encoded CA certificate of "+strconv.Itoa(n)+" bytes exceeds "+strconv.Itoa(MaxValueLen))
		}
	}
	if r.Operation == OpGetCACert {
		return nil
	}
	for _, m := range [...]struct{ name, val string }{
		{"username", r.Username}, {"password", r.Password}, {"device", r.Device}, {"customer", r.Customer},
	} {
		if m.val == "" {
			return derr(m.name, ErrMissing, "missing (required for "+r.Operation+")")
		}
	}
	if r.Operation == OpRequest && len(r.CSR) == 0 {
		return derr("request", ErrMissing, "missing certificate request (request= or certreq=)")
	}
	return nil
}

func checkText(field, s string) error {
	if len(s) > MaxTextLen {
		return derr(field, ErrTooLarge, "longer than "+strconv.Itoa(MaxTextLen)+" bytes")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return derr(field, ErrMalformed, "control byte 0x"+string([]byte{upperHex[c>>4], upperHex[c&15]})+" at offset "+strconv.Itoa(i))
		}
	}
	if !utf8.ValidString(s) {
		return derr(field, ErrMalformed, "not valid UTF-8")
	}
	return nil
}

// IsID reports whether s is a device or customer id a request can carry:
// at most MaxIDLen decimal digits ("" included).
func IsID(s string) bool { return checkDigits("", s) == nil }

func checkDigits(field, s string) error {
	if len(s) > MaxIDLen {
		return derr(field, ErrTooLarge, "longer than "+strconv.Itoa(MaxIDLen)+" digits")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < '0' || c > '9' {
			return derr(field, ErrMalformed, "not a digit string (byte "+strconv.QuoteRune(rune(c))+" at offset "+strconv.Itoa(i)+")")
		}
	}
	return nil
}

// EncodeRequest returns the body the OSP Toolkit's enroll client builds for r,
// byte for byte:
//
//   - getcacert: exactly "operation=getcacert" (OSPPCreateCARetrievalRequest
//     sends nothing else; other fields of r are ignored);
//   - request/retrieve: operation, nonce, username, password, device,
//     customer, then the CSR as standard padded base64 under r.CSRField
//     ("request" by default), each as name=value joined by '&'
//     (OSPPCreateEnrollmentRequestBody). Empty fields are left out (the
//     toolkit refuses to run without them, so it never sends one empty).
//     A non-empty CACert follows as cacert=, which the toolkit never sends.
//
// Every value byte that is not [A-Za-z0-9] is written %XX with upper-case hex
// (OSPPAppendUrlEncodedString: isalnum, "%.2X"), so NUL is %00 and base64's
// '+', '/', '=' are %2B, %2F, %3D. EncodeRequest does not validate; see
// Validate. Send it with RequestContentType(r.Operation).
func EncodeRequest(r Request) []byte {
	return AppendRequest(make([]byte, 0, requestLen(&r)), r)
}

// AppendRequest appends EncodeRequest(r) to dst.
func AppendRequest(dst []byte, r Request) []byte {
	dst = append(dst, "operation="...)
	dst = appendEscape(dst, r.Operation)
	if r.Operation == OpGetCACert {
		return dst
	}
	if len(r.Nonce) > 0 {
		dst = append(dst, "&nonce="...)
		dst = appendEscape(dst, r.Nonce)
	}
	for _, kv := range [...][2]string{{"username", r.Username}, {"password", r.Password}, {"device", r.Device}, {"customer", r.Customer}} {
		if kv[1] != "" {
			dst = append(dst, '&')
			dst = append(dst, kv[0]...)
			dst = append(dst, '=')
			dst = appendEscape(dst, kv[1])
		}
	}
	if len(r.CSR) > 0 {
		name := r.CSRField
		if name == "" {
			name = CSRFieldRequest
		}
		dst = append(dst, '&')
		dst = appendEscape(dst, name)
		dst = append(dst, '=')
		dst = appendEscapedB64(dst, r.CSR)
	}
	if len(r.CACert) > 0 {
		dst = append(dst, "&cacert="...)
		dst = appendEscapedB64(dst, r.CACert)
	}
	return dst
}

func requestLen(r *Request) int {
	n := len("operation=") + escapedLen(r.Operation)
	if r.Operation == OpGetCACert {
		return n
	}
	n += len("&nonce=") + escapedLen(r.Nonce)
	n += len("&username=&password=&device=&customer=")
	n += escapedLen(r.Username) + escapedLen(r.Password) + escapedLen(r.Device) + escapedLen(r.Customer)
	n += len("&certreq=") + escapedLen(r.CSRField) + 3*base64.StdEncoding.EncodedLen(len(r.CSR))
	n += len("&cacert=") + 3*base64.StdEncoding.EncodedLen(len(r.CACert))
	return n
}

// appendEscapedB64 appends the %XX-escaped standard padded base64 of der,
// 48 input bytes (64 base64 bytes) at a time, without a temporary allocation.
func appendEscapedB64(dst, der []byte) []byte {
	var chunk [64]byte
	for len(der) > 0 {
		n := min(len(der), 48)
		base64.StdEncoding.Encode(chunk[:], der[:n])
		dst = appendEscape(dst, chunk[:base64.StdEncoding.EncodedLen(n)])
		der = der[n:]
	}
	return dst
}

func escapedB64Len(der []byte) int {
	var chunk [64]byte
	total := 0
	for len(der) > 0 {
		n := min(len(der), 48)
		base64.StdEncoding.Encode(chunk[:], der[:n])
		total += escapedLen(chunk[:base64.StdEncoding.EncodedLen(n)])
		der = der[n:]
	}
	return total
}
