package configfile

import (
	"net/netip"
	"strings"
)

// DeviceKey returns the form device names are compared by: two device
// lines whose names have the same key define the same device (an error),
// and File.Device, DeviceIndex and the edit methods find a device by any
// name with its key.
//
//   - An IP address, with or without brackets ("[192.0.2.10]") and with
//     or without one trailing dot, is its canonical text: an IPv4-mapped
//     IPv6 address is the IPv4 address ("::ffff:192.0.2.10" is
//     "192.0.2.10") and an IPv6 address is in RFC 5952 form
//     ("2001:DB8:0::1" is "2001:db8::1"). An address with a zone
//     ("fe80::1%eth0") is not taken for an address.
//   - Any other name is lower-cased (DNS names ignore case) without one
//     trailing dot ("A.Example." is "a.example") and, as the CA reads it
//     (ca.NormalizeDevice), without brackets around it ("[A.Example]" is
//     "a.example"): a certificate for either names the same device.
//
// Spaces around the name are ignored. This is the normal form the CA
// issues certificates for, lower-cased.
func DeviceKey(name string) string {
	d := strings.TrimSpace(name)
	in := d
	if len(in) >= 2 && in[0] == '[' && in[len(in)-1] == ']' {
		in = in[1 : len(in)-1]
	}
	in = strings.TrimSuffix(in, ".")
	if maybeIP(in) {
		if a, err := netip.ParseAddr(in); err == nil && a.Zone() == "" {
			var buf [48]byte
			if b := a.Unmap().AppendTo(buf[:0]); string(b) != in {
				return string(b)
			}
			return in // already canonical: no copy
		}
	}
	if in == "" {
		return strings.ToLower(strings.TrimSuffix(d, ".")) // "[]", ".": no name inside
	}
	return strings.ToLower(in)
}

// maybeIP tells whether s could be an IP address without a zone, to spare
// netip.ParseAddr (and its error) for DNS names: IPv4 is digits and dots,
// IPv6 hex digits, colons and dots with at least one colon.
func maybeIP(s string) bool {
	if s == "" {
		return false
	}
	colon, letter := false, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9', c == '.':
		case c == ':':
			colon = true
		case c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
			letter = true
		default:
			return false
		}
	}
	return colon || !letter
}
