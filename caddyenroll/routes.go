package caddyenroll

import (
	"strings"

	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
	"github.com/clearinghouse-dev/caddy-clearinghouse/osp"
	"github.com/clearinghouse-dev/caddy-clearinghouse/routing"
)

// routingOptions are the route table's options for the file f: the
// device_addresses, device_protocols and non_osp_devices under the names f
// writes (any spelling may name them).
func (a *App) routingOptions(f *configfile.File) routing.Options {
	var nonOSP map[string]bool
	if len(a.NonOSPDevices) > 0 {
		nonOSP = make(map[string]bool, len(a.NonOSPDevices))
		for _, name := range a.NonOSPDevices {
			nonOSP[fileSpelling(f, name)] = true
		}
	}
	return routing.Options{
		MaxDestinations: a.MaxDestinations,
		SignalAddress:   inFileSpelling(f, a.DeviceAddresses),
		Protocol:        inFileSpelling(f, a.DeviceProtocols),
		NonOSP:          nonOSP,
	}
}

// fileSpelling is the name f writes for the device name names; name
// itself when f lacks it.
func fileSpelling(f *configfile.File, name string) string {
	if d, ok := f.Device(name); ok {
		return d.Name
	}
	return name
}

// inFileSpelling is m keyed by the names f writes.
func inFileSpelling(f *configfile.File, m map[string]string) map[string]string {
	if len(m) == 0 {
		return m
	}
	out := make(map[string]string, len(m))
	for name, v := range m {
		out[fileSpelling(f, name)] = v
	}
	return out
}

// ospDestination is how an answer offers the routed destination d: its
// address, device name, protocol and whether it is an OSP device.
func ospDestination(d routing.Destination) osp.Destination {
	return osp.Destination{SignalAddress: d.SignalAddress, Device: d.Device, Protocol: d.Protocol, NonOSP: d.NonOSP}
}

// routeUpdate is the route table of a version of the file, made from the
// table in force (prev), with what is made with it: the address index
// when the devices changed.
type routeUpdate struct {
	f      *configfile.File
	prev   *routing.Table
	table  *routing.Table
	err    error
	byAddr *map[string][]string // nil: prev's is kept
	// the index of sources by tag for byAddr, made before the lock from
	// the one in force (sourcesFrom) by prepareRoutes; nil: made in the
	// background once the version is in force (indexSources)
	sources, sourcesFrom *sourceIndex
}

// updateRoutes is routing.Update (a variable for tests).
var updateRoutes = routing.Update

// routeUpdateOf makes the route table of f from the one in force. It only
// reads what is in force, so it runs without the file's lock as well.
func (a *App) routeUpdateOf(f *configfile.File) *routeUpdate {
	var prev *routing.Table
	if a.router != nil {
		prev = a.router.Load()
	}
	u := &routeUpdate{f: f, prev: prev}
	u.table, u.err = updateRoutes(prev, f, a.routingOptions(f))
	if u.err == nil && (!u.table.SameDevices(prev) || a.authz.deviceByAddr.Load() == nil) {
		u.byAddr = a.devicesByAddr(f, u.table)
	}
	return u
}

// prepareRoutes makes the route table of f, a version about to be put in
// force, before the file's lock is taken (configState.prepare): at a
// carrier's 200,000 routes, indexing them again when route lines moved
// took 0.12–0.3 s, during which enrollments' lookups in the file waited.
// rebuildRoutes then only swaps it in, under the lock. When the devices
// changed, the index of sources by transaction-id tag is made from the one
// in force as well (transactions.go): a usage record that comes right
// after the version is put in force finds it made rather than waiting for
// it (70–100 ms at 100,000 devices). discard drops the table if f is not
// put in force after all: kept, it would hold f, the table and its
// indexes until the next version is put in force.
func (a *App) prepareRoutes(f *configfile.File) (discard func()) {
	byAddr := a.authz.deviceByAddr.Load()
	u := a.routeUpdateOf(f)
	if cur := a.authz.sources.Load(); u.err == nil && u.byAddr != nil && cur != nil && cur.byAddr == byAddr {
		ix := &sourceIndex{byAddr: u.byAddr, ids: cur.ids, ready: make(chan struct{})}
		ix.build(cur) // from cur once it is made: the tags of the devices that did not change
		u.sources, u.sourcesFrom = ix, cur
	}
	z := a.authz
	z.preparedMu.Lock()
	defer z.preparedMu.Unlock()
	if a.router == nil || u.prev != a.router.Load() {
		return nil // another version was put in force meanwhile
	}
	if z.prepared == nil {
		z.prepared = make(map[*configfile.File]*routeUpdate, 1)
	}
	z.prepared[f] = u
	return func() {
		z.preparedMu.Lock()
		defer z.preparedMu.Unlock()
		if z.prepared[f] == u {
			delete(z.prepared, f)
		}
	}
}

// rebuildRoutes puts the route table of the parsed file in force, with the
// map from signalling addresses back to devices: the one prepareRoutes
// made for f, if it was made from the table still in force (else the
// table is made now). A version that changes only devices' flags (a mark
// of a device enrolled, an operator enabling one) keeps the table's route
// index and the address map (routing.Update): at a carrier's 100,000
// devices and 200,000 routes, building both again took a quarter of a
// second of every mark, holding the file's lock.
func (a *App) rebuildRoutes(f *configfile.File) error {
	z := a.authz
	z.preparedMu.Lock()
	u := z.prepared[f]
	z.preparedMu.Unlock()
	defer func() {
		// the others were made from the table this one replaces
		z.preparedMu.Lock()
		z.prepared = nil
		z.preparedMu.Unlock()
	}()
	if u == nil || a.router == nil || u.prev != a.router.Load() {
		// not prepared, or another version was put in force since: the
		// table is made from the one in force, as the reader expects
		u = a.routeUpdateOf(f)
	}
	if u.err != nil {
		return u.err
	}
	if u.byAddr != nil {
		if names := u.table.Unaddressable(); len(names) > 0 && a.log != nil {
			// once per set of devices, not at every mark
			a.log.Warn("devices without an address OSP can send (give them a device_address), or with a name over 131 bytes, are never offered as call destinations",
				zap.Strings("devices", names))
		}
	}
	if a.router == nil {
		a.router = routing.NewRouter(u.table)
	} else {
		a.router.Swap(u.table)
	}
	if u.byAddr != nil {
		a.authz.deviceByAddr.Store(u.byAddr)
	}
	if u.sources != nil {
		// unless a lookup or another maker came in between: then
		// afterChange makes it as without a prepared one
		a.authz.sources.CompareAndSwap(u.sourcesFrom, u.sources)
	}
	z.routed = f
	return nil
}

// devicesByAddr maps the signalling addresses of t's devices to their
// names, keyed as tokens write addresses (osp.NormalizeSignalAddress): the
// file may spell an address otherwise ("[2001:DB8:0::1]:5060",
// "::ffff:192.0.2.20"); several devices may share one.
func (a *App) devicesByAddr(f *configfile.File, t *routing.Table) *map[string][]string {
	byAddr := make(map[string][]string, len(f.Devices))
	for i := range f.Devices {
		if d, ok := t.Device(f.Devices[i].Name); ok {
			k := d.SignalAddress
			if norm, err := osp.NormalizeSignalAddress(k); err == nil {
				k = norm
			}
			k = strings.ToLower(k)
			byAddr[k] = append(byAddr[k], d.Name)
		}
	}
	return &byAddr
}

// devicesAt names the devices whose signalling address is addr.
func (a *App) devicesAt(addr string) []string {
	m := a.authz.deviceByAddr.Load()
	if m == nil {
		return nil
	}
	norm, err := osp.NormalizeSignalAddress(addr)
	if err != nil {
		return nil
	}
	return (*m)[strings.ToLower(norm)]
}
