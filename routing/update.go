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

// Update returns the table of f, as Build(f, o) does. When f differs
// from the file prev was built from only in its devices' enabled and
// enrolled flags (same groups, devices named and grouped alike in the
// same order, same routes, same options), the new table shares prev's
// route index and device names and copies only the devices' flags: a
// server marking devices enrolled one at a time in a carrier's file of
// 100,000 devices and 200,000 routes pays for the devices' flags, not for
// indexing every device and sorting every route again. Otherwise (or with
// a nil prev) it is Build. prev is not changed.
//
// The routes are compared by a 64-bit checksum (hash/maphash, seeded per
// process) of every field of every route: two different route lists
// agree by chance with probability 2⁻⁶⁴.
func Update(prev *Table, f *configfile.File, o Options) (*Table, error) {
	if prev == nil || f == nil || !prev.sameShape(f, o) {
		return Build(f, o)
	}
	t := *prev
	t.devices = slices.Clone(prev.devices)
	for i := range t.devices {
		d, fd := &t.devices[i], &f.Devices[i]
		d.enabled, d.enrolled = fd.Enabled, fd.Enrolled
		d.usable = d.addressable && fd.Enabled && fd.Enrolled
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

// sameShape reports whether f and o would build t again but for the
// devices' flags.
func (t *Table) sameShape(f *configfile.File, o Options) bool {
	maxDest := o.MaxDestinations
	if maxDest == 0 {
		maxDest = DefaultMaxDestinations
	}
	port := o.DefaultPort
	if port == 0 {
		port = DefaultPort
	}
	if maxDest != t.maxDest || strconv.Itoa(port) != t.port || !maps.Equal(o.SignalAddress, t.sigAddr) {
		return false
	}
	if len(f.Groups) != len(t.groups) || len(f.Devices) != len(t.devices) || len(f.Routes) != t.nRoutes {
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
	return routesSum(f.Routes) == t.routeSum
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
