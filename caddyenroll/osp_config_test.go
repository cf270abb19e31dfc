package caddyenroll

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// source_addresses are matched as addresses, not as strings: two spellings
// of one address (IPv4 and IPv4-mapped, IPv6 in other case or compression)
// would make the device it identifies a random pick of map order, and a
// zone is never matched (the peer's address is taken without one). Both are
// refused, as is an empty device name.
func TestOSPSourceAddressesValidate(t *testing.T) {
	cases := []struct {
		name  string
		addrs map[string]string
		err   string // "" for valid
	}{
		{"distinct", map[string]string{"192.0.2.1": "a", "2001:db8::1": "b", "::ffff:192.0.2.2": "c"}, ""},
		{"not an address", map[string]string{"gw1.example": "a"}, `source_addresses: "gw1.example" is not an IP address`},
		{"IPv4 and IPv4-mapped", map[string]string{"192.0.2.1": "a", "::ffff:192.0.2.1": "b"}, "source_addresses names one address twice: 192.0.2.1 and ::ffff:192.0.2.1"},
		{"IPv6 spellings", map[string]string{"2001:db8::1": "a", "2001:DB8:0::1": "b"}, "source_addresses names one address twice: 2001:DB8:0::1 and 2001:db8::1"},
		{"zone", map[string]string{"fe80::1%eth0": "a"}, `source_addresses: "fe80::1%eth0" has a zone`},
		{"empty device", map[string]string{"192.0.2.1": ""}, "source_addresses 192.0.2.1: empty device name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := &OSPHandler{Tokens: TokensSigned, Profile: profileModern, TokenValidity: caddy.Duration(time.Minute), SourceAddresses: c.addrs}
			err := h.Validate()
			wantErr(t, err, c.err)
		})
	}
}

// The Caddyfile refuses a second spelling of an address with its position.
func TestCaddyfileSourceAddressSpellings(t *testing.T) {
	runCaddyfileCases(t, []caddyfileCase{
		{"IPv4-mapped", parseOSP, "osp {\n\tsource_address 192.0.2.1 a\n\tsource_address ::ffff:192.0.2.1 b\n}", "source_address ::ffff:192.0.2.1 is given twice (as 192.0.2.1), at Testfile:3"},
		{"IPv6 case", parseOSP, "osp {\n\tsource_address 2001:db8::1 a\n\tsource_address 2001:DB8::1 b\n}", "source_address 2001:DB8::1 is given twice (as 2001:db8::1), at Testfile:3"},
		{"not an address", parseOSP, "osp {\n\tsource_address gw1.example a\n}", `source_address: "gw1.example" is not an IP address, at Testfile:2`},
	})
}

// Settings out of range are refused naming the field and the value (a JSON
// config reaches Validate without the Caddyfile's checks).
func TestOSPValidateRanges(t *testing.T) {
	for _, c := range []struct {
		name     string
		validity time.Duration
		max      int
		err      string
	}{
		{"defaults", time.Minute, 0, ""},
		{"longest", 24 * time.Hour, 100, ""},
		{"validity 1ns", 1, 0, "token_validity must be between 1s and 24h0m0s, not 1ns (a number in JSON is nanoseconds"},
		{"validity negative", -time.Minute, 0, "token_validity must be between 1s and 24h0m0s, not -1m0s"},
		{"validity 25h", 25 * time.Hour, 0, "not 25h0m0s"},
		{"negative destinations", time.Minute, -1, "max_destinations must not be negative (0 means the app's), not -1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := &OSPHandler{Tokens: TokensSigned, Profile: profileModern, TokenValidity: caddy.Duration(c.validity), MaxDestinations: c.max}
			wantErr(t, h.Validate(), c.err)
		})
	}
}

// What Validate accepts identifies the device from every spelling of its
// address the connection may carry.
func TestOSPSourceAddressMatches(t *testing.T) {
	cs, _, _ := testConfigState(t, "group \"\"\ndevice gw1.example \"\" enabled enrolled\ndevice gw2.example \"\" enabled enrolled\n")
	h := &OSPHandler{SourceAddresses: map[string]string{"::ffff:192.0.2.1": "gw1.example", "2001:DB8::2": "gw2.example"}}
	by, err := sourceAddresses(h.SourceAddresses)
	if err != nil {
		t.Fatal(err)
	}
	h.app, h.bySource = &App{cfg: cs}, by
	for remote, want := range map[string]string{"192.0.2.1:5060": "gw1.example", "[::ffff:192.0.2.1]:5060": "gw1.example",
		"[2001:db8::2]:5060": "gw2.example", "[2001:db8::2%eth0]:5060": "gw2.example"} {
		r := httptest.NewRequest("POST", "/osp", nil)
		r.RemoteAddr = remote
		if got, why := h.identify(r); got != want {
			t.Errorf("from %s: %q (%s), want %q", remote, got, why, want)
		}
	}
}
