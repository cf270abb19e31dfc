package enrollclient

import (
	"strings"
	"testing"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
)

// The client refuses, before making a key, every device name the
// clearinghouse's CA would refuse to certify (status 7 after the key was
// made and the request sent), and accepts those it certifies, except a
// trailing dot and a bracketed address, which the client does not take.
func TestCheckDeviceNameAgreesWithTheCA(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"gw1.example.com", true},
		{"GW1.Example.COM", true},
		{"device4.com", true},
		{"localhost", true},
		{"192.0.2.10", true},
		{"2001:db8::1", true},
		{"::ffff:192.0.2.10", true},
		{"x-1.example", true},
		{strings.Repeat("a", 60) + ".com", true},
		{"gw_1.example.com", false},
		{"-gw.example.com", false},
		{"gw-.example.com", false},
		{"gw..example.com", false},
		{"gw one", false},
		{"gw.123", false},
		{"127.1", false},
		{strings.Repeat("a", 61) + ".com", false},
		{"ex\u00e4mple.com", false},
		{"", false},
	} {
		err := checkDeviceName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("checkDeviceName(%q) = %v, want ok %v", tc.name, err, tc.ok)
		}
		if caOK := ca.CheckDeviceName(tc.name) == nil; caOK != tc.ok {
			t.Errorf("the CA disagrees on %q: certifies %v", tc.name, caOK)
		}
	}
	for _, name := range []string{"gw.example.com.", "[192.0.2.10]"} {
		if checkDeviceName(name) == nil || ca.CheckDeviceName(name) != nil {
			t.Errorf("%q: the client should refuse what the CA takes in another spelling", name)
		}
	}
}
