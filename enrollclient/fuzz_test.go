package enrollclient

import (
	"strings"
	"testing"
)

func FuzzParseFingerprint(f *testing.F) {
	f.Add(strings.Repeat("ab", 32))
	f.Add("SHA256:" + strings.Repeat("AB:", 31) + "AB")
	f.Add("e6:2c")
	f.Fuzz(func(t *testing.T, s string) {
		fp, err := ParseFingerprint(s)
		if err != nil {
			return
		}
		if len(fp) != 95 || strings.ToUpper(fp) != fp {
			t.Fatalf("%q -> non-canonical %q", s, fp)
		}
		if again, err := ParseFingerprint(fp); err != nil || again != fp {
			t.Fatalf("canonical form does not round-trip: %q %v", again, err)
		}
	})
}

func FuzzParsePending(f *testing.F) {
	f.Add([]byte(`{"version":1,"device_name":"gw1","key":"","csr":"","ca_cert":""}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parsePending(data)
		if err == nil && (p.key == nil || p.ca == nil || len(p.csrDER) == 0 || p.DeviceName == "") {
			t.Fatal("accepted an incomplete pending state")
		}
	})
}
