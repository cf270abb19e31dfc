package caddyenroll

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
	"github.com/clearinghouse-dev/caddy-clearinghouse/osp"
)

// validateDestinations checks device_protocols and non_osp_devices: each
// device named once in any spelling (two spellings of one device would
// give it either setting), each protocol one the OSP Toolkit knows.
func (a *App) validateDestinations() error {
	spelled := make(map[string]string, len(a.DeviceProtocols))
	for _, name := range slices.Sorted(maps.Keys(a.DeviceProtocols)) {
		if name == "" {
			return errors.New("device_protocol: empty device name")
		}
		if err := checkProtocol(name, a.DeviceProtocols[name]); err != nil {
			return err
		}
		if other, dup := spelled[configfile.DeviceKey(name)]; dup {
			return fmt.Errorf("device_protocol names one device twice: %s and %s", other, name)
		}
		spelled[configfile.DeviceKey(name)] = name
	}
	clear(spelled)
	for _, name := range a.NonOSPDevices {
		if name == "" {
			return errors.New("non_osp_device: empty device name")
		}
		if other, dup := spelled[configfile.DeviceKey(name)]; dup {
			return fmt.Errorf("non_osp_device names one device twice: %s and %s", other, name)
		}
		spelled[configfile.DeviceKey(name)] = name
	}
	return nil
}

// checkProtocol refuses a protocol the OSP Toolkit does not know, as it
// spells it: a gateway would read it as OSPC_PROTNAME_UNKNOWN and call the
// device with its own default protocol.
func checkProtocol(device, p string) error {
	if osp.ValidProtocol(p) {
		return nil
	}
	msg := fmt.Sprintf("device_protocol %s: %q is not a protocol the OSP Toolkit knows; use one of %s", device, p, strings.Join(osp.Protocols(), ", "))
	for _, q := range osp.Protocols() {
		if strings.EqualFold(p, q) {
			msg += fmt.Sprintf(" (%q: the toolkit compares them case-sensitively)", q)
		}
	}
	return errors.New(msg)
}
