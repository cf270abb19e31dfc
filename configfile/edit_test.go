package configfile

import (
	"errors"
	"strings"
	"testing"
)

const editSrc = `# Clearinghouse configuration
license 'old key'   # first
crypto "keys"  # secret
enroll enabled
group ""
group 'ACME ITSP'   # the ITSP

	device 'device1.itsp.com'  'ACME ITSP'  enabled   # main
device "device2.itsp.com" "ACME ITSP" disabled enrolled
device dev3 "" enabled
# routes
route 'ACME ITSP' '+1 404...' 'device1.itsp.com' 75 device2.itsp.com 25
route "" "" dev3 1
`

func mustParse(t testing.TB, src string) *File {
	t.Helper()
	f, err := Parse("e.conf", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// checkRendered checks that f.Bytes() is want and parses back to f.
func checkRendered(t *testing.T, f *File, want string) {
	t.Helper()
	got := string(f.Bytes())
	if got != want {
		t.Fatalf("Bytes():\n%s\nwant:\n%s", got, want)
	}
	g, err := Parse("e.conf", []byte(got))
	if err != nil {
		t.Fatalf("rendered file does not parse: %v", err)
	}
	if d := f.Diff(g); d != "" {
		t.Fatalf("rendered file means something else: %s", d)
	}
}

func TestEditDeviceFlags(t *testing.T) {
	f := mustParse(t, editSrc)
	if err := f.SetEnrolled("device1.itsp.com", true); err != nil {
		t.Fatal(err)
	}
	if err := f.SetEnabled("device2.itsp.com", true); err != nil {
		t.Fatal(err)
	}
	if err := f.SetEnrolled("dev3", false); err != nil { // no change
		t.Fatal(err)
	}
	want := strings.Replace(editSrc, "\tdevice 'device1.itsp.com'  'ACME ITSP'  enabled   # main",
		"\tdevice 'device1.itsp.com'  'ACME ITSP'  enabled enrolled   # main", 1)
	want = strings.Replace(want, `device "device2.itsp.com" "ACME ITSP" disabled enrolled`,
		`device "device2.itsp.com" "ACME ITSP" enabled enrolled`, 1)
	checkRendered(t, f, want)

	// back to the original state: the source comes back byte for byte
	f.SetEnrolled("device1.itsp.com", false)
	f.SetEnabled("device2.itsp.com", false)
	checkRendered(t, f, editSrc)

	if names := f.ClearEnrolled(); len(names) != 1 || names[0] != "device2.itsp.com" {
		t.Errorf("ClearEnrolled = %q", names)
	}
	checkRendered(t, f, strings.Replace(editSrc, "disabled enrolled", "disabled", 1))
}

func TestEditAddRemoveDevice(t *testing.T) {
	f := mustParse(t, editSrc)
	if err := f.AddDevice("new dev", "ACME ITSP", true, false); err != nil {
		t.Fatal(err)
	}
	if err := f.AddDevice("it's", "", false, true); err != nil {
		t.Fatal(err)
	}
	if d, ok := f.Device("new dev"); !ok || d.Group != "ACME ITSP" || !d.Enabled || d.Enrolled || d.Line != 0 {
		t.Errorf("Device(new dev) = %+v %v", d, ok)
	}
	want := strings.Replace(editSrc, "device dev3 \"\" enabled\n",
		"device dev3 \"\" enabled\ndevice 'new dev' 'ACME ITSP' enabled\ndevice \"it's\" \"\" disabled enrolled\n", 1)
	checkRendered(t, f, want)

	// removing the first device shifts the others: routes still name the right ones
	f2 := mustParse(t, editSrc)
	f2.AddDevice("spare", "", true, false)
	f2.AddDevice("spare2", "", true, false)
	if err := f2.RemoveDevice("spare"); err != nil {
		t.Fatal(err)
	}
	err := f2.RemoveDevice("device1.itsp.com")
	if err == nil || err.Error() != `e.conf:12: device: cannot remove a device named by a route (near "device1.itsp.com")` {
		t.Errorf("RemoveDevice of a routed device: %v", err)
	}
	f3 := mustParse(t, "group g\ndevice a g enabled\ndevice b g enabled\ndevice c g enabled # c\nroute g 1... c 1 b 2\n")
	if err := f3.RemoveDevice("a"); err != nil {
		t.Fatal(err)
	}
	if r := f3.Routes[0]; f3.TargetName(r.Targets[0]) != "c" || f3.TargetName(r.Targets[1]) != "b" {
		t.Errorf("targets after removal: %v", r.Targets)
	}
	if i, ok := f3.DeviceIndex("c"); !ok || i != 1 {
		t.Errorf("DeviceIndex(c) = %d %v", i, ok)
	}
	checkRendered(t, f3, "group g\ndevice b g enabled\ndevice c g enabled # c\nroute g 1... c 1 b 2\n")
	// remove the last device line, then add one: it goes where the last device line was
	if err := f3.RemoveDevice("c"); err == nil {
		t.Fatal("removed a routed device")
	}
	f4 := mustParse(t, "group g\ndevice a g enabled\ndevice b g enabled\n# end\n")
	f4.RemoveDevice("b")
	f4.AddDevice("z", "g", false, false)
	checkRendered(t, f4, "group g\ndevice a g enabled\ndevice z g disabled\n# end\n")
	// remove and re-add the same name
	f4.RemoveDevice("a")
	f4.AddDevice("a", "g", true, true)
	checkRendered(t, f4, "group g\ndevice z g disabled\ndevice a g enabled enrolled\n# end\n")
}

func TestEditNoDeviceLines(t *testing.T) {
	f := mustParse(t, "# top\ngroup g # g\ngroup h\n# end")
	if err := f.AddDevice("x", "h", true, false); err != nil {
		t.Fatal(err)
	}
	checkRendered(t, f, "# top\ngroup g # g\ngroup h\ndevice x h enabled\n# end")
	// the last line has no line end
	f = mustParse(t, "group g\ndevice a g enabled")
	f.AddDevice("b", "g", true, false)
	f.AddLicense("k")
	checkRendered(t, f, "license \"k\"\ngroup g\ndevice a g enabled\ndevice b g enabled\n")
}

func TestEditCryptoLicenseFlags(t *testing.T) {
	f := mustParse(t, editSrc)
	if err := f.SetCrypto("modern:abc legacy:def"); err != nil {
		t.Fatal(err)
	}
	if err := f.AddLicense("new key"); err != nil {
		t.Fatal(err)
	}
	if err := f.AddLicense(`"quoted"`); err != nil {
		t.Fatal(err)
	}
	if f.License() != `"quoted"` || len(f.Licenses) != 3 {
		t.Errorf("licenses %q", f.Licenses)
	}
	if err := f.SetFlag("ssl", true); err != nil {
		t.Fatal(err)
	}
	if err := f.SetFlag("enroll", false); err != nil {
		t.Fatal(err)
	}
	if err := f.SetFlag("cdrs", false); err != nil { // absent and false: nothing to write
		t.Fatal(err)
	}
	want := strings.Replace(editSrc, "license 'old key'   # first\ncrypto \"keys\"  # secret\nenroll enabled\n",
		"license 'old key'   # first\nlicense 'new key'\nlicense '\"quoted\"'\ncrypto \"modern:abc legacy:def\"  # secret\nenroll disabled\nssl enabled\n", 1)
	checkRendered(t, f, want)

	// a file without license, crypto or flags: new lines go before the first item
	f = mustParse(t, "# header\n\ngroup g\n")
	f.SetFlag("routing", true)
	f.SetCrypto("c")
	f.AddLicense("l")
	checkRendered(t, f, "# header\n\nlicense \"l\"\ncrypto \"c\"\nrouting enabled\ngroup g\n")
	// an empty file
	f = mustParse(t, "")
	f.SetCrypto("c")
	checkRendered(t, f, "crypto \"c\"\n")
	// only a byte order mark: it is no line, so no blank line is added
	f = mustParse(t, "\ufeff")
	f.SetFlag("ssl", true)
	checkRendered(t, f, "\ufeffssl enabled\n")
	f = mustParse(t, "\ufeff# c")
	f.SetFlag("ssl", true)
	checkRendered(t, f, "\ufeff# c\nssl enabled\n")
	// only comments, no final line end
	f = mustParse(t, "# only a comment")
	f.AddLicense("l")
	checkRendered(t, f, "# only a comment\nlicense \"l\"\n")
	// several crypto lines: the last one (in force) is replaced
	f = mustParse(t, "crypto a\ncrypto b # in force\n")
	f.SetCrypto("z")
	checkRendered(t, f, "crypto a\ncrypto \"z\" # in force\n")
}

func TestEditCRLF(t *testing.T) {
	src := "license a\r\ngroup g\r\ndevice d g disabled # x\r\n"
	f := mustParse(t, src)
	f.SetEnabled("d", true)
	f.AddDevice("e", "g", true, true)
	f.AddLicense("b")
	checkRendered(t, f, "license a\r\nlicense \"b\"\r\ngroup g\r\ndevice d g enabled # x\r\ndevice e g enabled enrolled\r\n")
}

func TestEditErrors(t *testing.T) {
	f := mustParse(t, editSrc)
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"unknown device enrolled", f.SetEnrolled("nope", true), `e.conf: unknown device (near "nope")`},
		{"unknown device enabled", f.SetEnabled("nope", true), `e.conf: unknown device (near "nope")`},
		{"remove unknown", f.RemoveDevice("nope"), `e.conf: unknown device (near "nope")`},
		{"add duplicate", f.AddDevice("dev3", "", true, false), `e.conf:10: device: duplicate device (near "dev3")`},
		{"add undefined group", f.AddDevice("x", "nogroup", true, false), `e.conf: device: undefined group (near "nogroup")`},
		{"add empty name", f.AddDevice("", "", true, false), `e.conf: device: empty name`},
		{"add blank name", f.AddDevice("  ", "", true, false), `e.conf: device: empty name (near "  ")`},
		{"add root name", f.AddDevice(".", "", true, false), `e.conf: device: empty name (near ".")`},
		{"add both quotes", f.AddDevice(`a'b"c`, "", true, false), `e.conf: device: value holds both quote characters and cannot be written (near "a'b\"c")`},
		{"add newline", f.AddDevice("a\nb", "", true, false), `e.conf: device: control character not allowed (near "a\nb")`},
		{"add invalid utf-8", f.AddDevice("a\xff", "", true, false), `e.conf: device: invalid UTF-8 (near "a\xff")`},
		{"add too long", f.AddDevice(strings.Repeat("a", 5000), "", true, false), `e.conf: device: line would be too long (5018 bytes, max 4096) (near "` + strings.Repeat("a", 37) + `...")`},
		{"crypto empty", f.SetCrypto(""), `e.conf: crypto: empty value`},
		{"crypto newline", f.SetCrypto("a\r\nb"), `e.conf: crypto: control character not allowed (near "a\r\nb")`},
		{"crypto too long", f.SetCrypto(strings.Repeat("k", 4090)), `e.conf: crypto: line would be too long (4109 bytes, max 4096) (near "` + strings.Repeat("k", 37) + `...")`},
		{"license empty", f.AddLicense(""), `e.conf: license: empty value`},
		{"license both quotes", f.AddLicense(`'"`), `e.conf: license: value holds both quote characters and cannot be written (near "'\"")`},
		{"license too long", f.AddLicense(strings.Repeat("k", 4095)), `e.conf: license: line would be too long (4105 bytes, max 4096) (near "` + strings.Repeat("k", 37) + `...")`},
		{"unknown flag", f.SetFlag("tls", true), `e.conf: unknown flag (want enroll, routing, cdrs or ssl) (near "tls")`},
	}
	for _, tt := range tests {
		if tt.err == nil || tt.err.Error() != tt.want {
			t.Errorf("%s: got %v, want %s", tt.name, tt.err, tt.want)
		}
		var e *Error
		if tt.err != nil && !errors.As(tt.err, &e) {
			t.Errorf("%s: %T is not an *Error", tt.name, tt.err)
		}
	}
	// nothing changed
	checkRendered(t, f, editSrc)

	// an edit that would make a commented line too long is refused
	long := "group g\ndevice d g disabled # " + strings.Repeat("c", 4096-len("device d g disabled # ")) + "\n"
	f = mustParse(t, long)
	if err := f.SetEnrolled("d", true); err == nil || !strings.Contains(err.Error(), "device: edited line would be too long (4105 bytes, max 4096)") {
		t.Errorf("SetEnrolled on a long line: %v", err)
	}
	if d, _ := f.Device("d"); d.Enrolled {
		t.Error("refused edit changed the device")
	}
	if err := f.SetEnabled("d", true); err != nil { // shorter: fine
		t.Error(err)
	}
	// the same for a device added in this session (it has no source line)
	f = mustParse(t, "group g\n")
	name := strings.Repeat("n", 4096-len("device  g disabled"))
	if err := f.AddDevice(name, "g", false, false); err != nil {
		t.Fatal(err)
	}
	if err := f.SetEnrolled(name, true); err == nil || !strings.Contains(err.Error(), "device: edited line would be too long (4105 bytes, max 4096)") {
		t.Errorf("SetEnrolled on a long added device: %v", err)
	}
	if _, err := Parse("e.conf", f.Bytes()); err != nil {
		t.Errorf("the file no longer parses: %v", err)
	}
	long = "ssl enabled # " + strings.Repeat("c", 4096-len("ssl enabled # ")) + "\n"
	f = mustParse(t, long)
	if err := f.SetFlag("ssl", false); err == nil || err.Error() != `e.conf: ssl: edited line would be too long (4097 bytes, max 4096) (near "ssl")` {
		t.Errorf("SetFlag on a long line: %v", err)
	}
	if f.SSL != true {
		t.Error("refused SetFlag changed the flag")
	}
}

func TestClone(t *testing.T) {
	f := mustParse(t, editSrc)
	g := f.Clone()
	g.SetEnrolled("dev3", true)
	g.AddDevice("x", "", true, true)
	g.AddLicense("l2")
	g.SetCrypto("c2")
	g.Routes[0].Targets[0].Weight = 1
	if string(f.Bytes()) != editSrc || f.Equal(g) {
		t.Error("editing the clone changed the original")
	}
	if f.Routes[0].Targets[0].Weight != 75 {
		t.Error("clone shares route targets")
	}
	if _, ok := f.Device("x"); ok {
		t.Error("clone shares the device index")
	}
	h := f.Clone()
	if !h.Equal(f) || string(h.Bytes()) != editSrc {
		t.Error("clone differs")
	}
}

// A snapshot shares its routes until an edit renumbers their targets
// (RemoveDevice): then the edited file takes its own copy, on either side.
// A clone taken from a file that shares its routes leaves it sharing them.
func TestSnapshotRoutesCopyOnWrite(t *testing.T) {
	const src = "group \"\"\ndevice a \"\" enabled\ndevice b \"\" enabled\ndevice c \"\" enabled\nroute \"\" \"\" c 1\n"
	f := mustParse(t, src)
	g := f.Snapshot()
	c := f.Clone()
	c.Routes[0].Targets[0].Weight = 9
	if f.Routes[0].Targets[0].Weight != 1 || g.Routes[0].Targets[0].Weight != 1 {
		t.Fatal("a clone shares the routes")
	}
	if err := g.RemoveDevice("b"); err != nil {
		t.Fatal(err)
	}
	if string(f.Bytes()) != src || f.Routes[0].Targets[0].Device != 2 || f.TargetName(f.Routes[0].Targets[0]) != "c" {
		t.Fatalf("removing a device from the clone changed the original's routes:\n%s", f.Bytes())
	}
	gBytes := string(g.Bytes())
	if g.TargetName(g.Routes[0].Targets[0]) != "c" || strings.Contains(gBytes, "device b") {
		t.Fatalf("clone after RemoveDevice:\n%s", gBytes)
	}
	h := f.Snapshot()
	if err := f.RemoveDevice("a"); err != nil {
		t.Fatal(err)
	}
	if string(g.Bytes()) != gBytes || string(h.Bytes()) != src || h.Routes[0].Targets[0].Device != 2 {
		t.Fatalf("removing a device from the original changed its clones:\n%s\n%s", g.Bytes(), h.Bytes())
	}
	for _, x := range []*File{f, g, h} {
		back, err := Parse("e.conf", x.Bytes())
		if err != nil || !back.Equal(x) {
			t.Fatalf("does not parse back to itself (%v):\n%s", err, x.Bytes())
		}
	}
}

// TestHandBuilt checks that a File built without Parse can be written.
func TestHandBuilt(t *testing.T) {
	f := &File{Name: "h.conf", Groups: []Group{{Name: ""}}}
	if err := f.AddDevice("d", "", true, false); err != nil {
		t.Fatal(err)
	}
	f.Routes = []Route{{Group: "", Number: "+1...", Prefix: "1", Targets: []Target{{0, 5}}}}
	f.AddLicense("k")
	g, err := Parse("h.conf", Format(f))
	if err != nil {
		t.Fatal(err)
	}
	if d := f.Diff(g); d != "" {
		t.Error(d)
	}
	if string(Format(f)) != "license \"k\"\nenroll disabled\nrouting disabled\ncdrs disabled\nssl disabled\ngroup \"\"\ndevice d \"\" enabled\nroute \"\" +1... d 5\n" {
		t.Errorf("Format = %q", Format(f))
	}
}

// A device is found, refused as a duplicate and removed under any spelling
// of its name (DeviceKey), in a parsed File, its clone and a hand-built one.
func TestEditDeviceSpellings(t *testing.T) {
	src := "group g\ndevice A.Example g disabled\ndevice 192.0.2.10 g enabled\ndevice 2001:db8::1 g enabled\n"
	f := mustParse(t, src)
	for _, g := range []*File{f, f.Clone(), {Name: "h.conf", Groups: f.Groups, Devices: f.Devices}} {
		for spelling, want := range map[string]string{
			"A.Example": "A.Example", "a.example": "A.Example", "A.EXAMPLE.": "A.Example",
			"[192.0.2.10]": "192.0.2.10", "::ffff:192.0.2.10": "192.0.2.10",
			"2001:DB8:0::1": "2001:db8::1", "[2001:db8::1]": "2001:db8::1",
		} {
			if d, ok := g.Device(spelling); !ok || d.Name != want {
				t.Errorf("Device(%q) = %v %v, want %s", spelling, d, ok, want)
			}
		}
		for _, other := range []string{"b.example", "192.0.2.1", "2001:db8::10", "a.example.."} {
			if d, ok := g.Device(other); ok {
				t.Errorf("Device(%q) = %v", other, d)
			}
		}
	}
	if err := f.AddDevice("a.EXAMPLE.", "g", true, false); err == nil || err.Error() != `e.conf:2: device: duplicate device (same device as "A.Example") (near "a.EXAMPLE.")` {
		t.Errorf("AddDevice of another spelling: %v", err)
	}
	if err := f.AddDevice("::FFFF:192.0.2.10", "g", true, false); err == nil || !strings.Contains(err.Error(), "duplicate device") {
		t.Errorf("AddDevice of a mapped address: %v", err)
	}
	if err := f.SetEnrolled("a.example", true); err != nil {
		t.Fatal(err)
	}
	if err := f.RemoveDevice("[192.0.2.10]"); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Device("192.0.2.10"); ok {
		t.Error("removed device still found")
	}
	if d, ok := f.Device("2001:DB8::1"); !ok || d.Name != "2001:db8::1" {
		t.Errorf("after removal, Device(2001:DB8::1) = %v %v", d, ok)
	}
	if err := f.AddDevice("192.0.2.10", "g", true, false); err != nil {
		t.Errorf("re-adding the removed device: %v", err)
	}
	checkRendered(t, f, "group g\ndevice A.Example g disabled enrolled\ndevice 2001:db8::1 g enabled\ndevice 192.0.2.10 g enabled\n")
	h := &File{Name: "h.conf", Groups: []Group{{Name: "g"}}}
	if err := h.AddDevice("B.example", "g", true, false); err != nil {
		t.Fatal(err)
	}
	if err := h.AddDevice("b.example.", "g", true, false); err == nil {
		t.Error("hand-built file: AddDevice of another spelling accepted")
	}
}

// license "" is a key (the empty one: trial version); crypto "" counts as
// absent, and SetCrypto fills that line in.
func TestEmptyLicenseAndCrypto(t *testing.T) {
	f := mustParse(t, "license old\nlicense \"\"  # expired\ncrypto ''   # regenerate\nenroll enabled\n")
	if f.License() != "" || len(f.Licenses) != 2 {
		t.Errorf("License() = %q, Licenses %q", f.License(), f.Licenses)
	}
	if f.HasCrypto || f.Crypto != "" {
		t.Errorf("crypto '': HasCrypto %v, Crypto %q", f.HasCrypto, f.Crypto)
	}
	sum := f.Summary()
	for _, s := range []string{"license: empty (trial version) (2 license lines)", "crypto: empty (new parameters will be generated; enrolled devices must re-enroll)"} {
		if !strings.Contains(sum, s) {
			t.Errorf("Summary lacks %q:\n%s", s, sum)
		}
	}
	if sum := mustParse(t, "license abc\nenroll enabled\n").Summary(); !strings.Contains(sum, `license: "abc" (1 license line)`) && !strings.Contains(sum, "license: abc (1 license line)") {
		t.Errorf("Summary of one license line:\n%s", sum)
	}
	if err := f.SetCrypto("modern:abc"); err != nil {
		t.Fatal(err)
	}
	checkRendered(t, f, "license old\nlicense \"\"  # expired\ncrypto 'modern:abc'   # regenerate\nenroll enabled\n")

	// the last crypto line is in force and is the one replaced
	f = mustParse(t, "crypto a\ncrypto \"\"\n")
	if f.HasCrypto {
		t.Error("crypto '' after crypto a: HasCrypto")
	}
	if err := f.SetCrypto("b"); err != nil {
		t.Fatal(err)
	}
	checkRendered(t, f, "crypto a\ncrypto \"b\"\n")

	// the line length is checked on the edited line
	f = mustParse(t, "crypto '' # "+strings.Repeat("c", 4000)+"\n")
	if err := f.SetCrypto(strings.Repeat("k", 90)); err == nil || !strings.Contains(err.Error(), "crypto: line would be too long (4102 bytes, max 4096)") {
		t.Errorf("SetCrypto on a long crypto '' line: %v", err)
	}
}

// The license and crypto values the edits write are always in quotation
// marks (seed 001: "enclosed in double quotation marks"), so the line
// limit must count the quotes even for a value that could be written
// bare: an edit the limit allows must render a file that parses.
func TestEditLineLimitCountsQuotes(t *testing.T) {
	lim := DefaultLimits.MaxLineLen
	tests := []struct {
		name, src string
		edit      func(f *File) error
		want      string // the error, or "" when the edit fits
	}{
		{"SetCrypto new line, fits", "group g\n",
			func(f *File) error { return f.SetCrypto(strings.Repeat("a", lim-len(`crypto ""`))) }, ""},
		{"SetCrypto new line, quotes overflow", "group g\n",
			func(f *File) error { return f.SetCrypto(strings.Repeat("a", lim-len(`crypto `))) },
			`e.conf: crypto: line would be too long (4098 bytes, max 4096) (near "` + strings.Repeat("a", 37) + `...")`},
		{"SetCrypto existing line, fits", "crypto 'x'\n",
			func(f *File) error { return f.SetCrypto(strings.Repeat("a", lim-len(`crypto ''`))) }, ""},
		{"SetCrypto existing line, quotes overflow", "crypto 'x'\n",
			func(f *File) error { return f.SetCrypto(strings.Repeat("a", lim-len(`crypto `))) },
			`e.conf: crypto: line would be too long (4098 bytes, max 4096) (near "` + strings.Repeat("a", 37) + `...")`},
		{"AddLicense, fits", "license 'x'\n",
			func(f *File) error { return f.AddLicense(strings.Repeat("a", lim-len(`license ''`))) }, ""},
		{"AddLicense, quotes overflow", "license 'x'\n",
			func(f *File) error { return f.AddLicense(strings.Repeat("a", lim-len(`license `))) },
			`e.conf: license: line would be too long (4098 bytes, max 4096) (near "` + strings.Repeat("a", 37) + `...")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustParse(t, tt.src)
			err := tt.edit(f)
			if tt.want != "" {
				if err == nil || err.Error() != tt.want {
					t.Fatalf("got %v, want %s", err, tt.want)
				}
				checkRendered(t, f, tt.src)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			g, err := Parse("e.conf", f.Bytes())
			if err != nil {
				t.Fatalf("edited file does not parse: %v", err)
			}
			if d := f.Diff(g); d != "" {
				t.Fatalf("edited file means something else: %s", d)
			}
		})
	}
}

// A snapshot shares the index of devices until an edit adds or removes
// one: each side then finds its own devices, by every spelling, and
// neither the other's.
func TestSnapshotDeviceIndexCopyOnWrite(t *testing.T) {
	const src = "group \"\"\ndevice a.example \"\" enabled\ndevice b.example \"\" enabled\ndevice c.example \"\" enabled\nroute \"\" \"\" c.example 1\n"
	f := mustParse(t, src)
	g := f.Snapshot()
	if err := g.AddDevice("new.example", "", true, false); err != nil {
		t.Fatal(err)
	}
	h := f.Snapshot()
	if err := f.RemoveDevice("A.example."); err != nil {
		t.Fatal(err)
	}
	if err := h.AddDevice("other.example", "", true, true); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		file *File
		name string
		want int // index in Devices, -1: absent
	}{
		{f, "a.example", -1}, {f, "B.EXAMPLE", 0}, {f, "c.example", 1}, {f, "new.example", -1}, {f, "other.example", -1},
		{g, "a.example", 0}, {g, "c.example.", 2}, {g, "NEW.example", 3}, {g, "other.example", -1},
		{h, "a.example", 0}, {h, "c.example", 2}, {h, "new.example", -1}, {h, "other.example", 3},
	} {
		i, ok := c.file.DeviceIndex(c.name)
		if !ok {
			i = -1
		}
		if i != c.want {
			t.Errorf("%s in %p: index %d, want %d", c.name, c.file, i, c.want)
		}
	}
	if err := g.AddDevice("C.Example", "", true, false); err == nil {
		t.Error("a second spelling of a device was added to the snapshot")
	}
	if err := f.AddDevice("a.example", "", true, false); err != nil {
		t.Errorf("adding back a device removed from the original: %v", err)
	}
}
