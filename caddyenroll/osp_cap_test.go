package caddyenroll

import (
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/osp"
)

// An answer has at most the site's max_destinations and the request's
// MaximumDestinations destinations, the lower of the two, either alone
// when the other is not given.
func TestAuthorizationDestinationCap(t *testing.T) {
	const conf = `group acme
device gw1.example acme enabled enrolled
device x.example acme enabled enrolled
device y.example acme enabled enrolled
device z.example acme enabled enrolled
route acme '1405' x.example 0 y.example 0 z.example 0
`
	h := reauthHandler(t, conf, "gw1.example")
	for _, c := range []struct{ site, request, want int }{
		{0, 0, 3},
		{0, 2, 2},
		{2, 0, 2},
		{2, 1, 1},
		{1, 2, 1},
		{2, 3, 2},
	} {
		h.MaxDestinations = c.site
		req := &osp.AuthorizationRequest{MessageID: "1", ComponentID: "2", Timestamp: time.Now().UTC(),
			CallIDs: [][]byte{[]byte("call-1")}, SourceInfo: []osp.Info{{Type: "e164", Value: "1404"}},
			DestinationInfo: []osp.Info{{Type: "e164", Value: "1405"}}, MaxDestinations: c.request}
		body, err := req.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		rsp, err := osp.ParseAuthorisationResponse(postOSP(t, h, body, "192.0.2.1:5060"))
		if err != nil {
			t.Fatal(err)
		}
		if !rsp.Status.OK() || len(rsp.Destinations) != c.want {
			t.Errorf("site %d, request %d: %v, %d destinations, want %d", c.site, c.request, rsp.Status, len(rsp.Destinations), c.want)
		}
	}
}
