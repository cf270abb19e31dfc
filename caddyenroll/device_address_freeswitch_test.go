package caddyenroll

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// fswLongHost is a valid host name of n bytes (labels of at most 63).
func fswLongHost(n int) string {
	b := []byte(strings.Repeat("g", n))
	for i := 63; i < n-1; i += 64 {
		b[i] = '.'
	}
	return string(b)
}

// A device_address is refused at start when, with its port, it is longer
// than the 255 bytes the gateways read a destination into (Asterisk's
// res_osp, the OpenSIPS/Kamailio osp modules, FreeSWITCH 1.0's mod_osp:
// 256-byte buffers), instead of failing every lookup that offers it.
func TestValidateDeviceAddressFitsGateways(t *testing.T) {
	for _, c := range []struct {
		name, addr, err string
	}{
		{"255 bytes with the default port", fswLongHost(250), ""},
		{"255 bytes with a port", fswLongHost(249) + ":65535", ""},
		{"256 bytes with the default port", fswLongHost(251), "signal address longer than 255 bytes"},
		{"258 bytes", fswLongHost(253) + ":5060", "signal address longer than 255 bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := &App{ConfigFile: "x.conf", Approval: ApprovalAuto, UnknownDevices: UnknownPending,
				NonceRetention: caddy.Duration(time.Hour), FailuresAllowed: 5,
				LockoutBase: caddy.Duration(time.Second), LockoutMax: caddy.Duration(time.Minute),
				DeviceAddresses: map[string]string{"gw1": c.addr}}
			wantErr(t, a.Validate(), c.err)
		})
	}
}
