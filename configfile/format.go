package configfile

import "strconv"

// Format renders f in canonical form: license lines (in order), crypto, the
// four flags (always written), groups, devices and routes, one item per
// line, single spaces, names quoted only when needed, LF line ends and no
// comments. Route targets name each device by the shortest spelling the
// parsed source used for it (its device line's, or a route's with the
// same DeviceKey), so a route line is no longer than it was and still fits
// the line limit. Parse(Format(f)) is Equal to f for any File that Parse
// returned, before or after edits.
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
	for _, l := range f.Licenses {
		b = append(b, "license "...)
		b = append(b, quoteIn(l, '"')...)
		b = append(b, '\n')
	}
	if f.HasCrypto {
		b = append(b, "crypto "...)
		b = append(b, quoteIn(f.Crypto, '"')...)
		b = append(b, '\n')
	}
	for k := range numFlags {
		b = append(b, flagNames[k]...)
		b = append(b, ' ')
		b = append(b, onOff(*f.flagPtr(k))...)
		b = append(b, '\n')
	}
	for i := range f.Groups {
		b = append(b, "group "...)
		b = appendQuoted(b, f.Groups[i].Name)
		b = append(b, '\n')
	}
	for i := range f.Devices {
		b = appendDeviceLine(b, &f.Devices[i])
		b = append(b, '\n')
	}
	for i := range f.Routes {
		r := &f.Routes[i]
		b = append(b, "route "...)
		b = appendQuoted(b, r.Group)
		b = append(b, ' ')
		b = appendQuoted(b, r.Number)
		for _, t := range r.Targets {
			b = append(b, ' ')
			if t.Device >= 0 && int(t.Device) < len(quoted) {
				b = append(b, quoted[t.Device]...)
			} else {
				b = append(b, `""`...)
			}
			b = append(b, ' ')
			b = strconv.AppendUint(b, uint64(t.Weight), 10)
		}
		b = append(b, '\n')
	}
	return b
}
