package main

import (
	"flag"
	"io"
	"strings"
	"testing"
)

// TestLoopbackGuard: every address the probe dials, fetches or binds is
// refused unless it is a literal loopback address.
func TestLoopbackGuard(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string // "" when accepted
	}{
		{"defaults", nil, ""},
		{"ipv6 loopback has one address, none left to measure from", []string{"-dial", "[::1]:18443", "-src", "::1", "-addrs", "1", "-measure-src", "::1", "-metrics", "http://[::1]:12019/metrics"}, "among the flood's sources"},
		{"dial v4-mapped loopback", []string{"-dial", "[::ffff:127.0.0.1]:18443"}, ""},
		{"dial 127.255.255.254", []string{"-dial", "127.255.255.254:18443"}, ""},
		{"dial public address", []string{"-dial", "192.0.2.1:18443"}, "-dial: 192.0.2.1 is not a loopback address"},
		{"dial unspecified", []string{"-dial", "0.0.0.0:18443"}, "not a loopback address"},
		{"dial name", []string{"-dial", "localhost:18443"}, `-dial: "localhost" is not a literal IP address`},
		{"dial v4-mapped public", []string{"-dial", "[::ffff:192.0.2.1]:18443"}, "not a loopback address"},
		{"dial zoned", []string{"-dial", "[::1%lo]:18443"}, "not a loopback address"},
		{"dial no port", []string{"-dial", "127.0.0.1"}, "-dial"},
		{"dial port 0", []string{"-dial", "127.0.0.1:0"}, "port 0"},
		{"metrics public", []string{"-metrics", "http://10.0.0.1:12019/metrics"}, "-metrics: 10.0.0.1 is not a loopback address"},
		{"metrics name", []string{"-metrics", "http://example.com:12019/metrics"}, "not a literal IP address"},
		{"metrics https", []string{"-metrics", "https://127.0.0.1:12019/metrics"}, "scheme must be http"},
		{"metrics off", []string{"-metrics", ""}, ""},
		{"reload without metrics", []string{"-metrics", "", "-reload-at", "1s"}, "-reload-at needs -metrics"},
		{"source public", []string{"-src", "10.1.2.3", "-addrs", "1"}, "-src: 10.1.2.3 is not a loopback address"},
		{"sources leave 127/8", []string{"-src", "127.255.255.250", "-addrs", "10"}, "leave the loopback range (the last loopback is 127.255.255.255)"},
		{"sources up to the last loopback", []string{"-src", "127.255.255.250", "-addrs", "6"}, ""},
		{"no sources", []string{"-addrs", "0"}, "at least 1 source address"},
		{"ipv4 sources to ipv6 dial", []string{"-dial", "[::1]:18443", "-measure-src", "::1"}, "both IPv4 or both IPv6"},
		{"measuring source public", []string{"-measure-src", "198.51.100.7"}, "-measure-src: 198.51.100.7 is not a loopback address"},
		{"measuring source among the flood's", []string{"-measure-src", "127.0.0.9"}, "among the flood's sources"},
		{"url host is only the server name", []string{"-url", "https://ch.example.com:18443/"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("floodprobe", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			o, err := parseFlags(fs, append([]string{"-root", "root.crt"}, tt.args...))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if !o.dial.Addr().IsLoopback() || !o.measureSrc.IsLoopback() {
					t.Fatalf("accepted non-loopback dial %v or measuring source %v", o.dial, o.measureSrc)
				}
				for _, a := range o.sources {
					if !a.IsLoopback() {
						t.Fatalf("accepted non-loopback source %v", a)
					}
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
