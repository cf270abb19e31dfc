package osp

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// A token lacking one of the elements the toolkit requires is refused as
// such (ErrMissingElement), by ParseTokenInfo and so by Verify: without
// ValidAfter a token would be valid since the year 1.
func TestParseTokenInfoRequiredElements(t *testing.T) {
	enc := string(mustEncode(t, edgeInfo(testNow)))
	if _, err := ParseTokenInfo([]byte(enc)); err != nil {
		t.Fatalf("complete token: %v", err)
	}
	for _, name := range []string{"SourceInfo", "DestinationInfo", "ValidAfter", "ValidUntil", "TransactionId"} {
		t.Run(name, func(t *testing.T) {
			re := regexp.MustCompile(`<` + name + `[ >][^<]*</` + name + `>`)
			without := re.ReplaceAllString(enc, "")
			if without == enc {
				t.Fatalf("no <%s> in %s", name, enc)
			}
			if _, err := ParseTokenInfo([]byte(without)); !errors.Is(err, ErrMissingElement) {
				t.Fatalf("err %v, want %v", err, ErrMissingElement)
			}
			v := &Verifier{AllowUnsigned: true, Now: fixedClock(testNow)}
			if _, err := v.Verify([]byte(without), edgeCall); !errors.Is(err, ErrTokenMalformed) {
				t.Fatalf("Verify: err %v, want %v", err, ErrTokenMalformed)
			}
		})
	}
}

// ParseTokenInfo bounds its input to MaxTokenBytes (not the 256 KiB of
// other messages): it parses tokens taken from requests too.
func TestParseTokenInfoSizeBound(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int
		ok   bool
	}{
		{"at the bound", MaxTokenBytes, true},
		{"one byte over", MaxTokenBytes + 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info := edgeInfo(testNow)
			info.Random = "r"
			n := len(mustEncode(t, info))
			info.Random = strings.Repeat("r", 1+tc.size-n)
			enc := mustEncode(t, info)
			if len(enc) != tc.size {
				t.Fatalf("token of %d bytes, want %d", len(enc), tc.size)
			}
			if _, err := ParseTokenInfo(enc); (err == nil) != tc.ok {
				t.Fatalf("%d bytes: err %v", len(enc), err)
			}
		})
	}
}
