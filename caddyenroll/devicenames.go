package caddyenroll

import (
	"fmt"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

// unissuable is a device of the file whose name the CA cannot issue a
// certificate for (not a DNS name or IP address): the file is valid, but
// the device can never enroll; each of its requests is refused as a bad
// request.
type unissuable struct {
	device configfile.Device
	err    error
}

func (u unissuable) warning(path string) string {
	return fmt.Sprintf("%s:%d: warning: device %s cannot enroll: %v", path, u.device.Line, configfile.QuoteToken(u.device.Name), u.err)
}

func unissuableDevices(f *configfile.File) []unissuable {
	var out []unissuable
	for _, d := range f.Devices {
		if err := ca.CheckDeviceName(d.Name); err != nil {
			out = append(out, unissuable{d, err})
		}
	}
	return out
}

// maxNameWarnings bounds the devices whose unissuable names a start logs.
const maxNameWarnings = 20
