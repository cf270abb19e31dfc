package caddyenroll

import (
	"testing"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
	"github.com/clearinghouse-dev/caddy-clearinghouse/osp"
)

// Who may ask for a call: nobody while routing is disabled (503), and only
// a device enabled and enrolled in the file whose current certificate is
// not revoked (else 401).
func TestOSPAuthorizationAdmission(t *testing.T) {
	f := newOSPFixture(t)
	auth := authRequestBody(t)
	const gw1, gw2 = "192.0.2.1:5060", "192.0.2.2:5060"
	for _, c := range []struct {
		name    string
		flags   flags
		revoked bool // gw1's current certificate
		from    string
		want    int
	}{
		{"routing disabled", flags{}, false, gw1, 503},
		{"admitted", flags{Routing: true}, false, gw1, 404}, // no route in the file
		{"current certificate revoked", flags{Routing: true}, true, gw1, 401},
		{"device disabled", flags{Routing: true}, false, gw2, 401},
	} {
		f.setFlags(c.flags)
		f.a.authz.mu.Lock()
		f.a.authz.current = map[string]bool{configfile.DeviceKey("gw1.example"): c.revoked}
		f.a.authz.mu.Unlock()
		code, body := f.post(auth, c.from)
		if code != 200 {
			t.Fatalf("%s: HTTP %d %s", c.name, code, body)
		}
		rsp, err := osp.ParseAuthorisationResponse([]byte(body))
		if err != nil {
			t.Fatalf("%s: %v: %s", c.name, err, body)
		}
		if rsp.Status.Code != c.want {
			t.Errorf("%s: status %v, want %d", c.name, rsp.Status, c.want)
		}
	}
}
