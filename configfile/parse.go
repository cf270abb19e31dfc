package configfile

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"unsafe"
)

// Parse parses a configuration file held in data. name is used in error
// messages. On failure the error is an ErrorList holding every problem
// found (up to Limits.MaxErrors) and the File is nil. Parse copies data.
func Parse(name string, data []byte) (*File, error) {
	return ParseWithLimits(name, data, Limits{})
}

// ParseWithLimits is Parse with other limits than DefaultLimits.
func ParseWithLimits(name string, data []byte, l Limits) (*File, error) {
	l = l.withDefaults()
	if int64(len(data)) > l.MaxFileSize {
		return nil, tooLarge(name, int64(len(data)), l)
	}
	return parse(name, string(data), l)
}

// ParseFile reads and parses the file at path, with DefaultLimits.
func ParseFile(path string) (*File, error) {
	return ParseFileWithLimits(path, Limits{})
}

// ParseFileWithLimits reads and parses the file at path. A file larger than
// l.MaxFileSize is refused without reading it whole.
func ParseFileWithLimits(path string, l Limits) (*File, error) {
	l = l.withDefaults()
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > l.MaxFileSize {
		return nil, tooLarge(path, fi.Size(), l)
	}
	var buf bytes.Buffer
	buf.Grow(int(fi.Size()) + bytes.MinRead)
	if _, err := buf.ReadFrom(io.LimitReader(fh, l.MaxFileSize+1)); err != nil {
		return nil, err
	}
	if int64(buf.Len()) > l.MaxFileSize {
		return nil, tooLarge(path, int64(buf.Len()), l)
	}
	data := buf.Bytes()
	// data is ours and never written again: share it instead of copying.
	return parse(path, unsafe.String(unsafe.SliceData(data), len(data)), l)
}

func tooLarge(name string, size int64, l Limits) error {
	return ErrorList{{File: name, Msg: fmt.Sprintf("file too large (%d bytes, max %d)", size, l.MaxFileSize)}}
}

const (
	bom          = "\xef\xbb\xbf"
	arenaTargets = 1 << 14
	arenaBytes   = 1 << 16
)

type parser struct {
	f    *File
	s    string
	lim  Limits
	line int
	toks []rawTok

	// errs holds the errors that can still be among the first
	// MaxErrors+1 of the file by line: errors on line cut or later cannot
	// (cut is 0 until MaxErrors+1 errors are known). Once the line pass
	// has found MaxErrors+1 errors (stop), the rest of the file is only
	// read for its group and device definitions, so that names used
	// before them are not reported undefined.
	errs     ErrorList
	cut      int
	stop     bool
	linePass bool

	stamp []uint32 // per device: gen of the last route that named it
	gen   uint32

	targets []Target // arena for Route.Targets
	prefix  []byte   // arena for Route.Prefix
	numBuf  []byte

	pendDevGroup   []pending       // device index -> group name
	badDev         map[string]bool // DeviceKey of device lines with errors
	pendRouteGroup []pending       // route index -> group name
	pendTarget     []pending       // route index, slot -> device name
}

// pending is a name used before its definition; idx is the device or route
// index (-1 when the item was invalid anyway and the name is only checked).
type pending struct {
	name string
	idx  int32
	slot int32
	line int
}

func parse(name, s string, lim Limits) (*File, error) {
	f := &File{
		Name:     name,
		src:      s,
		eol:      "\n",
		limits:   lim,
		groupIdx: make(map[string]int32),
	}
	// sized once: growing the devices of a carrier's file (100,000) line
	// by line cost a sixth of its parse
	nd := deviceHint(s)
	f.devIdx = make(map[string]int32, nd) // by DeviceKey
	f.Devices = make([]Device, 0, nd)
	f.devSpan = make([]devSpan, 0, nd)
	f.at.firstItem = -1
	if i := strings.IndexByte(s, '\n'); i > 0 && s[i-1] == '\r' {
		f.eol = "\r\n"
	}
	p := &parser{f: f, s: s, lim: lim, stamp: make([]uint32, 0, nd)}
	f.Routes = make([]Route, 0, routeHint(s))
	pos := 0
	if strings.HasPrefix(s, bom) {
		pos = len(bom)
	}
	p.linePass = true
	for pos < len(s) {
		p.line++
		var end, next int
		if nl := strings.IndexByte(s[pos:], '\n'); nl >= 0 {
			end, next = pos+nl, pos+nl+1
			if end > pos && s[end-1] == '\r' {
				end--
			}
		} else {
			end, next = len(s), len(s)
		}
		if p.stop {
			p.defineLine(lineSpan{pos, end, next})
		} else {
			p.parseLine(lineSpan{pos, end, next})
		}
		pos = next
	}
	p.linePass = false
	if f.at.firstItem < 0 {
		f.at.firstItem = len(s)
	}
	// even when the line pass stopped: an early line's undefined name or
	// duplicate route comes before the errors of later lines
	p.resolve()
	p.duplicateRoutes()
	if len(p.errs) > 0 {
		p.sortErrors()
		if len(p.errs) > lim.MaxErrors {
			last := p.errs[lim.MaxErrors]
			p.errs = append(p.errs[:lim.MaxErrors:lim.MaxErrors], &Error{File: name, Line: last.Line, Token: last.Token, Msg: MsgTooManyErrors})
		}
		return nil, p.errs
	}
	if c := cap(f.Routes); c > 64 && c-len(f.Routes) > len(f.Routes)/8 {
		f.Routes = slices.Clone(f.Routes)
	}
	f.orig = origState{
		licenses:  len(f.Licenses),
		crypto:    f.Crypto,
		hasCrypto: f.HasCrypto,
		flags:     [numFlags]bool{f.Enroll, f.Routing, f.CDRs, f.SSL},
	}
	return f, nil
}

// deviceHint is the number of lines that start with "device", for
// which Devices is sized (lines with errors, or "devices" in a comment
// elsewhere, only make it larger).
func deviceHint(s string) int {
	n := strings.Count(s, "\ndevice")
	if strings.HasPrefix(s, "device") {
		n++
	}
	return n
}

// routeHint estimates the number of routes, to size Routes once, from the
// route lines in 64 windows of 16 KiB spread over the file. If the hint is
// too low, Routes grows by an estimate from the part already read (see
// growRoutes); if it is much too high, Routes is trimmed after parsing.
func routeHint(s string) int {
	const windows, size = 64, 16 << 10
	count := func(w string) int { return strings.Count(w, "\nroute") }
	if len(s) <= windows*size {
		return count(s) + 1
	}
	c := 0
	for k := range windows {
		at := int(int64(len(s)-size) * int64(k) / (windows - 1))
		c += count(s[at : at+size])
	}
	n := int(int64(c) * int64(len(s)) / (windows * size))
	n += n/16 + 16
	return min(n, strings.Count(s, "\n")+1)
}

// growRoutes makes room for more routes when the hint was too low: it
// extrapolates the routes of the rest of the file from those read so far.
func (p *parser) growRoutes(pos int) {
	rs := p.f.Routes
	n := len(rs)
	est := n + n/16 + 16
	if pos > 0 {
		est = max(est, int(int64(n)*int64(len(p.s))/int64(pos))+n/64+16)
	}
	grown := make([]Route, n, est)
	copy(grown, rs)
	p.f.Routes = grown
}

// errorf records an error on line p.line, unless MaxErrors+1 errors on
// earlier lines are known already.
func (p *parser) errorf(tok string, format string, args ...any) {
	if p.cut > 0 && p.line >= p.cut {
		return
	}
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	p.errs = append(p.errs, &Error{File: p.f.Name, Line: p.line, Token: tok, Msg: msg})
	// one error more than reported tells that there are too many
	keep := p.lim.MaxErrors + 1
	switch {
	case p.linePass && len(p.errs) == keep:
		// the line pass finds errors in line order: these are the first
		p.stop = true
		p.cut = p.line
	case len(p.errs) >= 2*keep:
		// later passes find them in any order: keep the first by line
		p.sortErrors()
		clear(p.errs[keep:])
		p.errs = p.errs[:keep]
		p.cut = p.errs[keep-1].Line
	}
}

// sortErrors puts the errors in line order; errors of one line stay in the
// order they were found.
func (p *parser) sortErrors() {
	slices.SortStableFunc(p.errs, func(a, b *Error) int { return a.Line - b.Line })
}

// defineLine reads a line after the line pass stopped (too many errors)
// only for the group or device it defines; its errors are not reported.
// The keyword may be quoted ('group', "device"), as any word may.
func (p *parser) defineLine(ls lineSpan) {
	line := strings.TrimLeft(p.s[ls.start:ls.end], " \t")
	if line != "" && (line[0] == '\'' || line[0] == '"') {
		line = line[1:]
	}
	if strings.HasPrefix(line, "group") || strings.HasPrefix(line, "device") {
		p.parseLine(ls)
	}
}

// clip bounds the token kept in an error for a long line.
func clip(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && s[i]&0xc0 == 0x80 {
		i--
	}
	return s[:i]
}

func (p *parser) parseLine(ls lineSpan) {
	line := p.s[ls.start:ls.end]
	if len(line) > p.lim.MaxLineLen {
		p.errorf(clip(line), "line too long (%d bytes, max %d)", len(line), p.lim.MaxLineLen)
		return
	}
	toks, msg, tok := lexLine(p.s, ls.start, ls.end, p.toks)
	p.toks = toks
	if msg != "" {
		p.errorf(tok, "%s", msg)
		return
	}
	if len(toks) == 0 {
		return
	}
	f := p.f
	if f.at.firstItem < 0 {
		f.at.firstItem = ls.start
	}
	kw := toks[0].val
	switch kw {
	case "license", "crypto":
		v, ok := p.oneValue(kw, toks)
		if !ok {
			return
		}
		if kw == "license" {
			// an empty key is kept: the server runs as a trial version,
			// as for an invalid key
			f.Licenses = append(f.Licenses, v)
			f.at.license = ls
		} else {
			// an empty value counts as absent (new parameters are made),
			// but the line is remembered for SetCrypto to fill in
			f.Crypto, f.HasCrypto = v, v != ""
			f.at.crypto = ls
		}
	case "enroll", "routing", "cdrs", "ssl":
		v, ok := p.oneValue(kw, toks)
		if !ok {
			return
		}
		var on bool
		switch v {
		case "enabled":
			on = true
		case "disabled":
		default:
			p.errorf(v, "%s: want enabled or disabled", kw)
			return
		}
		k := slices.Index(flagNames[:], kw)
		*f.flagPtr(k) = on
		f.at.flag[k] = ls
		f.at.lastFlag = ls
	case "group":
		v, ok := p.oneValue(kw, toks)
		if !ok {
			return
		}
		if i, dup := f.groupIdx[v]; dup {
			p.errorf(v, "group: duplicate group, first defined on line %d", f.Groups[i].Line)
			return
		}
		f.groupIdx[v] = int32(len(f.Groups))
		f.Groups = append(f.Groups, Group{Name: v, Line: p.line})
		f.at.lastGroup = ls
	case "device":
		p.device(toks, ls)
	case "route":
		p.route(toks)
	default:
		p.errorf(kw, "unknown keyword (want license, crypto, enroll, routing, cdrs, ssl, group, device or route)")
	}
}

// oneValue checks that an item has exactly one value and returns it.
func (p *parser) oneValue(kw string, toks []rawTok) (string, bool) {
	switch {
	case len(toks) < 2:
		p.errorf(kw, "%s: missing value", kw)
		return "", false
	case len(toks) > 2:
		p.errorf(toks[2].val, "%s: unexpected extra value", kw)
		return "", false
	}
	return toks[1].val, true
}

func (p *parser) device(toks []rawTok, ls lineSpan) {
	f := p.f
	switch len(toks) {
	case 1:
		p.errorf("device", "device: missing name")
		return
	case 2:
		p.errorf(toks[1].val, "device: missing group")
		p.badDevice(toks[1].val)
		return
	case 3:
		p.errorf(toks[2].val, "device: missing enabled or disabled")
		p.badDevice(toks[1].val)
		return
	case 4, 5:
	default:
		p.errorf(toks[5].val, "device: unexpected extra value")
		p.badDevice(toks[1].val)
		return
	}
	name, group := toks[1].val, toks[2].val
	ok := true
	// a name whose key is empty (' ', '.') is the empty name: a route's
	// device '' would find it
	key := DeviceKey(name)
	if key == "" {
		p.errorf(name, "device: empty name")
		ok = false
	}
	var d Device
	switch toks[3].val {
	case "enabled":
		d.Enabled = true
	case "disabled":
	default:
		p.errorf(toks[3].val, "device: want enabled or disabled")
		ok = false
	}
	if len(toks) == 5 {
		if toks[4].val == "enrolled" {
			d.Enrolled = true
		} else {
			p.errorf(toks[4].val, "device: want enrolled or nothing after enabled or disabled")
			ok = false
		}
	}
	if i, dup := f.devIdx[key]; dup && key != "" {
		if first := &f.Devices[i]; first.Name == name {
			p.errorf(name, "device: duplicate device, first defined on line %d", first.Line)
		} else {
			p.errorf(name, "device: duplicate device, first defined on line %d as %s", first.Line, QuoteToken(first.Name))
		}
		ok = false
	}
	idx := int32(len(f.Devices))
	if !ok {
		idx = -1
	}
	if gi, known := f.groupIdx[group]; known {
		group = f.Groups[gi].Name
	} else {
		p.pendDevGroup = append(p.pendDevGroup, pending{name: group, idx: idx, line: p.line})
	}
	if !ok {
		p.badDevice(name)
		return
	}
	d.Name, d.Group, d.Line = name, group, p.line
	f.devIdx[key] = idx
	f.Devices = append(f.Devices, d)
	f.devSpan = append(f.devSpan, devSpan{lineSpan: ls, enabled: d.Enabled, enrolled: d.Enrolled})
	p.stamp = append(p.stamp, 0)
	f.at.lastDevice = ls
}

// badDevice remembers the name of a device line that has an error: the
// routes that name it are not also told that the device is undefined.
func (p *parser) badDevice(name string) {
	if key := DeviceKey(name); key != "" {
		if p.badDev == nil {
			p.badDev = make(map[string]bool)
		}
		p.badDev[key] = true
	}
}

// deviceIndex finds the device a route names, as File.DeviceIndex does:
// spelled as its device line, else by DeviceKey.
func (p *parser) deviceIndex(name string) (int32, bool) {
	i, ok := p.f.DeviceIndex(name)
	return int32(i), ok
}

// parseWeight parses a decimal weight from 0 to MaxWeight.
func parseWeight(s string) (uint32, bool) {
	if s == "" {
		return 0, false
	}
	var v uint32
	for i := 0; i < len(s); i++ {
		c := s[i] - '0'
		if c > 9 {
			return 0, false
		}
		v = v*10 + uint32(c)
		if v > MaxWeight {
			return 0, false
		}
	}
	return v, true
}

func (p *parser) allocTargets(n int) []Target {
	if cap(p.targets)-len(p.targets) < n {
		p.targets = make([]Target, 0, max(arenaTargets, n))
	}
	l := len(p.targets)
	p.targets = p.targets[:l+n]
	return p.targets[l : l+n : l+n]
}

// internPrefix returns b as a string that lives in the prefix arena.
func (p *parser) internPrefix(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if cap(p.prefix)-len(p.prefix) < len(b) {
		p.prefix = make([]byte, 0, arenaBytes)
	}
	l := len(p.prefix)
	p.prefix = append(p.prefix, b...)
	// The arena's bytes below len are never written again.
	return unsafe.String(&p.prefix[l], len(b))
}

func (p *parser) route(toks []rawTok) {
	f := p.f
	switch {
	case len(toks) < 2:
		p.errorf("route", "route: missing group")
		return
	case len(toks) < 3:
		p.errorf(toks[1].val, "route: missing number")
		return
	case len(toks) < 4:
		p.errorf(toks[2].val, "route: missing device and weight")
		return
	case (len(toks)-3)%2 != 0:
		p.errorf(toks[len(toks)-1].val, "route: missing weight after device")
		return
	}
	group, number := toks[1].val, toks[2].val
	ok := true
	ridx := int32(len(f.Routes))
	gi, groupKnown := f.groupIdx[group]
	if groupKnown {
		group = f.Groups[gi].Name
	}
	var r Route
	buf, exact, first, msg := normalizeNumber(number, p.numBuf[:0])
	p.numBuf = buf
	if msg != "" {
		p.errorf(number, "route: %s", msg)
		ok = false
	} else {
		r.Exact = exact
		if first >= 0 && first+len(buf) <= len(number) && number[first:first+len(buf)] == string(buf) {
			r.Prefix = number[first : first+len(buf)]
		} else {
			r.Prefix = p.internPrefix(buf)
		}
	}
	npairs := (len(toks) - 3) / 2
	arenaLen, arenaCap := len(p.targets), cap(p.targets)
	pendLen := len(p.pendTarget)
	tg := p.allocTargets(npairs)
	p.gen++
	for k := 0; k < npairs; k++ {
		dt, wt := toks[3+2*k].val, toks[4+2*k].val
		w, wok := parseWeight(wt)
		if !wok {
			p.errorf(wt, "route: weight must be an integer from 0 to 1000000")
			ok = false
		}
		di, known := p.deviceIndex(dt)
		if !known {
			p.pendTarget = append(p.pendTarget, pending{name: dt, idx: ridx, slot: int32(k), line: p.line})
			tg[k] = Target{Device: -1, Weight: w}
			continue
		}
		if p.stamp[di] == p.gen {
			p.errorf(dt, "route: device listed twice in this route")
			ok = false
		}
		p.spelling(di, dt)
		p.stamp[di] = p.gen
		tg[k] = Target{Device: di, Weight: w}
	}
	if !groupKnown {
		i := ridx
		if !ok {
			i = -1
		}
		p.pendRouteGroup = append(p.pendRouteGroup, pending{name: group, idx: i, line: p.line})
	}
	if !ok {
		for i := pendLen; i < len(p.pendTarget); i++ {
			p.pendTarget[i].idx = -1
		}
		if cap(p.targets) == arenaCap {
			p.targets = p.targets[:arenaLen]
		}
		return
	}
	r.Group, r.Number, r.Targets, r.Line = group, number, tg, p.line
	if len(f.Routes) == cap(f.Routes) {
		p.growRoutes(toks[0].start)
	}
	f.Routes = append(f.Routes, r)
}

// spelling remembers name, by which a route names device di, when it is
// written shorter than the device's name and any shorter spelling seen.
func (p *parser) spelling(di int32, name string) {
	d := &p.f.Devices[di]
	if name == d.Name {
		return
	}
	best := d.Name
	if sp := &p.f.devSpan[di]; sp.short != "" {
		best = sp.short
	}
	if quotedLen(name) < quotedLen(best) {
		p.f.devSpan[di].short = name
	}
}

// resolve checks the names used before their definition.
func (p *parser) resolve() {
	f := p.f
	for _, pd := range p.pendDevGroup {
		p.line = pd.line
		gi, ok := f.groupIdx[pd.name]
		if !ok {
			p.errorf(pd.name, "device: undefined group")
			continue
		}
		if pd.idx >= 0 {
			f.Devices[pd.idx].Group = f.Groups[gi].Name
		}
	}
	for _, pd := range p.pendRouteGroup {
		p.line = pd.line
		if gi, ok := f.groupIdx[pd.name]; !ok {
			p.errorf(pd.name, "route: undefined group")
		} else if pd.idx >= 0 {
			f.Routes[pd.idx].Group = f.Groups[gi].Name
		}
	}
	var touched []int32
	for _, pd := range p.pendTarget {
		p.line = pd.line
		di, ok := p.deviceIndex(pd.name)
		if !ok {
			if !p.badDev[DeviceKey(pd.name)] { // else its line's error says it
				p.errorf(pd.name, "route: undefined device")
			}
			continue
		}
		if pd.idx >= 0 {
			p.spelling(di, pd.name)
			f.Routes[pd.idx].Targets[pd.slot].Device = di
			if len(touched) == 0 || touched[len(touched)-1] != pd.idx {
				touched = append(touched, pd.idx)
			}
		}
	}
	// a forward reference may repeat a device of its route
	for _, ri := range touched {
		r := &f.Routes[ri]
		p.gen++
		p.line = r.Line
		for _, t := range r.Targets {
			if t.Device < 0 {
				continue
			}
			if p.stamp[t.Device] == p.gen {
				p.errorf(f.Devices[t.Device].Name, "route: device listed twice in this route")
				break
			}
			p.stamp[t.Device] = p.gen
		}
	}
}
