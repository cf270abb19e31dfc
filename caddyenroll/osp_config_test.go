package caddyenroll

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/certmagic"
	"github.com/smallstep/pkcs7"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/osp"
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

// `tokens ca_signed` is a token form of its own: accepted by Validate and
// the Caddyfile, other spellings refused naming the three forms.
func TestOSPTokensCASignedSetting(t *testing.T) {
	for tokens, want := range map[string]string{TokensSigned: "", TokensCASigned: "", TokensUnsigned: "",
		"casigned": `tokens must be "signed", "ca_signed" or "unsigned", not "casigned"`} {
		h := &OSPHandler{Tokens: tokens, Profile: profileModern, TokenValidity: caddy.Duration(time.Minute)}
		wantErr(t, h.Validate(), want)
	}
	d := caddyfile.NewTestDispenser("osp {\n\ttokens ca_signed\n}")
	mh, err := parseOSPDirective(httpcaddyfile.Helper{Dispenser: d})
	if err != nil {
		t.Fatal(err)
	}
	if h := mh.(*OSPHandler); h.Tokens != TokensCASigned {
		t.Fatalf("tokens %q, want %q", h.Tokens, TokensCASigned)
	}
}

// A ca_signed site signs its tokens with its CA's own key, embedding no
// certificate; its reauthorizations take tokens of both signed forms of
// its CA (a reload switching forms leaves calls in progress with the
// other's), never those of another CA; a CA with an intermediate signs no
// tokens of this form either.
func TestOSPCASignedTokens(t *testing.T) {
	const conf = "group \"\"\ndevice gw1.example \"\" enabled enrolled\ndevice x.example \"\" enabled enrolled\nroute \"\" '1405' x.example 1\n"
	h := reauthHandlerAt(t, conf, map[string]string{"x.example": "192.0.2.50:5060"}, "gw1.example")
	const gw1 = "192.0.2.1:5060"
	c := h.app.cas[profileModern]
	issue := func(tokens string) (uint64, []byte) {
		t.Helper()
		h.Tokens = tokens
		rsp := authorizeCall(t, h, gw1)
		if !rsp.Status.OK() || len(rsp.Destinations) != 1 {
			t.Fatalf("tokens %s: authorization %v %+v", tokens, rsp.Status, rsp.Destinations)
		}
		return rsp.TransactionID, rsp.Destinations[0].Token
	}
	reauth := func(tokens string, tx uint64, token []byte) int {
		t.Helper()
		h.Tokens = tokens
		rr := reauthorize(t, h, tx, token, gw1)
		return rr.Status.Code
	}

	caTx, caTok := issue(TokensCASigned)
	p7, err := pkcs7.Parse(caTok)
	if err != nil {
		t.Fatal(err)
	}
	if len(p7.Certificates) != 0 || len(caTok) > 1024 {
		t.Fatalf("ca_signed token of %d bytes with %d certificates, want at most 1024 and none", len(caTok), len(p7.Certificates))
	}
	call := osp.Call{Calling: "1404", Called: "1405", CallID: []byte("call-1")}
	if _, err := (&osp.Verifier{CASigners: []*x509.Certificate{c.Issuer()}}).Verify(caTok, call); err != nil {
		t.Fatalf("ca_signed token does not verify with the CA as signer: %v", err)
	}
	sTx, sTok := issue(TokensSigned)
	for _, tc := range []struct {
		name, tokens string
		tx           uint64
		token        []byte
	}{
		{"ca_signed token, ca_signed site", TokensCASigned, caTx, caTok},
		{"ca_signed token, signed site", TokensSigned, caTx, caTok},
		{"signed token, ca_signed site", TokensCASigned, sTx, sTok},
	} {
		if code := reauth(tc.tokens, tc.tx, tc.token); code != 200 {
			t.Errorf("%s: reauthorization status %d, want 200", tc.name, code)
		}
	}

	// another CA: its own ca_signed tokens pass, ours no longer
	other, _, err := ca.Open(context.Background(), localLocks{&certmagic.FileStorage{Path: t.TempDir()}}, ca.Config{Name: "modern"}, "")
	if err != nil {
		t.Fatal(err)
	}
	h.app.cas[profileModern] = other
	if code := reauth(TokensCASigned, caTx, caTok); code != 401 {
		t.Errorf("another CA's ca_signed token: reauthorization status %d, want 401", code)
	}

	// a CA with an intermediate
	inter, _, err := ca.Open(context.Background(), localLocks{&certmagic.FileStorage{Path: t.TempDir()}}, ca.Config{Name: "modern", Intermediate: true}, "")
	if err != nil {
		t.Fatal(err)
	}
	h.app.cas[profileModern] = inter
	if _, err := h.app.caTokenSigner(profileModern); !errors.Is(err, errSignedTokensIntermediate) {
		t.Errorf("ca_signed tokens of a CA with an intermediate: %v", err)
	}
}
