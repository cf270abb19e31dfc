package caddyenroll

import (
	"context"
	"maps"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
	"github.com/clearinghouse-dev/caddy-clearinghouse/osp"
)

// More production-scale benchmarks (see large_bench_internal_test.go):
// what a reload holds the file's lock for, the first usage indication
// after the devices change, and the admin API's device listing.
//
//	go test -run '^$' -bench 'Large(ReloadLookups|ReloadFileOnly|SourceAfterChange|AdminDevices)' -benchtime 10x -cpu 2 ./caddyenroll/

// reloadWithProbe puts an operator's save of the carrier's file in force
// per iteration (saveWithProbe).
func reloadWithProbe(b *testing.B, cs *configState, path string) {
	saveWithProbe(b, cs, path, func(int) {
		if changed, err := cs.poll(); err != nil || !changed {
			b.Fatal(changed, err)
		}
	})
}

// saveWithProbe saves an operator's version of the carrier's file per
// iteration (alternately with one more comment line: every route line
// moves), then times step(i), and reports the longest wait of a device
// lookup in the file made meanwhile, as enrollments make them.
func saveWithProbe(b *testing.B, cs *configState, path string, step func(i int)) {
	alt := append([]byte("# an operator's edit\n"), carrierOnce.data...)
	var stop atomic.Bool
	var maxWait atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			t0 := time.Now()
			if !cs.device(largeName(i)).Known {
				panic("device not found")
			}
			if d := int64(time.Since(t0)); d > maxWait.Load() {
				maxWait.Store(d)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		b.StopTimer()
		saveCarrierVersion(b, path, i, alt)
		b.StartTimer()
		step(i)
		i++
	}
	b.StopTimer()
	stop.Store(true)
	wg.Wait()
	b.ReportMetric(float64(maxWait.Load())/1e6, "max-file-lookup-ms")
}

// BenchmarkLargeReloadLookups is BenchmarkLargeReload with the app's
// reaction (route table) and the longest wait of a lookup meanwhile.
func BenchmarkLargeReloadLookups(b *testing.B) {
	a, path := largeApp(b)
	reloadWithProbe(b, a.cfg, path)
}

// BenchmarkLargeReloadFileOnly is the configState's own share of a reload
// (diff of the devices, enablings), without the app's route table.
func BenchmarkLargeReloadFileOnly(b *testing.B) {
	carrierOnce.Do(func() { carrierOnce.data = carrierConf() })
	path := filepath.Join(b.TempDir(), "carrier.conf")
	if err := os.WriteFile(path, carrierOnce.data, 0o640); err != nil {
		b.Fatal(err)
	}
	cs, err := loadConfigState(path, 0)
	if err != nil {
		b.Fatal(err)
	}
	// as an app sets them: the diff of added and respelled devices is made
	cs.onAddedDisabled, cs.onRespelled = func([]string) {}, func([][2]string) {}
	reloadWithProbe(b, cs, path)
}

// BenchmarkLargeSourceAfterChange is a usage indication's source lookup
// (transactionSource of an id no device of the file made) after an edit
// adds a device: the edit (write and route table) is not timed, the lookup
// is, made at once (it may wait for the index being made) or once the
// index is made. It reports the longest lookup.
func BenchmarkLargeSourceAfterChange(b *testing.B) {
	for _, v := range []struct {
		name  string
		await bool
	}{{"atOnce", false}, {"later", true}} {
		b.Run(v.name, func(b *testing.B) {
			a, _ := largeApp(b)
			key := make([]byte, osp.TransactionKeySize)
			ids, err := osp.NewTransactionIDs(key)
			if err != nil {
				b.Fatal(err)
			}
			a.authz.txIDs = ids
			a.noteTransactionIDs(ids)
			id := ids.For("no-such-device.example").New()
			a.transactionSource(ids, id, "") // the index of the first version
			var longest time.Duration
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				b.StopTimer()
				name := "new" + largeName(i)
				i++
				if err := a.cfg.edit(context.Background(), func(f *configfile.File) error {
					return f.AddDevice(name, "", true, false)
				}); err != nil {
					b.Fatal(err)
				}
				if v.await {
					if ix := a.authz.sources.Load(); ix != nil {
						<-ix.ready
					}
				}
				b.StartTimer()
				t0 := time.Now()
				if issued, _ := a.transactionSource(ids, id, ""); issued {
					b.Fatal("an id of no device of the file taken as issued")
				}
				longest = max(longest, time.Since(t0))
			}
			b.ReportMetric(float64(longest)/1e6, "max-lookup-ms")
		})
	}
}

// BenchmarkLargeAdminDevices is GET /enroll/devices at the carrier's size
// (one CA, file storage, no certificate issued): the first page, and every
// page (what `caddy enroll devices` reads).
func BenchmarkLargeAdminDevices(b *testing.B) {
	a, _ := largeApp(b)
	ctx := context.Background()
	st := localLocks{&certmagic.FileStorage{Path: filepath.Join(b.TempDir(), "data")}}
	c, _, err := ca.Open(ctx, st, ca.Config{Name: "modern"}, "")
	if err != nil {
		b.Fatal(err)
	}
	a.storage, a.cas = st, map[string]*ca.CA{profileModern: c}
	ad := &adminAPI{app: a, log: zap.NewNop()}
	get := func(uri string) (string, int) {
		rec := httptest.NewRecorder()
		if err := ad.serve(rec, httptest.NewRequest("GET", uri, nil)); err != nil || rec.Code != 200 {
			b.Fatal(err, rec.Code)
		}
		next, err := nextPage(rec.Result().Header, uri)
		if err != nil {
			b.Fatal(err)
		}
		return next, rec.Body.Len()
	}
	b.Run("firstPage", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			get("/enroll/devices")
		}
	})
	b.Run("everyPage", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			size := 0
			for uri := "/enroll/devices"; uri != ""; {
				var n int
				uri, n = get(uri)
				size += n
			}
			b.ReportMetric(float64(size)/1e6, "answers-MB")
		}
	})
}

// BenchmarkLargeSourceIndexBuild is the making of the index of sources by
// tag alone: from the previous index, one device added (as after a change
// of the devices), and whole (the first).
func BenchmarkLargeSourceIndexBuild(b *testing.B) {
	a, _ := largeApp(b)
	ids, err := osp.NewTransactionIDs(make([]byte, osp.TransactionKeySize))
	if err != nil {
		b.Fatal(err)
	}
	first := &sourceIndex{byAddr: a.authz.deviceByAddr.Load(), ids: ids, ready: make(chan struct{})}
	first.build(nil)
	one := maps.Clone(*first.byAddr)
	one["new.example:5060"] = []string{"new.example"}
	for _, v := range []struct {
		name string
		prev *sourceIndex
	}{{"fromPrevious", first}, {"whole", nil}} {
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ix := &sourceIndex{byAddr: &one, ids: ids, ready: make(chan struct{})}
				ix.build(v.prev)
			}
		})
	}
}
