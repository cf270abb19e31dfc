package wire

import (
	"encoding/base64"
	"strconv"
)

// Response is one answer of the enrollment server (Tables 3, 5, 6).
type Response struct {
	Status      int    // see the Status* constants
	Certificate []byte // DER: the issued certificate, or the CA certificate for getcacert
	Nonce       string // optional, e.g. with StatusPending (Table 5)
	Error       string // optional reason with a failure status
}

// AppendResponse appends the answer body for r to dst and returns it:
//
//	status=0&certificate=<standard padded base64, NOT %-escaped>\n
//	status=1&nonce=<nonce, %XX-escaped>\n
//	status=N&error=<reason, %XX-escaped: every non-[A-Za-z0-9] byte, space is %20>\n
//
// Variables are written in the order status, certificate, nonce, error, each
// only when non-empty. A negative Status is written as StatusServerError: the
// toolkit rejects a status that is not all digits.
//
// Why the odd shape: the toolkit's enroll copies the body with a strncpy
// macro that overwrites the last byte with NUL, so the final '\n' is the byte
// it throws away; it splits values at '&' and ' ' and never URL-decodes them,
// so base64 goes out raw (its '+' '/' '=' would otherwise reach its base64
// decoder as "%2B"), and nonce/error are escaped so they carry no '&', ' ',
// or newline.
//
// With enough capacity in dst, AppendResponse does not allocate.
func AppendResponse(dst []byte, r Response) []byte {
	st := r.Status
	if st < 0 {
		st = StatusServerError
	}
	dst = append(dst, "status="...)
	dst = strconv.AppendInt(dst, int64(st), 10)
	if len(r.Certificate) > 0 {
		dst = append(dst, "&certificate="...)
		dst = base64.StdEncoding.AppendEncode(dst, r.Certificate)
	}
	if r.Nonce != "" {
		dst = append(dst, "&nonce="...)
		dst = appendEscape(dst, r.Nonce)
	}
	if r.Error != "" {
		dst = append(dst, "&error="...)
		dst = appendEscape(dst, r.Error)
	}
	return append(dst, '\n')
}

// EncodeResponse returns AppendResponse(nil, r) in a buffer of exact size.
func EncodeResponse(r Response) []byte {
	return AppendResponse(make([]byte, 0, ResponseLen(r)), r)
}

// ResponseLen returns len(EncodeResponse(r)), for Content-Length.
func ResponseLen(r Response) int {
	st := r.Status
	if st < 0 {
		st = StatusServerError
	}
	n := len("status=") + len(strconv.Itoa(st)) + 1
	if len(r.Certificate) > 0 {
		n += len("&certificate=") + base64.StdEncoding.EncodedLen(len(r.Certificate))
	}
	if r.Nonce != "" {
		n += len("&nonce=") + escapedLen(r.Nonce)
	}
	if r.Error != "" {
		n += len("&error=") + escapedLen(r.Error)
	}
	return n
}

// maxStatusDigits keeps atoi within int32 on every platform.
const maxStatusDigits = 9

// DecodeResponse parses an answer body (client side), tolerantly:
//
//   - with or without the trailing "\n" (CR/LF at the end are dropped);
//   - status= must be present and be 1 to 9 ASCII digits, nothing else
//     (no sign, no escapes, no spaces), as the toolkit demands;
//   - the certificate is taken from certificate= or, failing that, from the
//     first variable whose name starts with "cert" (Table 6's cert=), as
//     raw base64 or %XX-escaped base64, through DecodeBase64Loose;
//   - nonce= and error= are URL-decoded (%XX and '+' as space);
//   - pairs without '=' and unknown variables are ignored; a known variable
//     given twice is an error; status 0 without a certificate is an error.
//
// Names are matched case-insensitively. Errors are *DecodeError.
func DecodeResponse(body []byte) (*Response, error) {
	if len(body) > MaxBody {
		return nil, derr("", ErrTooLarge, "body of "+strconv.Itoa(len(body))+" bytes exceeds "+strconv.Itoa(MaxBody))
	}
	body = trimEOL(body)
	if len(body) == 0 {
		return nil, derr("", ErrMissing, "empty body")
	}
	var (
		status, cert, other, nonce, errText []byte
		haveStatus, haveCert, haveNonce     bool
		haveErr                             bool
		otherName                           string
		pairs                               int
		nameBuf                             [MaxNameLen]byte
	)
	for rest := body; ; {
		seg, next, more := cutByte(rest, '&')
		if len(seg) > 0 {
			pairs++
			if pairs > MaxPairs {
				return nil, derr("", ErrTooLarge, "more than "+strconv.Itoa(MaxPairs)+" variables")
			}
			rawName, val, ok := cutByte(seg, '=')
			if ok && len(rawName) > 0 {
				name, err := decodeName(nameBuf[:0], rawName)
				if err != nil {
					return nil, err
				}
				dup := func(have *bool, field string) error {
					if *have {
						return derr(field, ErrDuplicate, "given more than once")
					}
					*have = true
					return nil
				}
				var err2 error
				switch {
				case equalFoldASCII(name, "status"):
					err2, status = dup(&haveStatus, "status"), val
				case equalFoldASCII(name, "certificate"):
					err2, cert = dup(&haveCert, "certificate"), val
				case hasPrefixFoldASCII(name, "cert"):
					if otherName == "" {
						otherName, other = string(name), val
					}
				case equalFoldASCII(name, "nonce"):
					err2, nonce = dup(&haveNonce, "nonce"), val
				case equalFoldASCII(name, "error"):
					err2, errText = dup(&haveErr, "error"), val
				}
				if err2 != nil {
					return nil, err2
				}
			}
		}
		if !more {
			break
		}
		rest = next
	}

	if !haveStatus || len(status) == 0 {
		return nil, derr("status", ErrMissing, "missing")
	}
	if len(status) > maxStatusDigits {
		return nil, derr("status", ErrMalformed, "more than "+strconv.Itoa(maxStatusDigits)+" digits")
	}
	r := new(Response)
	for i, c := range status {
		if c < '0' || c > '9' {
			return nil, derr("status", ErrMalformed, "not a digit string (byte "+strconv.QuoteRune(rune(c))+" at offset "+strconv.Itoa(i)+")")
		}
		r.Status = r.Status*10 + int(c-'0')
	}

	certName := "certificate"
	if len(cert) == 0 && len(other) > 0 {
		cert, certName = other, otherName
	}
	if len(cert) > 0 {
		var err error
		if r.Certificate, err = decodeB64Field(certName, cert); err != nil {
			return nil, err
		}
	} else if r.Status == StatusOK {
		return nil, derr("certificate", ErrMissing, "missing with status 0")
	}
	if len(nonce) > 0 {
		n, err := appendUnescape(make([]byte, 0, len(nonce)), nonce, true)
		if err != nil {
			return nil, withField(err, "nonce")
		}
		r.Nonce = string(n)
	}
	if len(errText) > 0 {
		e, err := appendUnescape(make([]byte, 0, len(errText)), errText, true)
		if err != nil {
			return nil, withField(err, "error")
		}
		r.Error = string(e)
	}
	return r, nil
}
