package caddyenroll

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
	"github.com/clearinghouse-dev/caddy-clearinghouse/osp"
	"github.com/clearinghouse-dev/caddy-clearinghouse/routing"
)

// authz is what call authorization shares across sites: the route table
// (rebuilt whenever the configuration file changes), the revocation state
// and the token signers.
type authz struct {
	*revocations

	signerMu sync.Mutex
	signers  map[string]signerEntry

	// the transaction ids of authorizations (transactions.go)
	txMu  sync.Mutex
	txIDs *osp.TransactionIDs

	// signalling address → device, made again with the route table when
	// its devices or their addresses change (not their flags)
	deviceByAddr atomic.Pointer[map[string][]string]
	// the route tables of versions about to be put in force, made
	// without the file's lock (prepareRoutes): an edit's and a poll's
	// that meets it may be made at once
	preparedMu sync.Mutex
	prepared   map[*configfile.File]*routeUpdate
	// the version of the file the route table in force was made for, set
	// under the file's lock (followFileChanges)
	routed *configfile.File
	// the index of the file's devices (deviceByAddr's) by their tags in
	// transaction ids (transactions.go)
	sources atomic.Pointer[sourceIndex]

	// certificates already matched to the records this server keeps
	identMu sync.RWMutex
	idents  map[string]identity // by SHA-256 of the certificate DER
}

// revocations is which certificates and devices call authorization
// refuses: the revoked serials (refreshed from the CAs' CRLs, updated at
// once on local revocations) and the devices whose current certificate is
// revoked. It depends only on the storage and the CAs, so a reload on the
// same ones keeps it (see revocationsKey) and refreshes it incrementally
// instead of reading every device record again. A reload that adds or
// drops a CA gets another state, which local revocations reach too (see
// noteRevoked).
type revocations struct {
	mu sync.RWMutex
	// "profile/serial" in the CRLs at the last refresh; never modified
	// once installed (a refresh reads the previous one without the lock)
	revoked map[string]bool
	// "profile/serial" revoked locally, by generation: kept until a refresh
	// that read the CRLs after the revocation
	noted map[string]uint64
	// devices (configfile.DeviceKey) whose current certificate is revoked
	current map[string]bool
	// devices whose state noteRevoked changed, by generation (or whose
	// record a refresh could not read): the next refresh reads them
	touched map[string]uint64
	gen     uint64 // generation of noteRevoked calls; each refresh starts a new one
	scanned bool   // a refresh read every device record

	refreshMu sync.Mutex               // one refresh at a time
	pending   map[string]pendingSerial // revoked serials whose device is checked again; refreshMu

	// the key of each CA alone (revocationsKey), by profile; nil when not
	// shared. Never modified: noteRevoked reaches the other states in
	// revocationsPool that hold the same CA.
	caKeys map[string]string
}

// sharedCRL is the CRL a CA serves, kept across reloads in crlPool by the
// CA's own revocationsKey: a reload that adds or drops the other profile's
// CA (another revocation state) opens this CA again with it too.
type sharedCRL struct{ *ca.CRLCache }

// Destruct lets sharedCRL live in a caddy.UsagePool.
func (sharedCRL) Destruct() error { return nil }

var crlPool = caddy.NewUsagePool()

// Destruct lets revocations live in a caddy.UsagePool.
func (*revocations) Destruct() error { return nil }

// revocationsPool keeps the revocation state of the storages and CAs in
// use across reloads, by revocationsKey.
var revocationsPool = caddy.NewUsagePool()

// revocationsKey names the revocation state of a storage and a set of CAs:
// the storage as it describes itself (certmagic's file storage says
// "FileStorage:PATH") and each CA's profile, storage prefix and issuing
// certificate. It is "" when the storage does not describe itself; such a
// state is not shared.
func revocationsKey(st certmagic.Storage, cas map[string]*ca.CA) string {
	named, ok := st.(fmt.Stringer)
	if !ok {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%T %s", st, named.String())
	for _, profile := range slices.Sorted(maps.Keys(cas)) {
		c := cas[profile]
		sum := sha256.Sum256(c.Issuer().Raw)
		fmt.Fprintf(&b, "|%s %s %x", profile, c.StoragePrefix(), sum)
	}
	return b.String()
}

type identity struct{ device, profile, serial string }

const maxCachedIdentities = 10000

// signerEntry is a token signer checked once: valid until renewAt, for
// as long as its CA is the one in use.
type signerEntry struct {
	signer  *osp.TokenSigner
	ca      *ca.CA
	renewAt time.Time
}

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

// refreshRevoked reloads the revoked serials from every CA's CRL and
// brings authz.current up to date with them, so that revocations and
// re-enrollments made by other instances sharing the storage are seen here.
//
// The first refresh reads every device record. Later ones read only the
// device records that can have changed state (O(changes), not O(devices)):
//
//   - the devices of serials newly in the CRLs (found through the CA's
//     issuance record);
//   - the devices in current, which may have re-enrolled or whose serial
//     may have left the CRLs;
//   - the devices noteRevoked changed since the last refresh, so that a
//     local decision racing with another instance is checked once more;
//   - the devices of newly revoked serials issued moments ago whose device
//     record did not name them yet (an issuance in flight), until it does
//     or the issuance is long over;
//   - those whose reading failed, until it succeeds.
//
// A device is in current when its record's current certificate is in the
// CRLs, exactly as a full scan decides. The storage is read without the
// lock; lookups only wait for the maps to be swapped in.
func (a *App) refreshRevoked(ctx context.Context) error {
	z := a.authz
	z.refreshMu.Lock()
	defer z.refreshMu.Unlock()

	z.mu.Lock()
	z.init()
	snap := z.gen
	z.gen++ // notes from now on are newer than this refresh
	full := !z.scanned
	prev := z.revoked // never modified once installed
	prevNoted := make(map[string]bool)
	for k, g := range z.noted {
		if g <= snap {
			prevNoted[k] = true
		}
	}
	recheck := make(map[string]bool, len(z.current)+len(z.touched))
	for d := range z.touched {
		recheck[d] = true
	}
	if !full {
		for d := range z.current {
			recheck[d] = true
		}
	}
	z.mu.Unlock()

	revoked, err := a.readCRLs(ctx)
	if err != nil {
		return err
	}
	var res revokedScan
	if full {
		if res, err = a.scanAllDevices(ctx, revoked); err != nil {
			return err
		}
		if len(res.elsewhere) > 0 {
			elsewhere := res.elsewhere
			a.background(func() { a.copyDeviceRecords(context.WithoutCancel(ctx), elsewhere) })
		}
	} else {
		res = a.scanChanges(ctx, revoked, prev, prevNoted, recheck)
	}

	z.mu.Lock()
	defer z.mu.Unlock()
	z.revoked = revoked
	for k, g := range z.noted {
		if g <= snap { // stored before the CRLs were read: they are in revoked
			delete(z.noted, k)
		}
	}
	newer := func(d string) bool { g, ok := z.touched[d]; return ok && g > snap }
	if full {
		cur := make(map[string]bool)
		for d, r := range res.status {
			if r && !newer(d) {
				cur[d] = true
			}
		}
		for d, g := range z.touched {
			if g > snap && z.current[d] {
				cur[d] = true
			}
		}
		if !res.complete {
			// a record that could not be read is kept as it was (fails
			// closed: a revoked device must not come back on a storage error)
			for d := range z.current {
				if !res.read[d] {
					cur[d] = true
				}
			}
		}
		z.current = cur
		z.scanned = res.complete
	} else {
		for d, r := range res.status {
			switch {
			case newer(d): // noteRevoked decided meanwhile; the next refresh checks it
			case r:
				z.current[d] = true
			default:
				delete(z.current, d)
			}
		}
	}
	for d, g := range z.touched {
		if g <= snap {
			delete(z.touched, d)
		}
	}
	for d := range res.failed {
		if _, ok := z.touched[d]; !ok {
			z.touched[d] = snap
		}
	}
	return nil
}

// revokedScan is what a refresh found out about devices.
type revokedScan struct {
	status   map[string]bool     // device (lower case) → its current certificate is revoked (full scan: the revoked ones only)
	failed   map[string]struct{} // devices whose record could not be read: kept as they are, read again next time
	complete bool                // full scan: every record was read
	read     map[string]bool     // full scan: the devices whose record was read
	// full scan: devices with a record where earlier versions keep it (a
	// spelling other than the normal form), to copy where it belongs
	elsewhere []string
}

// recentIssuance is how long after a certificate is signed its device
// record may still name the previous one (the issuance writes the CA's
// record first): a revoked serial of a certificate younger than this whose
// device record names another is checked again at the next refreshes.
const recentIssuance = 10 * time.Minute

// pendingSerial is a revoked serial whose device is checked again.
type pendingSerial struct {
	device string    // lower case; "" when the CA's record could not be read
	until  time.Time // check again until then (zero: until read)
}

// readCRLs returns the serials in the CRLs of every CA, as "profile/serial".
func (a *App) readCRLs(ctx context.Context) (map[string]bool, error) {
	revoked := make(map[string]bool)
	for profile, c := range a.cas {
		der, err := c.CRL(ctx)
		if err != nil {
			return nil, fmt.Errorf("CRL of %s CA: %v", profile, err)
		}
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			return nil, err
		}
		for _, e := range crl.RevokedCertificateEntries {
			revoked[profile+"/"+e.SerialNumber.Text(16)] = true
		}
	}
	return revoked, nil
}

// readDeviceRecord loads the record of a device for the revocation state
// (the newer copy, for a spelling earlier versions kept elsewhere).
func (a *App) readDeviceRecord(ctx context.Context, device string) (*DeviceRecord, error) {
	d, _, err := newerDeviceRecord(func(key string) (*DeviceRecord, error) { return a.readDeviceRecordAt(ctx, key) },
		deviceKey(device), legacyDeviceKey(device))
	return d, err
}

// readDeviceRecordAt loads the device record at key: nil when absent or
// unreadable (a corrupt record names no certificate), an error only when
// the storage failed.
func (a *App) readDeviceRecordAt(ctx context.Context, key string) (*DeviceRecord, error) {
	b, err := a.storage.Load(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var d DeviceRecord
	if json.Unmarshal(b, &d) != nil {
		return nil, nil
	}
	return &d, nil
}

func (d *DeviceRecord) revokedKey() string {
	return d.Profile + "/" + strings.ToLower(d.Serial)
}

// scanAllDevices reads every device record.
func (a *App) scanAllDevices(ctx context.Context, revoked map[string]bool) (revokedScan, error) {
	res := revokedScan{status: make(map[string]bool), complete: true, read: make(map[string]bool)}
	keys, err := a.state.list(ctx, path.Join(statePrefix, "devices"))
	if err != nil {
		return res, err
	}
	for _, k := range keys {
		if !strings.HasSuffix(k, ".json") {
			continue // the temporary file of a record being stored
		}
		d, err := a.readDeviceRecordAt(ctx, k)
		if err != nil {
			res.complete = false // the next refresh scans again
			continue
		}
		if d != nil && d.Device != "" {
			res.read[configfile.DeviceKey(d.Device)] = true
			if k != deviceKey(d.Device) {
				res.elsewhere = append(res.elsewhere, d.Device)
			}
		}
		if d == nil || d.Device == "" || !revoked[d.revokedKey()] {
			continue
		}
		if k != deviceKey(d.Device) || legacyDeviceKey(d.Device) != "" {
			// a record with a copy under another key (earlier versions kept
			// it by another spelling): the newer copy names the current
			// certificate
			cur, err := a.readDeviceRecord(ctx, d.Device)
			if err != nil {
				res.complete = false
				continue
			}
			if cur == nil || !revoked[cur.revokedKey()] {
				continue
			}
		}
		res.status[configfile.DeviceKey(d.Device)] = true // only these: the rest are not in current
	}
	return res, nil
}

// scanChanges reads the device records that can have changed state since
// the previous refresh, which found prev (and noteRevoked prevNoted).
func (a *App) scanChanges(ctx context.Context, revoked, prev, prevNoted, recheck map[string]bool) revokedScan {
	z := a.authz // z.pending is guarded by z.refreshMu, held
	if z.pending == nil {
		z.pending = make(map[string]pendingSerial)
	}
	now := time.Now()
	devices := recheck
	type serialDevice struct {
		key string
		p   pendingSerial
	}
	var bySerial []serialDevice
	resolve := func(k string, p pendingSerial) {
		if p.device == "" {
			profile, serial, _ := strings.Cut(k, "/")
			c := a.cas[profile]
			if c == nil {
				delete(z.pending, k)
				return
			}
			rec, err := c.Lookup(ctx, serial)
			if errors.Is(err, ca.ErrNotFound) {
				delete(z.pending, k) // no record, no device to find
				return
			}
			if err != nil {
				z.pending[k] = pendingSerial{} // look it up again next time
				return
			}
			// authz.current goes by every spelling's key
			p = pendingSerial{device: configfile.DeviceKey(rec.Device), until: rec.NotBefore.Add(ca.Backdate + recentIssuance)}
		}
		devices[p.device] = true
		bySerial = append(bySerial, serialDevice{k, p})
	}
	for k, p := range z.pending {
		if !revoked[k] {
			delete(z.pending, k)
			continue
		}
		resolve(k, p)
	}
	for k := range revoked {
		if prev[k] || prevNoted[k] {
			continue
		}
		if _, ok := z.pending[k]; ok {
			continue // just handled
		}
		resolve(k, pendingSerial{})
	}

	res := revokedScan{status: make(map[string]bool, len(devices)), failed: make(map[string]struct{})}
	names := make(map[string]string, len(bySerial)) // device → its record's "profile/serial"
	for d := range devices {
		rec, err := a.readDeviceRecord(ctx, a.fileName(d))
		if err != nil {
			res.failed[d] = struct{}{}
			continue
		}
		if rec == nil {
			res.status[d] = false
			continue
		}
		res.status[d] = revoked[rec.revokedKey()]
		names[d] = rec.revokedKey()
	}
	for _, s := range bySerial {
		_, failed := res.failed[s.p.device]
		switch {
		case failed:
			z.pending[s.key] = s.p
		case names[s.p.device] == s.key:
			delete(z.pending, s.key) // in current now; it is followed there
		case now.Before(s.p.until):
			z.pending[s.key] = s.p // its issuance may not have written the device record yet
		default:
			delete(z.pending, s.key) // superseded, or not the device's current certificate
		}
	}
	return res
}

// noteRevoked records local revocations and changes of a device's current
// certificate at once: serials revoked (already stored), and whether the
// device's current certificate is now revoked. The next refresh reads the
// device's record again, in case another instance changed it meanwhile.
//
// It records them too in the state of every other configuration using the
// profile's CA on this storage: a reload that added or dropped a CA has
// another state, which the previous configuration's last revocations
// (requests in flight, a disabled device's) must reach at once as well.
func (a *App) noteRevoked(profile, device string, serials []string, current bool) {
	z := a.authz.revocations
	z.note(profile, device, serials, current)
	key := z.caKeys[profile]
	if key == "" {
		return
	}
	var others []*revocations
	revocationsPool.Range(func(_, v any) bool {
		if o, ok := v.(*revocations); ok && o != z && o.caKeys[profile] == key {
			others = append(others, o)
		}
		return true
	})
	for _, o := range others {
		o.note(profile, device, serials, current)
	}
}

// noteCurrent notes whether the current certificate of device, as its
// record names it, is revoked, after revocations noteRevoked recorded
// without the device (a refresh does not look for the devices of serials
// noted). One record read; while it fails the device counts as revoked,
// until a refresh reads the record.
func (a *App) noteCurrent(ctx context.Context, device string) {
	name := configfile.DeviceKey(device)
	rec, err := a.readDeviceRecord(ctx, a.fileName(device))
	switch {
	case err != nil:
		for profile := range a.cas {
			a.noteRevoked(profile, name, nil, true)
		}
	case rec != nil && rec.Serial != "" && a.serialRevoked(rec.Profile, rec.Serial):
		a.noteRevoked(rec.Profile, name, nil, true)
	}
}

func (z *revocations) note(profile, device string, serials []string, current bool) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.init()
	for _, s := range serials {
		z.noted[profile+"/"+strings.ToLower(s)] = z.gen
	}
	if device != "" {
		d := configfile.DeviceKey(device)
		if current {
			z.current[d] = true
		} else {
			delete(z.current, d)
		}
		z.touched[d] = z.gen
	}
}

// init makes the maps; z.mu is held.
func (z *revocations) init() {
	if z.revoked == nil {
		z.revoked = make(map[string]bool)
	}
	if z.noted == nil {
		z.noted = make(map[string]uint64)
	}
	if z.current == nil {
		z.current = make(map[string]bool)
	}
	if z.touched == nil {
		z.touched = make(map[string]uint64)
	}
}

// serialRevoked reports whether a certificate of a profile is revoked.
func (a *App) serialRevoked(profile, serial string) bool {
	k := profile + "/" + strings.ToLower(serial)
	a.authz.mu.RLock()
	defer a.authz.mu.RUnlock()
	if a.authz.revoked[k] {
		return true
	}
	_, ok := a.authz.noted[k]
	return ok
}

// fileName is how the configuration file writes a device (its name as
// given when the file does not list it), as the route table in force says:
// requests never wait for the file's lock, which a rebuild holds.
func (a *App) fileName(device string) string {
	if a.router != nil {
		if d, ok := a.router.Load().Device(device); ok {
			return d.Name
		}
		return device
	}
	if a.cfg == nil {
		return device
	}
	return a.cfg.device(device).Name
}

// eligible is the routing hook: a device qualifies unless the current
// certificate this server issued it is revoked. (Devices marked enrolled by
// an imported file, with no certificate from this server, qualify: the flag
// is the truth.)
func (a *App) eligible(device string) bool {
	a.authz.mu.RLock()
	defer a.authz.mu.RUnlock()
	return !a.authz.current[configfile.DeviceKey(device)]
}

// usable reports whether a device may take part in calls: enabled and
// enrolled in the configuration file, and eligible.
func (a *App) usable(table *routing.Table, device string) bool {
	d, ok := table.Device(device)
	return device != "" && ok && d.Enabled && d.Enrolled && a.eligible(device)
}

// errForeignCertificate: a client certificate this clearinghouse did not
// issue (an OSP site may then still know the gateway by its address).
var errForeignCertificate = errors.New("not issued by this clearinghouse")

// identifyByCertificate finds the device a TLS client certificate was
// issued to: it must be byte for byte a certificate this server issued
// (so MD5-signed legacy certificates, which Go's TLS stack cannot verify,
// are accepted exactly when they are ours), valid now and not revoked.
func (a *App) identifyByCertificate(ctx context.Context, cert *x509.Certificate) (device, profile string, err error) {
	serial := cert.SerialNumber.Text(16)
	key := ca.FingerprintHex(cert.Raw)
	a.authz.identMu.RLock()
	id, hit := a.authz.idents[key]
	a.authz.identMu.RUnlock()
	var rec *ca.Record
	if _, err := ca.NormalizeSerial(serial); err != nil && !hit {
		// a serial no CA of ours gives (zero, negative, over 32 bytes)
		return "", "", fmt.Errorf("client certificate %s was %w", serial, errForeignCertificate)
	}
	if !hit {
		for p, c := range a.cas {
			r, err := c.Lookup(ctx, serial)
			if errors.Is(err, ca.ErrNotFound) {
				continue
			}
			if err != nil {
				// not known to be foreign: never passed by its address
				return "", p, fmt.Errorf("client certificate %s: %v", serial, err)
			}
			if string(r.DER) == string(cert.Raw) {
				rec, id = r, identity{device: r.Device, profile: p, serial: serial}
				break
			}
		}
		if rec == nil {
			return "", "", fmt.Errorf("client certificate %s was %w", serial, errForeignCertificate)
		}
	}
	// TLS checks no validity period with client_auth mode request (the
	// legacy profile's MD5 certificates need it)
	if now := a.now(); now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return "", id.profile, fmt.Errorf("client certificate %s is valid from %s to %s, not now", serial,
			cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if (rec != nil && rec.Revoked) || a.serialRevoked(id.profile, id.serial) {
		return "", id.profile, fmt.Errorf("certificate %s of %s is revoked", id.serial, id.device)
	}
	if hit {
		return id.device, id.profile, nil
	}
	a.followReenrollment(ctx, id.profile, id.device, serial)
	a.authz.identMu.Lock()
	if a.authz.idents == nil || len(a.authz.idents) >= maxCachedIdentities {
		a.authz.idents = make(map[string]identity)
	}
	a.authz.idents[key] = id
	a.authz.identMu.Unlock()
	return id.device, id.profile, nil
}

// followReenrollment is called when a device presents, for the first time
// here, a good certificate of ours while its current certificate counts as
// revoked: it may have enrolled again through another instance sharing the
// storage since (which the next refresh would find). Its record is read
// now, so that the certificate that record names is good here at once, as
// on the instance that issued it. One storage read, only in that case.
func (a *App) followReenrollment(ctx context.Context, profile, device, serial string) {
	name := configfile.DeviceKey(device)
	a.authz.mu.RLock()
	flagged := a.authz.current[name]
	a.authz.mu.RUnlock()
	if !flagged {
		return
	}
	rec, err := a.readDeviceRecord(ctx, a.fileName(device))
	if err != nil || rec == nil || rec.Profile != profile || !strings.EqualFold(rec.Serial, serial) {
		return
	}
	a.noteRevoked(profile, name, nil, false) // the next refresh checks it again
}

// errSignedTokensIntermediate refuses signed tokens (both forms) of a CA
// with an intermediate.
var errSignedTokensIntermediate = errors.New("signed tokens need a CA without an intermediate (gateways verify them against the root alone); use tokens unsigned only in a lab, or a CA without intermediate")

// caTokenSigner returns the CA of a profile as its own token signer
// (`tokens ca_signed`): tokens without an embedded certificate, small
// enough for the OpenSIPS/Kamailio OSP modules. The rules of tokenSigner
// hold: no intermediate (gateways hold the root and verify with
// PKCS7_NOCHAIN; an intermediate's signature has no path to it), and
// nothing is signed once the CA has expired.
func (a *App) caTokenSigner(profile string) (*osp.TokenSigner, error) {
	c, err := a.authority(profile)
	if err != nil {
		return nil, err
	}
	if len(c.Chain()) > 1 {
		return nil, errSignedTokensIntermediate
	}
	if why := a.caExpired(c); why != "" {
		return nil, fmt.Errorf("%w: %s", errCAExpired, why)
	}
	key, cert := c.TokenSigningKey()
	return &osp.TokenSigner{Cert: cert, Key: key, CASigned: true}, nil
}

// tokenSigner returns the token signing key and certificate of a profile,
// creating or renewing them in storage when missing, expiring (last third
// of their life) or issued by another CA.
func (a *App) tokenSigner(ctx context.Context, profile string) (*osp.TokenSigner, error) {
	a.authz.signerMu.Lock()
	defer a.authz.signerMu.Unlock()
	c, err := a.authority(profile)
	if err != nil {
		return nil, err
	}
	if len(c.Chain()) > 1 {
		// gateways check a token with PKCS7_NOCHAIN against the CA
		// certificate enrollment gave them, the root: a signer the
		// intermediate issued has no path to it
		return nil, errSignedTokensIntermediate
	}
	if e, ok := a.authz.signers[profile]; ok && e.ca == c && a.now().Before(e.renewAt) {
		return e.signer, nil
	}
	// checked before the lock and a new key: asked at every authorization
	if why := a.caExpired(c); why != "" {
		return nil, fmt.Errorf("%w: %s", errCAExpired, why)
	}
	lock := "clearinghouse_osp_token_" + profile
	if err := a.storage.Lock(ctx, lock); err != nil {
		return nil, err
	}
	defer a.storage.Unlock(context.WithoutCancel(ctx), lock)
	keyKey := path.Join("clearinghouse", "osp", profile, "token.key")
	certKey := path.Join("clearinghouse", "osp", profile, "token.crt")
	if s, err := loadSigner(ctx, a, keyKey, certKey); err == nil && signerFresh(s, c, a.now()) {
		a.setSigner(profile, s, c)
		return s, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	is, err := c.IssueTokenSigner(key.Public(), c.Root().Subject.CommonName+" token signer", 90*24*time.Hour)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := a.storage.Store(ctx, keyKey, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})); err != nil {
		return nil, err
	}
	if err := a.storage.Store(ctx, certKey, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: is.DER})); err != nil {
		return nil, err
	}
	s := &osp.TokenSigner{Cert: is.Cert, Key: key}
	a.setSigner(profile, s, c)
	a.log.Info("new OSP token signer", zap.String("profile", profile), zap.String("serial", is.Serial),
		zap.Time("not_after", is.NotAfter))
	return s, nil
}

func (a *App) setSigner(profile string, s *osp.TokenSigner, c *ca.CA) {
	if a.authz.signers == nil {
		a.authz.signers = make(map[string]signerEntry)
	}
	a.authz.signers[profile] = signerEntry{signer: s, ca: c, renewAt: signerRenewAt(s, c)}
}

// signerRenewAt is when a token signer is renewed: in the last third of
// its life, unless it ends with its CA (a new one could not last longer).
func signerRenewAt(s *osp.TokenSigner, c *ca.CA) time.Time {
	if !s.Cert.NotAfter.Before(caEnd(c)) {
		return s.Cert.NotAfter
	}
	life := s.Cert.NotAfter.Sub(s.Cert.NotBefore)
	return s.Cert.NotAfter.Add(-life / 3)
}

func signerFresh(s *osp.TokenSigner, c *ca.CA, now time.Time) bool {
	if !now.Before(signerRenewAt(s, c)) {
		return false
	}
	// issued by this CA: its name (gateways chain by it) and its key (the
	// legacy root's own MD5 self-signature is not involved)
	return bytes.Equal(s.Cert.RawIssuer, c.Issuer().RawSubject) &&
		c.Issuer().CheckSignature(s.Cert.SignatureAlgorithm, s.Cert.RawTBSCertificate, s.Cert.Signature) == nil
}

func loadSigner(ctx context.Context, a *App, keyKey, certKey string) (*osp.TokenSigner, error) {
	kb, err := a.storage.Load(ctx, keyKey)
	if err != nil {
		return nil, err
	}
	cb, err := a.storage.Load(ctx, certKey)
	if err != nil {
		return nil, err
	}
	kblock, _ := pem.Decode(kb)
	cblock, _ := pem.Decode(cb)
	if kblock == nil || cblock == nil {
		return nil, errors.New("token signer: bad PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(kblock.Bytes)
	if err != nil {
		return nil, err
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("token signer: key cannot sign")
	}
	cert, err := x509.ParseCertificate(cblock.Bytes)
	if err != nil {
		return nil, err
	}
	// two writes: a crash between them (or another instance renewing)
	// can leave a key without its certificate; such a pair is renewed
	if pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
		return nil, errors.New("token signer: key and certificate do not match")
	}
	return &osp.TokenSigner{Cert: cert, Key: signer}, nil
}
