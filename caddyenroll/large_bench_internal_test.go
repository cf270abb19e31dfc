package caddyenroll

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
	"github.com/clearinghouse-dev/caddy-clearinghouse/internal/carrierconf"
)

// Production-scale benchmarks of the app's handling of its file, in
// process: a carrier's file of 100,000 devices and 200,000 routes.
//
//	go test -run '^$' -bench Large -benchtime 10x -cpu 2 ./caddyenroll/

const (
	largeDevices = 100000
	largeRoutes  = 200000
	largeGroups  = 100
)

// carrierConf writes the carrier's file: devices devN.carrier.example.net
// (every seventh disabled, none enrolled), each route of distinct prefix
// naming three of them.
func carrierConf() []byte {
	return carrierconf.Write(carrierconf.Spec{Devices: largeDevices, Routes: largeRoutes, Groups: largeGroups,
		Crypto: "imported", Name: carrierconf.CarrierName, Status: func(d int) string {
			if d%7 == 0 {
				return " disabled"
			}
			return " enabled"
		}})
}

var carrierOnce struct {
	sync.Once
	data []byte
}

// largeApp writes the carrier's file in a new directory and returns an App
// following it as a started one does (route table, address index).
func largeApp(b *testing.B) (*App, string) {
	b.Helper()
	carrierOnce.Do(func() { carrierOnce.data = carrierConf() })
	path := filepath.Join(b.TempDir(), "carrier.conf")
	if err := os.WriteFile(path, carrierOnce.data, 0o640); err != nil {
		b.Fatal(err)
	}
	cs, err := loadConfigState(path, 0)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	a := &App{cfg: cs, bgCtx: ctx, log: zap.NewNop(), authz: &authz{revocations: new(revocations)}, crypto: new(cryptoRecords)}
	cs.read(func(f *configfile.File) {
		if err := a.rebuildRoutes(f); err != nil {
			b.Fatal(err)
		}
	})
	a.followFileChanges()
	return a, path
}

func largeName(i int) string {
	return "dev" + strconv.Itoa((i*7919+1)%largeDevices) + ".carrier.example.net"
}

// BenchmarkLargeMarkEnrolled marks one device enrolled per iteration, as
// an issuance does: the edit, the atomic save with backups, and the app's
// reaction to the new version (route table, address index). It reports
// the longest wait of lookups made meanwhile: a device by name from the
// file (as enrollments do) and the route table's (as OSP does).
func BenchmarkLargeMarkEnrolled(b *testing.B) {
	a, _ := largeApp(b)
	var stop atomic.Bool
	var maxFile, maxTable atomic.Int64
	var wg sync.WaitGroup
	probe := func(max *atomic.Int64, look func(string) bool) {
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			t0 := time.Now()
			if !look(largeName(i)) {
				panic("device not found")
			}
			if d := int64(time.Since(t0)); d > max.Load() {
				max.Store(d)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	wg.Add(2)
	go probe(&maxFile, func(n string) bool { return a.cfg.device(n).Known })
	go probe(&maxTable, func(n string) bool { _, ok := a.router.Load().Device(n); return ok })
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if errs := a.applyMarks([]mark{{Device: largeName(i)}}); errs[0] != nil {
			b.Fatal(errs[0])
		}
		i++
	}
	b.StopTimer()
	stop.Store(true)
	wg.Wait()
	if d := a.cfg.device(largeName(0)); !d.Enrolled {
		b.Fatal("not marked")
	}
	b.ReportMetric(float64(maxFile.Load())/1e6, "max-file-lookup-ms")
	b.ReportMetric(float64(maxTable.Load())/1e6, "max-table-lookup-ms")
}

// BenchmarkLargeOnChange is the app's reaction alone to a version of the
// file that marks one more device enrolled (no disk): what every mark
// costs on top of writing the file.
func BenchmarkLargeOnChange(b *testing.B) {
	a, _ := largeApp(b)
	var f *configfile.File
	a.cfg.read(func(cur *configfile.File) { f = cur.Clone() })
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := f.SetEnrolled(largeName(i), true); err != nil {
			b.Fatal(err)
		}
		i++
		a.cfg.mu.Lock()
		a.cfg.onChange(f, nil)
		a.cfg.mu.Unlock()
	}
}

// saveCarrierVersion saves, as an operator's editor does (renamed into
// place), the carrier's file at path in round i: alt on even rounds, so
// that each round is a new version.
func saveCarrierVersion(b *testing.B, path string, i int, alt []byte) {
	data := carrierOnce.data
	if i%2 == 0 {
		data = alt
	}
	if err := os.WriteFile(path+".new", data, 0o640); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkLargeReload is the app's reaction to an operator's save of the
// file: the new version parsed and put in force.
func BenchmarkLargeReload(b *testing.B) {
	a, path := largeApp(b)
	alt := append([]byte("# an operator's edit\n"), carrierOnce.data...)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		b.StopTimer()
		saveCarrierVersion(b, path, i, alt)
		i++
		b.StartTimer()
		if changed, err := a.cfg.poll(); err != nil || !changed {
			b.Fatal(changed, err)
		}
	}
}
