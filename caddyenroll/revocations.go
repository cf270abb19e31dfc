package caddyenroll

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

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

// refreshAfterFailedRevocation refreshes the revocations after a
// revocation failed: one that failed half-way (the disk filled up) may
// have stored the revoked list, which the CRL is made from, before the
// certificate's record, and enrollment and OSP must refuse what the CRL
// lists at once, not at the next refresh (up to revokedRefreshInterval
// later). It reads the storage without a device's lock, so a caller may
// hold one.
func (a *App) refreshAfterFailedRevocation(ctx context.Context) {
	if err := a.refreshRevoked(ctx); err != nil {
		a.log.Error("refreshing revocations after a failed revocation", zap.Error(err))
	}
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
		switch {
		case errors.Is(err, ca.ErrCRLNotRenewed):
			// it lists every revocation: the state is exact
			a.log.Warn("CRL not renewed; reading the stored one", zap.String("profile", profile), zap.Error(err))
		case errors.Is(err, ca.ErrCRLNotStored):
			// signed in memory, it lists every revocation too; the stored
			// one does not (or has expired), and must not be served
			a.log.Error("CRL not stored; reading one signed in memory", zap.String("profile", profile), zap.Error(err))
		case err != nil:
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
