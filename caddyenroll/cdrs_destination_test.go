package caddyenroll

import (
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/osp"
)

// TestCDRDestinationNotSourceDevice: in every usage the OSP Toolkit sends,
// <DeviceInfo> is the source device (the originating gateway's own address
// for role source, OSPPTransactionBuildUsage copying the AuthorizationRequest's;
// ValidateAuthorisation's ospvSourceDevice for role destination). A usage
// without a destination address (a terminating gateway that passed no
// ospvDestination, a source CDR built from scratch without one) must leave
// the destination empty, not name the calling gateway as where the call went.
func TestCDRDestinationNotSourceDevice(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	src := []osp.Info{{Type: osp.TypeTransport, Value: "[192.0.2.10]"}}
	for _, tc := range []struct {
		name string
		u    osp.Usage
		want string
	}{
		{"destination role without ospvDestination", osp.Usage{Role: "destination", DeviceInfo: src}, ""},
		{"source role without destination", osp.Usage{Role: "source", DeviceInfo: src}, ""},
		{"source role", osp.Usage{Role: "source", DeviceInfo: src,
			DestinationAlternate: []osp.Info{{Type: osp.TypeTransport, Value: "[192.0.2.20]:5060"}}}, "[192.0.2.20]:5060"},
		{"destination role with network id", osp.Usage{Role: "destination", DeviceInfo: src,
			DestinationAlternate: []osp.Info{{Type: "network", Value: "gw2"}, {Type: osp.TypeTransport, Value: "[192.0.2.20]"}}}, "gw2"},
	} {
		if got := cdrFromUsage(&tc.u, "gw", now).Destination; got != tc.want {
			t.Errorf("%s: destination %q, want %q", tc.name, got, tc.want)
		}
	}
}
