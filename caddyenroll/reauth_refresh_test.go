package caddyenroll

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/certmagic"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
	"github.com/clearinghouse-dev/caddy-clearinghouse/osp"
)

// postOSP sends body to h from remote over plain HTTP and returns the answer.
func postOSP(t *testing.T, h *OSPHandler, body []byte, remote string) []byte {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/osp", bytes.NewReader(body))
	r.RemoteAddr = remote
	w := httptest.NewRecorder()
	if err := h.ServeHTTP(w, r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })); err != nil {
		t.Fatal(err)
	}
	return w.Body.Bytes()
}

// A reauthorization extends a call only to the token's destination, and
// only while that destination is usable. When two devices share one
// signalling address (device_address allows it; TestDevicesAtTokenAddress
// checks they are both found), the token names its device
// (<DestinationAlternate type="network">): a call to a device the operator
// has since disabled ends, it is not extended with a fresh token naming the
// other device at the address.
func TestReauthorizationExtendsOnlyTheTokensDevice(t *testing.T) {
	const conf = `group ""
device gw1.example "" enabled enrolled
device x.example "" %s enrolled
device y.example "" enabled enrolled
route "" '1405' x.example 1 y.example 0
`
	h := reauthHandlerAt(t, strings.Replace(conf, "%s", "enabled", 1),
		map[string]string{"x.example": "192.0.2.50:5060", "y.example": "192.0.2.50:5060"}, "gw1.example")
	const gw1 = "192.0.2.1:5060"

	rsp := authorizeCall(t, h, gw1)
	if !rsp.Status.OK() || len(rsp.Destinations) != 1 || rsp.Destinations[0].NetworkID != "x.example" {
		t.Fatalf("authorization: %v %+v, want x.example", rsp.Status, rsp.Destinations)
	}
	token := rsp.Destinations[0].Token

	// the operator disables x.example: its calls must not be extended
	f2, err := configfile.Parse("t.conf", []byte(strings.Replace(conf, "%s", "disabled", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.app.rebuildRoutes(f2); err != nil {
		t.Fatal(err)
	}
	rr := reauthorize(t, h, rsp.TransactionID, token, gw1)
	if rr.Status.Code != osp.StatusNoRoute.Code {
		got := ""
		if rr.Destination != nil {
			got = rr.Destination.NetworkID + " at " + rr.Destination.SignalAddress
		}
		t.Errorf("the call to the disabled x.example: status %v, want %d (its route leads to no usable device); fresh token for %q", rr.Status, osp.StatusNoRoute.Code, got)
	}
}

// loadFailing is a storage whose Loads of the keys in fail (a set that
// can change) fail.
type loadFailing struct {
	certmagic.Storage
	fail map[string]bool
}

func (s *loadFailing) Load(ctx context.Context, key string) ([]byte, error) {
	if s.fail[key] {
		return nil, errors.New("storage unavailable")
	}
	return s.Storage.Load(ctx, key)
}

// A refresh that cannot read a device record keeps that device as it is
// (noteCurrent counts a device whose record cannot be read as revoked), the
// full scan too: a device whose current certificate is revoked, flagged at
// once by the local revocation, must not be dropped from the revoked
// devices (offered as a destination, authorized when identified by source
// address) because its record could not be read. The full scan runs at
// start and again at every refresh until one reads every record.
func TestFullRefreshKeepsUnreadRevokedDevice(t *testing.T) {
	f := newRefreshFixture(t)
	lf := &loadFailing{Storage: f.st, fail: map[string]bool{}}
	f.app.storage = localLocks{lf}
	f.app.state = &stateStore{st: f.app.storage}

	s1 := f.enroll(f.local, "dev1.example.net")
	f.enroll(f.local, "dev2.example.net")
	// the first refresh cannot read dev2's record: incomplete, the next is full again
	lf.fail[deviceKey("dev2.example.net")] = true
	f.refresh()
	delete(lf.fail, deviceKey("dev2.example.net"))

	// dev1's current certificate is revoked here (as revokeDisabledDevice
	// or an administrator's revocation notes it)
	f.revoke(f.local, s1, ca.ReasonKeyCompromise)
	f.app.noteRevoked(profileModern, "dev1.example.net", []string{s1}, true)
	f.wantEligible(map[string]bool{"dev1.example.net": false})

	// the next refresh cannot read dev1's record
	lf.fail[deviceKey("dev1.example.net")] = true
	f.refresh()
	f.wantEligible(map[string]bool{"dev1.example.net": false})
}
