package wire

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

func TestDecodeBase64Loose(t *testing.T) {
	csr := readDER(t, "device.csr.pem")
	std := b64(csr)
	// "+" turned into " " by a form decoder, as a handler using
	// r.PostForm would hand it over.
	spaced := strings.ReplaceAll(std, "+", " ")
	plusPlus := []byte{0xfb, 0xef, 0xbe, 0xfb} // "+++++w=="
	tests := []struct {
		name string
		in   string
		want []byte
	}{
		{"standard padded", std, csr},
		{"no padding", strings.TrimRight(std, "="), csr},
		{"one of two pads", "QQ=", []byte("A")},
		{"URL-safe", base64.URLEncoding.EncodeToString(csr), csr},
		{"URL-safe raw", base64.RawURLEncoding.EncodeToString(csr), csr},
		{"mixed alphabets", "+_-/", []byte{0xfb, 0xff, 0xbf}},
		{"LF every 64", wrap(std, 64, "\n"), csr},
		{"CRLF every 76", wrap(std, 76, "\r\n"), csr},
		{"tabs and FF", "\tQUJD\f\vREVG\n", []byte("ABCDEF")},
		{"trailing newline", std + "\n", csr},
		{"indented lines", "  " + wrap(std, 64, "\n    ") + "  \n", csr},
		{"plus as space", spaced, csr},
		{"plus as space wrapped", wrap(spaced, 64, "\r\n"), csr},
		{"inner double plus", "QQ" + "  " + "QQ==", mustStd("QQ++QQ==")},
		{"plus runs", "QQ    QQ", mustStd("QQ++++QQ")},
		{"leading plus as spaces, padded", strings.ReplaceAll(base64.StdEncoding.EncodeToString(plusPlus), "+", " "), plusPlus},
		{"separator spaces (unpadded)", "QUJD REVG", []byte("ABCDEF")},
		{"separator spaces (padded)", "QUJD REVG QQ==", []byte("ABCDEFA")},
		{"non-zero trailing bits", "QR==", []byte("A")},
		// spaces before a line break are formatting, not '+'
		{"trailing spaces before a line break", "AA   \nAA", []byte{0, 0, 0}},
		// after cleaning, the padding does not match: the lenient pass takes it
		{"wrapped with a stray pad", "AAAA\nAA=", []byte{0, 0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeBase64Loose([]byte(tt.in))
			if err != nil {
				t.Fatalf("DecodeBase64Loose(%q): %v", tt.in, err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("DecodeBase64Loose(%q) = %x, want %x", tt.in, got, tt.want)
			}
		})
	}

	bad := []struct{ name, in string }{
		{"empty", ""},
		{"only whitespace", " \r\n\t "},
		{"only padding", "===="},
		{"percent escape", "QQ%3D%3D"},
		{"dot", "QU.J"},
		{"NUL", "QQ\x00=="},
		{"non-ASCII", "QQ\xc3\xa9"},
		{"length 1 mod 4", "QUJDR"},
		{"padding in the middle", "QQ==QQ=="},
		{"too much padding, length 1 mod 4", "Q==="},
	}
	for _, tt := range bad {
		t.Run("bad "+tt.name, func(t *testing.T) {
			got, err := DecodeBase64Loose([]byte(tt.in))
			wantDecodeError(t, err, ErrMalformed, "")
			if got != nil {
				t.Errorf("got %x with an error", got)
			}
		})
	}
}

func mustStd(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// TestDecodeBase64LooseSpacesAsPlus: base64 whose every '+' a form decoder
// turned into ' ' decodes exactly whenever no '+' sat at the
// very start or end (a leading/trailing run of spaces could be indentation).
// Wrapped inputs are covered by TestDecodeBase64Loose.
func TestDecodeBase64LooseSpacesAsPlus(t *testing.T) {
	pattern := []byte{0xfb, 0xef, 0xbe, 0x12, 0xf8, 0x3e}
	tested := 0
	for n := 1; n < 300; n++ {
		der := bytes.Repeat(pattern, n/len(pattern)+1)[:n]
		der[0] = 0x30 // DER-like start: no '+' first
		std := base64.StdEncoding.EncodeToString(der)
		if strings.HasSuffix(strings.TrimRight(std, "="), "+") {
			continue
		}
		tested++
		in := strings.ReplaceAll(std, "+", " ")
		if got, err := DecodeBase64Loose([]byte(in)); err != nil || !bytes.Equal(got, der) {
			t.Errorf("n=%d %q: got %x, %v; want %x", n, in, got, err, der)
		}
	}
	if tested < 100 {
		t.Fatalf("only %d cases", tested)
	}
}
