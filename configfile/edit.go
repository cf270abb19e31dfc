package configfile

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
)

// The edit methods change f and remember enough to write the change back
// into the operator's text: Bytes renders the source with only the edited
// lines changed. They fail with an *Error (Line 0 unless a line of the file
// is the reason) and leave f unchanged on failure. A device is named as
// File.Device finds it: spelled as its line, or by its DeviceKey.

func (f *File) editErr(tok string, line int, format string, args ...any) error {
	return &Error{File: f.Name, Line: line, Token: tok, Msg: fmt.Sprintf(format, args...)}
}

func (f *File) lim() Limits {
	if f.limits.MaxLineLen == 0 {
		return DefaultLimits.withDefaults()
	}
	return f.limits
}

func (f *File) device(name string) (int, error) {
	i, ok := f.DeviceIndex(name)
	if !ok {
		return 0, f.editErr(name, 0, "unknown device")
	}
	return i, nil
}

// SetEnrolled marks a device enrolled or not enrolled.
func (f *File) SetEnrolled(device string, enrolled bool) error {
	return f.setDeviceFlag(device, func(d *Device) *bool { return &d.Enrolled }, enrolled)
}

// SetEnabled enables or disables a device.
func (f *File) SetEnabled(device string, enabled bool) error {
	return f.setDeviceFlag(device, func(d *Device) *bool { return &d.Enabled }, enabled)
}

// setDeviceFlag sets the flag of a device that flag points to, unless
// that would make the device's line too long.
func (f *File) setDeviceFlag(device string, flag func(*Device) *bool, v bool) error {
	i, err := f.device(device)
	if err != nil {
		return err
	}
	p := flag(&f.Devices[i])
	old := *p
	*p = v
	if err := f.checkDeviceLine(i); err != nil {
		*p = old
		return err
	}
	return nil
}

// checkDeviceLine refuses an edit that would make a device line longer than
// the line limit (a long comment on the line can do that).
func (f *File) checkDeviceLine(i int) error {
	var line string
	if i < len(f.devSpan) && f.devSpan[i].ok() {
		line = f.renderDevice(i)
	} else { // added by AddDevice: written as a new line
		line = f.newDeviceLine(&f.Devices[i])
	}
	if len(line) > f.lim().MaxLineLen {
		return f.editErr(f.Devices[i].Name, f.Devices[i].Line, "device: edited line would be too long (%d bytes, max %d)", len(line), f.lim().MaxLineLen)
	}
	return nil
}

// ClearEnrolled marks every device not enrolled and returns the names of
// those that were (the devices must enroll again, as when the CA changes).
func (f *File) ClearEnrolled() []string {
	var names []string
	for i := range f.Devices {
		if f.Devices[i].Enrolled {
			f.Devices[i].Enrolled = false
			names = append(names, f.Devices[i].Name)
		}
	}
	return names
}

// AddDevice adds a device to an existing group. Its line is written after
// the last device line (or after the last group line if there is none). It
// refuses an empty name (also " " or ".", whose DeviceKey is empty) and a
// name with the DeviceKey of a device of the file (A.EXAMPLE when
// a.example is there).
func (f *File) AddDevice(name, group string, enabled, enrolled bool) error {
	if DeviceKey(name) == "" { // "", or blank, or "."
		return f.editErr(name, 0, "device: empty name")
	}
	if msg := checkValue(name); msg != "" {
		return f.editErr(name, 0, "device: %s", msg)
	}
	if i, ok := f.DeviceIndex(name); ok {
		if d := &f.Devices[i]; d.Name != name {
			return f.editErr(name, d.Line, "device: duplicate device (same device as %s)", QuoteToken(d.Name))
		}
		return f.editErr(name, f.Devices[i].Line, "device: duplicate device")
	}
	g, ok := f.Group(group)
	if !ok {
		return f.editErr(group, 0, "device: undefined group")
	}
	d := Device{Name: name, Group: g.Name, Enabled: enabled, Enrolled: enrolled}
	if line := f.newDeviceLine(&d); len(line) > f.lim().MaxLineLen {
		return f.editErr(name, 0, "device: line would be too long (%d bytes, max %d)", len(line), f.lim().MaxLineLen)
	}
	f.ownDevIdx()
	if f.devIdx == nil {
		f.devIdx = make(map[string]int32)
		for j := range f.Devices {
			if k := DeviceKey(f.Devices[j].Name); !hasKey(f.devIdx, k) {
				f.devIdx[k] = int32(j)
			}
		}
	}
	f.syncSpans()
	f.devIdx[DeviceKey(name)] = int32(len(f.Devices))
	f.Devices = append(f.Devices, d)
	f.devSpan = append(f.devSpan, devSpan{lineSpan: noSpan})
	return nil
}

func hasKey(m map[string]int32, k string) bool {
	_, ok := m[k]
	return ok
}

// syncSpans makes devSpan as long as Devices (for a File built by hand).
func (f *File) syncSpans() {
	for len(f.devSpan) < len(f.Devices) {
		f.devSpan = append(f.devSpan, devSpan{lineSpan: noSpan})
	}
}

// RemoveDevice deletes a device and its line. It refuses to remove a device
// that a route names. Indexes of later devices (and route targets) shift
// down by one.
func (f *File) RemoveDevice(name string) error {
	i, err := f.device(name)
	if err != nil {
		return err
	}
	for r := range f.Routes {
		for _, t := range f.Routes[r].Targets {
			if int(t.Device) == i {
				return f.editErr(name, f.Routes[r].Line, "device: cannot remove a device named by a route")
			}
		}
	}
	f.syncSpans()
	key := DeviceKey(f.Devices[i].Name)
	if sp := f.devSpan[i]; sp.ok() {
		f.removed = append(f.removed, sp.lineSpan)
	}
	f.Devices = slices.Delete(f.Devices, i, i+1)
	f.devSpan = slices.Delete(f.devSpan, i, i+1)
	if f.devIdx != nil {
		f.ownDevIdx()
		if f.devIdx[key] == int32(i) {
			delete(f.devIdx, key)
		}
		for j := i; j < len(f.Devices); j++ {
			if k := DeviceKey(f.Devices[j].Name); f.devIdx[k] == int32(j+1) {
				f.devIdx[k] = int32(j)
			}
		}
	}
	if i < len(f.Devices) {
		f.ownRoutes()
		for r := range f.Routes {
			tg := f.Routes[r].Targets
			for k := range tg {
				if int(tg[k].Device) > i {
					tg[k].Device--
				}
			}
		}
	}
	return nil
}

// SetCrypto replaces the crypto item: the last crypto line (also when its
// value is empty), or a new line after the license lines. params must not
// be empty.
func (f *File) SetCrypto(params string) error {
	if params == "" {
		return f.editErr(params, 0, "crypto: empty value")
	}
	if msg := checkValue(params); msg != "" {
		return f.editErr(params, 0, "crypto: %s", msg)
	}
	oldV, oldHas := f.Crypto, f.HasCrypto
	f.Crypto, f.HasCrypto = params, true
	// the value is written in quotes (splices), whatever it holds
	n := len("crypto ") + len(params) + 2
	if f.at.crypto.ok() {
		n = len(f.renderValueLine(f.at.crypto, quoteIn(params, f.valueQuote(f.at.crypto))))
	}
	if n > f.lim().MaxLineLen {
		f.Crypto, f.HasCrypto = oldV, oldHas
		return f.editErr(params, 0, "crypto: line would be too long (%d bytes, max %d)", n, f.lim().MaxLineLen)
	}
	return nil
}

// AddLicense appends a license line after the last one; it is the license
// in force from now on, and the older lines stay as history. key must not
// be empty (a file may hold license "", but there is no point adding one).
func (f *File) AddLicense(key string) error {
	if key == "" {
		return f.editErr(key, 0, "license: empty value")
	}
	if msg := checkValue(key); msg != "" {
		return f.editErr(key, 0, "license: %s", msg)
	}
	if n := len("license ") + len(key) + 2; n > f.lim().MaxLineLen { // written in quotes
		return f.editErr(key, 0, "license: line would be too long (%d bytes, max %d)", n, f.lim().MaxLineLen)
	}
	f.Licenses = append(f.Licenses, key)
	return nil
}

// SetFlag sets one of the flags enroll, routing, cdrs or ssl.
func (f *File) SetFlag(item string, enabled bool) error {
	k := slices.Index(flagNames[:], item)
	if k < 0 {
		return f.editErr(item, 0, "unknown flag (want enroll, routing, cdrs or ssl)")
	}
	if s := f.at.flag[k]; s.ok() && enabled != f.orig.flags[k] {
		if n := len(f.renderValueLine(s, onOff(enabled))); n > f.lim().MaxLineLen {
			return f.editErr(item, 0, "%s: edited line would be too long (%d bytes, max %d)", item, n, f.lim().MaxLineLen)
		}
	}
	*f.flagPtr(k) = enabled
	return nil
}

func onOff(v bool) string {
	if v {
		return "enabled"
	}
	return "disabled"
}

// renderDevice renders the edited line of a device read from the source:
// everything but the enabled/enrolled words is kept as written.
func (f *File) renderDevice(i int) string {
	sp := f.devSpan[i].lineSpan
	d := &f.Devices[i]
	toks, _, _ := lexLine(f.src, sp.start, sp.end, nil)
	if len(toks) < 4 {
		return f.newDeviceLine(d) // cannot happen for a parsed line
	}
	last := toks[len(toks)-1]
	var b strings.Builder
	b.WriteString(f.src[sp.start:toks[3].start])
	b.WriteString(onOff(d.Enabled))
	if d.Enrolled {
		b.WriteString(" enrolled")
	}
	b.WriteString(f.src[last.end:sp.end])
	return b.String()
}

// renderValueLine renders a one-value line (crypto or a flag) with its value
// replaced by v, keeping indentation, spacing and comment.
func (f *File) renderValueLine(sp lineSpan, v string) string {
	toks, _, _ := lexLine(f.src, sp.start, sp.end, nil)
	if len(toks) != 2 {
		return f.src[sp.start:sp.end] // cannot happen for a parsed line
	}
	return f.src[sp.start:toks[1].start] + v + f.src[toks[1].end:sp.end]
}

// valueQuote is the quote character of the value of the line sp (a
// license or crypto line), '"' when it is unquoted.
func (f *File) valueQuote(sp lineSpan) byte {
	toks, _, _ := lexLine(f.src, sp.start, sp.end, nil)
	if len(toks) == 2 {
		if q := f.src[toks[1].start]; q == '\'' || q == '"' {
			return q
		}
	}
	return '"'
}

// newDeviceLine renders a device line, indented like the last device line.
func (f *File) newDeviceLine(d *Device) string {
	indent := ""
	if sp := f.at.lastDevice; sp.ok() {
		line := f.src[sp.start:sp.end]
		indent = line[:len(line)-len(strings.TrimLeft(line, " \t"))]
	}
	var b []byte
	b = append(b, indent...)
	b = appendDeviceLine(b, d)
	return string(b)
}

func appendDeviceLine(b []byte, d *Device) []byte {
	b = append(b, "device "...)
	b = appendQuoted(b, d.Name)
	b = append(b, ' ')
	b = appendQuoted(b, d.Group)
	b = append(b, ' ')
	b = append(b, onOff(d.Enabled)...)
	if d.Enrolled {
		b = append(b, " enrolled"...)
	}
	return b
}

// splice is one change of the source: src[pos:end] becomes text.
type splice struct {
	pos, end int
	order    int
	text     string
}

// Order of insertions at the same place.
const (
	orderLicense = iota
	orderCrypto
	orderFlag
	orderDevice
)

// Bytes renders the file: the source as parsed with the edits spliced in.
// Lines the edits did not touch are byte-identical, comments included. With
// no edits, Bytes returns a copy of the source. (For a File that Parse did
// not return, Bytes writes only what the edits added: use Format.)
func (f *File) Bytes() []byte {
	sp := f.splices()
	n := len(f.src)
	for _, s := range sp {
		n += len(s.text) + 2
	}
	var b bytes.Buffer
	b.Grow(n)
	f.render(&b, sp)
	return b.Bytes()
}

// WriteTo writes Bytes() to w without building it in memory.
func (f *File) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	f.render(cw, f.splices())
	return cw.n, cw.err
}

type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) WriteString(s string) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := io.WriteString(c.w, s)
	c.n += int64(n)
	c.err = err
	return n, err
}

// splices lists the changes of the source, in order.
func (f *File) splices() []splice {
	f.syncSpans()
	var sp []splice
	eol := f.newline()
	insert := func(pos, order int, line string) {
		sp = append(sp, splice{pos: pos, end: pos, order: order, text: line + eol})
	}
	header := f.at.firstItem
	if header < 0 || header > len(f.src) {
		header = len(f.src)
	}
	after := func(cands ...lineSpan) int {
		for _, c := range cands {
			if c.ok() {
				return c.next
			}
		}
		return header
	}
	// licenses
	// license and crypto values are quoted as the license line in force
	// quotes its value (Table 7: single quotes), else in double quotes
	q := byte('"')
	if f.at.license.ok() {
		q = f.valueQuote(f.at.license)
	}
	if len(f.Licenses) > f.orig.licenses {
		pos := after(f.at.license)
		for _, k := range f.Licenses[f.orig.licenses:] {
			insert(pos, orderLicense, "license "+quoteIn(k, q))
		}
	}
	// crypto
	if f.HasCrypto && (!f.orig.hasCrypto || f.Crypto != f.orig.crypto) {
		if f.at.crypto.ok() { // the line in force, maybe crypto ''
			s := f.at.crypto
			sp = append(sp, splice{pos: s.start, end: s.end, text: f.renderValueLine(s, quoteIn(f.Crypto, f.valueQuote(s)))})
		} else {
			insert(after(f.at.license), orderCrypto, "crypto "+quoteIn(f.Crypto, q))
		}
	}
	// flags
	for k := range numFlags {
		v := *f.flagPtr(k)
		if v == f.orig.flags[k] {
			continue
		}
		if s := f.at.flag[k]; s.ok() {
			sp = append(sp, splice{pos: s.start, end: s.end, text: f.renderValueLine(s, onOff(v))})
		} else {
			insert(after(f.at.lastFlag, f.at.crypto, f.at.license), orderFlag, flagNames[k]+" "+onOff(v))
		}
	}
	// devices
	devPos := after(f.at.lastDevice, f.at.lastGroup)
	for i := range f.Devices {
		ds := f.devSpan[i]
		d := &f.Devices[i]
		if !ds.ok() {
			insert(devPos, orderDevice, f.newDeviceLine(d))
			continue
		}
		if d.Enabled != ds.enabled || d.Enrolled != ds.enrolled {
			sp = append(sp, splice{pos: ds.start, end: ds.end, text: f.renderDevice(i)})
		}
	}
	for _, r := range f.removed {
		sp = append(sp, splice{pos: r.start, end: r.next})
	}
	slices.SortStableFunc(sp, func(a, b splice) int {
		if a.pos != b.pos {
			return a.pos - b.pos
		}
		if (a.pos == a.end) != (b.pos == b.end) {
			// at one place, insertions (whole lines) come before the
			// line that starts there is replaced or deleted
			if a.pos == a.end {
				return -1
			}
			return 1
		}
		return a.order - b.order
	})
	return sp
}

func (f *File) newline() string {
	if f.eol == "" {
		return "\n"
	}
	return f.eol
}

// render writes the source with the splices applied.
func (f *File) render(w io.StringWriter, sp []splice) {
	last := 0
	endsLine := true // whether what was written so far ends a line
	write := func(s string) {
		if s != "" {
			w.WriteString(s)
			endsLine = s[len(s)-1] == '\n'
		}
	}
	for _, s := range sp {
		if s.pos < last { // overlapping edits cannot happen; be safe
			continue
		}
		write(f.src[last:s.pos])
		if s.pos == s.end && s.pos == len(f.src) && !endsLine && f.src != "" && f.src != bom {
			write(f.newline()) // the last line had no line end
		}
		write(s.text)
		last = s.end
	}
	write(f.src[last:])
}
