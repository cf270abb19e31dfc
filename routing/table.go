package routing

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"unsafe"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
	"github.com/clearinghouse-dev/caddy-clearinghouse/osp"
)

// Errors of Route. They are returned as is (compare with == or errors.Is).
var (
	ErrUnknownSource = errors.New("routing: unknown source device")
	ErrInvalidNumber = errors.New("routing: invalid called number")
	ErrNoRoute       = errors.New("routing: no route for called number")
	ErrNoDestination = errors.New("routing: no usable destination device")
)

// Defaults of Options.
const (
	DefaultMaxDestinations = 10
	DefaultPort            = 5060
)

// Options tune Build. The zero value is the defaults.
type Options struct {
	// MaxDestinations caps the destinations of one answer; 0 means
	// DefaultMaxDestinations.
	MaxDestinations int
	// DefaultPort is the port of signalling addresses that give none; 0
	// means DefaultPort (5060).
	DefaultPort int
	// SignalAddress maps device names to explicit signalling addresses
	// (host, host:port, [host], [host]:port or a bare IPv6 address).
	// Devices not listed use their name and DefaultPort ("[ip]:port" for an
	// IP address). Names that are not devices of the file are ignored.
	SignalAddress map[string]string
	// Protocol maps device names to their destination protocol as the
	// OSP Toolkit names it (osp.Protocols: "h323-Q931", "iax"…). Devices
	// not listed, or listed with "", have none (osp.DefaultProtocol, "sip",
	// in answers). Names that are not devices of the file are ignored.
	Protocol map[string]string
	// NonOSP names the devices that are not OSP devices (a PSTN gateway
	// that cannot check tokens): their destinations say so (answers carry
	// OSP version 0.0.0 and no token). Others are ignored.
	NonOSP map[string]bool
}

// Destination is one device offered for a call.
type Destination struct {
	Device        string // device name (DNS name) as in the file
	Group         string // the device's own group
	Weight        uint32 // its weight in the route
	SignalAddress string // "[ip]:port" or "host:port", for OSP DestinationSignalAddress
	Protocol      string // Options.Protocol's, for OSP SignalingProtocol; "" when none
	NonOSP        bool   // not an OSP device (Options.NonOSP)
}

// RouteInfo describes the route that matched, for diagnostics.
type RouteInfo struct {
	Group    string // the route's group; "" when it came from the default group
	Pattern  string // the called-number pattern as written, e.g. "+1 404..."
	Exact    bool   // an exact pattern (no "...")
	Fallback bool   // the source's group had no match; the default group's route applied
	Line     int    // line of the route in the file (0 for a File built by hand)
}

// DeviceInfo is a device of the table.
type DeviceInfo struct {
	Name, Group       string
	Enabled, Enrolled bool
	SignalAddress     string // "[ip]:port" or "host:port"
	Protocol          string // the destination protocol; "" when none given
	NonOSP            bool   // not an OSP device
}

// Table is the route table built from one configuration. It is immutable
// and safe for concurrent use. A nil *Table is an empty table.
type Table struct {
	groups   []groupRec
	groupIdx map[string]int32
	def      int32 // the default group "", or -1
	devices  []devRec
	devIdx   map[string]int32
	keyIdx   map[string]int32 // by configfile.DeviceKey: any spelling of a device's name
	nRoutes  int
	targets  []configfile.Target // routes' targets, back to back
	numbers  string              // routes' patterns as written, back to back
	maxDest  int

	unaddressable []string // devices without an address OSP can send

	// what Update compares a new version of the file with: the port and
	// explicit addresses the table was built with, a checksum of its
	// routes, and the identity of its device names and addresses (shared
	// by the tables Update makes from it)
	port       string
	sigAddr    map[string]string
	protocol   map[string]string
	nonOSP     map[string]bool
	routeSum   uint64
	namesIdent *namesIdent
}

// namesIdent tells tables with the same devices apart from others; it has
// a field so that each allocation is distinct.
type namesIdent struct{ _ byte }

// Unaddressable lists, in file order, the devices that have no signalling
// address OSP can send (a name that is neither a host name nor an IP
// address without zone, and no explicit address), or a name longer than
// an answer's NetworkID takes (osp.MaxNumber bytes): they are never
// offered as destinations.
func (t *Table) Unaddressable() []string {
	if t == nil {
		return nil
	}
	return slices.Clone(t.unaddressable)
}

type groupRec struct {
	name string
	idx  index // the group's routes, exact and prefix
}

type devRec struct {
	name, group       string
	addr              string
	gi                int32 // index of group
	usable            bool  // enabled && enrolled, with an address OSP can send
	enabled, enrolled bool
	addressable       bool // an address OSP can send, and a name that fits a NetworkID
	nonOSP            bool
	proto             string // a constant of package osp, or ""
}

// Build builds the route table of f. f is only read, and must not be
// edited during Build; it may be edited or dropped afterwards: the Table
// keeps no reference to it. Build checks what
// configfile.Parse guarantees (defined groups and devices, valid normalized
// prefixes, no duplicate routes or route devices), so a File built by hand
// is safe too.
func Build(f *configfile.File, o Options) (*Table, error) {
	if f == nil {
		return nil, errors.New("routing: nil configuration")
	}
	t := &Table{def: -1, maxDest: o.MaxDestinations, namesIdent: new(namesIdent)}
	switch {
	case t.maxDest == 0:
		t.maxDest = DefaultMaxDestinations
	case t.maxDest < 0:
		return nil, fmt.Errorf("routing: MaxDestinations %d < 0", o.MaxDestinations)
	}
	port := o.DefaultPort
	switch {
	case port == 0:
		port = DefaultPort
	case port < 0 || port > 65535:
		return nil, fmt.Errorf("routing: DefaultPort %d out of range", o.DefaultPort)
	}
	portStr := strconv.Itoa(port)
	t.port = portStr
	t.sigAddr = maps.Clone(o.SignalAddress)
	t.protocol = maps.Clone(o.Protocol)
	t.nonOSP = maps.Clone(o.NonOSP)

	// groups: names are cloned so the table does not pin the File's source
	t.groups = make([]groupRec, len(f.Groups))
	t.groupIdx = make(map[string]int32, len(f.Groups))
	for i, g := range f.Groups {
		if _, dup := t.groupIdx[g.Name]; dup {
			return nil, fmt.Errorf("routing: duplicate group %q", g.Name)
		}
		name := strings.Clone(g.Name)
		t.groups[i].name = name
		t.groupIdx[name] = int32(i)
	}
	if i, ok := t.groupIdx[configfile.DefaultGroup]; ok {
		t.def = i
	}

	// devices
	t.devices = make([]devRec, len(f.Devices))
	t.devIdx = make(map[string]int32, len(f.Devices))
	t.keyIdx = make(map[string]int32, len(f.Devices))
	for i, d := range f.Devices {
		if d.Name == "" {
			return nil, fmt.Errorf("routing: device %d has no name", i)
		}
		if _, dup := t.devIdx[d.Name]; dup {
			return nil, fmt.Errorf("routing: duplicate device %q", d.Name)
		}
		gi, ok := t.groupIdx[d.Group]
		if !ok {
			return nil, fmt.Errorf("routing: device %q: undefined group %q", d.Name, d.Group)
		}
		name := strings.Clone(d.Name)
		t.devices[i] = devRec{
			name:     name,
			group:    t.groups[gi].name,
			gi:       gi,
			addr:     defaultSignalAddress(name, portStr),
			usable:   d.Enabled && d.Enrolled,
			enabled:  d.Enabled,
			enrolled: d.Enrolled,
		}
		t.devIdx[name] = int32(i)
		if k := configfile.DeviceKey(name); k != "" {
			if _, dup := t.keyIdx[k]; !dup { // Parse refuses two spellings of one device
				t.keyIdx[k] = int32(i)
			}
		}
	}
	for name, a := range o.SignalAddress {
		i, ok := t.devIdx[name]
		if !ok {
			continue
		}
		addr, err := signalAddress(a, portStr)
		if err != nil {
			return nil, fmt.Errorf("routing: signalling address of %q: %w", name, err)
		}
		t.devices[i].addr = addr
	}
	for name, p := range o.Protocol {
		i, ok := t.devIdx[name]
		if !ok || p == "" {
			continue
		}
		canon, ok := osp.CanonicalProtocol(p) // one string per protocol, not one per device
		if !ok {
			return nil, fmt.Errorf("routing: protocol of %q: %q is not one the OSP Toolkit knows (%s)", name, p, strings.Join(osp.Protocols(), ", "))
		}
		t.devices[i].proto = canon
	}
	for name, no := range o.NonOSP {
		if i, ok := t.devIdx[name]; ok && no {
			t.devices[i].nonOSP = true
		}
	}
	// a device named otherwise than a host or an IP address ("GW 1",
	// "fe80::1%eth0") and given no device_address has no address OSP can
	// send, and one whose name is too long for the toolkit's NetworkID
	// (osp.MaxNumber bytes) cannot be named in an answer: neither is ever
	// offered (one bad destination would fail the call)
	for i := range t.devices {
		_, err := osp.NormalizeSignalAddress(t.devices[i].addr)
		if err == nil {
			err = osp.ValidNetworkID(t.devices[i].name)
		}
		if err != nil {
			t.devices[i].usable = false
			t.unaddressable = append(t.unaddressable, t.devices[i].name)
		} else {
			t.devices[i].addressable = true
		}
	}

	if err := t.buildRoutes(f); err != nil {
		return nil, err
	}
	t.routeSum = routesSum(f.Routes)
	return t, nil
}

// buildRoutes fills targets, numbers and the groups' indexes.
func (t *Table) buildRoutes(f *configfile.File) error {
	routes := f.Routes
	if len(routes) > math.MaxInt32 {
		return errors.New("routing: too many routes")
	}
	nTargets, nBytes := 0, 0
	for i := range routes {
		nTargets += len(routes[i].Targets)
		nBytes += len(routes[i].Number)
	}
	if nTargets > math.MaxUint32 || nBytes > math.MaxUint32 {
		return errors.New("routing: configuration too large")
	}
	t.nRoutes = len(routes)
	t.targets = make([]configfile.Target, 0, nTargets)
	var nums strings.Builder
	nums.Grow(nBytes)

	// one item per route, bucketed by group with a counting sort, then
	// each group's items sorted by key
	pay := make([]payload, len(routes))
	ng := len(t.groups)
	start := make([]int, ng+1)
	gidx := make([]int32, len(routes))
	keys := make([]key, len(routes))
	seen := make([]int32, len(t.devices)) // route number + 1 that last named a device
	for i := range routes {
		r := &routes[i]
		where := func(format string, args ...any) error {
			return fmt.Errorf("routing: route %q %q (line %d): %s", r.Group, r.Number, r.Line, fmt.Sprintf(format, args...))
		}
		gi, ok := t.groupIdx[r.Group]
		if !ok {
			return where("undefined group")
		}
		k, ok := patternKey(r.Prefix)
		switch {
		case !ok:
			return where("invalid normalized number %q", r.Prefix)
		case r.Exact && r.Prefix == "":
			return where("exact number without digits")
		case len(r.Targets) == 0:
			return where("no devices")
		case len(r.Targets) > maxTargets:
			return where("too many devices")
		case len(r.Number) > math.MaxUint16:
			return where("number too long")
		}
		for _, tg := range r.Targets {
			if tg.Device < 0 || int(tg.Device) >= len(t.devices) {
				return where("undefined device %d", tg.Device)
			}
			if seen[tg.Device] == int32(i+1) {
				return where("device %q named twice", t.devices[tg.Device].name)
			}
			seen[tg.Device] = int32(i + 1)
		}
		p := payload{
			tOff:   uint32(len(t.targets)),
			numOff: uint32(nums.Len()),
			line:   int32(min(r.Line, math.MaxInt32)),
			tLen:   uint16(len(r.Targets)),
			numLen: uint16(len(r.Number)),
		}
		if r.Exact {
			p.tLen |= exactBit
		}
		pay[i] = p
		t.targets = append(t.targets, r.Targets...)
		nums.WriteString(r.Number)
		gidx[i] = gi
		keys[i] = k
		start[gi+1]++
	}
	t.numbers = nums.String()
	seen = nil
	for g := 1; g < len(start); g++ {
		start[g] += start[g-1]
	}
	items := make([]item, len(routes))
	pos := slices.Clone(start[:ng])
	for i := range routes {
		g := gidx[i]
		items[pos[g]] = item{k: keys[i], route: int32(i), exact: routes[i].Exact}
		pos[g]++
	}
	gidx, keys, pos = nil, nil, nil
	for g := 0; g < ng; g++ {
		seg := items[start[g]:start[g+1]]
		if len(seg) == 0 {
			continue
		}
		slices.SortFunc(seg, cmpItems)
		for j := 1; j < len(seg); j++ {
			if seg[j].k == seg[j-1].k && seg[j].exact == seg[j-1].exact {
				r, first := &routes[seg[j].route], &routes[seg[j-1].route]
				return fmt.Errorf("routing: route %q %q (line %d): duplicate of the route of line %d", r.Group, r.Number, r.Line, first.Line)
			}
		}
		t.groups[g].idx = newIndex(seg, pay)
	}
	return nil
}

// defaultSignalAddress joins a host and a port in the form OSP devices
// take; with the device's name and the default port it is the address of a
// device that has none configured. An IP address, in brackets or not and
// with or without one trailing dot (as configfile.DeviceKey reads device
// names), is written in its canonical form, an IPv4-mapped address as the
// IPv4 address.
func defaultSignalAddress(name, port string) string {
	in := name
	if len(in) >= 2 && in[0] == '[' && in[len(in)-1] == ']' {
		in = in[1 : len(in)-1]
	}
	if ip, err := netip.ParseAddr(strings.TrimSuffix(in, ".")); err == nil {
		return "[" + ip.Unmap().String() + "]:" + port
	}
	return name + ":" + port
}

// ParseSignalAddress checks an explicit signalling address as Build does
// with Options.SignalAddress and returns it normalized, with DefaultPort
// when it gives no port.
func ParseSignalAddress(a string) (string, error) {
	return signalAddress(a, strconv.Itoa(DefaultPort))
}

// signalAddress normalizes a signalling address to "[ip]:port" for an IP
// address and "host:port" for a name, the forms OSP devices take.
func signalAddress(a, defPort string) (string, error) {
	host, port := a, defPort
	switch {
	case a == "":
		return "", errors.New("empty address")
	case a[0] == '[':
		j := strings.IndexByte(a, ']')
		if j < 0 {
			return "", fmt.Errorf("%q: missing ']'", a)
		}
		host = a[1:j]
		switch rest := a[j+1:]; {
		case rest == "":
		case rest[0] == ':':
			port = rest[1:]
		default:
			return "", fmt.Errorf("%q: junk after ']'", a)
		}
	case strings.Count(a, ":") == 1:
		j := strings.IndexByte(a, ':')
		host, port = a[:j], a[j+1:]
	}
	if host == "" {
		return "", fmt.Errorf("%q: empty host", a)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 || port[0] < '0' || port[0] > '9' {
		return "", fmt.Errorf("%q: invalid port %q (want 1 to 65535)", a, port)
	}
	addr := defaultSignalAddress(host, strconv.Itoa(p))
	// only what OSP can send: an IP address without a zone, or a host name
	if _, err := osp.NormalizeSignalAddress(addr); err != nil {
		return "", fmt.Errorf("%q: %v", a, err)
	}
	return addr, nil
}

// Len returns the number of routes.
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	return t.nRoutes
}

// Size estimates the memory the table holds, in bytes (indexes, route
// records, targets, pattern text; not the maps of names).
func (t *Table) Size() int {
	if t == nil {
		return 0
	}
	n := cap(t.targets)*int(unsafe.Sizeof(configfile.Target{})) +
		len(t.numbers) + cap(t.devices)*int(unsafe.Sizeof(devRec{})) + cap(t.groups)*int(unsafe.Sizeof(groupRec{}))
	for i := range t.groups {
		n += t.groups[i].idx.size()
	}
	return n
}

// Device returns a device of the table by its name, in any spelling
// configfile.DeviceKey gives the same key (DeviceInfo.Name is the file's).
func (t *Table) Device(name string) (DeviceInfo, bool) {
	if t == nil {
		return DeviceInfo{}, false
	}
	i, ok := t.devIdx[name]
	if !ok {
		if i, ok = t.keyIdx[configfile.DeviceKey(name)]; !ok {
			return DeviceInfo{}, false
		}
	}
	d := &t.devices[i]
	return DeviceInfo{Name: d.name, Group: d.group, Enabled: d.enabled, Enrolled: d.enrolled, SignalAddress: d.addr,
		Protocol: d.proto, NonOSP: d.nonOSP}, true
}

// match finds the route for key k from group g, falling back to the
// default group. It returns the route and the group it belongs to, or nil.
func (t *Table) match(g int32, k key) (*payload, int32) {
	if p := t.groups[g].idx.find(k); p != nil {
		return p, g
	}
	if t.def >= 0 && g != t.def {
		if p := t.groups[t.def].idx.find(k); p != nil {
			return p, t.def
		}
	}
	return nil, -1
}

// Lookup returns the route that applies to a call from a device of group to
// the called number (after the default-group fallback), for diagnostics.
// It reports false for an unknown group, an invalid number or no route.
func (t *Table) Lookup(group, called string) (RouteInfo, bool) {
	if t == nil {
		return RouteInfo{}, false
	}
	g, ok := t.groupIdx[group]
	if !ok {
		return RouteInfo{}, false
	}
	k, ok := dialedKey(called)
	if !ok {
		return RouteInfo{}, false
	}
	p, mg := t.match(g, k)
	if p == nil {
		return RouteInfo{}, false
	}
	return RouteInfo{
		Group:    t.groups[mg].name,
		Pattern:  t.numbers[p.numOff : p.numOff+uint32(p.numLen)],
		Exact:    p.exact(),
		Fallback: mg != g,
		Line:     int(p.line),
	}, true
}

// Router holds the Table in force. The zero Router holds a nil (empty)
// Table. Its methods are safe for concurrent use and never block.
type Router struct {
	p atomic.Pointer[Table]
}

// NewRouter returns a Router holding t.
func NewRouter(t *Table) *Router {
	r := new(Router)
	r.p.Store(t)
	return r
}

// Load returns the Table in force (possibly nil, which acts as empty).
func (r *Router) Load() *Table { return r.p.Load() }

// Swap puts t in force and returns the previous Table. Lookups in progress
// finish on the Table they loaded.
func (r *Router) Swap(t *Table) *Table { return r.p.Swap(t) }

// Rebuild builds the table of f and puts it in force; on error the Table
// in force stays. Concurrent Rebuilds are the caller's to order (the last
// Swap wins).
func (r *Router) Rebuild(f *configfile.File, o Options) error {
	t, err := Build(f, o)
	if err != nil {
		return err
	}
	r.Swap(t)
	return nil
}
