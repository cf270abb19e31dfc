package configfile

import (
	"strconv"
	"unicode/utf8"
)

// Format renders f in canonical form: license lines (in order), crypto, the
// four flags (always written), groups, devices and routes, one item per
// line, single spaces, names quoted only when needed, LF line ends and no
// comments. Route targets name each device by the shortest spelling the
// parsed source used for it (its device line's, or a route's with the
// same DeviceKey), so a route line is no longer than it was and still fits
// the line limit. A line that quoting would make longer than the line
// limit is written with every word that can be unquoted unquoted (as its
// source line had it), license and crypto values included, so that
// Parse(Format(f)) is Equal to f for any File that Parse returned, before
// or after edits.
func Format(f *File) []byte {
	size := 64
	for _, l := range f.Licenses {
		size += len(l) + 12
	}
	size += len(f.Crypto) + 80
	for i := range f.Groups {
		size += len(f.Groups[i].Name) + 10
	}
	// a route names a device by the shortest spelling the source used for
	// it, so that a route line that fit the line limit still fits
	quoted := make([]string, len(f.Devices))
	for i := range f.Devices {
		d := &f.Devices[i]
		quoted[i] = quoteValid(d.Name)
		if i < len(f.devSpan) && f.devSpan[i].short != "" {
			if q := quoteValid(f.devSpan[i].short); len(q) < len(quoted[i]) {
				quoted[i] = q
			}
		}
		size += len(d.Name) + len(d.Group) + 40
	}
	for i := range f.Routes {
		r := &f.Routes[i]
		size += len(r.Group) + len(r.Number) + 12
		for _, t := range r.Targets {
			if int(t.Device) < len(quoted) && t.Device >= 0 {
				size += len(quoted[t.Device]) + 9
			}
		}
	}
	b := make([]byte, 0, size)
	// line renders one line: canonical, or, when that is too long, with
	// every word that can be unquoted unquoted
	maxLen := f.lim().MaxLineLen
	line := func(render func(b []byte, short bool) []byte) {
		start := len(b)
		if b = render(b, false); len(b)-start > maxLen {
			b = render(b[:start], true)
		}
		b = append(b, '\n')
	}
	value := func(b []byte, v string, short bool) []byte {
		if short && lexesBare(v) {
			return append(b, v...)
		}
		return append(b, quoteIn(v, '"')...)
	}
	for _, l := range f.Licenses {
		line(func(b []byte, short bool) []byte {
			return value(append(b, "license "...), l, short)
		})
	}
	if f.HasCrypto {
		line(func(b []byte, short bool) []byte {
			return value(append(b, "crypto "...), f.Crypto, short)
		})
	}
	for k := range numFlags {
		b = append(b, flagNames[k]...)
		b = append(b, ' ')
		b = append(b, onOff(*f.flagPtr(k))...)
		b = append(b, '\n')
	}
	for i := range f.Groups {
		line(func(b []byte, short bool) []byte {
			return appendWord(append(b, "group "...), f.Groups[i].Name, short)
		})
	}
	for i := range f.Devices {
		line(func(b []byte, short bool) []byte {
			if !short {
				return appendDeviceLine(b, &f.Devices[i])
			}
			d := &f.Devices[i]
			b = appendWord(append(b, "device "...), d.Name, true)
			b = appendWord(append(b, ' '), d.Group, true)
			b = append(append(b, ' '), onOff(d.Enabled)...)
			if d.Enrolled {
				b = append(b, " enrolled"...)
			}
			return b
		})
	}
	for i := range f.Routes {
		r := &f.Routes[i]
		line(func(b []byte, short bool) []byte {
			b = appendWord(append(b, "route "...), r.Group, short)
			b = appendWord(append(b, ' '), r.Number, short)
			for _, t := range r.Targets {
				b = append(b, ' ')
				switch {
				case t.Device < 0 || int(t.Device) >= len(quoted):
					b = append(b, `""`...)
				case short:
					b = append(b, shortSpelling(f, int(t.Device))...)
				default:
					b = append(b, quoted[t.Device]...)
				}
				b = append(b, ' ')
				b = strconv.AppendUint(b, uint64(t.Weight), 10)
			}
			return b
		})
	}
	return b
}

// appendWord appends s quoted as the writers do, or, when short is set
// and s can be read unquoted as one word, unquoted.
func appendWord(b []byte, s string, short bool) []byte {
	if short && lexesBare(s) {
		return append(b, s...)
	}
	return appendQuoted(b, s)
}

// shortSpelling is the shortest rendering, quoted or not, of the name of
// device i or of the shorter spelling a route of the source used for it.
func shortSpelling(f *File, i int) string {
	s := string(appendWord(nil, f.Devices[i].Name, true))
	if i < len(f.devSpan) && f.devSpan[i].short != "" {
		if t := string(appendWord(nil, f.devSpan[i].short, true)); len(t) < len(s) {
			s = t
		}
	}
	return s
}

// lexesBare reports whether s, written unquoted, is read back as the one
// word s (see lexLine).
func lexesBare(s string) bool {
	if s == "" || s[0] == '#' {
		return false
	}
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if !bareChar[c] {
				return false
			}
			i++
		} else if n := bareRuneAt(s[i:]); n > 0 {
			i += n
		} else {
			return false
		}
	}
	return true
}
