package caddyenroll

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestClientVerifierCaddyfile(t *testing.T) {
	for _, c := range []struct {
		in     string
		usable bool
		err    string
	}{
		{"enroll", false, ""},
		{"enroll usable", true, ""},
		{"enroll usable usable", false, "usable given twice"},
		{"enroll revoked", false, `unknown argument "revoked"`},
		{"enroll {\n\tusable\n}", false, "takes no block"},
	} {
		var v ClientVerifier
		err := v.UnmarshalCaddyfile(caddyfile.NewTestDispenser(c.in))
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%q: %v", c.in, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%q: %v, want an error with %q", c.in, err, c.err)
		case c.err == "" && v.Usable != c.usable:
			t.Errorf("%q: usable %v", c.in, v.Usable)
		}
	}
}
