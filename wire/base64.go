package wire

import (
	"bytes"
	"encoding/base64"
	"strconv"
)

// DecodeBase64Loose decodes base64 as devices and form decoders leave it:
//
//   - standard (+/) or URL-safe (-_) alphabet, or a mix of both;
//   - with or without '=' padding (padding, when present, must be at the end);
//   - with line breaks and tabs (CR, LF, HT, VT, FF) anywhere: ignored;
//   - with spaces: a '+' that an HTML form decoder turned into ' ' comes
//     back as '+', while indentation (a run of spaces touching a line break or
//     either end) is ignored. When that reading does not decode, spaces are
//     tried as all-'+' (a form-mangled '+' at a line edge) and then as all
//     ignored (spaces as separators); the first reading whose length and
//     padding are consistent wins, then the same order with the padding
//     not checked. Readings can only be told apart by length, so a
//     form-mangled '+' at a line edge of indented base64 may be misread;
//     undo form decoding at the source when you can (DecodeRequest keeps
//     '+' in base64 values for that reason).
//
// Any other byte (including '%': undo URL escaping first) is an error, as is
// an input with no base64 data. Errors are *DecodeError with an empty Field.
func DecodeBase64Loose(s []byte) ([]byte, error) {
	var hasSpace, needClean, hasData bool
	for i, c := range s {
		switch b64class[c] {
		case b64Std:
			hasData = true
		case b64Pad:
		case b64URL:
			hasData, needClean = true, true
		case b64LineWS:
			needClean = true
		case b64Space:
			hasSpace, needClean = true, true
		default:
			return nil, derr("", ErrMalformed, "invalid base64 byte "+strconv.QuoteRune(rune(c))+" at offset "+strconv.Itoa(i))
		}
	}
	if !hasData {
		return nil, derr("", ErrMalformed, "no base64 data")
	}
	if !needClean {
		out, err := decodeB64(s, true)
		if err != nil {
			if out, err2 := decodeB64(s, false); err2 == nil {
				return out, nil
			}
		}
		return out, err
	}
	modes := []spaceMode{spaceFormat}
	if hasSpace {
		modes = []spaceMode{spaceFormat, spacePlus, spaceSkip}
	}
	buf := make([]byte, 0, len(s))
	var firstErr error
	for _, strict := range [2]bool{true, false} {
		for _, m := range modes {
			buf = cleanB64(buf[:0], s, m)
			out, err := decodeB64(buf, strict)
			if err == nil {
				return out, nil
			}
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	return nil, firstErr
}

const (
	b64Invalid = iota
	b64Std     // A-Z a-z 0-9 + /
	b64Pad     // =
	b64URL     // - _
	b64LineWS  // CR LF HT VT FF
	b64Space   // ' '
)

var b64class = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '+', c == '/':
			t[c] = b64Std
		case c == '=':
			t[c] = b64Pad
		case c == '-', c == '_':
			t[c] = b64URL
		case c == '\r', c == '\n', c == '\t', c == '\v', c == '\f':
			t[c] = b64LineWS
		case c == ' ':
			t[c] = b64Space
		}
	}
	return t
}()

type spaceMode uint8

const (
	spaceFormat spaceMode = iota // indentation ignored, inner spaces are '+'
	spaceSkip                    // every space ignored
	spacePlus                    // every space is '+'
)

func isLineWS(c byte) bool {
	return c == '\r' || c == '\n' || c == '\t' || c == '\v' || c == '\f'
}

// cleanB64 copies s to dst, dropping line whitespace, mapping the URL-safe
// alphabet to the standard one and treating spaces per mode.
func cleanB64(dst, s []byte, mode spaceMode) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isLineWS(c):
			continue
		case c == '-':
			c = '+'
		case c == '_':
			c = '/'
		case c == ' ':
			j := i
			for j < len(s) && s[j] == ' ' {
				j++
			}
			// s[i:j] is a run of spaces.
			n := j - i
			var plus bool
			switch mode {
			case spacePlus:
				plus = true
			case spaceFormat:
				plus = i > 0 && j < len(s) && !isLineWS(s[i-1]) && !isLineWS(s[j])
			}
			if plus {
				for k := 0; k < n; k++ {
					dst = append(dst, '+')
				}
			}
			i = j - 1
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

// decodeB64 decodes clean standard-alphabet base64 with optional padding.
// strict requires the padding, when present, to complete a 4-byte quantum.
func decodeB64(s []byte, strict bool) ([]byte, error) {
	data := s
	pad := 0
	for len(data) > 0 && data[len(data)-1] == '=' {
		data = data[:len(data)-1]
		pad++
	}
	if i := bytes.IndexByte(data, '='); i >= 0 {
		return nil, derr("", ErrMalformed, "base64 padding '=' before the end (offset "+strconv.Itoa(i)+")")
	}
	if len(data) == 0 {
		return nil, derr("", ErrMalformed, "no base64 data")
	}
	if len(data)%4 == 1 {
		return nil, derr("", ErrMalformed, "base64 length "+strconv.Itoa(len(data))+" is not a valid length (truncated?)")
	}
	if strict && pad > 0 && (pad > 2 || (len(data)+pad)%4 != 0) {
		return nil, derr("", ErrMalformed, "base64 padding does not match length")
	}
	out := make([]byte, base64.RawStdEncoding.DecodedLen(len(data)))
	n, err := base64.RawStdEncoding.Decode(out, data)
	if err != nil {
		return nil, derr("", ErrMalformed, "base64: "+err.Error())
	}
	return out[:n], nil
}
