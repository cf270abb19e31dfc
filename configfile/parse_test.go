package configfile

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// dump renders the meaning of f, one item per line, for table tests.
func dump(f *File) string {
	var b strings.Builder
	for _, l := range f.Licenses {
		fmt.Fprintf(&b, "license %q\n", l)
	}
	if f.HasCrypto {
		fmt.Fprintf(&b, "crypto %q\n", f.Crypto)
	}
	fmt.Fprintf(&b, "flags %v %v %v %v\n", f.Enroll, f.Routing, f.CDRs, f.SSL)
	for _, g := range f.Groups {
		fmt.Fprintf(&b, "group %q @%d\n", g.Name, g.Line)
	}
	for _, d := range f.Devices {
		fmt.Fprintf(&b, "device %q %q %s", d.Name, d.Group, onOff(d.Enabled))
		if d.Enrolled {
			b.WriteString(" enrolled")
		}
		fmt.Fprintf(&b, " @%d\n", d.Line)
	}
	for _, r := range f.Routes {
		kind := "prefix"
		if r.Exact {
			kind = "exact"
		}
		fmt.Fprintf(&b, "route %q %q %s %q", r.Group, r.Number, kind, r.Prefix)
		for _, t := range r.Targets {
			fmt.Fprintf(&b, " %s:%d", f.TargetName(t), t.Weight)
		}
		fmt.Fprintf(&b, " @%d\n", r.Line)
	}
	return b.String()
}

const noFlags = "flags false false false false\n"

func TestParseItems(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", noFlags},
		{"blank and comments", "\n   \n# a comment\n\t# indented comment\n", noFlags},
		{"license", "license 'key one'\n", "license \"key one\"\n" + noFlags},
		{"license history", "license a\nlicense \"b c\"\nlicense d\n",
			"license \"a\"\nlicense \"b c\"\nlicense \"d\"\n" + noFlags},
		{"empty license", "license \"\"\n", "license \"\"\n" + noFlags},
		{"empty license last", "license a\nlicense ''\n", "license \"a\"\nlicense \"\"\n" + noFlags},
		{"empty crypto is absent", "crypto ''\n", noFlags},
		{"empty crypto last wins", "crypto 'one'\ncrypto \"\"\n", noFlags},
		{"crypto after empty crypto", "crypto ''\ncrypto two\n", "crypto \"two\"\n" + noFlags},
		{"crypto last wins", "crypto 'one'\ncrypto \"two\"\n", "crypto \"two\"\n" + noFlags},
		{"flags", "enroll enabled\nrouting enabled\ncdrs enabled\nssl enabled\n", "flags true true true true\n"},
		{"flags later override", "enroll enabled\nenroll disabled\nssl disabled\nssl enabled\n", "flags false false false true\n"},
		{"quoted flag value", "cdrs 'enabled'\n", "flags false false true false\n"},
		{"groups", "group \"\"\ngroup ''\n", ""}, // duplicate: tested in errors
		{"group names", "group \"\"\ngroup 'ACME ITSP'\ngroup BT-Concert\ngroup \"it's\"\n",
			noFlags + "group \"\" @1\ngroup \"ACME ITSP\" @2\ngroup \"BT-Concert\" @3\ngroup \"it's\" @4\n"},
		{"devices", "group g\ndevice a.com g enabled\ndevice 'b.com' 'g' disabled enrolled\ndevice c g disabled\n",
			noFlags + "group \"g\" @1\ndevice \"a.com\" \"g\" enabled @2\ndevice \"b.com\" \"g\" disabled enrolled @3\ndevice \"c\" \"g\" disabled @4\n"},
		{"device before its group", "device a '' enabled\ngroup ''\n",
			noFlags + "group \"\" @2\ndevice \"a\" \"\" enabled @1\n"},
		{"routes", "group g\ndevice d1 g enabled\ndevice d2 g enabled\nroute g '+1 404...' d1 60 d2 0\nroute g \"\" d2 1000000\nroute g 14045551234 d1 0\n",
			noFlags + "group \"g\" @1\ndevice \"d1\" \"g\" enabled @2\ndevice \"d2\" \"g\" enabled @3\n" +
				"route \"g\" \"+1 404...\" prefix \"1404\" d1:60 d2:0 @4\n" +
				"route \"g\" \"\" prefix \"\" d2:1000000 @5\n" +
				"route \"g\" \"14045551234\" exact \"14045551234\" d1:0 @6\n"},
		{"route before devices and group", "route g +33.6... d2 5 d1 7\ndevice d1 g enabled\ndevice d2 g enabled\ngroup g\n",
			noFlags + "group \"g\" @4\ndevice \"d1\" \"g\" enabled @2\ndevice \"d2\" \"g\" enabled @3\n" +
				"route \"g\" \"+33.6...\" prefix \"336\" d2:5 d1:7 @1\n"},
		{"exact and prefix do not collide", "group g\ndevice d g enabled\nroute g 1404 d 1\nroute g 1404... d 1\n",
			noFlags + "group \"g\" @1\ndevice \"d\" \"g\" enabled @2\nroute \"g\" \"1404\" exact \"1404\" d:1 @3\nroute \"g\" \"1404...\" prefix \"1404\" d:1 @4\n"},
		{"same number in two groups", "group a\ngroup b\ndevice d a enabled\nroute a +1... d 1\nroute b +1... d 1\n",
			noFlags + "group \"a\" @1\ngroup \"b\" @2\ndevice \"d\" \"a\" enabled @3\nroute \"a\" \"+1...\" prefix \"1\" d:1 @4\nroute \"b\" \"+1...\" prefix \"1\" d:1 @5\n"},
		{"star and hash", "group g\ndevice d g enabled\nroute g '*72#...' d 1\n",
			noFlags + "group \"g\" @1\ndevice \"d\" \"g\" enabled @2\nroute \"g\" \"*72#...\" prefix \"*72#\" d:1 @3\n"},
		{"CRLF", "license 'k'\r\ngroup g\r\ndevice d g enabled enrolled\r\nroute g '+1...' d 1\r\n",
			"license \"k\"\n" + noFlags + "group \"g\" @2\ndevice \"d\" \"g\" enabled enrolled @3\nroute \"g\" \"+1...\" prefix \"1\" d:1 @4\n"},
		{"tabs", "\tgroup\t'a b'\t\ndevice\td\t'a b'\tenabled\t\troute\n",
			""}, // 'route' extra: tested in errors
		{"tabs ok", "\tgroup\t'a b'\t\ndevice\td\t'a b'\tenabled\t\tenrolled\t# note\n",
			noFlags + "group \"a b\" @1\ndevice \"d\" \"a b\" enabled enrolled @2\n"},
		{"comments after items", "license 'a # not a comment' # a comment\ngroup x#y # comment\n",
			"license \"a # not a comment\"\n" + noFlags + "group \"x#y\" @2\n"},
		{"no final newline", "ssl enabled", "flags false false false true\n"},
		{"byte order mark", "\xef\xbb\xbfssl enabled\n", "flags false false false true\n"},
		{"utf-8 in quotes and comments", "group 'Télécom – Paris' # ünïcode\n",
			noFlags + "group \"Télécom – Paris\" @1\n"},
		{"tab inside quotes", "group 'a\tb'\n", noFlags + "group \"a\\tb\" @1\n"},
		{"route names a device in another spelling", "group g\ndevice A.Example g enabled\nroute g 1... a.example. 5 '[2001:DB8::1]' 1\ndevice 2001:db8:0::1 g enabled\n",
			noFlags + "group \"g\" @1\ndevice \"A.Example\" \"g\" enabled @2\ndevice \"2001:db8:0::1\" \"g\" enabled @4\nroute \"g\" \"1...\" prefix \"1\" A.Example:5 2001:db8:0::1:1 @3\n"},
		{"distinct devices", "group g\ndevice a.com g enabled\ndevice a.com.. g enabled\ndevice b.a.com g enabled\ndevice 192.0.2.1 g enabled\ndevice 192.0.2.10 g enabled\ndevice ::1 g enabled\ndevice ::ffff:0:1 g enabled\n",
			noFlags + "group \"g\" @1\ndevice \"a.com\" \"g\" enabled @2\ndevice \"a.com..\" \"g\" enabled @3\ndevice \"b.a.com\" \"g\" enabled @4\ndevice \"192.0.2.1\" \"g\" enabled @5\n" +
				"device \"192.0.2.10\" \"g\" enabled @6\ndevice \"::1\" \"g\" enabled @7\ndevice \"::ffff:0:1\" \"g\" enabled @8\n"},
		{"weights with leading zeros", "group g\ndevice d g enabled\nroute g 1... d 0007\n",
			noFlags + "group \"g\" @1\ndevice \"d\" \"g\" enabled @2\nroute \"g\" \"1...\" prefix \"1\" d:7 @3\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("t.conf", []byte(tt.in))
			if tt.want == "" {
				if err == nil {
					t.Fatalf("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := dump(f); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
			if string(f.Bytes()) != tt.in {
				t.Errorf("Bytes() = %q, want the source", f.Bytes())
			}
			g, err := Parse("t.conf", Format(f))
			if err != nil {
				t.Fatalf("Format: %v\n%s", err, Format(f))
			}
			if d := f.Diff(g); d != "" {
				t.Errorf("Format round trip: %s", d)
			}
		})
	}
}

func TestNormalizeNumber(t *testing.T) {
	tests := []struct {
		in     string
		prefix string
		exact  bool
		err    string
	}{
		{"", "", false, ""},
		{"...", "", false, ""},
		{"+...", "", false, ""},
		{"+1...", "1", false, ""},
		{"1...", "1", false, ""},
		{"+1 404...", "1404", false, ""},
		{"+1 404 ...", "1404", false, ""},
		{"+33-6...", "336", false, ""},
		{"+33 6...", "336", false, ""},
		{"+33.6...", "336", false, ""},
		{"+33.6....", "", false, `'.' before the final "..." (a prefix ends in exactly three dots)`},
		{"1....", "", false, `'.' before the final "..." (a prefix ends in exactly three dots)`},
		{"1. ...", "", false, `'.' before the final "..." (a prefix ends in exactly three dots)`},
		{"1.-...", "", false, `'.' before the final "..." (a prefix ends in exactly three dots)`},
		{"....", "", false, `'.' before the final "..." (a prefix ends in exactly three dots)`},
		{"1. .", "", false, `two '.' separators in a row (only the final "..." may repeat dots)`},
		{"1. .2...", "", false, `two '.' separators in a row (only the final "..." may repeat dots)`},
		{"1.-.2", "", false, `two '.' separators in a row (only the final "..." may repeat dots)`},
		{"1..", "", false, `"..." is allowed only at the end of a number`},
		{"1.2.3...", "123", false, ""},
		{"1. 2 ...", "12", false, ""},
		{"1.", "1", true, ""},
		{".1", "1", true, ""},
		{"+1 404 555 1234", "14045551234", true, ""},
		{"1-404-555-1234", "14045551234", true, ""},
		{"*72#", "*72#", true, ""},
		{" +1", "1", true, ""},
		{"+", "", true, "number has no digits"},
		{" - ", "", true, "number has no digits"},
		{"1+2", "", false, `"+" is allowed only at the start of a number`},
		{"++1", "", false, `"+" is allowed only at the start of a number`},
		{"1..2", "", false, `"..." is allowed only at the end of a number`},
		{"1...2...", "", false, `"..." is allowed only at the end of a number`},
		{"1(404)", "", false, "number may hold only digits, '*', '#', a leading '+', separators ' ', '-', '.' and a final \"...\""},
		{"abc", "", false, "number may hold only digits, '*', '#', a leading '+', separators ' ', '-', '.' and a final \"...\""},
		{strings.Repeat("1", 32) + "...", strings.Repeat("1", 32), false, ""},
		{strings.Repeat("1", 33), "", false, "number too long (more than 32 digits)"},
	}
	for _, tt := range tests {
		p, exact, err := NormalizeNumber(tt.in)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("NormalizeNumber(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || p != tt.prefix || exact != tt.exact {
			t.Errorf("NormalizeNumber(%q) = %q %v %v, want %q %v", tt.in, p, exact, err, tt.prefix, tt.exact)
		}
	}
}

// base defines a group g and devices d1, d2 (lines 1-3) for error tests.
const base = "group g\ndevice d1 g enabled\ndevice d2 g enabled\n"

func TestParseErrors(t *testing.T) {
	const unknownKw = "unknown keyword (want license, crypto, enroll, routing, cdrs, ssl, group, device or route)"
	const badNumber = "route: number may hold only digits, '*', '#', a leading '+', separators ' ', '-', '.' and a final \"...\""
	tests := []struct {
		name, in string
		want     []string
	}{
		// lexical
		{"unknown keyword", "foo bar\n", []string{`t.conf:1: ` + unknownKw + ` (near "foo")`}},
		{"keywords are lower case", "License x\n", []string{`t.conf:1: ` + unknownKw + ` (near "License")`}},
		{"continuation line", base + "route g 1... d1 1\n  d2 0\n", []string{`t.conf:5: ` + unknownKw + ` (near "d2")`}},
		{"unterminated single quote", "group 'abc\n", []string{`t.conf:1: unterminated quoted string (near "'abc")`}},
		{"unterminated double quote", "license \"abc\n", []string{`t.conf:1: unterminated quoted string (near "\"abc")`}},
		{"quotes do not nest", "group 'a\"\n", []string{`t.conf:1: unterminated quoted string (near "'a\"")`}},
		{"missing space after quote", "group 'a'b\n", []string{`t.conf:1: missing space after closing quote (near "'a'b")`}},
		{"quote inside word", "group a'b'\n", []string{`t.conf:1: character "'" not allowed in an unquoted word (quote the word) (near "a'b'")`}},
		{"quote in a bare word", "group a'b\n", []string{`t.conf:1: character "'" not allowed in an unquoted word (quote the word) (near "a'b")`}},
		{"double quote in a bare word", "group a\"b\n", []string{`t.conf:1: character '"' not allowed in an unquoted word (quote the word) (near "a\"b")`}},
		{"DEL in a bare word", "group a\x7fb\n", []string{`t.conf:1: control character not allowed (near "\x7f")`}},
		{"C1 control in a bare word", "group a\u0090b\n", []string{`t.conf:1: control character not allowed (near "\u0090")`}}, // not a space, unlike U+0085
		{"last C1 control", "group 'a\u009f'\n", []string{`t.conf:1: control character not allowed (near "\u009f")`}},
		{"no-break space in a bare word", "group a\u00a0b\n", []string{`t.conf:1: character U+00A0 not allowed in an unquoted word (quote the word) (near "a\u00a0b")`}},
		{"NUL", "group a\x00b\n", []string{`t.conf:1: control character not allowed (near "\x00")`}},
		{"NUL in quotes", "group 'a\x00b'\n", []string{`t.conf:1: control character not allowed (near "\x00")`}},
		{"NUL in comment", "# a\x00b\n", []string{`t.conf:1: control character not allowed (near "\x00")`}},
		{"NUL in unterminated quote", "group 'a\x00b\n", []string{`t.conf:1: control character not allowed (near "\x00")`}},
		{"escape", "group \x1b[31m\n", []string{`t.conf:1: control character not allowed (near "\x1b")`}},
		{"DEL", "group 'a\x7f'\n", []string{`t.conf:1: control character not allowed (near "\x7f")`}},
		{"C1 control", "group 'a\u0085'\n", []string{`t.conf:1: control character not allowed (near "\u0085")`}},
		{"form feed", "\f\n", []string{`t.conf:1: control character not allowed (near "\f")`}},
		{"lone CR", "group a\rgroup b\n", []string{`t.conf:1: carriage return not followed by line feed (near "\r")`}},
		{"CR at end of file", "group a\r", []string{`t.conf:1: carriage return not followed by line feed (near "\r")`}},
		{"lone CR after a quote", "group \"\"\rdevice x \"\" enabled\n", []string{`t.conf:1: carriage return not followed by line feed (near "\r")`}},
		{"NUL after a quote", "group 'a'\x00\n", []string{`t.conf:1: control character not allowed (near "\x00")`}},
		{"invalid UTF-8 after a quote", "group 'a'\xff\n", []string{`t.conf:1: invalid UTF-8 (near "'a'\xff")`}},
		{"C1 control after a quote", "group 'a'\u0085\n", []string{`t.conf:1: control character not allowed (near "\u0085")`}},
		{"letter after a quote", "group 'a'\u00e9\n", []string{`t.conf:1: missing space after closing quote (near "'a'é")`}},
		{"invalid UTF-8", "group 'a\xffb'\n", []string{`t.conf:1: invalid UTF-8 (near "'a\xffb'")`}},
		{"invalid UTF-8 in comment", "ssl enabled # \xc3\n", []string{`t.conf:1: invalid UTF-8 (near "\xc3")`}},
		{"line too long", "# " + strings.Repeat("x", 4095) + "\n", []string{`t.conf:1: line too long (4097 bytes, max 4096) (near "# xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...")`}},

		// license, crypto
		{"license missing", "license\n", []string{`t.conf:1: license: missing value (near "license")`}},
		{"license extra", "license a b\n", []string{`t.conf:1: license: unexpected extra value (near "b")`}},
		{"license two extras", "license a b c\n", []string{`t.conf:1: license: unexpected extra value (near "b")`}},
		{"crypto missing", "crypto # none\n", []string{`t.conf:1: crypto: missing value (near "crypto")`}},
		{"crypto extra", "crypto 'a' 'b'\n", []string{`t.conf:1: crypto: unexpected extra value (near "b")`}},

		// flags
		{"enroll missing", "enroll\n", []string{`t.conf:1: enroll: missing value (near "enroll")`}},
		{"routing missing", "routing\n", []string{`t.conf:1: routing: missing value (near "routing")`}},
		{"cdrs missing", "cdrs\n", []string{`t.conf:1: cdrs: missing value (near "cdrs")`}},
		{"ssl missing", "ssl\n", []string{`t.conf:1: ssl: missing value (near "ssl")`}},
		{"enroll bad", "enroll yes\n", []string{`t.conf:1: enroll: want enabled or disabled (near "yes")`}},
		{"routing bad", "routing Enabled\n", []string{`t.conf:1: routing: want enabled or disabled (near "Enabled")`}},
		{"cdrs extra", "cdrs enabled enabled\n", []string{`t.conf:1: cdrs: unexpected extra value (near "enabled")`}},
		{"ssl empty", "ssl ''\n", []string{`t.conf:1: ssl: want enabled or disabled (near "")`}},

		// group
		{"group missing", "group\n", []string{`t.conf:1: group: missing value (near "group")`}},
		{"group extra", "group ACME ITSP\n", []string{`t.conf:1: group: unexpected extra value (near "ITSP")`}},
		{"group duplicate", "group ''\ngroup a\ngroup \"\"\n", []string{`t.conf:3: group: duplicate group, first defined on line 1 (near "")`}},

		// device
		{"device missing name", "device\n", []string{`t.conf:1: device: missing name (near "device")`}},
		{"device missing group", "device d\n", []string{`t.conf:1: device: missing group (near "d")`}},
		{"device missing state", "group g\ndevice d g\n", []string{`t.conf:2: device: missing enabled or disabled (near "g")`}},
		{"device empty name", "group g\ndevice '' g enabled\n", []string{`t.conf:2: device: empty name (near "")`}},
		{"device blank name", "group g\ndevice ' ' g enabled\n", []string{`t.conf:2: device: empty name (near " ")`}},
		{"device root name", "group g\ndevice '.' g enabled\ndevice ' . ' g enabled\n", []string{
			`t.conf:2: device: empty name (near ".")`,
			`t.conf:3: device: empty name (near " . ")`}},
		{"route empty device name", "group ''\ndevice . '' enabled\nroute '' '' '' 1\n", []string{
			`t.conf:2: device: empty name (near ".")`,
			`t.conf:3: route: undefined device (near "")`}},
		{"device bad state", "group g\ndevice d g on\n", []string{`t.conf:2: device: want enabled or disabled (near "on")`}},
		{"device bad enrolled", "group g\ndevice d g enabled registered\n", []string{`t.conf:2: device: want enrolled or nothing after enabled or disabled (near "registered")`}},
		{"device extra", "group g\ndevice d g enabled enrolled x\n", []string{`t.conf:2: device: unexpected extra value (near "x")`}},
		{"device two extras", "group g\ndevice d g enabled enrolled x y\n", []string{`t.conf:2: device: unexpected extra value (near "x")`}},
		{"device duplicate", base + "device d1 g disabled\n", []string{`t.conf:4: device: duplicate device, first defined on line 2 (near "d1")`}},
		{"device duplicate, other case", "group g\ndevice a.com g enabled\ndevice A.COM g disabled enrolled\n", []string{`t.conf:3: device: duplicate device, first defined on line 2 as "a.com" (near "A.COM")`}},
		{"device duplicate, trailing dot", "group g\ndevice a.com g enabled\ndevice a.com. g enabled\n", []string{`t.conf:3: device: duplicate device, first defined on line 2 as "a.com" (near "a.com.")`}},
		{"device duplicate, IPv4 spellings", "group g\ndevice 192.0.2.10 g enabled\ndevice '[192.0.2.10]' g enabled\ndevice ::ffff:192.0.2.10 g enabled\n", []string{
			`t.conf:3: device: duplicate device, first defined on line 2 as "192.0.2.10" (near "[192.0.2.10]")`,
			`t.conf:4: device: duplicate device, first defined on line 2 as "192.0.2.10" (near "::ffff:192.0.2.10")`}},
		{"device duplicate, IPv6 spellings", "group g\ndevice 2001:db8::1 g enabled\ndevice 2001:DB8:0::1 g enabled\n", []string{`t.conf:3: device: duplicate device, first defined on line 2 as "2001:db8::1" (near "2001:DB8:0::1")`}},
		{"device undefined group", "device d nogroup enabled\n", []string{`t.conf:1: device: undefined group (near "nogroup")`}},
		{"default group must be defined", "device d \"\" enabled\n", []string{`t.conf:1: device: undefined group (near "")`}},

		// route
		{"route missing group", "route\n", []string{`t.conf:1: route: missing group (near "route")`}},
		{"route missing number", base + "route g\n", []string{`t.conf:4: route: missing number (near "g")`}},
		{"route missing targets", base + "route g '+1...'\n", []string{`t.conf:4: route: missing device and weight (near "+1...")`}},
		{"route missing weight", base + "route g '+1...' d1 60 d2\n", []string{`t.conf:4: route: missing weight after device (near "d2")`}},
		{"route negative weight", base + "route g 1... d1 -1\n", []string{`t.conf:4: route: weight must be an integer from 0 to 1000000 (near "-1")`}},
		{"route weight too big", base + "route g 1... d1 1000001\n", []string{`t.conf:4: route: weight must be an integer from 0 to 1000000 (near "1000001")`}},
		{"route weight overflow", base + "route g 1... d1 99999999999999999999\n", []string{`t.conf:4: route: weight must be an integer from 0 to 1000000 (near "99999999999999999999")`}},
		{"route fractional weight", base + "route g 1... d1 1.5\n", []string{`t.conf:4: route: weight must be an integer from 0 to 1000000 (near "1.5")`}},
		{"route weight not a number", base + "route g 1... d1 d2\n", []string{`t.conf:4: route: weight must be an integer from 0 to 1000000 (near "d2")`}},
		{"route empty weight", base + "route g 1... d1 ''\n", []string{`t.conf:4: route: weight must be an integer from 0 to 1000000 (near "")`}},
		{"route weight with ':' (after '9')", base + "route g 1... d1 '1:'\n", []string{`t.conf:4: route: weight must be an integer from 0 to 1000000 (near "1:")`}},
		{"route undefined group", base + "route h 1... d1 1\n", []string{`t.conf:4: route: undefined group (near "h")`}},
		{"route undefined device", base + "route g 1... d1 1 d9 0\n", []string{`t.conf:4: route: undefined device (near "d9")`}},
		// a device whose line is wrong is not also undefined where routes name it
		{"route names an invalid device", base + "device d3 g maybe\nroute g 1... d3 1 d9 0\n", []string{
			`t.conf:4: device: want enabled or disabled (near "maybe")`,
			`t.conf:5: route: undefined device (near "d9")`}},
		{"route names an invalid device, forward", "group g\nroute g 1... D3. 1\ndevice d3 g enabled extra\ndevice d4 g\nroute g 2... d4 1\n", []string{
			`t.conf:3: device: want enrolled or nothing after enabled or disabled (near "extra")`,
			`t.conf:4: device: missing enabled or disabled (near "g")`}},
		{"route device twice", base + "route g 1... d1 1 d2 2 d1 3\n", []string{`t.conf:4: route: device listed twice in this route (near "d1")`}},
		{"route device twice, forward", "group g\nroute g 1... d1 1 d1 3\ndevice d1 g enabled\n", []string{`t.conf:2: route: device listed twice in this route (near "d1")`}},
		{"route device twice, forward, second route", "group g\nroute g 1... d1 1\nroute g 2... d1 1 d1 3\ndevice d1 g enabled\n", []string{`t.conf:3: route: device listed twice in this route (near "d1")`}},
		// a route with an error and a group defined later is not resolved
		// into the routes (there is none at its index)
		{"bad route, forward group", "route g 1... d x\ngroup g\ndevice d g enabled\n", []string{`t.conf:1: route: weight must be an integer from 0 to 1000000 (near "x")`}},
		{"route device twice, two spellings", base + "route g 1... d1 1 D1. 3\n", []string{`t.conf:4: route: device listed twice in this route (near "D1.")`}},
		{"route device twice, two spellings, forward", "group g\nroute g 1... '[::FFFF:192.0.2.1]' 1 192.0.2.1 3\ndevice 192.0.2.1 g enabled\n", []string{`t.conf:2: route: device listed twice in this route (near "192.0.2.1")`}},
		{"route duplicate", base + "route g '+1 404...' d1 1\nroute g '+1 404...' d2 1\n", []string{`t.conf:5: route: duplicate route for this group and number, first defined on line 4 (near "+1 404...")`}},
		{"route duplicate separators", base + "route g '+33 6...' d1 1\nroute g '+33-6...' d2 1\n", []string{`t.conf:5: route: duplicate route for this group and number, first defined on line 4 (near "+33-6...")`}},
		{"route duplicate plus", base + "route g '+1...' d1 1\nroute g 1... d2 1\n", []string{`t.conf:5: route: duplicate route for this group and number, first defined on line 4 (near "1...")`}},
		{"route duplicate catch-all", base + "route g \"\" d1 1\nroute g '...' d2 1\nroute g '+...' d2 1\n", []string{
			`t.conf:5: route: duplicate route for this group and number, first defined on line 4 (near "...")`,
			`t.conf:6: route: duplicate route for this group and number, first defined on line 4 (near "+...")`}},
		{"route duplicate exact", base + "route g '404 555 1234' d1 1\nroute g 4045551234 d2 1\n", []string{`t.conf:5: route: duplicate route for this group and number, first defined on line 4 (near "4045551234")`}},
		{"route bad number", base + "route g '+1 (404)...' d1 1\n", []string{`t.conf:4: ` + badNumber + ` (near "+1 (404)...")`}},
		{"route plus inside", base + "route g '1+1...' d1 1\n", []string{`t.conf:4: route: "+" is allowed only at the start of a number (near "1+1...")`}},
		{"route dots inside", base + "route g '1...1' d1 1\n", []string{`t.conf:4: route: "..." is allowed only at the end of a number (near "1...1")`}},
		{"route four dots", base + "route g '1....' d1 1\n", []string{`t.conf:4: route: '.' before the final "..." (a prefix ends in exactly three dots) (near "1....")`}},
		{"route spaced dots", base + "route g '1. .' d1 1\n", []string{`t.conf:4: route: two '.' separators in a row (only the final "..." may repeat dots) (near "1. .")`}},
		{"route no digits", base + "route g '+' d1 1\n", []string{`t.conf:4: route: number has no digits (near "+")`}},
		{"route number too long", base + "route g " + strings.Repeat("9", 45) + " d1 1\n", []string{`t.conf:4: route: number too long (more than 32 digits) (near "9999999999999999999999999999999999999...")`}},
		{"route several problems", base + "route h '+x' d9 -1 d1 1 d1 2\n", []string{
			`t.conf:4: ` + badNumber + ` (near "+x")`,
			`t.conf:4: route: weight must be an integer from 0 to 1000000 (near "-1")`,
			`t.conf:4: route: device listed twice in this route (near "d1")`,
			`t.conf:4: route: undefined group (near "h")`,
			`t.conf:4: route: undefined device (near "d9")`}},

		// every error of a file, in line order
		{"all errors", "group g\ngroup g\nfoo\ndevice d h enabled\nroute g 1... d 1 x 2\nssl maybe\n", []string{
			`t.conf:2: group: duplicate group, first defined on line 1 (near "g")`,
			`t.conf:3: ` + unknownKw + ` (near "foo")`,
			`t.conf:4: device: undefined group (near "h")`,
			`t.conf:5: route: undefined device (near "x")`,
			`t.conf:6: ssl: want enabled or disabled (near "maybe")`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("t.conf", []byte(tt.in))
			if err == nil {
				t.Fatalf("no error; parsed\n%s", dump(f))
			}
			if f != nil {
				t.Error("File not nil on error")
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error %T is not an ErrorList", err)
			}
			if got, want := err.Error(), strings.Join(tt.want, "\n"); got != want {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
			for _, e := range list {
				if e.File != "t.conf" || e.Line < 1 {
					t.Errorf("error %+v lacks its place", e)
				}
			}
		})
	}
}

func TestErrorFormat(t *testing.T) {
	e := &Error{File: "a.conf", Line: 7, Token: strings.Repeat("é", 41), Msg: "bad"}
	if got, want := e.Error(), `a.conf:7: bad (near "`+strings.Repeat("é", 37)+`...")`; got != want {
		t.Errorf("got %s want %s", got, want)
	}
	e = &Error{File: "a.conf", Line: 7, Token: strings.Repeat("x", 40), Msg: "bad"}
	if got, want := e.Error(), `a.conf:7: bad (near "`+strings.Repeat("x", 40)+`")`; got != want {
		t.Errorf("got %s want %s", got, want)
	}
	e = &Error{File: "a.conf", Msg: "file too large (9 bytes, max 8)"}
	if got, want := e.Error(), "a.conf: file too large (9 bytes, max 8)"; got != want {
		t.Errorf("got %s want %s", got, want)
	}
	var target *Error
	if err := error(ErrorList{e}); !errors.As(err, &target) || target != e {
		t.Error("errors.As does not find the *Error of an ErrorList")
	}
}

func TestLimits(t *testing.T) {
	_, err := ParseWithLimits("t.conf", []byte("ssl enabled\n"), Limits{MaxFileSize: 8})
	if err == nil || err.Error() != "t.conf: file too large (12 bytes, max 8)" {
		t.Errorf("file size: %v", err)
	}
	_, err = ParseWithLimits("t.conf", []byte("ssl enabled\nenroll enabled\n"), Limits{MaxLineLen: 12})
	if err == nil || err.Error() != `t.conf:2: line too long (14 bytes, max 12) (near "enroll enabled")` {
		t.Errorf("line length: %v", err)
	}
	// a CR LF does not count in the line length
	if _, err = ParseWithLimits("t.conf", []byte("ssl enabled\r\n"), Limits{MaxLineLen: 11}); err != nil {
		t.Errorf("line length with CR LF: %v", err)
	}
	var in strings.Builder
	for i := 0; i < 150; i++ {
		in.WriteString("bogus\n")
	}
	_, err = Parse("t.conf", []byte(in.String()))
	list := err.(ErrorList)
	if len(list) != 101 || list[99].Line != 100 || list[100].Error() != `t.conf:101: too many errors (near "bogus")` || !list.Truncated() {
		t.Errorf("too many errors: %d errors, last %v, truncated %v", len(list), list[len(list)-1], list.Truncated())
	}
	// exactly the limit is not cut
	_, err = Parse("t.conf", []byte(strings.Repeat("bogus\n", 100)))
	if list := err.(ErrorList); len(list) != 100 || list.Truncated() {
		t.Errorf("100 errors: %d errors, truncated %v", len(list), list.Truncated())
	}
	_, err = ParseWithLimits("t.conf", []byte(in.String()), Limits{MaxErrors: 3})
	if list := err.(ErrorList); len(list) != 4 || list[3].Msg != "too many errors" {
		t.Errorf("MaxErrors 3: %v", err)
	}
	// late (resolution) errors are capped too
	in.Reset()
	in.WriteString("group g\n")
	for i := 0; i < 150; i++ {
		fmt.Fprintf(&in, "device d%d nogroup enabled\n", i)
	}
	_, err = ParseWithLimits("t.conf", []byte(in.String()), Limits{MaxErrors: 5})
	if list := err.(ErrorList); len(list) != 6 || list[5].Msg != "too many errors" || list[4].Line != 6 {
		t.Errorf("MaxErrors with late errors: %v", err)
	}
	// an early error found late still comes first
	in.Reset()
	in.WriteString("device d nogroup enabled\n")
	for i := 0; i < 100; i++ {
		in.WriteString("bogus\n")
	}
	_, err = Parse("t.conf", []byte(in.String()))
	if list := err.(ErrorList); len(list) != 101 || list[0].Msg != "device: undefined group" ||
		list[99].Line != 100 || list[100].Error() != `t.conf:101: too many errors (near "bogus")` {
		t.Errorf("late early error: %d errors: %v ... %v", len(list), list[0], list[len(list)-1])
	}
}

func TestParseFile(t *testing.T) {
	if _, err := ParseFile("testdata/does-not-exist.conf"); err == nil {
		t.Error("no error for a missing file")
	}
	old := DefaultLimits
	defer func() { DefaultLimits = old }()
	DefaultLimits.MaxFileSize = 100
	_, err := ParseFile("testdata/clearinghouse.conf")
	if err == nil || !strings.HasPrefix(err.Error(), "testdata/clearinghouse.conf: file too large (") {
		t.Errorf("got %v", err)
	}
}

// A route repeated many times: each repetition names the first line, and
// the report stops at the error limit.
func TestDuplicateRoutesRun(t *testing.T) {
	_, err := Parse("dup.conf", dupRoutes(50000))
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error %v, want an ErrorList", err)
	}
	if len(list) > DefaultLimits.MaxErrors+1 {
		t.Fatalf("%d errors, more than the limit %d (+1)", len(list), DefaultLimits.MaxErrors)
	}
	for _, e := range list[:10] {
		if !strings.Contains(e.Error(), "first defined on line 3") {
			t.Fatalf("%v: want the first definition, line 3", e)
		}
	}
}

func TestDeviceKey(t *testing.T) {
	for in, want := range map[string]string{
		"a.example":           "a.example",
		"A.Example":           "a.example",
		"A.EXAMPLE.":          "a.example",
		"a.example..":         "a.example.",
		" a.example ":         "a.example",
		"add.bee.cafe":        "add.bee.cafe",
		"192.0.2.10":          "192.0.2.10",
		"192.0.2.10.":         "192.0.2.10",
		"[192.0.2.10]":        "192.0.2.10",
		"::ffff:192.0.2.10":   "192.0.2.10",
		"[::FFFF:192.0.2.10]": "192.0.2.10",
		"2001:DB8:0::1":       "2001:db8::1",
		"[2001:db8:0:0::1]":   "2001:db8::1",
		"::1":                 "::1",
		"fe80::1%ETH0":        "fe80::1%eth0",
		"192.0.2.010":         "192.0.2.010",
		"[a.example]":         "a.example", // as ca.NormalizeDevice reads it
		"[A.Example.]":        "a.example",
		"[]":                  "[]",
		"[a.example":          "[a.example", // brackets only in pairs
		"a.example]":          "a.example]",
		"Télécom":             "télécom",
		"":                    "",
	} {
		if got := DeviceKey(in); got != want {
			t.Errorf("DeviceKey(%q) = %q, want %q", in, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { DeviceKey("device1.itsp.com"); DeviceKey("192.0.2.10") }); n != 0 {
		t.Errorf("DeviceKey of a lower-case name or an IPv4 address allocates (%v)", n)
	}
}

// A list cut at MaxErrors holds the first errors of the file by line, from
// every pass (undefined names and duplicate routes are found after the
// lines are read), and a name defined after the cut is not undefined.
func TestTruncatedErrorsAreTheFirst(t *testing.T) {
	const unknownKw = "unknown keyword (want license, crypto, enroll, routing, cdrs, ssl, group, device or route)"
	var devs, routes strings.Builder
	for i := 0; i < 10; i++ {
		fmt.Fprintf(&routes, "route g %d nodev%d 1\n", i, i)  // lines 3-12
		fmt.Fprintf(&devs, "device d%d nogroup enabled\n", i) // lines 13-22
	}
	tests := []struct {
		name, in string
		max      int
		want     []string
	}{
		{"undefined device before two bad lines", "group g\nroute g 1 nodev 1\nbad1\nbad2\ndevice d nogroup enabled\n", 2, []string{
			`t.conf:2: route: undefined device (near "nodev")`,
			`t.conf:3: ` + unknownKw + ` (near "bad1")`,
			`t.conf:4: too many errors (near "bad2")`}},
		{"line pass stopped", "group g\nroute g 1 nodev 1\nbad1\nbad2\nbad3\n", 2, []string{
			`t.conf:2: route: undefined device (near "nodev")`,
			`t.conf:3: ` + unknownKw + ` (near "bad1")`,
			`t.conf:4: too many errors (near "bad2")`}},
		{"defined after the cut", "group g\nroute g 1 d 1 D. 2\nroute h 1 d 1\nbad1\nbad2\nbad3\ngroup h\ndevice d g enabled\n", 3, []string{
			`t.conf:2: route: device listed twice in this route (near "d")`,
			`t.conf:4: ` + unknownKw + ` (near "bad1")`,
			`t.conf:5: ` + unknownKw + ` (near "bad2")`,
			`t.conf:6: too many errors (near "bad3")`}},
		{"duplicate route before the cut", "group g\ndevice d g enabled\nroute g 1 d 1\nroute g 1 d 1\nbad1\nbad2\nbad3\n", 2, []string{
			`t.conf:4: route: duplicate route for this group and number, first defined on line 3 (near "1")`,
			`t.conf:5: ` + unknownKw + ` (near "bad1")`,
			`t.conf:6: too many errors (near "bad2")`}},
		{"one pass's late errors before another's early ones", "group g\nroute h 1 nodev 1\n" + devs.String(), 2, []string{
			`t.conf:2: route: undefined group (near "h")`,
			`t.conf:2: route: undefined device (near "nodev")`,
			`t.conf:3: too many errors (near "nogroup")`}},
		{"defined after the cut with a quoted keyword", "group g\nroute g 1 d 1\nroute h 1 d 1\nbad1\nbad2\nbad3\n'group' h\n\"device\" d g enabled\n", 2, []string{
			`t.conf:4: ` + unknownKw + ` (near "bad1")`,
			`t.conf:5: ` + unknownKw + ` (near "bad2")`,
			`t.conf:6: too many errors (near "bad3")`}},
		{"many late errors", "group g\n\n" + routes.String() + devs.String(), 3, []string{
			`t.conf:3: route: undefined device (near "nodev0")`,
			`t.conf:4: route: undefined device (near "nodev1")`,
			`t.conf:5: route: undefined device (near "nodev2")`,
			`t.conf:6: too many errors (near "nodev3")`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseWithLimits("t.conf", []byte(tt.in), Limits{MaxErrors: tt.max})
			if err == nil {
				t.Fatal("no error")
			}
			if got, want := err.Error(), strings.Join(tt.want, "\n"); got != want {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
			if !err.(ErrorList).Truncated() {
				t.Error("not Truncated")
			}
		})
	}
}
