package configfile

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// DefaultGroup is the name of the default group, written "" in the file.
const DefaultGroup = ""

// File is a parsed clearinghouse configuration file. The exported fields are
// the file's meaning; the unexported ones remember the source bytes and where
// each item came from, so that Bytes can write edits back into the
// operator's text.
//
// A File is not safe for concurrent use: readers may share it only while no
// one edits it (see Clone for copy-on-write).
type File struct {
	Name      string   // file name used in error messages
	Licenses  []string // every license line, in order; License() returns the last or ""
	Crypto    string   // last crypto value; HasCrypto tells whether present
	HasCrypto bool     // false when there is no crypto line or the last one is empty

	Enroll, Routing, CDRs, SSL bool // absent = false

	Groups  []Group
	Devices []Device
	Routes  []Route

	src      string // the source, as parsed (never modified)
	eol      string // "\n" or "\r\n", for new lines
	limits   Limits
	groupIdx map[string]int32
	devIdx   map[string]int32 // DeviceKey of each device's name -> index in Devices
	devSpan  []devSpan        // parallel to Devices
	removed  []lineSpan       // original device lines deleted by RemoveDevice
	orig     origState        // values as parsed, to tell what the edits changed
	at       anchors          // where the last line of each kind is, for edits

	// routesShared is set when Routes (and their Targets) may be shared
	// with a clone: the edit that changes them copies them first
	routesShared bool
	// devIdxShared is the same for devIdx
	devIdxShared bool
}

// Group is one group line.
type Group struct {
	Name string
	Line int // 1-based line in the source; 0 for a File built by hand
}

// Device is one device line. Group is the name of a group of the file.
type Device struct {
	Name, Group       string
	Enabled, Enrolled bool
	Line              int // 0 for a device added by AddDevice
}

// Route is one route line: calls from devices of Group to numbers matching
// Number go to Targets.
type Route struct {
	Group   string
	Number  string // as written, e.g. "+1 404..."
	Prefix  string // normalized digits without '+' and separators, e.g. "1404"; "" = catch-all
	Exact   bool   // pattern had no "..." (and is not the catch-all "")
	Targets []Target
	Line    int
}

// Target is one device/weight pair of a route. Device indexes File.Devices.
type Target struct {
	Device int32
	Weight uint32
}

// MaxWeight is the largest weight a route may give a device.
const MaxWeight = 1000000

// MaxNumberDigits is the most digits (with '*' and '#') a called-number
// pattern may have once normalized.
const MaxNumberDigits = 32

// lineSpan is one line of the source: content is src[start:end] (without
// its CR LF or LF); the next line starts at next. A line has at least one
// byte, so next > 0; the zero lineSpan means "no line".
type lineSpan struct{ start, end, next int }

var noSpan = lineSpan{}

func (s lineSpan) ok() bool { return s.next > 0 }

// devSpan is the source line of a device and its flags as parsed, and the
// shortest spelling by which a route names it when that is shorter than
// its name (written quoted), for Format: a route line that fit the line
// limit with that spelling fits it again.
type devSpan struct {
	lineSpan
	enabled, enrolled bool
	short             string
}

type origState struct {
	licenses  int
	crypto    string
	hasCrypto bool
	flags     [numFlags]bool
}

type anchors struct {
	license, crypto lineSpan
	flag            [numFlags]lineSpan
	lastFlag        lineSpan
	lastGroup       lineSpan
	lastDevice      lineSpan
	firstItem       int // start of the first item line; len(src) if none
}

const (
	flagEnroll = iota
	flagRouting
	flagCDRs
	flagSSL
	numFlags
)

var flagNames = [numFlags]string{"enroll", "routing", "cdrs", "ssl"}

func (f *File) flagPtr(k int) *bool {
	switch k {
	case flagEnroll:
		return &f.Enroll
	case flagRouting:
		return &f.Routing
	case flagCDRs:
		return &f.CDRs
	default:
		return &f.SSL
	}
}

// License returns the license key in force: the last license line, or ""
// when there is none or the last is license "" (the server then runs as a
// trial version).
func (f *File) License() string {
	if len(f.Licenses) == 0 {
		return ""
	}
	return f.Licenses[len(f.Licenses)-1]
}

// Device returns the device named name: the device line that writes name,
// or else the one whose name has name's DeviceKey ("A.EXAMPLE." finds
// a.example, "[192.0.2.10]" finds 192.0.2.10). The pointer is valid until
// the next AddDevice or RemoveDevice.
func (f *File) Device(name string) (*Device, bool) {
	i, ok := f.DeviceIndex(name)
	if !ok {
		return nil, false
	}
	return &f.Devices[i], true
}

// DeviceIndex returns the index in Devices of the device named name, found
// as Device finds it.
func (f *File) DeviceIndex(name string) (int, bool) {
	if f.devIdx == nil {
		// a File built by hand has no index: scan, the exact name first
		for j := range f.Devices {
			if f.Devices[j].Name == name {
				return j, true
			}
		}
		k := DeviceKey(name)
		for j := range f.Devices {
			if DeviceKey(f.Devices[j].Name) == k {
				return j, true
			}
		}
		return 0, false
	}
	// devIdx maps keys; a name written as its own key is found at once
	if i, ok := f.devIdx[name]; ok && int(i) < len(f.Devices) && f.Devices[i].Name == name {
		return int(i), true
	}
	k := DeviceKey(name)
	if i, ok := f.devIdx[k]; ok && int(i) < len(f.Devices) && DeviceKey(f.Devices[i].Name) == k {
		return int(i), true
	}
	return 0, false
}

// Group returns the group named name ("" is the default group).
func (f *File) Group(name string) (*Group, bool) {
	i, ok := f.groupIdx[name]
	if !ok || int(i) >= len(f.Groups) || f.Groups[i].Name != name {
		if f.groupIdx == nil {
			for j := range f.Groups {
				if f.Groups[j].Name == name {
					return &f.Groups[j], true
				}
			}
		}
		return nil, false
	}
	return &f.Groups[i], true
}

// DevicesInGroup returns the devices of a group, in file order.
func (f *File) DevicesInGroup(group string) []*Device {
	var out []*Device
	for i := range f.Devices {
		if f.Devices[i].Group == group {
			out = append(out, &f.Devices[i])
		}
	}
	return out
}

// TargetName returns the name of the device of a route target, or "" if the
// target does not name a device of f.
func (f *File) TargetName(t Target) string {
	if t.Device < 0 || int(t.Device) >= len(f.Devices) {
		return ""
	}
	return f.Devices[t.Device].Name
}

// Clone returns a deep copy of f: edits of the copy (and of its slices) do
// not affect f. The source text, which is never modified, is shared.
func (f *File) Clone() *File {
	shared := f.routesShared
	g := f.Snapshot()
	f.routesShared = shared // g takes its own routes below
	g.ownRoutes()
	return g
}

// Snapshot returns a copy of f that shares f's routes until an edit of
// either changes them (RemoveDevice renumbers their targets): a snapshot
// of a file of a million routes costs its devices and groups, not its
// routes (the indexes of groups and devices are shared likewise). Edits
// through File's methods of one do not affect the other;
// neither's route slices may be modified directly (Clone's may).
func (f *File) Snapshot() *File {
	g := *f
	g.Licenses = slices.Clone(f.Licenses)
	g.Groups = slices.Clone(f.Groups)
	g.Devices = slices.Clone(f.Devices)
	g.devSpan = slices.Clone(f.devSpan)
	g.removed = slices.Clone(f.removed)
	// groupIdx is never modified once parsed, and devIdx is copied by the
	// edit that changes it (AddDevice, RemoveDevice): copying a map of
	// 100,000 devices was most of the cost of the server's every edit
	if f.devIdx != nil {
		f.devIdxShared, g.devIdxShared = true, true
	}
	if f.Routes != nil {
		f.routesShared, g.routesShared = true, true
	}
	return &g
}

// ownDevIdx gives f its own copy of the device index it shares with a
// snapshot, before an edit changes it.
func (f *File) ownDevIdx() {
	if f.devIdxShared {
		f.devIdxShared = false
		f.devIdx = maps.Clone(f.devIdx)
	}
}

// ownRoutes gives f its own copy of routes it shares with a clone, before
// an edit changes them.
func (f *File) ownRoutes() {
	if !f.routesShared {
		return
	}
	f.routesShared = false
	n := 0
	for i := range f.Routes {
		n += len(f.Routes[i].Targets)
	}
	arena := make([]Target, 0, n)
	routes := make([]Route, len(f.Routes))
	for i := range f.Routes {
		r := f.Routes[i]
		start := len(arena)
		arena = append(arena, r.Targets...)
		if r.Targets != nil {
			r.Targets = arena[start:len(arena):len(arena)]
		}
		routes[i] = r
	}
	f.Routes = routes
}

// Equal reports whether f and g mean the same configuration: same licenses,
// crypto, flags, groups, devices and routes, in the same order. Line numbers
// and formatting are ignored; route targets are compared by device name.
func (f *File) Equal(g *File) bool {
	return f.Diff(g) == ""
}

// Diff describes the first semantic difference between f and g, or returns
// "" when they are Equal.
func (f *File) Diff(g *File) string {
	switch {
	case !slices.Equal(f.Licenses, g.Licenses):
		return fmt.Sprintf("licenses %q != %q", f.Licenses, g.Licenses)
	case f.HasCrypto != g.HasCrypto || f.Crypto != g.Crypto:
		return fmt.Sprintf("crypto %v %q != %v %q", f.HasCrypto, f.Crypto, g.HasCrypto, g.Crypto)
	case f.Enroll != g.Enroll || f.Routing != g.Routing || f.CDRs != g.CDRs || f.SSL != g.SSL:
		return fmt.Sprintf("flags %v %v %v %v != %v %v %v %v", f.Enroll, f.Routing, f.CDRs, f.SSL, g.Enroll, g.Routing, g.CDRs, g.SSL)
	case len(f.Groups) != len(g.Groups):
		return fmt.Sprintf("%d groups != %d", len(f.Groups), len(g.Groups))
	case len(f.Devices) != len(g.Devices):
		return fmt.Sprintf("%d devices != %d", len(f.Devices), len(g.Devices))
	case len(f.Routes) != len(g.Routes):
		return fmt.Sprintf("%d routes != %d", len(f.Routes), len(g.Routes))
	}
	for i := range f.Groups {
		if f.Groups[i].Name != g.Groups[i].Name {
			return fmt.Sprintf("group %d: %q != %q", i, f.Groups[i].Name, g.Groups[i].Name)
		}
	}
	for i := range f.Devices {
		a, b := f.Devices[i], g.Devices[i]
		a.Line, b.Line = 0, 0
		if a != b {
			return fmt.Sprintf("device %d: %+v != %+v", i, a, b)
		}
	}
	for i := range f.Routes {
		a, b := &f.Routes[i], &g.Routes[i]
		if a.Group != b.Group || a.Number != b.Number || a.Prefix != b.Prefix || a.Exact != b.Exact || len(a.Targets) != len(b.Targets) {
			return fmt.Sprintf("route %d: %q %q %q %v %d != %q %q %q %v %d", i,
				a.Group, a.Number, a.Prefix, a.Exact, len(a.Targets), b.Group, b.Number, b.Prefix, b.Exact, len(b.Targets))
		}
		for j := range a.Targets {
			if a.Targets[j].Weight != b.Targets[j].Weight || f.TargetName(a.Targets[j]) != g.TargetName(b.Targets[j]) {
				return fmt.Sprintf("route %d target %d: %q %d != %q %d", i, j,
					f.TargetName(a.Targets[j]), a.Targets[j].Weight, g.TargetName(b.Targets[j]), b.Targets[j].Weight)
			}
		}
	}
	return ""
}

// Summary is a one-screen human summary of the file, for `caddy enroll
// check`: counts of groups, devices and routes, the license and crypto
// items, the flags, and the names of the groups and of the enrolled
// devices (the first 20 of each).
func (f *File) Summary() string {
	var b strings.Builder
	enabled, enrolled := 0, 0
	for i := range f.Devices {
		if f.Devices[i].Enabled {
			enabled++
		}
		if f.Devices[i].Enrolled {
			enrolled++
		}
	}
	fmt.Fprintf(&b, "%s: %d groups, %d devices (%d enabled, %d enrolled), %d routes\n",
		f.Name, len(f.Groups), len(f.Devices), enabled, enrolled, len(f.Routes))
	switch {
	case len(f.Licenses) == 0:
		b.WriteString("license: none (trial version)\n")
	case f.License() == "":
		fmt.Fprintf(&b, "license: empty (trial version) (%s)\n", licenseLines(len(f.Licenses)))
	default:
		fmt.Fprintf(&b, "license: %s (%s)\n", QuoteToken(f.License()), licenseLines(len(f.Licenses)))
	}
	if f.HasCrypto {
		fmt.Fprintf(&b, "crypto: present (%d bytes)\n", len(f.Crypto))
	} else if f.at.crypto.ok() {
		b.WriteString("crypto: empty (new parameters will be generated; enrolled devices must re-enroll)\n")
	} else {
		b.WriteString("crypto: absent (new parameters will be generated; enrolled devices must re-enroll)\n")
	}
	fmt.Fprintf(&b, "enroll %s, routing %s, cdrs %s, ssl %s\n",
		onOff(f.Enroll), onOff(f.Routing), onOff(f.CDRs), onOff(f.SSL))
	const maxList = 20
	b.WriteString("groups:")
	for i := range f.Groups {
		if i == maxList {
			fmt.Fprintf(&b, " ... and %d more", len(f.Groups)-maxList)
			break
		}
		b.WriteByte(' ')
		b.WriteString(quoteForSummary(f.Groups[i].Name))
	}
	b.WriteByte('\n')
	fmt.Fprintf(&b, "enrolled devices (%d):", enrolled)
	n := 0
	for i := range f.Devices {
		d := &f.Devices[i]
		if !d.Enrolled {
			continue
		}
		if n == maxList {
			fmt.Fprintf(&b, " ... and %d more", enrolled-maxList)
			break
		}
		n++
		b.WriteByte(' ')
		b.WriteString(quoteForSummary(d.Name))
		if !d.Enabled {
			b.WriteString(" (disabled)")
		}
	}
	b.WriteByte('\n')
	return b.String()
}

func quoteForSummary(s string) string {
	if q, ok := quoteValue(s); ok {
		return q
	}
	return QuoteToken(s)
}

// licenseLines counts license lines in words: "1 license line", "2 license lines".
func licenseLines(n int) string {
	if n == 1 {
		return "1 license line"
	}
	return fmt.Sprintf("%d license lines", n)
}
