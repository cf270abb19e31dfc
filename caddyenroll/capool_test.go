package caddyenroll

import (
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// A profile other than modern and legacy is refused naming the field, from
// JSON (Provision, before the app is looked up) as from the Caddyfile.
func TestTrustPoolProfiles(t *testing.T) {
	for _, c := range []struct {
		name     string
		profiles []string
		err      string
	}{
		{"capitalized", []string{"Modern"}, `profiles: unknown CA profile "Modern" (want "modern" or "legacy")`},
		{"one of two", []string{"legacy", "seed"}, `profiles: unknown CA profile "seed"`},
		{"empty", []string{""}, `profiles: unknown CA profile ""`},
	} {
		t.Run("json "+c.name, func(t *testing.T) {
			p := &TrustPool{Profiles: c.profiles}
			wantErr(t, p.Provision(caddy.Context{}), c.err)
		})
	}
	for _, c := range []struct{ in, err string }{
		{"enroll modern legacy", ""},
		{"enroll Modern", `profiles: unknown CA profile "Modern"`},
		{"enroll {\n\tprofiles legacy seed\n}", `unknown CA profile "seed" (want "modern" or "legacy"), at Testfile:2`},
	} {
		var p TrustPool
		wantErr(t, p.UnmarshalCaddyfile(caddyfile.NewTestDispenser(c.in)), c.err)
	}
}
