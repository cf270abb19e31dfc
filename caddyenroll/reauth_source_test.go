package caddyenroll

import (
	"bytes"
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
	"github.com/clearinghouse-dev/caddy-clearinghouse/osp"
)

// reauthSourceConf: gw1.example calls 1405 and gets x.example; gw2.example
// shares gw1's group (its route to 1405 leads to x.example too), and so
// does t.example's group, carrier; x.example is the terminating device,
// which receives the token with the call.
const reauthSourceConf = `group acme
group carrier
device gw1.example acme %s enrolled
device gw2.example acme enabled enrolled
device x.example carrier enabled enrolled
device t.example carrier enabled enrolled
route acme '1405' x.example 1
route carrier '1405' x.example 1
`

// reauthHandler is an OSP handler (unsigned tokens, routing enabled) over
// the file text, with a maker of transaction ids and the devices named by
// source address: 192.0.2.<i+1> is names[i].
func reauthHandler(t *testing.T, text string, names ...string) *OSPHandler {
	t.Helper()
	return reauthHandlerAt(t, text, nil, names...)
}

// reauthHandlerAt is reauthHandler with the devices' signalling addresses
// (device_address) addrs.
func reauthHandlerAt(t *testing.T, text string, addrs map[string]string, names ...string) *OSPHandler {
	t.Helper()
	cs, _, _ := testConfigState(t, text)
	st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	a := &App{storage: st, state: newStateStore(st, time.Hour), cfg: cs, log: zap.NewNop(),
		authz: &authz{revocations: new(revocations)}, DeviceAddresses: addrs}
	c, _, err := ca.Open(context.Background(), st, ca.Config{Name: "modern"}, "")
	if err != nil {
		t.Fatal(err)
	}
	a.cas = map[string]*ca.CA{profileModern: c}
	cs.read(func(f *configfile.File) { err = a.rebuildRoutes(f) })
	if err != nil {
		t.Fatal(err)
	}
	initMetrics()
	cs.flagsNow.Store(&flags{Routing: true, CDRs: true})
	ids, err := osp.NewTransactionIDs(bytes.Repeat([]byte{3}, osp.TransactionKeySize))
	if err != nil {
		t.Fatal(err)
	}
	h := &OSPHandler{Tokens: TokensUnsigned, Profile: profileModern, TokenValidity: 60e9, app: a, log: zap.NewNop(),
		bySource: map[netip.Addr]string{}, txIDs: ids}
	for i, n := range names {
		h.bySource[netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)})] = n
	}
	return h
}

// sourceAddrs is where reauthHandler's devices ask from: 192.0.2.<i+1>:5060
// for names[i].
func sourceAddrs(names []string) map[string]string {
	from := map[string]string{}
	for i, n := range names {
		from[n] = netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}).String() + ":5060"
	}
	return from
}

// authorizeCall posts the authorization of a call 1404 → 1405 (call id
// call-1, one destination) from the address from, and parses the answer.
func authorizeCall(t *testing.T, h *OSPHandler, from string) *osp.AuthorisationResponse {
	t.Helper()
	req := &osp.AuthorizationRequest{MessageID: "1", ComponentID: "2", Timestamp: time.Now().UTC(),
		CallIDs: [][]byte{[]byte("call-1")}, SourceInfo: []osp.Info{{Type: "e164", Value: "1404"}},
		DestinationInfo: []osp.Info{{Type: "e164", Value: "1405"}}, MaxDestinations: 1}
	body, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	rsp, err := osp.ParseAuthorisationResponse(postOSP(t, h, body, from))
	if err != nil {
		t.Fatal(err)
	}
	return rsp
}

// reauthOf is the reauthorization request of a call of gw1.example (the
// toolkit's: role source, the first token, no destination named).
func reauthOf(t *testing.T, tx uint64, token []byte) []byte {
	t.Helper()
	re := &osp.ReauthorizationRequest{MessageID: "3", ComponentID: "4", Timestamp: time.Now().UTC(), Role: "source",
		CallID: []byte("call-1"), SourceInfo: []osp.Info{{Type: "e164", Value: "1404"}},
		DestinationInfo: []osp.Info{{Type: "e164", Value: "1405"}}, TransactionID: tx, Tokens: [][]byte{token}}
	body, err := re.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// reauthorize posts reauthOf(tx, token) to h from the address from and
// returns the answer.
func reauthorize(t *testing.T, h *OSPHandler, tx uint64, token []byte, from string) *osp.ReauthorizationResponse {
	t.Helper()
	return reauthAnswer(t, h, reauthOf(t, tx, token), from)
}

// reauthAnswer posts the reauthorization request body to h from the
// address from and returns the answer.
func reauthAnswer(t *testing.T, h *OSPHandler, body []byte, from string) *osp.ReauthorizationResponse {
	t.Helper()
	rr, err := osp.ParseReauthorizationResponse(postOSP(t, h, body, from))
	if err != nil {
		t.Fatal(err)
	}
	return rr
}

// A call is extended for its source alone: the token proves that the call
// was authorized, not who asks, and the terminating device receives it
// with the call (a SIP proxy on the way sees it too). Another device
// presenting it — of the source's group, whose route leads to the same
// destination; of another group routing there; the terminating device
// itself — gets 401, and none keeps the call going once the operator
// disabled its source. A transaction id of an earlier version names no
// source: its token is taken as those versions took it (the route of the
// requester leads to the destination), until it is too old to extend.
func TestReauthorizationOnlyByTheCallsSource(t *testing.T) {
	names := []string{"gw1.example", "gw2.example", "x.example", "t.example"}
	h := reauthHandler(t, strings.Replace(reauthSourceConf, "%s", "enabled", 1), names...)
	from := sourceAddrs(names)
	rsp := authorizeCall(t, h, from["gw1.example"])
	if !rsp.Status.OK() || len(rsp.Destinations) != 1 || rsp.Destinations[0].NetworkID != "x.example" {
		t.Fatalf("authorization: %v %+v, want x.example", rsp.Status, rsp.Destinations)
	}
	token := rsp.Destinations[0].Token

	// the token of a call an earlier version authorized: its transaction
	// id names no source
	info, err := osp.ParseTokenInfo(token)
	if err != nil {
		t.Fatal(err)
	}
	legacy := *info
	legacy.TransactionID = h.txIDs.New()
	legacyToken, err := legacy.Encode()
	if err != nil {
		t.Fatal(err)
	}

	reauth := func(who string, tx uint64, token []byte) *osp.ReauthorizationResponse {
		t.Helper()
		rr := reauthorize(t, h, tx, token, from[who])
		return rr
	}
	for _, c := range []struct {
		name, who string
		legacy    bool
		code      int
	}{
		{"by its source", "gw1.example", false, 200},
		{"by another device of the source's group", "gw2.example", false, 401},
		{"by a device of another group routing there", "t.example", false, 401},
		{"by the terminating device", "x.example", false, 401},
		{"of an earlier version, by its source", "gw1.example", true, 200},
		{"of an earlier version, by a device whose route leads there", "gw2.example", true, 200},
		{"of an earlier version, by the terminating device", "x.example", true, 404},
	} {
		tx, tok := rsp.TransactionID, token
		if c.legacy {
			tx, tok = legacy.TransactionID, legacyToken
		}
		rr := reauth(c.who, tx, tok)
		if rr.Status.Code != c.code {
			t.Errorf("reauthorization %s: status %v, want %d", c.name, rr.Status, c.code)
			continue
		}
		if c.code == 200 && (rr.Destination == nil || rr.Destination.NetworkID != "x.example" || rr.TransactionID != tx) {
			t.Errorf("reauthorization %s: %+v, want a token for x.example of transaction %d", c.name, rr.Destination, tx)
		}
	}

	// the operator disables gw1.example: nobody extends its call
	f2, err := configfile.Parse("t.conf", []byte(strings.Replace(reauthSourceConf, "%s", "disabled", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.app.rebuildRoutes(f2); err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"gw1.example", "gw2.example", "t.example"} {
		if rr := reauth(who, rsp.TransactionID, token); rr.Status.Code != 401 {
			t.Errorf("reauthorization by %s of a call of the disabled gw1.example: status %v, want 401", who, rr.Status)
		}
	}
}

// Usage is stored whoever reports it (the record is the device's word, and
// only the source's part in a call is known without storing anything per
// authorization), each record marked with the device whose authorization
// made its transaction, as the file names it: a source reporting its call
// and the destination reporting it name the source, and so does a record
// of a device that was not part of the call, which settlement tells apart
// by that mark (and by the destination the source's record names). A
// transaction of an earlier version names no source, one made up none
// either and is not issued here, and neither is one of a device the file
// no longer has.
func TestUsageNamesTheTransactionsSource(t *testing.T) {
	names := []string{"gw1.example", "gw2.example", "x.example", "t.example"}
	h := reauthHandler(t, strings.Replace(reauthSourceConf, "%s", "enabled", 1), names...)
	from := sourceAddrs(names)
	authorize := func(who string) uint64 {
		t.Helper()
		rsp := authorizeCall(t, h, from[who])
		if !rsp.Status.OK() {
			t.Fatalf("authorization of %s: %+v", who, rsp)
		}
		return rsp.TransactionID
	}
	gw1, byT := authorize("gw1.example"), authorize("t.example")
	legacy := h.txIDs.New() // made without a source, as earlier versions did
	// t.example leaves the file
	f2, err := configfile.Parse("t.conf", []byte(strings.Replace(strings.Replace(reauthSourceConf, "%s", "enabled", 1),
		"device t.example carrier enabled enrolled\n", "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.app.rebuildRoutes(f2); err != nil {
		t.Fatal(err)
	}

	type key struct {
		tx             uint64
		reporter, role string
	}
	cases := []struct {
		name   string
		who    string
		role   string
		tx     uint64
		issued bool
		source string
	}{
		{"the source's", "gw1.example", "source", gw1, true, "gw1.example"},
		{"the destination's", "x.example", "destination", gw1, true, "gw1.example"},
		{"another device's, as source", "gw2.example", "source", gw1, true, "gw1.example"},
		{"another device's, as destination", "gw2.example", "destination", gw1, true, "gw1.example"},
		{"of an earlier version's transaction", "gw1.example", "source", legacy, true, ""},
		{"of a made-up transaction", "gw1.example", "other", gw1 ^ 1, false, ""},
		{"of a device the file no longer has", "x.example", "destination", byT, false, ""},
	}
	for _, c := range cases {
		ind := &osp.UsageIndication{MessageID: "7", Usages: []osp.Usage{{ComponentID: "8", Timestamp: time.Now().UTC(),
			Role: c.role, TransactionID: c.tx, CallID: []byte("call-1"), SourceInfo: []osp.Info{{Type: "e164", Value: "1404"}},
			DestinationInfo: []osp.Info{{Type: "e164", Value: "1405"}}, Duration: time.Second}}}
		body, err := ind.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		cnf, err := osp.ParseUsageConfirmation(postOSP(t, h, body, from[c.who]))
		if err != nil || len(cnf.Confirmations) != 1 || !cnf.Confirmations[0].Status.OK() {
			t.Fatalf("usage %s: %+v %v", c.name, cnf, err)
		}
	}
	list, err := h.app.cdrs(context.Background(), dayRange{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[key]CDR{}
	for _, r := range list {
		got[key{r.TransactionID, r.Reporter, r.Role}] = r
	}
	for _, c := range cases {
		r, ok := got[key{c.tx, c.who, c.role}]
		switch {
		case !ok:
			t.Errorf("usage %s: not stored", c.name)
		case r.TransactionIssued == nil || *r.TransactionIssued != c.issued || r.TransactionSource != c.source:
			t.Errorf("usage %s: transaction issued %v, source %q; want %v, %q", c.name, r.TransactionIssued, r.TransactionSource, c.issued, c.source)
		}
	}
}
