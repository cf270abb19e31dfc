package wire

import (
	"bytes"
	"strconv"
)

const upperHex = "0123456789ABCDEF"

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

// appendEscape appends s with every byte that is not [A-Za-z0-9] written as
// %XX in upper-case hex. This is the toolkit's OSPPAppendUrlEncodedString
// (isalnum in the C locale, sprintf "%.2X"): '+' '/' '=' ' ' and NUL all
// become %2B %2F %3D %20 %00.
func appendEscape[T string | []byte](dst []byte, s T) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlnum(c) {
			dst = append(dst, c)
		} else {
			dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
		}
	}
	return dst
}

func escapedLen[T string | []byte](s T) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) {
			n += 2
		}
	}
	return n
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// needsUnescape reports whether s contains '%' (or '+' when plusSpace).
func needsUnescape(s []byte, plusSpace bool) bool {
	if !plusSpace {
		return bytes.IndexByte(s, '%') >= 0
	}
	for _, c := range s {
		if c == '%' || plusSpace && c == '+' {
			return true
		}
	}
	return false
}

// appendUnescape appends the RFC 1738 decoding of s to dst: %XX (either hex
// case) becomes the byte, '+' becomes a space when plusSpace (HTML form rule).
// A '%' not followed by two hex digits is an error naming its offset.
func appendUnescape(dst, s []byte, plusSpace bool) ([]byte, error) {
	if !plusSpace {
		// Base64 values: copy the runs between escapes in bulk.
		base := 0
		for {
			j := bytes.IndexByte(s[base:], '%')
			if j < 0 {
				return append(dst, s[base:]...), nil
			}
			i := base + j
			dst = append(dst, s[base:i]...)
			if i+2 >= len(s) {
				return dst, badEscape(i)
			}
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return dst, badEscape(i)
			}
			dst = append(dst, hi<<4|lo)
			base = i + 3
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%':
			if i+2 >= len(s) {
				return dst, badEscape(i)
			}
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return dst, badEscape(i)
			}
			dst = append(dst, hi<<4|lo)
			i += 2
		case c == '+' && plusSpace:
			dst = append(dst, ' ')
		default:
			dst = append(dst, c)
		}
	}
	return dst, nil
}

// badEscape reports a bad %-escape by its offset only: the value may be a
// password, and the message reaches the device and the log.
func badEscape(i int) error {
	return derr("", ErrMalformed, "bad %-escape at offset "+strconv.Itoa(i))
}

// withField returns err with its Field set (err is a *DecodeError made here).
func withField(err error, field string) error {
	if de, ok := err.(*DecodeError); ok {
		c := *de
		c.Field = field
		return &c
	}
	return err
}

// cutByte is bytes.Cut for a single separator byte.
func cutByte(s []byte, sep byte) (before, after []byte, found bool) {
	if i := bytes.IndexByte(s, sep); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, nil, false
}

// trimEOL drops trailing CR and LF bytes.
func trimEOL(s []byte) []byte {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	return s
}

// equalFoldASCII compares s to the lower-case ASCII name, ignoring case.
func equalFoldASCII(s []byte, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// equalFoldNames compares two variable names, ignoring ASCII case.
func equalFoldNames(a string, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x >= 'A' && x <= 'Z' {
			x += 'a' - 'A'
		}
		if y >= 'A' && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func hasPrefixFoldASCII(s []byte, lower string) bool {
	return len(s) >= len(lower) && equalFoldASCII(s[:len(lower)], lower)
}
