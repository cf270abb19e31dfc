package caddyenroll

import (
	"strings"
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
	"github.com/clearinghouse-dev/caddy-clearinghouse/osp"
)

// A call is extended only while both its ends may take part in calls: a
// revocation of the destination's current certificate since the call was
// authorized ends it (404: the route leads to no usable device), as one
// of the source's does (401), as a disabled device does. (The destination's
// revocation was checked by the authorization only.)
func TestReauthorizationRefusedOnceAnEndIsRevoked(t *testing.T) {
	names := []string{"gw1.example", "gw2.example", "x.example"}
	h := reauthHandler(t, strings.Replace(reauthSourceConf, "%s", "enabled", 1), names...)
	from := sourceAddrs(names)
	rsp := authorizeCall(t, h, from["gw1.example"])
	if !rsp.Status.OK() || len(rsp.Destinations) != 1 || rsp.Destinations[0].NetworkID != "x.example" {
		t.Fatalf("authorization: %v %+v, want x.example", rsp.Status, rsp.Destinations)
	}
	for _, c := range []struct {
		revoked string // whose current certificate
		code    int
	}{
		{"", 200},
		{"x.example", 404},
		{"gw1.example", 401},
		{"gw2.example", 200}, // not part of the call
	} {
		h.app.authz.mu.Lock()
		h.app.authz.current = map[string]bool{configfile.DeviceKey(c.revoked): c.revoked != ""}
		h.app.authz.mu.Unlock()
		rr := reauthorize(t, h, rsp.TransactionID, rsp.Destinations[0].Token, from["gw1.example"])
		if rr.Status.Code != c.code {
			t.Errorf("reauthorization with %q revoked: status %v, want %d", c.revoked, rr.Status, c.code)
		}
	}
}

// A token whose signalling address no device has any more (the operator
// moved the destination with device_address since the call was
// authorized) names no destination to extend the call to: 489, the
// token's destination is invalid, not 404 as if the route had changed.
func TestReauthorizationToAnAddressNoDeviceHas(t *testing.T) {
	conf, h, rsp := callToX(t)
	for _, c := range []struct {
		addr string // x.example's now
		code int
	}{
		{"192.0.2.50:5060", 200},
		{"192.0.2.51:5060", 489},
	} {
		h.app.DeviceAddresses = map[string]string{"x.example": c.addr}
		f, err := configfile.Parse("t.conf", []byte(conf))
		if err != nil {
			t.Fatal(err)
		}
		if err := h.app.rebuildRoutes(f); err != nil {
			t.Fatal(err)
		}
		rr := reauthorize(t, h, rsp.TransactionID, rsp.Destinations[0].Token, callAuthorizedFrom)
		if rr.Status.Code != c.code {
			t.Errorf("reauthorization with x.example at %s: status %v, want %d", c.addr, rr.Status, c.code)
		}
	}
}

// A client that names the destination in its reauthorization must name
// the token's (the toolkit names none): another address is refused with
// 489, never answered with a token for the token's destination.
func TestReauthorizationNamingAnotherDestination(t *testing.T) {
	_, h, rsp := callToX(t)
	for _, c := range []struct {
		named string
		code  int
	}{
		{"", 200},
		{"192.0.2.50:5060", 200},
		{"192.0.2.51:5060", 489},
	} {
		re := &osp.ReauthorizationRequest{MessageID: "3", ComponentID: "4", Timestamp: time.Now().UTC(), Role: "source",
			CallID: []byte("call-1"), SourceInfo: []osp.Info{{Type: "e164", Value: "1404"}},
			DestinationInfo: []osp.Info{{Type: "e164", Value: "1405"}}, TransactionID: rsp.TransactionID,
			Tokens: [][]byte{rsp.Destinations[0].Token}}
		if c.named != "" {
			re.DestinationAlternate = []osp.Info{{Type: osp.TypeTransport, Value: c.named}}
		}
		body, err := re.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		rr := reauthAnswer(t, h, body, callAuthorizedFrom)
		if rr.Status.Code != c.code {
			t.Errorf("reauthorization naming %q: status %v, want %d", c.named, rr.Status, c.code)
		}
	}
}

// callAuthorizedFrom is where callToX's gw1.example asks from.
const callAuthorizedFrom = "192.0.2.1:5060"

// callToX is a handler on conf whose gw1.example (at callAuthorizedFrom)
// was authorized a call to x.example (at 192.0.2.50:5060), and the answer.
func callToX(t *testing.T) (conf string, h *OSPHandler, rsp *osp.AuthorisationResponse) {
	t.Helper()
	conf = strings.Replace(reauthSourceConf, "%s", "enabled", 1)
	h = reauthHandlerAt(t, conf, map[string]string{"x.example": "192.0.2.50:5060"}, "gw1.example")
	rsp = authorizeCall(t, h, callAuthorizedFrom)
	if !rsp.Status.OK() || len(rsp.Destinations) != 1 || rsp.Destinations[0].NetworkID != "x.example" {
		t.Fatalf("authorization: %v %+v, want x.example", rsp.Status, rsp.Destinations)
	}
	return conf, h, rsp
}
