package caddyenroll

import (
	"context"
	"path"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// strictApp is an App on a strict storage (or one of its variants).
func strictApp(st *strictStorage) *App {
	ls := localLocks{st}
	return &App{storage: ls, state: newStateStore(ls, time.Hour), log: zap.NewNop()}
}

// Pending requests are listed once each, whatever a storage's List
// returns besides the direct children of the index (the per-device index
// pending-of/ and the marker pending-index start like pending).
func TestStrictStoragePending(t *testing.T) {
	ctx := context.Background()
	for name, mk := range strictVariants() {
		t.Run(name, func(t *testing.T) {
			st := mk()
			s := strictApp(st).state
			now := time.Now().UTC()
			for i, id := range []string{"aaaaaa01", "bbbbbb02", "cccccc03"} {
				r := &Request{ID: id, Device: "gw" + strconv.Itoa(i%2) + ".example", State: statePending, Created: now.Add(time.Duration(i) * time.Second)}
				if err := s.putRequest(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.putRequest(ctx, &Request{ID: "dddddd04", Device: "gw0.example", State: stateIssued, Created: now}); err != nil {
				t.Fatal(err)
			}
			if err := s.indexPending(ctx); err != nil {
				t.Fatal(err)
			}
			if err := s.indexPendingOf(ctx); err != nil {
				t.Fatal(err)
			}
			ids := func(list []*Request) string {
				var out []string
				for _, r := range list {
					out = append(out, r.ID)
				}
				return strings.Join(out, " ")
			}
			if got, err := s.requests(ctx, statePending); err != nil || ids(got) != "aaaaaa01 bbbbbb02 cccccc03" {
				t.Errorf("pending: %q %v", ids(got), err)
			}
			if n, err := s.pendingMarkers(ctx); err != nil || n != 3 {
				t.Errorf("pending markers: %d %v, want 3", n, err)
			}
			if got, more, err := s.requestPage(ctx, statePending, "", 10); err != nil || more || ids(got) != "aaaaaa01 bbbbbb02 cccccc03" {
				t.Errorf("pending page: %q more=%v %v", ids(got), more, err)
			}
			if got, more, err := s.requestPage(ctx, "", "", 10); err != nil || more || ids(got) != "aaaaaa01 bbbbbb02 cccccc03 dddddd04" {
				t.Errorf("requests page: %q more=%v %v", ids(got), more, err)
			}
			if got, err := s.pendingOf(ctx, "gw0.example"); err != nil || ids(got) != "aaaaaa01 cccccc03" {
				t.Errorf("pending of gw0: %q %v", ids(got), err)
			}
			if r, err := s.findRequest(ctx, "dddddd"); err != nil || r == nil || r.ID != "dddddd04" {
				t.Errorf("find dddddd: %v %v", r, err)
			}
		})
	}
}

// The nonce janitor deletes the buckets lookups no longer read, with
// every nonce in them, whatever a storage's List returns and whether its
// Delete of a prefix deletes what is below it.
func TestStrictStorageNoncePrune(t *testing.T) {
	ctx := nonceTestCtx(t)
	for name, mk := range strictVariants() {
		t.Run(name, func(t *testing.T) {
			st := mk()
			s := strictApp(st).state
			clock := nonceEpoch
			s.now = func() time.Time { return clock }
			for i := range 4 {
				if ok, err := s.bindNonce(ctx, []byte("n"+strconv.Itoa(i)), "r"+strconv.Itoa(i)); err != nil || !ok {
					t.Fatal(ok, err)
				}
				clock = clock.Add(time.Hour)
			}
			// buckets of hours 0..3; now in hour 3: 0 and 1 go
			clock = clock.Add(-time.Hour)
			nb, nf, err := s.pruneNonces(ctx)
			if err != nil || nb != 2 || nf != 0 {
				t.Fatalf("pruned %d buckets, %d files, %v; want 2, 0", nb, nf, err)
			}
			cur := s.bucket(clock)
			var want []string
			for _, b := range []int64{cur - 1, cur} {
				want = append(want, path.Join(noncesPrefix(), strconv.FormatInt(b, 10)))
			}
			var got []string
			for _, k := range st.keys(noncesPrefix()) {
				got = append(got, path.Dir(k))
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("nonces left in %v, want one in each of %v", got, want)
			}
			if nb, nf, err := s.pruneNonces(ctx); err != nil || nb+nf != 0 {
				t.Errorf("second prune: %d %d %v; want nothing", nb, nf, err)
			}
		})
	}
}

// Call detail records are exported and purged by day on any storage: a
// purged day's records are gone, the others exported once each.
func TestStrictStorageCDRs(t *testing.T) {
	ctx := context.Background()
	for name, mk := range strictVariants() {
		t.Run(name, func(t *testing.T) {
			st := mk()
			a := strictApp(st)
			for i, d := range []string{"2024-03-01", "2024-03-01", "2024-03-02", "2024-03-03"} {
				mustStore(t, a, testCDR(uint64(i+1), at(d+"T12:00:0"+strconv.Itoa(i)+"Z")))
			}
			// the flat layout of earlier versions
			storeLegacyCDR(t, a, testCDR(9, at("2024-03-02T08:00:00Z")))
			if ok, err := a.storeCDR(ctx, testCDR(3, at("2024-03-02T12:00:02Z"))); err != nil || ok {
				t.Errorf("a retry stored again: %v %v", ok, err)
			}
			list, err := a.cdrs(ctx, dayRange{})
			if err != nil || !reflect.DeepEqual(txIDs(list), []uint64{1, 2, 9, 3, 4}) {
				t.Fatalf("export %v %v", txIDs(list), err)
			}
			if list, err = a.cdrs(ctx, dayRange{since: day("2024-03-02"), until: day("2024-03-02")}); err != nil || !reflect.DeepEqual(txIDs(list), []uint64{9, 3}) {
				t.Fatalf("export of the 2nd %v %v", txIDs(list), err)
			}
			res, err := a.purgeCDRs(ctx, day("2024-03-03"))
			if err != nil || !reflect.DeepEqual(res, CDRPurge{DeletedDays: []string{"2024-03-01", "2024-03-02"}, DeletedLegacyRecords: 1}) {
				t.Fatalf("purge %+v %v", res, err)
			}
			if list, err = a.cdrs(ctx, dayRange{}); err != nil || !reflect.DeepEqual(txIDs(list), []uint64{4}) {
				t.Errorf("export after the purge %v %v", txIDs(list), err)
			}
			if left := st.keys(cdrsPrefix()); len(left) != 1 || !strings.HasPrefix(left[0], cdrBucket(day("2024-03-03"))+"/") {
				t.Errorf("keys left %v, want the record of the 3rd", left)
			}
			if res, err := a.purgeCDRs(ctx, day("2024-03-03")); err != nil || len(res.DeletedDays)+res.DeletedLegacyRecords != 0 {
				t.Errorf("second purge %+v %v", res, err)
			}
		})
	}
}

// A pending marker whose request is being written is kept by listings
// until it is older than the grace, on storages whose Stat gives no
// modification time too; then it is removed.
func TestStrictStoragePendingMarkerAge(t *testing.T) {
	ctx := context.Background()
	for name, mk := range strictVariants() {
		t.Run(name, func(t *testing.T) {
			st := mk()
			s := strictApp(st).state
			now := time.Now()
			s.now = func() time.Time { return now }
			r := &Request{ID: "aaaaaa01", Device: "gw1.example", State: statePending, Created: now}
			if err := s.putRequest(ctx, r); err != nil {
				t.Fatal(err)
			}
			// as if the request were not written yet: its markers are
			if err := st.Delete(ctx, requestKey(r.ID)); err != nil {
				t.Fatal(err)
			}
			if got, err := s.pending(ctx); err != nil || len(got) != 0 {
				t.Fatalf("pending %v %v", got, err)
			}
			if got, err := s.pendingOf(ctx, r.Device); err != nil || len(got) != 0 {
				t.Fatalf("pending of %v %v", got, err)
			}
			if !st.Exists(ctx, pendingKey(r.ID)) || !st.Exists(ctx, pendingOfKey(r.Device, r.ID)) {
				t.Fatal("the markers of a request being written were removed")
			}
			now = now.Add(markerStaleAge + time.Second)
			if _, err := s.pending(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := s.pendingOf(ctx, r.Device); err != nil {
				t.Fatal(err)
			}
			if st.Exists(ctx, pendingKey(r.ID)) || st.Exists(ctx, pendingOfKey(r.Device, r.ID)) {
				t.Fatal("stale markers kept")
			}
		})
	}
}

// The request janitor deletes the requests that are over on any storage,
// including those whose Stat gives no modification time (it then reads
// every request).
func TestStrictStoragePruneRequests(t *testing.T) {
	ctx := context.Background()
	for name, mk := range strictVariants() {
		t.Run(name, func(t *testing.T) {
			st := mk()
			s := strictApp(st).state
			now := time.Now()
			for _, r := range []*Request{
				{ID: "aaaaaa01", Device: "gw1.example", State: stateIssued, NotAfter: now.Add(time.Hour), Updated: now},
				{ID: "bbbbbb02", Device: "gw1.example", State: stateRejected, Updated: now},
				{ID: "cccccc03", Device: "gw2.example", State: statePending, Created: now},
			} {
				if err := s.putRequest(ctx, r); err != nil {
					t.Fatal(err)
				}
			}
			later := now.Add(48 * time.Hour)
			if n, err := s.pruneRequests(ctx, later, 24*time.Hour); err != nil || n != 2 {
				t.Fatalf("pruned %d %v, want 2", n, err)
			}
			if keys := st.keys(path.Join(statePrefix, "requests")); len(keys) != 1 || keys[0] != requestKey("cccccc03") {
				t.Fatalf("requests left %v", keys)
			}
		})
	}
}
