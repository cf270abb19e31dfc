package osp

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// A time is refused unless it stays within the years 1 to 9999 in UTC and
// its offset is below 24 hours: one outside (accepted by time.Parse) made a
// stored usage record unwritable, and the whole indication fail with 500.
func TestTimesWithinRange(t *testing.T) {
	raw, err := os.ReadFile("testdata/usage-indication.xml")
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(raw), "<Timestamp>")
	j := strings.Index(string(raw), "</Timestamp>")
	if i < 0 || j < i {
		t.Fatal("no Timestamp in the capture")
	}
	for _, c := range []struct {
		v  string
		ok bool
	}{
		{"2026-11-25T03:04:41Z", true},
		{"9999-12-31T23:59:59+23:59", true},
		{"0001-01-01T00:00:00-23:59", true},
		{"9999-12-31T23:59:59-23:59", false}, // year 10000 in UTC
		{"0001-01-01T00:00:00+00:01", false}, // year 0 in UTC
		{"0000-01-01T00:00:00Z", false},
		{"2026-11-25T03:04:41+24:00", false},
	} {
		msg := string(raw[:i]) + "<Timestamp>" + c.v + string(raw[j:])
		_, err := ParseRequest([]byte(msg))
		if c.ok && err != nil {
			t.Errorf("%s: %v", c.v, err)
		}
		if !c.ok && !errors.Is(err, ErrInvalidValue) {
			t.Errorf("%s: %v, want ErrInvalidValue", c.v, err)
		}
	}
}

// A parse error quotes at most a bounded part of the value it refuses.
func TestParseErrorDetailBounded(t *testing.T) {
	err := perr(ErrInvalidValue, "<Amount> %q is not a number", strings.Repeat("9", 60000)+"x")
	if len(err.Detail) > maxDetail+40 || !strings.Contains(err.Detail, "bytes)") {
		t.Fatalf("detail of %d bytes: %.80s…", len(err.Detail), err.Detail)
	}
}
