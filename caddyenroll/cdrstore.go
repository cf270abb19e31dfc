package caddyenroll

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Records are kept in day buckets, one storage "directory" per UTC day of
// Received:
//
//	clearinghouse/cdrs/<YYYY-MM-DD>/<txid>-<reporter>-<role>[.<state>]-<attempt>.json
//
// so that a period is exported by listing only its buckets, and purged by
// deleting them whole. Earlier versions named records in buckets
// <txid>-<role>-<attempt>.json (no reporter): exports and purges read a
// bucket whatever its keys are named, so those go with their day. Keys
// directly under cdrs/ that end in .json are the flat layout of earlier
// versions: exported (filtered by their Received when a range is asked
// for) and purged by their Received.

// cdrDayLayout is the name of a bucket, and the form of the days the admin
// API takes.
const cdrDayLayout = "2006-01-02"

func cdrsPrefix() string { return path.Join("clearinghouse", "cdrs") }

// cdrBucket is the bucket of the UTC day that t falls in.
func cdrBucket(t time.Time) string { return path.Join(cdrsPrefix(), t.UTC().Format(cdrDayLayout)) }

// cdrName names a record by transaction id, reporting device, role and
// attempt: the OSP Toolkit reports every destination a source tried in one
// UsageIndication, each with the same transaction id and role (the failed
// first attempt, then the call that connected), told apart by call id,
// destination and destination device (devices may share an address). The
// reporter is part of the name so that a device's records
// are deduplicated only against its own retries: the source of a call
// knows its transaction id, call id and destination, and must not be able
// to file a role=destination record first that turns the terminating
// device's record into a "duplicate". A device that reports a call more
// than once (<RoleInfo><State> start, interim, stop) has each report named
// apart: role.state; the interim reports of a call (the toolkit's interim,
// interim1, interim2, interimfailed, each sent as often as the gateway
// likes) also by the duration they report, so that each is kept while its
// retry is still a duplicate. A report without transaction id (the toolkit
// leaves it out when the call was not authorized) is told apart by its
// start time as well: two such calls may share a call id.
func cdrName(c CDR) string {
	of := c.CallID + "\x00" + c.Destination
	if c.DestinationDevice != "" {
		// attempts at two devices sharing an address (records without
		// a device keep the names they had)
		of += "\x00device\x00" + c.DestinationDevice
	}
	if strings.HasPrefix(strings.ToLower(c.RoleState), "interim") {
		of += "\x00" + strconv.FormatFloat(c.Duration, 'g', -1, 64)
	}
	if c.TransactionID == 0 {
		of += "\x00" + c.StartTime.UTC().Format(time.RFC3339Nano)
	}
	attempt := sha256.Sum256([]byte(of))
	role := cdrRole(c.Role)
	if c.RoleState != "" { // a start and a stop report of a call are two records
		role += "." + cdrRole(c.RoleState)
	}
	return strconv.FormatUint(c.TransactionID, 10) + "-" + cdrReporter(c.Reporter) + "-" + role + "-" +
		hex.EncodeToString(attempt[:6]) + ".json"
}

// cdrRole is the role's part of a record's name. The role is the device's
// free text: a role of lower-case letters and digits (source, destination,
// other, the toolkit's radsrcstart…) is kept as it is, any other is hashed,
// so that no role can put a separator, a "/" or a ".." into the key (and
// reach another reporter's record or a path outside the CDR bucket).
func cdrRole(role string) string {
	role = strings.ToLower(role)
	if role == "" {
		return "other"
	}
	if len(role) <= 32 && strings.Trim(role, "abcdefghijklmnopqrstuvwxyz0123456789") == "" {
		return role
	}
	return "x" + hashKey("cdr role", role)[:16]
}

// cdrReporter is the reporter's part of a record's name: a hash of the
// device name (which may hold any character), case-insensitive as device
// names are. 64 bits: no device finds a name that collides with another's.
func cdrReporter(device string) string { return hashKey("cdr reporter", strings.ToLower(device))[:16] }

// cdrKey is where a record is stored: its name in the bucket of the day it
// was received. The key is a function of the record alone (never of the
// clock at the time of storing).
func cdrKey(c CDR) string { return path.Join(cdrBucket(c.Received), cdrName(c)) }

// cdrMidnightWindow is how close to midnight UTC a record must be received
// for storeCDR to take its lock.
const cdrMidnightWindow = 5 * time.Minute

// nearMidnight reports whether t is within cdrMidnightWindow of a midnight
// UTC, before or after.
func nearMidnight(t time.Time) bool {
	d := t.Sub(utcDay(t))
	return d < cdrMidnightWindow || d > 24*time.Hour-cdrMidnightWindow
}

// cdrLockName is the storage lock of the records of a name, whatever day.
func cdrLockName(name string) string { return "clearinghouse_cdr_" + hashKey("cdr lock", name)[:32] }

// storeCDR stores a usage record unless the same device stored one with
// the same transaction id, role and state, call id and destination (and,
// for an interim report, duration: see cdrName), its retry of the
// UsageIndication, in the bucket of its day or of the day before: retries
// come within minutes, and one just after midnight UTC finds the record in
// the previous bucket. Records are written atomically by the storage; a key
// is derived from its record alone (bucket from Received, name from the
// reporter and call fields), never from the clock when storing, so the
// same key always gets the same call (received the same day), and
// concurrent duplicates of a day write one key.
//
// Records named by earlier versions (without the reporter, with a role
// that is now hashed, see cdrRole, an interim report without its
// duration, or an attempt without its destination device, see cdrName)
// are not looked up: a retry across the upgrade may
// be stored twice, once under each name.
//
// Exists then Store is not atomic: two instances storing a record and its
// retry received on either side of midnight would both find nothing. So a
// record received within cdrMidnightWindow of midnight is checked and
// stored under the storage lock of its name, which both take. Left: a
// store that takes longer than the window.
func (a *App) storeCDR(ctx context.Context, c CDR) (stored bool, err error) {
	key := cdrKey(c)
	name := path.Base(key)
	if nearMidnight(c.Received) {
		lock := cdrLockName(name)
		if err := a.storage.Lock(ctx, lock); err != nil {
			return false, fmt.Errorf("locking call detail record: %v", err)
		}
		defer func() { _ = a.storage.Unlock(context.WithoutCancel(ctx), lock) }()
	}
	if a.storage.Exists(ctx, key) ||
		a.storage.Exists(ctx, path.Join(cdrBucket(c.Received.AddDate(0, 0, -1)), name)) ||
		// near midnight the first copy may be in the next day's bucket too:
		// received by an instance whose clock is a little ahead
		nearMidnight(c.Received) && a.storage.Exists(ctx, path.Join(cdrBucket(c.Received.AddDate(0, 0, 1)), name)) {
		return false, nil
	}
	b, err := json.Marshal(c)
	if err != nil {
		return false, err
	}
	return true, a.storage.Store(ctx, key, b)
}

// dayRange is an inclusive range of UTC days; a zero bound is open.
type dayRange struct {
	since, until time.Time // midnight UTC
}

// contains reports whether the UTC day of t is in the range.
func (r dayRange) contains(t time.Time) bool {
	d := utcDay(t)
	return (r.since.IsZero() || !d.Before(r.since)) && (r.until.IsZero() || !d.After(r.until))
}

// utcDay is midnight UTC of the day t falls in.
func utcDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// parseDay parses a UTC day written YYYY-MM-DD.
func parseDay(s string) (time.Time, error) {
	d, err := time.Parse(cdrDayLayout, s)
	if err != nil || d.Format(cdrDayLayout) != s {
		return time.Time{}, fmt.Errorf("%q is not a date (want YYYY-MM-DD)", s)
	}
	return d, nil
}

// cdrDayBucket is a bucket found in storage.
type cdrDayBucket struct {
	day time.Time
	key string
}

// cdrLayout lists the day buckets (oldest first) and the records of the
// flat layout. Other keys under cdrs/ are not ours and are left alone.
func (a *App) cdrLayout(ctx context.Context) (buckets []cdrDayBucket, legacy []string, err error) {
	keys, err := a.state.list(ctx, cdrsPrefix())
	if err != nil {
		return nil, nil, fmt.Errorf("listing call detail records: %v", err)
	}
	for _, k := range keys {
		name := path.Base(k)
		if d, err := parseDay(name); err == nil {
			buckets = append(buckets, cdrDayBucket{day: d, key: path.Join(cdrsPrefix(), name)})
		} else if strings.HasSuffix(name, ".json") {
			legacy = append(legacy, path.Join(cdrsPrefix(), name))
		}
	}
	sort.Slice(buckets, func(i, j int) bool { return buckets[i].day.Before(buckets[j].day) })
	return buckets, legacy, nil
}

// loadCDR reads the record of key: ok is false when it is gone (a purge),
// size its stored length. The errors are loadJSON's.
func (a *App) loadCDR(ctx context.Context, key string) (c CDR, size int, ok bool, err error) {
	b, err := a.state.st.Load(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return c, 0, false, nil
	}
	if err != nil {
		return c, 0, false, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, 0, false, fmt.Errorf("corrupt record %s: %v", key, err)
	}
	return c, len(b), true, nil
}

// cdrExportHeldRecords and cdrExportHeldBytes (of stored JSON) bound the
// records of one day an export holds decoded at once: a day above either
// is read twice, first keeping only each record's place in the order (a
// cdrEntry, about 100 bytes with its key), then record by record as each
// is written, so that a carrier's day of a million records of several KB
// each (details reach 1 MiB, osp.MaxFlattenBytes) does not take gigabytes
// from the process that serves calls. A smaller day is read once, whole.
// Variables so that tests can lower them.
var (
	cdrExportHeldRecords = 4096
	cdrExportHeldBytes   = 8 << 20
)

// cdrEntry is a record's place in an export: received, then transaction
// id, then storage key (unique, so the order is total and the same in
// both ways of reading a day). c is the record while its day is held
// whole, nil when it is read again to be written.
type cdrEntry struct {
	received time.Time
	tx       uint64
	key      string
	c        *CDR
}

func compareCDREntries(x, y cdrEntry) int {
	if c := x.received.Compare(y.received); c != 0 {
		return c
	}
	if c := cmp.Compare(x.tx, y.tx); c != 0 {
		return c
	}
	return strings.Compare(x.key, y.key)
}

// loadCDRs appends the records of keys that are in the range to out, each
// held. Keys that are not records (an atomic write's temporary file) and
// records gone meanwhile (a purge) are skipped; a record that cannot be
// read fails the load: an export must not look whole without it (a purge
// would then delete it unexported).
func (a *App) loadCDRs(ctx context.Context, keys []string, r dayRange, out []cdrEntry) ([]cdrEntry, error) {
	for _, k := range keys {
		if !strings.HasSuffix(k, ".json") {
			continue
		}
		c, _, ok, err := a.loadCDR(ctx, k)
		if err != nil {
			return out, fmt.Errorf("reading call detail record %s: %v", k, err)
		}
		if !ok || !r.contains(c.Received) {
			continue
		}
		out = append(out, cdrEntry{received: c.Received, tx: c.TransactionID, key: k, c: &c})
	}
	return out, nil
}

// loadDayCDRs appends the records of a bucket's keys to out (which holds
// the day's flat records from held on) as loadCDRs does, holding them
// until the day exceeds cdrExportHeldRecords or cdrExportHeldBytes; from
// then on only their entries are kept (and the bucket's records held so
// far are let go), to be read again when written.
func (a *App) loadDayCDRs(ctx context.Context, keys []string, out []cdrEntry) ([]cdrEntry, error) {
	flat := len(out)
	n, size, whole := 0, 0, true
	for _, k := range keys {
		if !strings.HasSuffix(k, ".json") {
			continue
		}
		c, sz, ok, err := a.loadCDR(ctx, k)
		if err != nil {
			return out, fmt.Errorf("reading call detail record %s: %v", k, err)
		}
		if !ok {
			continue
		}
		e := cdrEntry{received: c.Received, tx: c.TransactionID, key: k}
		if whole {
			n, size = n+1, size+sz
			if whole = n <= cdrExportHeldRecords && size <= cdrExportHeldBytes; whole {
				e.c = &c
			} else {
				// flat records stay held: one moved meanwhile
				// (migrateFlatCDRs) is not read again from its flat key
				for i := flat; i < len(out); i++ {
					out[i].c = nil
				}
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// eachCDR calls fn with the stored records received in the range, oldest
// first (received, then transaction id, then storage key), holding at
// most one UTC day's records in memory at a time, and of a large day only
// their entries (see cdrExportHeldRecords): an export of years does not
// load them all. Only the buckets of the range are read (and the flat
// records of earlier versions, with the day they belong to). A record
// gone by the time it is read again is skipped, one that cannot be read
// fails the export. It stops at fn's first error.
func (a *App) eachCDR(ctx context.Context, r dayRange, fn func(CDR) error) error {
	buckets, legacy, err := a.cdrLayout(ctx)
	if err != nil {
		return err
	}
	byDay := make(map[time.Time][]cdrEntry)
	for _, k := range legacy {
		flat, err := a.loadCDRs(ctx, []string{k}, r, nil)
		if err != nil {
			return err
		}
		// one moved into its bucket already, its flat copy not yet
		// deleted (migrateFlatCDRs), is exported from the bucket
		for _, e := range flat {
			if !a.storage.Exists(ctx, path.Join(cdrBucket(e.received), path.Base(k))) {
				byDay[utcDay(e.received)] = append(byDay[utcDay(e.received)], e)
			}
		}
	}
	bucketOf := make(map[time.Time]string)
	var days []time.Time
	for _, b := range buckets {
		if r.contains(b.day) {
			bucketOf[b.day] = b.key
			days = append(days, b.day)
		}
	}
	for d := range byDay {
		if _, ok := bucketOf[d]; !ok {
			days = append(days, d)
		}
	}
	sort.Slice(days, func(i, j int) bool { return days[i].Before(days[j]) })
	for _, d := range days {
		list := byDay[d]
		delete(byDay, d)
		if key, ok := bucketOf[d]; ok {
			keys, err := a.state.list(ctx, key) // none if purged meanwhile
			if err != nil {
				return fmt.Errorf("listing call detail records of %s: %v", path.Base(key), err)
			}
			if list, err = a.loadDayCDRs(ctx, keys, list); err != nil {
				return err
			}
		}
		slices.SortFunc(list, compareCDREntries)
		for i, e := range list {
			c := e.c
			if c == nil {
				again, _, ok, err := a.loadCDR(ctx, e.key)
				if err != nil {
					return fmt.Errorf("reading call detail record %s: %v", e.key, err)
				}
				if !ok {
					continue // purged meanwhile
				}
				c = &again
			}
			list[i].c = nil // written: let it go
			if err := fn(*c); err != nil {
				return err
			}
		}
	}
	return nil
}

// migrateFlatCDRs moves the records of the flat layout of the first
// versions into the buckets of their days (keeping their names), under
// the purge lock: exports then read one day at a time instead of loading
// them all first. A record is stored in its bucket before its flat copy is
// deleted (an export in between skips the flat copy); unreadable ones stay
// where they are, out of exports as before. It returns how many it moved.
func (a *App) migrateFlatCDRs(ctx context.Context) (int, error) {
	if _, legacy, err := a.cdrLayout(ctx); err != nil || len(legacy) == 0 {
		return 0, err
	}
	if err := a.storage.Lock(ctx, cdrPurgeLock); err != nil {
		return 0, fmt.Errorf("locking the call detail records: %v", err)
	}
	defer func() { _ = a.storage.Unlock(context.WithoutCancel(ctx), cdrPurgeLock) }()
	_, legacy, err := a.cdrLayout(ctx)
	if err != nil {
		return 0, err
	}
	moved := 0
	for _, k := range legacy {
		b, err := a.storage.Load(ctx, k)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return moved, fmt.Errorf("reading call detail record %s: %v", path.Base(k), err)
		}
		var c CDR
		if json.Unmarshal(b, &c) != nil || c.Received.IsZero() {
			continue
		}
		if err := a.storage.Store(ctx, path.Join(cdrBucket(c.Received), path.Base(k)), b); err != nil {
			return moved, fmt.Errorf("moving call detail record %s: %v", path.Base(k), err)
		}
		if err := a.storage.Delete(ctx, k); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return moved, fmt.Errorf("moving call detail record %s: %v", path.Base(k), err)
		}
		moved++
	}
	return moved, nil
}

// cdrs lists the stored records received in the range, oldest first.
func (a *App) cdrs(ctx context.Context, r dayRange) ([]CDR, error) {
	out := []CDR{}
	err := a.eachCDR(ctx, r, func(c CDR) error { out = append(out, c); return nil })
	return out, err
}

// cdrPurgeLock is the storage lock purges run under, so that instances
// sharing a storage do not purge the same buckets at once.
const cdrPurgeLock = "clearinghouse_cdrs_purge"

// CDRPurge is what a purge deleted.
type CDRPurge struct {
	DeletedDays          []string `json:"deleted_days"`
	DeletedLegacyRecords int      `json:"deleted_legacy_records"`
}

// purgeCDRs deletes the buckets of the days strictly before the day of
// before, and the flat records of earlier versions received before it. On
// an error, the result tells what was deleted until then.
func (a *App) purgeCDRs(ctx context.Context, before time.Time) (CDRPurge, error) {
	res := CDRPurge{DeletedDays: []string{}}
	before = utcDay(before)
	if err := a.storage.Lock(ctx, cdrPurgeLock); err != nil {
		return res, fmt.Errorf("locking the purge of call detail records: %v", err)
	}
	defer func() { _ = a.storage.Unlock(context.WithoutCancel(ctx), cdrPurgeLock) }()

	buckets, legacy, err := a.cdrLayout(ctx)
	if err != nil {
		return res, err
	}
	for _, b := range buckets {
		if !b.day.Before(before) {
			break // sorted
		}
		if err := a.state.deleteDir(ctx, b.key); err != nil {
			return res, fmt.Errorf("deleting the call detail records of %s: %v", path.Base(b.key), err)
		}
		res.DeletedDays = append(res.DeletedDays, path.Base(b.key))
	}
	for _, k := range legacy {
		var c CDR
		if ok, err := a.state.loadJSON(ctx, k, &c); err != nil || !ok || !c.Received.Before(before) {
			continue // unreadable records stay, as they stay out of exports
		}
		if err := a.storage.Delete(ctx, k); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return res, fmt.Errorf("deleting call detail record %s: %v", path.Base(k), err)
		}
		res.DeletedLegacyRecords++
	}
	return res, nil
}
