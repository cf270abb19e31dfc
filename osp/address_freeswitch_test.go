package osp

import (
	"strings"
	"testing"
)

// fswHost is a valid host name of n bytes: labels of 63 letters at most,
// separated by dots.
func fswHost(n int) string {
	b := []byte(strings.Repeat("a", n))
	for i := 63; i < n-1; i += 64 {
		b[i] = '.'
	}
	return string(b)
}

// Every signal address written fits the 256-byte buffer (255 bytes and
// the NUL) into which Asterisk's res_osp, the OpenSIPS/Kamailio osp
// modules and FreeSWITCH 1.0's mod_osp have the toolkit copy a
// destination; the toolkit refuses to copy a longer one, failing the
// lookup (and FreeSWITCH 1.0 then drops every destination of the answer).
// Host names of 251 to 253 bytes are valid, and with a port they were
// written (up to the toolkit's own 261).
func TestSignalAddressFitsGatewayBuffers(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{fswHost(250) + ":5060", true},  // 255 bytes
		{fswHost(253), true},            // no port: 253
		{fswHost(251) + ":5060", false}, // 256
		{fswHost(253) + ":5060", false}, // 258
		{fswHost(253) + ":65535", false},
		{"[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535", true},
	} {
		if !validHostName(strings.Split(tc.in, ":")[0]) && !strings.HasPrefix(tc.in, "[") {
			t.Fatalf("%d-byte test host is not a valid host name", len(tc.in))
		}
		got, err := NormalizeSignalAddress(tc.in)
		if tc.ok != (err == nil) {
			t.Errorf("%d bytes: %q, %v; want ok %v", len(tc.in), got, err, tc.ok)
		}
		if err == nil && len(got)+1 > 256 {
			t.Errorf("%d bytes: wrote %d bytes, more than a 256-byte buffer takes", len(tc.in), len(got))
		}
	}
}
