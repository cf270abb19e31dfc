package caddyenroll

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

// BenchmarkLargeEditMeetsSave is an edit (a device marked enrolled) that
// finds an operator's save of the carrier's file on disk before the
// watcher took it (alternately with one more comment line: every route
// line moves): the edit parses that version, puts it in force, marks and
// writes. It reports the longest wait of a device lookup in the file made
// meanwhile, as enrollments make them.
//
//	go test -run '^$' -bench LargeEditMeetsSave -benchtime 6x -cpu 2 ./caddyenroll/
func BenchmarkLargeEditMeetsSave(b *testing.B) {
	a, path := largeApp(b)
	alt := append([]byte("# an operator's edit\n"), carrierOnce.data...)
	var stop atomic.Bool
	var maxWait atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			t0 := time.Now()
			if !a.cfg.device(largeName(i)).Known {
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
		name := largeName(i)
		i++
		b.StartTimer()
		if err := a.cfg.edit(context.Background(), func(f *configfile.File) error { return f.SetEnrolled(name, true) }); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	stop.Store(true)
	wg.Wait()
	b.ReportMetric(float64(maxWait.Load())/1e6, "max-file-lookup-ms")
}
