package configfile

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
)

// Production-scale benchmarks: a carrier's file of 100,000 devices and
// 200,000 routes (100 groups, three devices per route).
//
//	go test -run x -bench Large -benchtime 5x -cpu 1 ./configfile/

const (
	largeDevices = 100000
	largeRoutes  = 200000
)

var carrier struct {
	data []byte
	f    *File
}

func carrierFile(b *testing.B) ([]byte, *File) {
	b.Helper()
	if carrier.data == nil {
		// genLarge writes 8 header lines and 99 more group lines
		carrier.data, _ = genLarge(8+99+largeDevices+largeRoutes, 100, largeDevices)
		f, err := Parse("carrier.conf", carrier.data)
		if err != nil {
			b.Fatal(err)
		}
		if len(f.Devices) != largeDevices || len(f.Routes) != largeRoutes {
			b.Fatalf("%d devices, %d routes", len(f.Devices), len(f.Routes))
		}
		carrier.f = f
	}
	return carrier.data, carrier.f
}

// BenchmarkLargeParse parses (and so validates) the carrier's file.
func BenchmarkLargeParse(b *testing.B) {
	data, _ := carrierFile(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("carrier.conf", data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLargeFormat renders the carrier's file in canonical form.
func BenchmarkLargeFormat(b *testing.B) {
	_, f := carrierFile(b)
	b.ReportAllocs()
	for b.Loop() {
		if len(Format(f)) == 0 {
			b.Fatal("empty")
		}
	}
}

// BenchmarkLargeMark is the in-memory part of the server's mark of one
// device: the undo Snapshot, the lookup and SetEnrolled, and rendering
// the file with the edit (to io.Discard).
func BenchmarkLargeMark(b *testing.B) {
	_, f0 := carrierFile(b)
	f := f0.Clone()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		name := "dev" + strconv.Itoa((i*7919)%largeDevices) + ".carrier.example.net"
		i++
		_ = f.Snapshot()
		d, ok := f.Device(name)
		if !ok {
			b.Fatal("no device ", name)
		}
		if err := f.SetEnrolled(name, !d.Enrolled); err != nil {
			b.Fatal(err)
		}
		if _, err := f.WriteTo(discard{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLargeMarkOnly is BenchmarkLargeMark without the render: the
// cost of the edit alone, which must not grow with the file.
func BenchmarkLargeMarkOnly(b *testing.B) {
	_, f0 := carrierFile(b)
	f := f0.Clone()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		name := "dev" + strconv.Itoa((i*7919)%largeDevices) + ".carrier.example.net"
		i++
		d, ok := f.Device(name)
		if !ok {
			b.Fatal("no device ", name)
		}
		if err := f.SetEnrolled(name, !d.Enrolled); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLargeSnapshot is the undo copy every edit of the server takes.
func BenchmarkLargeSnapshot(b *testing.B) {
	_, f := carrierFile(b)
	b.ReportAllocs()
	for b.Loop() {
		if g := f.Snapshot(); len(g.Devices) != largeDevices {
			b.Fatal("devices lost")
		}
	}
}

// BenchmarkLargeSave is one mark written to disk: SetEnrolled and an
// atomic Save with backups.
func BenchmarkLargeSave(b *testing.B) {
	data, f0 := carrierFile(b)
	f := f0.Clone()
	path := filepath.Join(b.TempDir(), "carrier.conf")
	if err := os.WriteFile(path, data, 0o640); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		name := "dev" + strconv.Itoa((i*7919)%largeDevices) + ".carrier.example.net"
		i++
		d, _ := f.Device(name)
		if err := f.SetEnrolled(name, !d.Enrolled); err != nil {
			b.Fatal(err)
		}
		if err := f.Save(path, SaveOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

type discard struct{}

func (discard) WriteString(s string) (int, error) { return len(s), nil }
func (discard) Write(p []byte) (int, error)       { return len(p), nil }

// BenchmarkLargeParseFile reads and parses the carrier's file from disk,
// as the server does (without Parse's copy of the bytes), and reports the
// heap the parsed File keeps.
func BenchmarkLargeParseFile(b *testing.B) {
	data, _ := carrierFile(b)
	path := filepath.Join(b.TempDir(), "carrier.conf")
	if err := os.WriteFile(path, data, 0o640); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseFile(path); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	f, err := ParseFile(path)
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms1)
	kept := float64(int64(ms1.HeapAlloc) - int64(ms0.HeapAlloc))
	runtime.KeepAlive(f)
	b.ReportMetric(kept/1e6, "MB-kept")
}
