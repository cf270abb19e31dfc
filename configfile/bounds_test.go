package configfile

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// Limits are inclusive, and what an error quotes is valid text. Found by a
// mutation audit (a bound moved by one, a UTF-8 back-off dropped) that the
// other tests let pass.

func TestFileSizeLimitIsInclusive(t *testing.T) {
	in := []byte("ssl enabled\n")
	if _, err := ParseWithLimits("t.conf", in, Limits{MaxFileSize: int64(len(in))}); err != nil {
		t.Errorf("file of exactly MaxFileSize bytes: %v", err)
	}
	if _, err := ParseWithLimits("t.conf", in, Limits{MaxFileSize: int64(len(in)) - 1}); err == nil {
		t.Error("file one byte over MaxFileSize: no error")
	}
}

// A line too long is quoted by its first 64 bytes, backed off to a rune
// boundary: the error reaches logs and an admin's terminal.
func TestLineTooLongTokenIsValidUTF8(t *testing.T) {
	line := "license '" + strings.Repeat("x", 54) + "é" + strings.Repeat("y", 20) + "'"
	if line[64]&0xc0 != 0x80 {
		t.Fatal("test line should put a continuation byte at offset 64")
	}
	_, err := ParseWithLimits("t.conf", []byte(line+"\n"), Limits{MaxLineLen: 70})
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 1 {
		t.Fatalf("got %v, want one error", err)
	}
	if tok := list[0].Token; !utf8.ValidString(tok) || tok != line[:63] {
		t.Errorf("token %q, want the first 63 bytes %q", tok, line[:63])
	}
}

// Among equally short spellings of a device in routes, Format keeps the
// first one: the output does not depend on which of them came last.
func TestFormatShortSpellingTieKeepsFirst(t *testing.T) {
	f := mustParse(t, "group g\ndevice A.COM. g enabled\nroute g 1 a.com 1\nroute g 2 A.com 1\n")
	out := string(Format(f))
	if !strings.Contains(out, "route g 2 a.com 1\n") {
		t.Errorf("Format used a later spelling:\n%s", out)
	}
}

// Limits of 1 are limits, not "use the default".
func TestLimitsOfOne(t *testing.T) {
	_, err := ParseWithLimits("t.conf", []byte("bogus\nbogus\n"), Limits{MaxErrors: 1})
	if list, _ := err.(ErrorList); len(list) != 2 || !list.Truncated() {
		t.Errorf("MaxErrors 1: %v", err)
	}
	_, err = ParseWithLimits("t.conf", []byte("ssl enabled\n"), Limits{MaxLineLen: 1})
	if err == nil || !strings.Contains(err.Error(), "line too long (11 bytes, max 1)") {
		t.Errorf("MaxLineLen 1: %v", err)
	}
}
