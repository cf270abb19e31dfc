package routing

import (
	"encoding/binary"
	"hash/maphash"
	"maps"
	"slices"
	"strconv"
	"unsafe"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

// Update returns the table of f, as Build(f, o) does, made from prev, the
// table of an earlier version, as far as f allows. When f names and groups
// the same devices in the same order as that version, with the same
// groups and options, the new table shares prev's devices' names, address
// and name indexes, copying only their enabled and enrolled flags; when
// its routes are the same too, it also shares prev's route index. A server
// marking devices enrolled one at a time in a carrier's file of 100,000
// devices and 200,000 routes then pays for the devices' flags, not for
// indexing every device and sorting every route again, and an operator's
// edit of routes alone does not index the devices again. Otherwise (or
// with a nil prev) it is Build. prev is not changed.
//
// The routes are compared by a 64-bit checksum (hash/maphash, seeded per
// process) of every field of every route: two different route lists
// agree by chance with probability 2⁻⁶⁴.
func Update(prev *Table, f *configfile.File, o Options) (*Table, error) {
	if prev == nil || f == nil || !prev.sameDevices(f, o) {
		return Build(f, o)
	}
	t := *prev
	t.devices = slices.Clone(prev.devices)
	for i := range t.devices {
		d, fd := &t.devices[i], &f.Devices[i]
		d.enabled, d.enrolled = fd.Enabled, fd.Enrolled
		d.usable = d.addressable && fd.Enabled && fd.Enrolled
	}
	if sum := routesSum(f.Routes); sum != prev.routeSum || len(f.Routes) != prev.nRoutes {
		t.groups = slices.Clone(prev.groups) // the names stay; each index is made again
		for i := range t.groups {
			t.groups[i].idx = index{}
		}
		if err := t.buildRoutes(f); err != nil {
			return nil, err
		}
		t.routeSum = sum
	}
	return &t, nil
}

// SameDevices reports whether t and u hold the same devices with the same
// names, groups and signalling addresses (their flags may differ): one was
// made from the other by Update. Indexes of the devices by name or address
// made for one serve the other.
func (t *Table) SameDevices(u *Table) bool {
	return t != nil && u != nil && t.namesIdent == u.namesIdent
}

// sameDevices reports whether f and o have the groups, devices (but for
// their flags) and options t was built with.
func (t *Table) sameDevices(f *configfile.File, o Options) bool {
	maxDest := o.MaxDestinations
	if maxDest == 0 {
		maxDest = DefaultMaxDestinations
	}
	port := o.DefaultPort
	if port == 0 {
		port = DefaultPort
	}
	if maxDest != t.maxDest || strconv.Itoa(port) != t.port || !maps.Equal(o.SignalAddress, t.sigAddr) ||
		!maps.Equal(o.Protocol, t.protocol) || !maps.Equal(o.NonOSP, t.nonOSP) {
		return false
	}
	if len(f.Groups) != len(t.groups) || len(f.Devices) != len(t.devices) {
		return false
	}
	for i := range f.Groups {
		if f.Groups[i].Name != t.groups[i].name {
			return false
		}
	}
	for i := range f.Devices {
		if d := &f.Devices[i]; d.Name != t.devices[i].name || d.Group != t.devices[i].group {
			return false
		}
	}
	return true
}

// routeSeed seeds the routes' checksums of this process.
var routeSeed = maphash.MakeSeed()

// routesSum is the checksum of routes: every field of each route (the
// lengths first, so that fields cannot run into each other), its targets'
// device indexes and weights included.
func routesSum(routes []configfile.Route) uint64 {
	var h maphash.Hash
	h.SetSeed(routeSeed)
	var buf [25]byte
	for i := range routes {
		r := &routes[i]
		binary.LittleEndian.PutUint32(buf[0:], uint32(len(r.Group)))
		binary.LittleEndian.PutUint32(buf[4:], uint32(len(r.Number)))
		binary.LittleEndian.PutUint32(buf[8:], uint32(len(r.Prefix)))
		binary.LittleEndian.PutUint32(buf[12:], uint32(len(r.Targets)))
		binary.LittleEndian.PutUint64(buf[16:], uint64(r.Line))
		buf[24] = 0
		if r.Exact {
			buf[24] = 1
		}
		h.Write(buf[:])
		h.WriteString(r.Group)
		h.WriteString(r.Number)
		h.WriteString(r.Prefix)
		if len(r.Targets) > 0 {
			// Target is two 32-bit fields, without padding
			h.Write(unsafe.Slice((*byte)(unsafe.Pointer(&r.Targets[0])), len(r.Targets)*int(unsafe.Sizeof(configfile.Target{}))))
		}
	}
	return h.Sum64()
}
