package caddyenroll

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

// Request states.
const (
	statePending  = "pending"
	stateIssued   = "issued"
	stateRejected = "rejected"
)

// Request is one enrollment request: a device name and a public key.
// A device's `request` and every later `retrieve` with the same CSR key
// find it again, whatever nonce they carry (the OSP Toolkit sends a new
// nonce on retrieve).
type Request struct {
	ID              string    `json:"id"`
	Profile         string    `json:"profile"`
	Device          string    `json:"device"`
	DeviceID        string    `json:"device_id,omitempty"`
	Customer        string    `json:"customer,omitempty"`
	Username        string    `json:"username,omitempty"`
	ClientAddr      string    `json:"client_addr,omitempty"`
	PublicKeySHA256 string    `json:"public_key_sha256"`
	CSR             []byte    `json:"csr"`
	ServerNonce     string    `json:"server_nonce"`
	State           string    `json:"state"`
	Known           bool      `json:"known_device"`
	Group           string    `json:"group,omitempty"`
	Reason          string    `json:"reason,omitempty"`
	Created         time.Time `json:"created"`
	Updated         time.Time `json:"updated"`
	// Held: the request waits because max_issued_per_device was reached
	// under approval auto (Reason says until when); it is issued when the
	// device asks again once the window allows.
	Held        bool      `json:"held,omitempty"`
	Serial      string    `json:"serial,omitempty"`
	Certificate []byte    `json:"certificate,omitempty"`
	NotAfter    time.Time `json:"not_after,omitempty"`
}

// DeviceRecord keeps the ids a device first enrolled with, which later
// enrollments must repeat, and its current certificate.
type DeviceRecord struct {
	Device   string    `json:"device"`
	DeviceID string    `json:"device_id,omitempty"`
	Customer string    `json:"customer,omitempty"`
	Profile  string    `json:"profile,omitempty"`
	Serial   string    `json:"serial,omitempty"`
	Enrolled time.Time `json:"enrolled,omitempty"`
	// Certificates issued to the device recently (max_issued_per_device).
	Issued []Issuance `json:"issued,omitempty"`
}

// stateStore keeps requests, nonces and device records in Caddy's storage
// under "clearinghouse/enroll/". Changes to one device happen under that
// device's storage lock, so instances sharing a storage act as one server.
type stateStore struct {
	st certmagic.Storage
	// how long client nonces are remembered at least (nonces.go)
	retention time.Duration
	// the clock of nonce buckets; tests move it
	now func() time.Time
	// the wall clock at the app's start plus the monotonic time since (nil:
	// none; App.Provision sets it): nonce lookups, binds and the janitor
	// use its buckets too (nonces.go)
	sinceStart func() time.Time
	// bucket sizes of other retentions whose buckets lookups read too
	// (noncesizes.go)
	otherSizes atomic.Pointer[[]nonceSize]
	// whether the record lists this store's size (noncesizes.go)
	ownSize ownSizeRecorded
	// the names of failed-login records (failurenames.go)
	failureNames failureNames
}

const statePrefix = "clearinghouse/enroll"

func newStateStore(st certmagic.Storage, nonceRetention time.Duration) *stateStore {
	return &stateStore{st: st, retention: nonceRetention, now: time.Now}
}

func hashKey(parts ...string) string {
	var buf [256]byte
	b := buf[:0]
	for _, p := range parts { // "len:part;" each
		b = strconv.AppendInt(b, int64(len(p)), 10)
		b = append(b, ':')
		b = append(b, p...)
		b = append(b, ';')
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// requestID names the request of a device and key in a profile, whatever
// the spelling of the device's name (configfile.DeviceKey: an operator respelling
// its line while a request waits must not make it another request, whose
// nonce binding would refuse the device's retrieves).
func requestID(profile, device, pubKeySHA256 string) string {
	return hashKey("request", profile, configfile.DeviceKey(device), pubKeySHA256)[:32]
}

// legacyRequestID is the id earlier versions gave the request (the device
// name lower-cased, not normalized), when it differs from requestID's.
func legacyRequestID(profile, device, pubKeySHA256 string) string {
	old := hashKey("request", profile, strings.ToLower(device), pubKeySHA256)[:32]
	if old == requestID(profile, device, pubKeySHA256) {
		return ""
	}
	return old
}

func requestKey(id string) string { return path.Join(statePrefix, "requests", id+".json") }

// deviceKey is where a device's record is, whatever the spelling of its
// name (configfile.DeviceKey), as its lock and request ids are: an operator
// respelling its line ("2001:db8:0:0::1" as "2001:db8::1") must not lose
// the ids it enrolled with and its issuance count.
func deviceKey(device string) string {
	return path.Join(statePrefix, "devices", hashKey("device", configfile.DeviceKey(device))+".json")
}

// legacySpelling is how earlier versions keyed a device's state (its name
// lower-cased, not normalized), when that differs from its normal form
// (configfile.DeviceKey); "" when it does not.
func legacySpelling(device string) string {
	if l := strings.ToLower(device); l != configfile.DeviceKey(device) {
		return l
	}
	return ""
}

// legacyDeviceKey is where earlier versions kept the record, when it
// differs from deviceKey.
func legacyDeviceKey(device string) string {
	if l := legacySpelling(device); l != "" {
		return path.Join(statePrefix, "devices", hashKey("device", l)+".json")
	}
	return ""
}

// deviceLockName is the storage lock of a device. Every spelling of one
// device takes one lock (configfile.DeviceKey): the file's name that
// enrollment locks, the CA's normal form that an administrator's
// revocation locks.
func deviceLockName(device string) string {
	return "clearinghouse_enroll_" + hashKey("lock", configfile.DeviceKey(device))[:32]
}

// lockDevice serializes changes to one device across goroutines and
// processes (the storage is wrapped in localLocks). The returned function
// unlocks.
func (s *stateStore) lockDevice(ctx context.Context, device string) (func(), error) {
	name := deviceLockName(device)
	if err := s.st.Lock(ctx, name); err != nil {
		return nil, fmt.Errorf("locking device %s: %w", device, err)
	}
	return func() { _ = s.st.Unlock(context.WithoutCancel(ctx), name) }, nil
}

// list lists the direct children of prefix as full keys, each once (a
// prefix that does not exist yet lists nothing): ca.ListDir, since storage
// modules list otherwise than the file storage (pending/ as a string
// prefix also matches pending-of/…; cdrs/ may come with every record).
func (s *stateStore) list(ctx context.Context, prefix string) ([]string, error) {
	return ca.ListDir(ctx, s.st, prefix)
}

// deleteDir deletes the keys below prefix, then prefix. Delete of a
// "directory" should delete what is below it, but some storage modules
// (caddy-storage-redis, database storages) delete the exact key only and
// would leave every record of a purged bucket behind, still found by
// Exists and Load. Buckets hold keys, not directories: one level is listed.
func (s *stateStore) deleteDir(ctx context.Context, prefix string) error {
	keys, err := s.list(ctx, prefix)
	if err != nil {
		return err
	}
	for _, k := range append(keys, prefix) {
		if err := s.st.Delete(ctx, k); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

func (s *stateStore) loadJSON(ctx context.Context, key string, v any) (bool, error) {
	b, err := s.st.Load(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("corrupt record %s: %v", key, err)
	}
	return true, nil
}

func (s *stateStore) storeJSON(ctx context.Context, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.st.Store(ctx, key, b)
}

func (s *stateStore) request(ctx context.Context, id string) (*Request, error) {
	var r Request
	ok, err := s.loadJSON(ctx, requestKey(id), &r)
	if err != nil || !ok {
		return nil, err
	}
	return &r, nil
}

// Pending requests are also indexed, one marker each under
// clearinghouse/enroll/pending/, so that listing them (the operator's daily
// view, and the pending gauge at start) does not read every request ever
// made. A marker is written before its request becomes pending and removed
// after the request stops being pending; one left by a crash in between is
// skipped, and removed by a listing once older than markerStaleAge (a
// younger one may belong to a request being written, by an instance whose
// clock is behind).

func pendingKey(id string) string { return path.Join(statePrefix, "pending", id) }

// pendingIndexKey marks that the index covers every pending request
// (requests made by versions without it are indexed once, at start).
func pendingIndexKey() string { return path.Join(statePrefix, "pending-index") }

// putRequest stores a request, indexing it first when it is pending.
func (s *stateStore) putRequest(ctx context.Context, r *Request) error {
	if r.State == statePending {
		if err := s.st.Store(ctx, pendingKey(r.ID), s.markerValue(r.ID)); err != nil {
			return err
		}
		if err := s.st.Store(ctx, pendingOfKey(r.Device, r.ID), s.markerValue(r.ID)); err != nil {
			return err
		}
		if old := legacyPendingOfDir(r.Device); old != "" { // where earlier versions look too
			if err := s.st.Store(ctx, path.Join(old, r.ID), s.markerValue(r.ID)); err != nil {
				return err
			}
		}
		if r.Username != "" && !r.Known { // (max_pending_per_account counts unknown devices)
			if err := s.st.Store(ctx, pendingByKey(r.Username, r.ID), s.markerValue(r.ID)); err != nil {
				return err
			}
		}
	}
	return s.storeJSON(ctx, requestKey(r.ID), r)
}

// unindexPending removes the marker of a request that is no longer pending.
func (s *stateStore) unindexPending(ctx context.Context, id string) error {
	if err := s.st.Delete(ctx, pendingKey(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// markerValue is what a marker holds: the request id and when the marker
// was written, its age on storages whose Stat gives no modification time.
func (s *stateStore) markerValue(id string) []byte {
	return []byte(id + " " + s.now().UTC().Format(time.RFC3339Nano))
}

// markerStale reports whether the marker at key is older than
// markerStaleAge: by its modification time, or when the storage gives
// none (KeyInfo.Modified is optional) by the time written in it (a marker
// of earlier versions, the id alone, counts as old).
func (s *stateStore) markerStale(ctx context.Context, key string) bool {
	info, err := s.st.Stat(ctx, key)
	if err != nil {
		return false
	}
	written := info.Modified
	if written.IsZero() {
		b, err := s.st.Load(ctx, key)
		if err != nil {
			return false
		}
		_, at, _ := strings.Cut(string(b), " ")
		written, _ = time.Parse(time.RFC3339Nano, at)
	}
	return s.now().Sub(written) > markerStaleAge
}

// pendingMarkers is the number of pending requests as the index's names
// say, without reading them (a marker a crash left counts until a listing
// removes it).
func (s *stateStore) pendingMarkers(ctx context.Context) (int, error) {
	keys, err := s.list(ctx, path.Join(statePrefix, "pending"))
	return len(keys), err
}

// pendingMarkerGrace is how long a marker's request may take to be
// written after it, and how often a count at its bound is verified.
const pendingMarkerGrace = time.Minute

// markerStaleAge is how old a marker without a pending request must be for
// a listing to remove it: pendingMarkerGrace by the clock of the instance
// that wrote it (or of the storage that stamped it), which may be behind
// this one's by the skew allowed between instances (ca.Backdate). With the
// grace alone, an instance whose clock is more than a minute ahead removed
// the marker of a request another instance was writing.
const markerStaleAge = pendingMarkerGrace + ca.Backdate

// pending lists the pending requests through the index, oldest first.
func (s *stateStore) pending(ctx context.Context) ([]*Request, error) {
	keys, err := s.list(ctx, path.Join(statePrefix, "pending"))
	if err != nil {
		return nil, err
	}
	var out []*Request
	for _, k := range keys {
		if r := s.pendingRequest(ctx, path.Base(k)); r != nil {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

// pendingRequest reads the request a marker of the index names: nil when
// it is unreadable (skipped rather than failing the list) or no longer
// pending. A marker whose request is not pending is stale (a crash after
// a decision) and removed, unless the request is being written: it is
// indexed before it is stored.
func (s *stateStore) pendingRequest(ctx context.Context, id string) *Request {
	r, err := s.request(ctx, id)
	if err != nil {
		return nil
	}
	if r == nil || r.State != statePending {
		if s.markerStale(ctx, pendingKey(id)) {
			if r != nil {
				_ = s.unindexPendingBy(ctx, r.Username, id) // the same crash's
			}
			_ = s.unindexPending(ctx, id)
		}
		return nil
	}
	return r
}

// indexPending indexes, once, the pending requests that versions without
// the index stored. It reads every request, so it runs in the background.
func (s *stateStore) indexPending(ctx context.Context) error {
	if s.st.Exists(ctx, pendingIndexKey()) {
		return nil
	}
	all, err := s.requests(ctx, "")
	if err != nil {
		return err
	}
	for _, r := range all {
		if r.State == statePending {
			if err := s.st.Store(ctx, pendingKey(r.ID), s.markerValue(r.ID)); err != nil {
				return err
			}
		}
	}
	return s.st.Store(ctx, pendingIndexKey(), []byte("1"))
}

// device loads the device's record. For a name whose spelling is not its
// normal form, earlier versions kept it elsewhere (legacyDeviceKey), and
// instances of those versions sharing the storage still read and write it
// there: the newer of the two copies is the record.
func (s *stateStore) device(ctx context.Context, name string) (*DeviceRecord, error) {
	d, _, err := newerDeviceRecord(s.loadDeviceRecord(ctx), deviceKey(name), legacyDeviceKey(name))
	return d, err
}

// loadDeviceRecord loads a device record by key (nil when absent).
func (s *stateStore) loadDeviceRecord(ctx context.Context) func(key string) (*DeviceRecord, error) {
	return func(key string) (*DeviceRecord, error) {
		var d DeviceRecord
		ok, err := s.loadJSON(ctx, key, &d)
		if err != nil || !ok {
			return nil, err
		}
		return &d, nil
	}
}

// newerDeviceRecord loads, with load, the record at key and the copy at
// other ("": none), and returns the newer, and whether it is other's.
func newerDeviceRecord(load func(key string) (*DeviceRecord, error), key, other string) (*DeviceRecord, bool, error) {
	d, err := load(key)
	if err != nil || other == "" {
		return d, false, err
	}
	e, err := load(other)
	if err != nil {
		return nil, false, err
	}
	if e != nil && (d == nil || e.lastChange().After(d.lastChange())) {
		return e, true, nil
	}
	return d, false, nil
}

// lastChange is when the record last changed: its last enrollment or
// issuance.
func (d *DeviceRecord) lastChange() time.Time {
	t := d.Enrolled
	if n := len(d.Issued); n > 0 && d.Issued[n-1].At.After(t) {
		t = d.Issued[n-1].At
	}
	return t
}

// putDevice stores the device's record where it belongs and, for a
// spelling that is not its normal form, where earlier versions keep it too
// (instances of those versions sharing the storage read it there).
func (s *stateStore) putDevice(ctx context.Context, d *DeviceRecord) error {
	if err := s.storeJSON(ctx, deviceKey(d.Device), d); err != nil {
		return err
	}
	if old := legacyDeviceKey(d.Device); old != "" {
		return s.storeJSON(ctx, old, d)
	}
	return nil
}

// forgetIDs clears the device and customer ids the device's record
// holds (under the device's lock), so that its next enrollment records
// them anew; it reports whether there were any.
func (s *stateStore) forgetIDs(ctx context.Context, device string) (bool, error) {
	d, err := s.device(ctx, device)
	if err != nil || d == nil || d.DeviceID == "" && d.Customer == "" {
		return false, err
	}
	d.DeviceID, d.Customer = "", ""
	return true, s.putDevice(ctx, d)
}

// copyDeviceRecord stores the device's record where it belongs, under
// its lock, when the copy where earlier versions keep it is newer.
func (s *stateStore) copyDeviceRecord(ctx context.Context, device string) error {
	old := legacyDeviceKey(device)
	if old == "" {
		return nil
	}
	unlock, err := s.lockDevice(ctx, device)
	if err != nil {
		return err
	}
	defer unlock()
	d, theirs, err := newerDeviceRecord(s.loadDeviceRecord(ctx), deviceKey(device), old)
	if err != nil || !theirs {
		return err
	}
	return s.storeJSON(ctx, deviceKey(device), d)
}

// requests lists requests, optionally only those in one state; pending
// ones come from the index.
func (s *stateStore) requests(ctx context.Context, state string) ([]*Request, error) {
	if state == statePending {
		return s.pending(ctx)
	}
	keys, err := s.list(ctx, path.Join(statePrefix, "requests"))
	if err != nil {
		return nil, err
	}
	var out []*Request
	for _, k := range keys {
		if !strings.HasSuffix(k, ".json") {
			continue
		}
		var r Request
		ok, err := s.loadJSON(ctx, k, &r)
		if err != nil || !ok {
			continue // deleted meanwhile, or unreadable: skip rather than fail the list
		}
		if state == "" || r.State == state {
			out = append(out, &r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

// requestPage lists a page of requests, optionally only those in one
// state (pending ones through the index): those whose id is greater than
// after, in id order, at most limit of them, and whether more follow.
// Only the ids are listed whole; the records are read one at a time until
// the page is full and one more is found, and the page keeps them without
// their CSR and certificate, which listings do not show.
func (s *stateStore) requestPage(ctx context.Context, state, after string, limit int) ([]*Request, bool, error) {
	dir := "requests"
	if state == statePending {
		dir = "pending"
	}
	keys, err := s.list(ctx, path.Join(statePrefix, dir))
	if err != nil {
		return nil, false, err
	}
	ids := make([]string, 0, len(keys))
	for _, k := range keys {
		id := path.Base(k)
		if state != statePending {
			var ok bool
			if id, ok = strings.CutSuffix(id, ".json"); !ok {
				continue
			}
		}
		if id > after {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	var out []*Request
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		var r *Request
		if state == statePending {
			r = s.pendingRequest(ctx, id)
		} else if r, err = s.request(ctx, id); err != nil {
			continue // unreadable: skip rather than fail the list
		}
		if r == nil || state != "" && r.State != state {
			continue // deleted meanwhile, or another state
		}
		if len(out) == limit {
			return out, true, nil
		}
		r.CSR, r.Certificate = nil, nil
		out = append(out, r)
	}
	return out, false, nil
}

// findRequest finds a request by id or by unique id prefix (for the CLI).
func (s *stateStore) findRequest(ctx context.Context, idOrPrefix string) (*Request, error) {
	idOrPrefix = strings.ToLower(strings.TrimSpace(idOrPrefix))
	if len(idOrPrefix) == 32 {
		return s.request(ctx, idOrPrefix)
	}
	if len(idOrPrefix) < 6 {
		return nil, fmt.Errorf("%w: request id %q is too short (give at least 6 characters)", errBadRequest, idOrPrefix)
	}
	// ids are the keys' names: match them without reading the requests
	keys, err := s.list(ctx, path.Join(statePrefix, "requests"))
	if err != nil {
		return nil, err
	}
	var found []string
	for _, k := range keys {
		if id, ok := strings.CutSuffix(path.Base(k), ".json"); ok && strings.HasPrefix(id, idOrPrefix) {
			found = append(found, id)
		}
	}
	switch len(found) {
	case 0:
		return nil, nil
	case 1:
		return s.request(ctx, found[0])
	}
	// named, since decided requests (which the pending list leaves out)
	// share prefixes too: the operator sees how much more to give
	sort.Strings(found)
	if len(found) > 5 {
		found = append(found[:5], "…")
	}
	return nil, fmt.Errorf("%w: request id %q is ambiguous: it begins %s (give more characters)", errBadRequest, idOrPrefix, strings.Join(found, ", "))
}

// copyDeviceRecords stores where they belong the records that earlier
// versions keep under another spelling of the devices' names (the full
// revocation scan at start finds them), when that copy is the newer: a
// device whose line is respelled since is found by its new spelling.
// Instances of those versions sharing the storage may write them again
// until every instance is upgraded; each start copies again.
func (a *App) copyDeviceRecords(ctx context.Context, devices []string) {
	for _, d := range devices {
		if err := a.state.copyDeviceRecord(ctx, d); err != nil {
			a.log.Error("copying a device record of an earlier version where it belongs", zap.String("device", d), zap.Error(err))
		}
	}
}

// takeRespelled takes, for a device the file now spells as name and spelled
// as was before, what earlier versions keep under the former spelling
// (legacySpelling): its record, when newer than the one where it belongs,
// and its pending markers. Instances of those versions sharing the storage
// wrote them there until the respelling.
func (s *stateStore) takeRespelled(ctx context.Context, was, name string) error {
	if legacySpelling(was) == "" {
		return nil
	}
	unlock, err := s.lockDevice(ctx, name)
	if err != nil {
		return err
	}
	defer unlock()
	d, theirs, err := newerDeviceRecord(s.loadDeviceRecord(ctx), deviceKey(name), legacyDeviceKey(was))
	if err != nil {
		return err
	}
	if theirs {
		d.Device = name
		if err := s.putDevice(ctx, d); err != nil {
			return err
		}
	}
	markers, err := s.list(ctx, legacyPendingOfDir(was))
	if err != nil {
		return err
	}
	for _, k := range markers {
		id := path.Base(k)
		if s.st.Exists(ctx, pendingOfKey(name, id)) {
			continue
		}
		if r, err := s.request(ctx, id); err != nil {
			return err
		} else if r == nil || r.State != statePending {
			continue // not a request's marker, or one decided since
		}
		if err := s.st.Store(ctx, pendingOfKey(name, id), s.markerValue(id)); err != nil {
			return err
		}
	}
	return nil
}
