package caddyenroll

import (
	"bufio"
	"context"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/osp"
	"go.uber.org/zap"
)

// A day is held whole up to cdrExportHeldRecords records and
// cdrExportHeldBytes bytes of stored JSON, both bounds included: each of
// its records is read once. One record or one byte more, and each is read
// twice.
func TestCDRExportHeldBounds(t *testing.T) {
	a, mem := memCDRApp(t)
	size := 0
	var keys []string
	for i := range 3 {
		c := testCDR(uint64(70+i), at("2024-03-01T10:00:00Z").Add(time.Duration(i)*time.Minute))
		mustStore(t, a, c)
		keys = append(keys, cdrKey(c))
		size += len(mem.m[cdrKey(c)])
	}
	for _, c := range []struct {
		name           string
		records, bytes int
		reads          int // of each record
	}{
		{"as many records as held", 3, math.MaxInt, 1},
		{"one record more than held", 2, math.MaxInt, 2},
		{"as many bytes as held", math.MaxInt, size, 1},
		{"one byte more than held", math.MaxInt, size - 1, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			setHeld(t, c.records, c.bytes)
			mem.resetLoads()
			var got []uint64
			err := a.eachCDR(context.Background(), dayRange{}, func(r CDR) error {
				got = append(got, r.TransactionID)
				return nil
			})
			if err != nil || !reflect.DeepEqual(got, []uint64{70, 71, 72}) {
				t.Fatalf("records %v, %v; want 70, 71, 72", got, err)
			}
			for _, k := range keys {
				if n := mem.loadsOf(k); n != c.reads {
					t.Errorf("%s read %d times, want %d", k, n, c.reads)
				}
			}
		})
	}
}

// failingCDRStorage fails the storage lock, or the deletion of keys that
// hold part, as a storage module may.
type failingCDRStorage struct {
	*memCDRStorage
	lockErr error
	part    string
}

func (s failingCDRStorage) Lock(ctx context.Context, name string) error {
	if s.lockErr != nil {
		return s.lockErr
	}
	return s.memCDRStorage.Lock(ctx, name)
}

func (s failingCDRStorage) Delete(ctx context.Context, key string) error {
	if s.part != "" && strings.Contains(key, s.part) {
		return errors.New("permission denied")
	}
	return s.memCDRStorage.Delete(ctx, key)
}

// A purge that cannot take its lock deletes nothing; one that cannot
// delete a day stops there, with the error, telling the days deleted
// before it. A flat record of an earlier version that cannot be read fails
// the export, as a bucket's does.
func TestCDRStorageFailures(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T, st failingCDRStorage) *App {
		t.Helper()
		a := &App{storage: localLocks{st}, state: newStateStore(localLocks{st}, time.Hour), log: zap.NewNop()}
		a.state.now = func() time.Time { return at("2024-03-05T09:00:00Z") }
		cdrFixture(t, a)
		return a
	}
	for _, c := range []struct {
		name  string
		st    failingCDRStorage
		err   string
		days  []string // deleted
		after int      // records left
	}{
		{"lock refused", failingCDRStorage{lockErr: errors.New("lock timeout")}, "lock timeout", []string{}, 15},
		{"second day undeletable", failingCDRStorage{part: "2024-03-02"}, "permission denied", []string{"2024-03-01"}, 12},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.st.memCDRStorage = newMemCDRStorage()
			a := setup(t, c.st) // the fixture's records are stored far from midnight: unlocked
			res, err := a.purgeCDRs(ctx, day("2024-03-05"))
			if err == nil || !strings.Contains(err.Error(), c.err) || !reflect.DeepEqual(res.DeletedDays, c.days) {
				t.Errorf("purge: %+v, %v; want days %v and %q", res, err, c.days, c.err)
			}
			if list, err := a.cdrs(ctx, dayRange{}); err != nil || len(list) != c.after {
				t.Errorf("after the purge: %d records, %v; want %d", len(list), err, c.after)
			}
		})
	}

	t.Run("flat record unreadable", func(t *testing.T) {
		a := setup(t, failingCDRStorage{memCDRStorage: newMemCDRStorage()})
		flat := storeLegacyCDR(t, a, testCDR(9, at("2024-03-02T08:00:00Z")))
		st := localLocks{failingLoad{Storage: a.storage, key: flat}}
		b := &App{storage: st, state: newStateStore(st, time.Hour), log: zap.NewNop()}
		if list, err := b.cdrs(ctx, dayRange{}); err == nil || !strings.Contains(err.Error(), "i/o timeout") {
			t.Fatalf("export with an unreadable flat record: %d records, %v; want the error", len(list), err)
		}
	})
}

// A delay is recorded when the device reported it (0 included) or, in a
// usage built without the flag, when it is above 0: as osp.Usage's
// Marshal writes it.
func TestCDRDelayWithoutFlag(t *testing.T) {
	for _, c := range []struct {
		name  string
		delay time.Duration
		has   bool
		want  any // nil: none
	}{
		{"reported 0", 0, true, 0.0},
		{"reported above 0", 1500 * time.Millisecond, true, 1.5},
		{"above 0 without the flag", 1500 * time.Millisecond, false, 1.5},
		{"0 without the flag", 0, false, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			u := &osp.Usage{TransactionID: 1, Role: "source", PostDialDelay: c.delay, HasPostDialDelay: c.has,
				ProviderPostDialDelay: c.delay, HasProviderPostDialDelay: c.has}
			cdr := cdrFromUsage(u, "gw1.example", at("2026-11-27T10:00:00Z"))
			for _, got := range []*float64{cdr.PostDialDelay, cdr.ProviderPostDialDelay} {
				switch {
				case c.want == nil && got != nil:
					t.Errorf("delay %v, want none", *got)
				case c.want != nil && (got == nil || *got != c.want.(float64)):
					t.Errorf("delay %v, want %v", got, c.want)
				}
			}
		})
	}
}

// A CSV field is quoted when it holds a separator a spreadsheet may split
// on (comma, semicolon, tab, vertical tab, form feed), a quote or a line
// break, or starts with a space; device text that starts like a formula, a
// tab, a carriage return or an apostrophe gets a leading apostrophe.
// Seconds are written in decimal, never with an exponent.
func TestCDRCSVCells(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"1404", "1404"},
		{"a,b", `"a,b"`},
		{`say "hi"`, `"say ""hi"""`},
		{"a;=1+1", `"a;=1+1"`},
		{"a\t=1+1", "\"a\t=1+1\""},
		{"a\v=1+1", "\"a\v=1+1\""},
		{"a\f=1+1", "\"a\f=1+1\""},
		{"a\n=1+1", "\"a\n=1+1\""},
		{" =1+1", `" =1+1"`},
		{"a =1+1", "a =1+1"},
		{"=1+1", "'=1+1"},
		{"\r=1+1", "\"'\r=1+1\""},
		{"\t=1+1", "\"'\t=1+1\""},
		{"'quoted", "''quoted"},
	} {
		var b strings.Builder
		w := &cdrCSV{w: bufio.NewWriter(&b)}
		if err := w.row([]string{csvText(c.text)}); err != nil || w.flush() != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSuffix(b.String(), "\n"); got != c.want {
			t.Errorf("%q written %q, want %q", c.text, got, c.want)
		}
	}
	// statistics and details by name, whatever the map's order
	pairs, want := map[string]string{}, []string{}
	for _, k := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"} {
		pairs[k] = "1"
		want = append(want, k+"=1")
	}
	for range 8 {
		if got := csvPairs(pairs); got != strings.Join(want, ";") {
			t.Fatalf("pairs written %q, want them sorted", got)
		}
	}
	for _, c := range []struct {
		v    float64
		want string
	}{{0, "0"}, {1.01, "1.01"}, {0.00001, "0.00001"}, {1e21, "1000000000000000000000"}} {
		if got := csvSeconds(&c.v); got != c.want {
			t.Errorf("%v seconds written %q, want %q", c.v, got, c.want)
		}
	}
}
