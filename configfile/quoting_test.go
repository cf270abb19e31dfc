package configfile

import (
	"strings"
	"testing"
)

// Seed 001: "license "software license key" ... The content following the
// license keyword should be a software license key enclosed in double
// quotation marks" and "crypto "cryptographic parameters" ... The content
// following the crypto keyword should be cryptographic parameters for the
// clearinghouse server enclosed in double quotation marks." (Table 7 quotes
// them too, with single quotes: license 'software license key', crypto
// 'keys'; either quote character is taken as compliant here.) The lines the
// server writes must quote the value, and an edited line keeps its own
// quote character (doc.go: "an edited line keeps its indentation, its
// quoting and its comment").
func TestLicenseCryptoWrittenQuoted(t *testing.T) {
	tests := []struct {
		name string
		src  string
		edit func(f *File) error
		want []string // the edit must produce one of these lines
	}{
		{"AddLicense", "license \"old-key\"\ngroup g\n",
			func(f *File) error { return f.AddLicense("NEW-KEY-123") },
			[]string{`license "NEW-KEY-123"`, `license 'NEW-KEY-123'`}},
		{"SetCrypto new line", "license \"k\"\ngroup g\n",
			func(f *File) error { return f.SetCrypto("modern:abc") },
			[]string{`crypto "modern:abc"`, `crypto 'modern:abc'`}},
		{"SetCrypto keeps double quotes", "crypto \"keys\"  # secret\ngroup g\n",
			func(f *File) error { return f.SetCrypto("modern:abc legacy:def") },
			[]string{`crypto "modern:abc legacy:def"  # secret`}},
		{"SetCrypto keeps the quotes of crypto \"\"", "crypto \"\"\ngroup g\n",
			func(f *File) error { return f.SetCrypto("modern:abc") },
			[]string{`crypto "modern:abc"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustParse(t, tt.src)
			if err := tt.edit(f); err != nil {
				t.Fatal(err)
			}
			out := string(f.Bytes())
			for _, w := range tt.want {
				if strings.Contains(out, w+"\n") {
					return
				}
			}
			t.Errorf("Bytes():\n%s\nlacks the line %s", out, strings.Join(tt.want, " (or) "))
		})
	}
}

// Format writes license and crypto values in quotation marks.
func TestFormatQuotesLicenseCrypto(t *testing.T) {
	f := mustParse(t, "license 'KEY-1'\ncrypto 'modern:abc'\n")
	out := string(Format(f))
	for _, item := range []string{"license", "crypto"} {
		for _, line := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(line, item+" "); ok && v[0] != '"' && v[0] != '\'' {
				t.Errorf("Format writes %q: the %s value is not in quotation marks", line, item)
			}
		}
	}
}
