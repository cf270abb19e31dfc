package configfile

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
)

// genLarge generates a valid file of about lines lines: a header, groups
// groups, devices devices and routes for the rest, each route with three
// device/weight pairs. It returns the file and its line count.
func genLarge(lines, groups, devices int) ([]byte, int) {
	b := make([]byte, 0, lines*100)
	n := 0
	add := func(s ...string) {
		for _, x := range s {
			b = append(b, x...)
		}
		b = append(b, '\n')
		n++
	}
	add("# generated clearinghouse configuration")
	add("license 'software license key'")
	add("crypto 'keys'")
	add("enroll enabled")
	add("routing enabled")
	add("cdrs enabled")
	add("ssl enabled")
	add(`group ""`)
	gname := func(g int) string {
		if g == 0 {
			return `""`
		}
		if g%2 == 0 {
			return "'Group " + strconv.Itoa(g) + "'"
		}
		return "grp" + strconv.Itoa(g)
	}
	for g := 1; g < groups; g++ {
		add("group ", gname(g))
	}
	dname := func(d int) string { return "dev" + strconv.Itoa(d) + ".carrier.example.net" }
	for d := 0; d < devices; d++ {
		st := " enabled enrolled"
		if d%7 == 0 {
			st = " disabled"
		}
		add("device ", dname(d), " ", gname(d%groups), st)
	}
	rest := lines - n
	for i := 0; i < rest; i++ {
		g := i % groups
		k := i / groups
		var num string
		switch k % 3 {
		case 0:
			num = fmt.Sprintf("'+%d %03d %d...'", 1+k%90, k%1000, k)
		case 1:
			num = fmt.Sprintf("+%d%d...", 1+k%90, k)
		default:
			num = fmt.Sprintf("'+%d-%d'", 1+k%90, k)
		}
		d0 := (i * 7) % devices
		d1 := (d0 + 1 + i%13) % devices
		d2 := (d1 + 1 + i%17) % devices
		if d2 == d0 {
			d2 = (d2 + 1) % devices
		}
		add("route ", gname(g), " ", num, " ", dname(d0), " 60 ", dname(d1), " 30 ", dname(d2), " 0")
	}
	return b, n
}

var large struct {
	data  []byte
	lines int
}

func largeFile(b *testing.B) ([]byte, int) {
	if large.data == nil {
		large.data, large.lines = genLarge(1000000, 100, 10000)
	}
	return large.data, large.lines
}

func BenchmarkParse1M(b *testing.B) {
	data, lines := largeFile(b)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	var f *File
	for i := 0; i < b.N; i++ {
		f = nil
		var err error
		f, err = Parse("large.conf", data)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
	runtime.GC()
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(int64(ms.HeapAlloc)-int64(base))/float64(len(f.Routes)), "B/route")
	if len(f.Devices) != 10000 || len(f.Routes) < 980000 {
		b.Fatalf("%d devices, %d routes", len(f.Devices), len(f.Routes))
	}
	runtime.KeepAlive(f)
}

func BenchmarkEditAndWrite1M(b *testing.B) {
	data, _ := largeFile(b)
	f, err := Parse("large.conf", data)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "large.conf")
	if err := os.WriteFile(path, data, 0o640); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		name := "dev" + strconv.Itoa(4242+i) + ".carrier.example.net"
		d, ok := f.Device(name)
		if !ok {
			b.Fatal("no device ", name)
		}
		if err := f.SetEnrolled(name, !d.Enrolled); err != nil {
			b.Fatal(err)
		}
		if err := f.Save(path, SaveOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// dupRoutes is a file that repeats one route n times.
func dupRoutes(n int) []byte {
	b := []byte("group g\ndevice d g enabled\n")
	for range n {
		b = append(b, "route g 1... d 1\n"...)
	}
	return b
}

// BenchmarkParseDuplicateRoutes: a file repeating one route 40,000 times
// is refused, reporting its first MaxErrors duplicates, in linear time (the
// duplicate check was quadratic in the length of a run of equal routes).
func BenchmarkParseDuplicateRoutes(b *testing.B) {
	data := dupRoutes(40000)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse("dup.conf", data); err == nil {
			b.Fatal("duplicates accepted")
		}
	}
}

// BenchmarkCopy1M copies the 1M-line file: Snapshot, as every edit of the
// server does (its undo copy; routes are shared until an edit changes
// them), and Clone, the deep copy.
func BenchmarkCopy1M(b *testing.B) {
	data, _ := largeFile(b)
	f, err := Parse("large.conf", data)
	if err != nil {
		b.Fatal(err)
	}
	for name, copyOf := range map[string]func() *File{"Snapshot": f.Snapshot, "Clone": f.Clone} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if g := copyOf(); len(g.Routes) != len(f.Routes) {
					b.Fatal("routes lost")
				}
			}
		})
	}
}
