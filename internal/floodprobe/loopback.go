package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
)

// The guard keeps the probe on this machine: it floods on purpose, and the
// project's tests and load tools use loopback only. Hosts must be literal
// loopback addresses (127.0.0.0/8 or ::1), never names, so that no resolver
// or /etc/hosts entry can send the flood elsewhere.

// loopbackAddr returns the literal loopback address s, or an error naming
// the flag it came from.
func loopbackAddr(flagName, s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("-%s: %q is not a literal IP address (loopback only: 127.0.0.0/8 or ::1)", flagName, s)
	}
	if !a.Unmap().IsLoopback() || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("-%s: %s is not a loopback address (loopback only: 127.0.0.0/8 or ::1)", flagName, s)
	}
	return a.Unmap(), nil
}

// loopbackHostPort checks a host:port the probe dials.
func loopbackHostPort(flagName, hp string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("-%s: %q: %w", flagName, hp, err)
	}
	a, err := loopbackAddr(flagName, host)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ap, err := netip.ParseAddrPort(net.JoinHostPort(a.String(), port))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("-%s: %q: %w", flagName, hp, err)
	}
	if ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("-%s: %q: port 0", flagName, hp)
	}
	return ap, nil
}

// loopbackURL checks a plain-HTTP URL the probe fetches (the admin
// endpoint's /metrics, and /config/ and /load for -reload-at).
func loopbackURL(flagName, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("-%s: %w", flagName, err)
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("-%s: %q: scheme must be http (Caddy's admin endpoint)", flagName, raw)
	}
	if u.User != nil {
		return nil, fmt.Errorf("-%s: %q: no credentials in the URL", flagName, raw)
	}
	host := u.Hostname()
	if host == "" {
		return nil, fmt.Errorf("-%s: %q: no host", flagName, raw)
	}
	if _, err := loopbackAddr(flagName, host); err != nil {
		return nil, err
	}
	return u, nil
}

// loopbackSources returns n source addresses counting up from first, all
// loopback and of first's family: the flood's connections come from
// several addresses, as many devices' would.
func loopbackSources(flagName, first string, n int) ([]netip.Addr, error) {
	if n < 1 {
		return nil, fmt.Errorf("-%s: at least 1 source address, not %d", flagName, n)
	}
	a, err := loopbackAddr(flagName, first)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, 0, n)
	for i := 0; i < n; i++ {
		if !a.IsValid() || !a.IsLoopback() {
			return nil, fmt.Errorf("-%s: %d addresses from %s leave the loopback range (the last loopback is %s)", flagName, n, first, out[len(out)-1])
		}
		out = append(out, a)
		a = a.Next()
	}
	return out, nil
}

// sameFamily refuses sources that cannot reach the dialed address (an IPv4
// source never connects to ::1).
func sameFamily(src []netip.Addr, dial netip.AddrPort) error {
	if len(src) > 0 && src[0].Is4() != dial.Addr().Is4() {
		return errors.New("source addresses and -dial must be both IPv4 or both IPv6")
	}
	return nil
}
