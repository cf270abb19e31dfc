package configfile

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestQuoteValue(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `""`},
		{"device1.itsp.com", "device1.itsp.com"},
		{"BT-Concert", "BT-Concert"},
		{"+1...", "+1..."},
		{"a:b@c/d*e#f_g", "a:b@c/d*e#f_g"},
		{"#hash", "'#hash'"},
		{"ACME ITSP", "'ACME ITSP'"},
		{"+1 404...", "'+1 404...'"},
		{"it's", `"it's"`},
		{`say "hi"`, `'say "hi"'`},
		{"Télécom", "'Télécom'"}, // read unquoted, written as earlier versions read it
		{"AT&T", "'AT&T'"},
		{"Carrier(UK)", "'Carrier(UK)'"},
		{"a\u00a0b", "'a\u00a0b'"},
		{"a\tb", "'a\tb'"},
	}
	for _, tt := range tests {
		got, ok := quoteValue(tt.in)
		if !ok || got != tt.want {
			t.Errorf("quoteValue(%q) = %q %v, want %q", tt.in, got, ok, tt.want)
		}
	}
	for _, bad := range []string{`'"`, "a\nb", "a\x00", "\xff", "a\u0085"} {
		if _, ok := quoteValue(bad); ok {
			t.Errorf("quoteValue(%q) succeeded", bad)
		}
	}
}

var roundTrips = []string{
	"",
	"# only a comment\n",
	"license a\nlicense 'b c'\nlicense \"it's\"\ncrypto '\"q\"'\nenroll disabled\nssl enabled\n",
	"group \"\"\ngroup '#x'\ngroup 'a\tb'\ngroup \"don't\"\ngroup x#y\n" +
		"device 'd 1' '#x' enabled enrolled\ndevice d2 \"don't\" disabled\ndevice 'dé' x#y enabled\n" +
		"route '#x' '+1 404...' 'd 1' 1 d2 0 'dé' 1000000\nroute \"don't\" \"\" d2 3\nroute x#y 1-800-555-0100 d2 1\nroute \"\" '*72#' 'd 1' 0\n",
	"\xef\xbb\xbf\t  route g 1... d 1 # forward references\r\n  device d g enabled\r\ngroup g\r\n",
}

func TestFormatRoundTrip(t *testing.T) {
	table7, err := os.ReadFile("testdata/clearinghouse.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range append(roundTrips, string(table7)) {
		f, err := Parse("in", []byte(in))
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		out := Format(f)
		g, err := Parse("out", out)
		if err != nil {
			t.Fatalf("Format(%q) = %q does not parse: %v", in, out, err)
		}
		if d := f.Diff(g); d != "" {
			t.Errorf("%q: Parse(Format(f)) differs: %s", in, d)
		}
		if out2 := Format(g); string(out2) != string(out) {
			t.Errorf("Format is not idempotent:\n%s\n%s", out, out2)
		}
	}
}

func TestFormatCanonical(t *testing.T) {
	f := mustParse(t, "# c\n  ssl   enabled # x\ngroup   'g'\ndevice 'd' 'g' enabled\nroute 'g' '+1 404...' 'd' 007\n")
	want := "enroll disabled\nrouting disabled\ncdrs disabled\nssl enabled\ngroup g\ndevice d g enabled\nroute g '+1 404...' d 7\n"
	if got := string(Format(f)); got != want {
		t.Errorf("Format:\n%s\nwant\n%s", got, want)
	}
}

// A route line at the line limit that names its devices by spellings
// shorter than their device lines (other case, no trailing dot, an IPv4
// address for an IPv4-mapped one): Format must not make it too long.
func TestFormatShortSpellings(t *testing.T) {
	var b, r strings.Builder
	b.WriteString("group ''\ndevice spare '' enabled\n")
	r.WriteString("route '' ''")
	for i := 0; r.Len() < DefaultLimits.MaxLineLen-40; i++ {
		switch i % 3 {
		case 0:
			fmt.Fprintf(&b, "device DEVICE%d.EXAMPLE.COM. '' enabled\n", i)
			fmt.Fprintf(&r, " device%d.example.com 1", i)
		case 1:
			fmt.Fprintf(&b, "device 0000:0000:0000:0000:0000:ffff:10.0.%d.%d '' enabled\n", i/256, i%256)
			fmt.Fprintf(&r, " 10.0.%d.%d 1", i/256, i%256)
		default:
			fmt.Fprintf(&b, "device '[192.0.%d.%d]' '' enabled\n", i/256, i%256)
			fmt.Fprintf(&r, " 192.0.%d.%d 1", i/256, i%256)
		}
	}
	f := mustParse(t, b.String()+r.String()+"\n")
	out := Format(f)
	g, err := Parse("out", out)
	if err != nil {
		t.Fatalf("Format output does not parse: %v", err)
	}
	if d := f.Diff(g); d != "" {
		t.Errorf("Parse(Format(f)) differs: %s", d)
	}
	// the spellings follow the devices through edits
	if err := f.RemoveDevice("spare"); err != nil {
		t.Fatal(err)
	}
	if err := f.AddDevice("new", "", true, false); err != nil {
		t.Fatal(err)
	}
	h := f.Clone()
	if _, err := Parse("out", Format(h)); err != nil {
		t.Fatalf("Format of an edited clone does not parse: %v", err)
	}
}

// Lines at the line limit whose words were unquoted in the source but are
// ones Format quotes (license and crypto values, which the seed writes
// "enclosed in double quotation marks", and one-word names with
// characters such as '&' or 'é'): Parse(Format(f)) must still be f.
func TestFormatAtLineLimit(t *testing.T) {
	lim := DefaultLimits.MaxLineLen
	fill := func(prefix, word string, suffix string) string {
		n := (lim - len(prefix) - len(suffix)) / len(word)
		return prefix + strings.Repeat(word, n) + strings.Repeat("x", lim-len(prefix)-len(suffix)-n*len(word)) + suffix
	}
	tests := []struct{ name, src string }{
		{"license", fill("license ", "k", "") + "\n"},
		{"crypto", fill("crypto ", "k", "") + "\n"},
		{"group", fill("group ", "é", "") + "\n"},
		{"device", "group AT&T\n" + fill("device ", "d&", " AT&T enabled enrolled") + "\n"},
	}
	// a route naming many devices, its number padded with separators
	var devs, rt strings.Builder
	devs.WriteString("group AT&T\n")
	for i := 0; i < 300; i++ {
		fmt.Fprintf(&devs, "device d&%d AT&T enabled\n", i)
		fmt.Fprintf(&rt, " d&%d 1", i)
	}
	pad := lim - len("route AT&T 1...") - rt.Len()
	tests = append(tests, struct{ name, src string }{"route",
		devs.String() + "route AT&T 1" + strings.Repeat("-", pad) + "..." + rt.String() + "\n"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustParse(t, tt.src)
			out := Format(f)
			g, err := Parse("out", out)
			if err != nil {
				t.Fatalf("Format output does not parse: %v", err)
			}
			if d := f.Diff(g); d != "" {
				t.Errorf("Parse(Format(f)) differs: %s", d)
			}
			if out2 := Format(g); string(out2) != string(out) {
				t.Errorf("Format is not idempotent")
			}
		})
	}
}
