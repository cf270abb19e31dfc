package caddyenroll

import (
	"context"
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

// TestCDRAttemptsToDevicesSharingAnAddress: two devices at one signal
// address (device_address, an SBC in front of trunk groups) are two
// destinations of one answer, told apart by <DestinationAlternate
// type="network">, which the toolkit reports back with each attempt. A
// source with one call id (Asterisk, OpenSIPS) that fails over from the
// first to the second reports both with the same transaction id, call id
// and transport address: the connected call must be stored, not taken for
// a retry of the failed attempt, and the record names the device.
func TestCDRAttemptsToDevicesSharingAnAddress(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	a, _, _ := cdrTestApp(t, now)
	ctx := context.Background()
	attempt := func(device string, secs int) osp.Usage {
		return osp.Usage{Role: "source", TransactionID: 7, CallID: []byte("1"),
			DestinationAlternate: []osp.Info{{Type: osp.TypeTransport, Value: "[192.0.2.20]:5060"}, {Type: "network", Value: device}},
			Duration:             time.Duration(secs) * time.Second}
	}
	failed, connected := attempt("trunk-a", 0), attempt("trunk-b", 61)
	for _, u := range []osp.Usage{failed, connected, failed, connected} { // and the retry of the message
		if _, err := a.storeCDR(ctx, cdrFromUsage(&u, "gw1", now)); err != nil {
			t.Fatal(err)
		}
	}
	list, err := a.cdrs(ctx, dayRange{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, c := range list {
		got[c.DestinationDevice] = c.Duration
	}
	if len(list) != 2 || got["trunk-a"] != 0 || got["trunk-b"] != 61 {
		t.Errorf("want one record per attempt (trunk-a 0 s, trunk-b 61 s), got %+v", list)
	}
}
