package osp

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// MaxSignalAddress is the longest signal address a gateway reads back: the
// toolkit stores 261 bytes (OSPC_SIZE_SIGNALADDR 262 with the NUL,
// OSPPDestSetAddr copies a longer one without terminator), but Asterisk's
// res_osp, the OpenSIPS/Kamailio osp modules and FreeSWITCH 1.0's mod_osp
// ask for a destination with a 256-byte buffer, and
// OSPPTransactionGetFirstDestination/GetNextDestination refuse a longer
// one (OSPC_ERR_TRAN_NOT_ENOUGH_SPACE_FOR_COPY): the lookup fails, and
// that mod_osp then drops every destination of the answer. A host name of
// 251 to 253 bytes with a port is therefore never written.
const MaxSignalAddress = 255

// MaxNumber is the longest calling or called number the toolkit stores
// (OSPC_SIZE_E164NUM 132 with the NUL; OSPPDestSetNumber and
// OSPPTokenInfoSetSourceNumber copy without terminator beyond it).
const MaxNumber = 131

// NormalizeSignalAddress returns a signal address in the form the toolkit
// writes and documents ("[172.16.1.2]:112", "gateway1.carrier.com"): an IP
// address in square brackets, a host name in lower case, then ":port" when
// there is one. It accepts "1.2.3.4:5060", "[1.2.3.4]:5060", "[::1]:5060",
// "::1", "host:5060", "host", with or without port.
func NormalizeSignalAddress(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty signal address")
	}
	if len(s) > MaxSignalAddress {
		return "", fmt.Errorf("signal address longer than %d bytes", MaxSignalAddress)
	}
	host, port, err := splitSignalAddress(s)
	if err != nil {
		return "", err
	}
	var buf [64]byte // the result is built here and copied once
	out := buf[:0]
	if ip, err := parseIP(host); err == nil {
		if ip.Zone() != "" {
			return "", fmt.Errorf("signal address %q: zoned address", s)
		}
		out = append(out, '[')
		out = ip.Unmap().AppendTo(out)
		out = append(out, ']')
	} else {
		if !validHostName(host) {
			return "", fmt.Errorf("signal address %q: %q is neither an IP address nor a host name", s, host)
		}
		name := strings.TrimSuffix(host, ".")
		for i := 0; i < len(name); i++ {
			c := name[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A' // validHostName allows ASCII only
			}
			out = append(out, c)
		}
	}
	if port != 0 {
		out = append(out, ':')
		out = strconv.AppendUint(out, port, 10)
	}
	if len(out) > MaxSignalAddress {
		return "", fmt.Errorf("signal address longer than %d bytes", MaxSignalAddress)
	}
	return string(out), nil
}

// splitSignalAddress splits a signal address into its host (an IP
// address without brackets, or a name, not yet checked) and its port (0
// when there is none).
func splitSignalAddress(s string) (string, uint64, error) {
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", 0, fmt.Errorf("signal address %q: missing ]", s)
		}
		host, port = s[1:end], s[end+1:]
		if port != "" {
			if !strings.HasPrefix(port, ":") {
				return "", 0, fmt.Errorf("signal address %q: junk after ]", s)
			}
			port = port[1:]
			if port == "" {
				return "", 0, fmt.Errorf("signal address %q: empty port", s)
			}
		}
		if _, err := netip.ParseAddr(host); err != nil {
			return "", 0, fmt.Errorf("signal address %q: %q is not an IP address", s, host)
		}
	} else if _, err := parseIP(s); err == nil {
		host = s // bare IPv6 (or IPv4) address without port
	} else if i := strings.LastIndexByte(s, ':'); i >= 0 {
		host, port = s[:i], s[i+1:]
		if port == "" {
			return "", 0, fmt.Errorf("signal address %q: empty port", s)
		}
	}
	if port == "" {
		return host, 0, nil
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 || strings.HasPrefix(port, "+") {
		return "", 0, fmt.Errorf("signal address %q: bad port %q", s, port)
	}
	return host, p, nil
}

// SameSignalAddress reports whether two signal addresses, both valid, name
// the same destination once normalized (host names in any case).
func SameSignalAddress(a, b string) bool {
	na, err := NormalizeSignalAddress(a)
	if err != nil {
		return false
	}
	nb, err := NormalizeSignalAddress(b)
	return err == nil && strings.EqualFold(na, nb)
}

// errNotIP is parseIP's error for what cannot be an IP address.
var errNotIP = errors.New("not an IP address")

// parseIP is netip.ParseAddr without its (allocated) error for strings
// that are certainly not addresses: an IPv6 address has two colons or
// more, an IPv4 address only digits and dots.
func parseIP(s string) (netip.Addr, error) {
	switch strings.Count(s, ":") {
	case 0:
		if strings.Trim(s, "0123456789.") != "" {
			return netip.Addr{}, errNotIP
		}
	case 1:
		return netip.Addr{}, errNotIP
	}
	return netip.ParseAddr(s)
}

// validHostName accepts DNS names of letters, digits, '-' and '_' labels.
func validHostName(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// ValidNetworkID reports whether a device name can be a destination's
// NetworkID (DestinationAlternate type="network") in an answer: the
// toolkit stores it like a number (validNumber).
func ValidNetworkID(name string) error { return validNumber(name) }

// validNumber checks a calling or called number before it is echoed in an
// answer or a token: not empty, at most MaxNumber bytes, no control
// characters.
func validNumber(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	if len(s) > MaxNumber {
		return fmt.Errorf("longer than %d bytes", MaxNumber)
	}
	if i := controlAt(s); i >= 0 {
		return fmt.Errorf("control character 0x%02x at byte %d", s[i], i)
	}
	return nil
}

// controlAt is the index of the first control character (C0 or DEL) of
// s, -1 if it has none: values the toolkit copies into C strings and
// gateways into SIP headers hold none.
func controlAt(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return i
		}
	}
	return -1
}
