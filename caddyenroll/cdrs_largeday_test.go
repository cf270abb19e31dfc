package caddyenroll

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/http/httptest"
	"os"
	"path"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// memCDRStorage is a storage in memory that lists keys in reverse order
// (a storage module owes no order: the export must not depend on it) and
// counts the loads of each key; onLoad, if set, runs before each load with
// how many loads of the key there were before it, and its error is the
// load's.
type memCDRStorage struct {
	mu     sync.Mutex
	m      map[string][]byte
	loads  map[string]int
	onLoad func(key string, before int) error
}

func newMemCDRStorage() *memCDRStorage {
	return &memCDRStorage{m: map[string][]byte{}, loads: map[string]int{}}
}

func (s *memCDRStorage) Lock(context.Context, string) error   { return nil }
func (s *memCDRStorage) Unlock(context.Context, string) error { return nil }

func (s *memCDRStorage) Store(_ context.Context, key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = slices.Clone(value)
	return nil
}

func (s *memCDRStorage) Load(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	n, hook := s.loads[key], s.onLoad
	s.loads[key]++
	s.mu.Unlock()
	if hook != nil {
		if err := hook(key, n); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.m[key]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return b, nil
}

func (s *memCDRStorage) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.m {
		if k == key || strings.HasPrefix(k, key+"/") {
			delete(s.m, k)
		}
	}
	return nil
}

func (s *memCDRStorage) Exists(_ context.Context, key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.m {
		if k == key || strings.HasPrefix(k, key+"/") {
			return true
		}
	}
	return false
}

func (s *memCDRStorage) List(_ context.Context, prefix string, _ bool) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.m {
		if strings.HasPrefix(k, prefix+"/") {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	slices.Reverse(out)
	return out, nil
}

func (s *memCDRStorage) Stat(_ context.Context, key string) (certmagic.KeyInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.m[key]
	if !ok {
		return certmagic.KeyInfo{}, fs.ErrNotExist
	}
	return certmagic.KeyInfo{Key: key, Size: int64(len(b)), IsTerminal: true}, nil
}

func (s *memCDRStorage) loadsOf(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loads[key]
}

func (s *memCDRStorage) resetLoads() {
	s.mu.Lock()
	s.loads = map[string]int{}
	s.mu.Unlock()
}

func memCDRApp(t *testing.T) (*App, *memCDRStorage) {
	t.Helper()
	mem := newMemCDRStorage()
	st := localLocks{mem}
	a := &App{storage: st, state: newStateStore(st, time.Hour), log: zap.NewNop()}
	a.state.now = func() time.Time { return at("2024-03-05T09:00:00Z") }
	return a, mem
}

// setHeld sets the bounds of a day held whole for the test.
func setHeld(t *testing.T, records, bytes int) {
	t.Helper()
	r, b := cdrExportHeldRecords, cdrExportHeldBytes
	cdrExportHeldRecords, cdrExportHeldBytes = records, bytes
	t.Cleanup(func() { cdrExportHeldRecords, cdrExportHeldBytes = r, b })
}

// tiedCDRs are records of 2024-03-02 that share their received time and
// transaction id (one device's reports and others'), with details.
func tiedCDRs() []CDR {
	var out []CDR
	for i := range 30 {
		c := testCDR(500, at("2024-03-02T15:00:00Z"))
		c.Reporter = "gw" + strconv.Itoa(i)
		c.Details = map[string]string{"CallingPartyInfo.UserId": "u;" + strconv.Itoa(i), "Codec[type:source]": "g711"}
		if i%3 == 0 {
			c.Role = "destination"
		}
		out = append(out, c)
	}
	return out
}

// A day too large to hold is written exactly as one held whole: the same
// bytes in CSV and JSON, records in the order received, transaction id,
// storage key (whatever order the storage lists them in); its records
// are read twice, a day held whole once.
func TestCDRExportLargeDaySameBytes(t *testing.T) {
	a, mem := memCDRApp(t)
	cdrFixture(t, a) // buckets 2024-03-01..04, flat records, a key that is no record
	tied := tiedCDRs()
	for _, c := range tied {
		mustStore(t, a, c)
	}
	// a flat record tied with them
	flatTie := testCDR(500, at("2024-03-02T15:00:00Z"))
	flatTie.Reporter = "old-gw"
	flatKey := storeLegacyCDR(t, a, flatTie)
	ad := &adminAPI{app: a, log: zap.NewNop()}
	export := func(uri string) string {
		t.Helper()
		rec := httptest.NewRecorder()
		if err := ad.serve(rec, httptest.NewRequest("GET", uri, nil)); err != nil {
			t.Fatalf("GET %s: %v", uri, err)
		}
		return rec.Body.String()
	}
	bucketKeys := func() []string {
		keys, err := a.storage.List(context.Background(), cdrsPrefix(), true)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, k := range keys {
			if strings.Count(strings.TrimPrefix(k, cdrsPrefix()+"/"), "/") == 1 {
				out = append(out, k)
			}
		}
		return out
	}()
	if len(bucketKeys) != 12+len(tied) {
		t.Fatalf("%d records in buckets", len(bucketKeys))
	}

	mem.resetLoads()
	wantJSON, wantCSV := export("/enroll/cdrs"), export("/enroll/cdrs?format=csv")
	for _, k := range bucketKeys {
		if n := mem.loadsOf(k); n != 2 { // one export each
			t.Fatalf("a day held whole: %s read %d times in two exports, want 2", k, n)
		}
	}
	// the tied records in the order of their keys
	var order []string
	for _, c := range decodeCDRExport(t, []byte(wantJSON)) {
		if c.TransactionID != 500 {
			continue
		}
		k := cdrKey(c)
		if c.Reporter == flatTie.Reporter {
			k = flatKey
		}
		order = append(order, k)
	}
	if len(order) != len(tied)+1 || !slices.IsSorted(order) {
		t.Fatalf("records received at once with one transaction id, in the order:\n%s\nwant their keys' order", strings.Join(order, "\n"))
	}

	for _, c := range []struct {
		name           string
		records, bytes int
		twice          bool // every bucket record read twice per export
	}{
		{"no record held", 0, math.MaxInt, true},
		{"two records held", 2, math.MaxInt, true}, // each bucket has three or more
		{"one byte held", math.MaxInt, 1, true},
		{"two KB held", math.MaxInt, 2048, false}, // the small days whole
		{"thirty records held", 30, math.MaxInt, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			setHeld(t, c.records, c.bytes)
			mem.resetLoads()
			if got := export("/enroll/cdrs"); got != wantJSON {
				t.Errorf("JSON export differs from the day held whole:\n%s\nwant\n%s", got, wantJSON)
			}
			if got := export("/enroll/cdrs?format=csv"); got != wantCSV {
				t.Errorf("CSV export differs from the day held whole:\n%s\nwant\n%s", got, wantCSV)
			}
			twice := 0
			for _, k := range bucketKeys {
				if mem.loadsOf(k) == 4 {
					twice++
				}
			}
			if c.twice && twice != len(bucketKeys) || !c.twice && (twice == 0 || twice == len(bucketKeys)) {
				t.Errorf("%d of %d records read twice in each export", twice, len(bucketKeys))
			}
			if n := mem.loadsOf(flatKey); n != 2 {
				t.Errorf("the flat record read %d times in two exports, want 2 (held)", n)
			}
		})
	}
}

// Between the two reads of a large day, a record purged is skipped; one
// that cannot be read, or no longer decodes, fails the export.
func TestCDRExportLargeDaySecondRead(t *testing.T) {
	for _, c := range []struct {
		name string
		hurt func(mem *memCDRStorage, victim string) error // at the start of the second read
		err  string
	}{
		{"purged", func(mem *memCDRStorage, victim string) error {
			return mem.Delete(context.Background(), victim)
		}, ""},
		{"day purged", func(mem *memCDRStorage, victim string) error {
			return mem.Delete(context.Background(), path.Dir(victim))
		}, ""},
		{"unreadable", func(mem *memCDRStorage, victim string) error {
			mem.onLoad = func(key string, before int) error {
				if key == victim {
					return errors.New("i/o timeout")
				}
				return nil
			}
			return nil
		}, "i/o timeout"},
		{"corrupt", func(mem *memCDRStorage, victim string) error {
			return mem.Store(context.Background(), victim, []byte("{"))
		}, "corrupt record"},
	} {
		t.Run(c.name, func(t *testing.T) {
			setHeld(t, 2, math.MaxInt)
			a, mem := memCDRApp(t)
			var stored []CDR
			for i := range 5 {
				r := testCDR(uint64(10+i), at("2024-03-01T10:00:00Z").Add(time.Duration(i)*time.Minute))
				mustStore(t, a, r)
				stored = append(stored, r)
			}
			victim := cdrKey(stored[3])
			var once sync.Once
			var hurtErr error
			mem.onLoad = func(key string, before int) error {
				if before == 1 { // the second read has begun
					once.Do(func() { hurtErr = c.hurt(mem, victim) })
				}
				return nil
			}
			var got []uint64
			err := a.eachCDR(context.Background(), dayRange{}, func(r CDR) error {
				got = append(got, r.TransactionID)
				return nil
			})
			if hurtErr != nil {
				t.Fatal(hurtErr)
			}
			want := []uint64{10, 11, 12}
			switch {
			case c.name == "purged":
				want = []uint64{10, 11, 12, 14}
				if err != nil || !reflect.DeepEqual(got, want) {
					t.Errorf("records %v, %v; want %v", got, err, want)
				}
			case c.name == "day purged":
				if err != nil || len(got) != 0 {
					t.Errorf("records %v, %v; want none (purged before the second read)", got, err)
				}
			case err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), victim):
				t.Errorf("records %v, error %v; want %q about %s", got, err, c.err, victim)
			case !reflect.DeepEqual(got, want):
				t.Errorf("written before the failure: %v, want %v", got, want)
			}
		})
	}
}

// What an export holds of a day: the live heap, sampled every few reads
// and writes, above the heap before it. CDR_EXPORT_HEAP_RECORDS sets the
// day's size (BENCHMARKS.md: 20000).
func TestCDRExportLargeDayHeap(t *testing.T) {
	n := 2000
	if v := os.Getenv("CDR_EXPORT_HEAP_RECORDS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			t.Fatal(err)
		}
	}
	a, mem := memCDRApp(t)
	stored := 0
	for i := range n {
		c := testCDR(uint64(1000+i), at("2024-03-01T00:00:00Z").Add(time.Duration(n-i)*time.Second))
		c.Reporter = "gw" + strconv.Itoa(i%7)
		c.Details = map[string]string{}
		for j := range 32 { // about 4 KB
			c.Details[fmt.Sprintf("Extra.Item%02d[type:x]", j)] = strings.Repeat(strconv.Itoa(i+j), 100)[:100]
		}
		mustStore(t, a, c)
	}
	for _, b := range mem.m {
		stored += len(b)
	}
	every := max(32, n/64)
	defRecords, defBytes := cdrExportHeldRecords, cdrExportHeldBytes
	measure := func(records, bytes int) (peak uint64, written int) {
		setHeld(t, records, bytes)
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		base := ms.HeapAlloc
		sample := func() {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > base {
				peak = max(peak, ms.HeapAlloc-base)
			}
		}
		calls := 0
		mem.onLoad = func(string, int) error {
			if calls++; calls%every == 0 {
				sample()
			}
			return nil
		}
		defer func() { mem.onLoad = nil }()
		err := a.eachCDR(context.Background(), dayRange{}, func(CDR) error {
			if written++; written%every == 1 {
				sample()
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return peak, written
	}
	whole, w1 := measure(math.MaxInt, math.MaxInt) // as before: the day held whole
	def, w2 := measure(defRecords, defBytes)       // the defaults
	entries, w3 := measure(0, math.MaxInt)         // only entries held
	if w1 != n || w2 != n || w3 != n {
		t.Fatalf("written %d, %d, %d of %d", w1, w2, w3, n)
	}
	t.Logf("%d records, %.1f MB stored: held whole %.1f MB, defaults %.1f MB, entries only %.2f MB (live heap above the export's start)",
		n, float64(stored)/1e6, float64(whole)/1e6, float64(def)/1e6, float64(entries)/1e6)
	if entries*4 > whole {
		t.Errorf("entries only: %d bytes held, held whole %d: want a quarter at most", entries, whole)
	}
}
