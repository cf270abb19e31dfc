package routing

import (
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

// Run: go test -run x -bench . -benchtime 2s -cpu 1 ./routing/

const (
	benchRoutes  = 1000000
	benchGroups  = 100
	benchDevices = 1000
)

var big struct {
	once sync.Once
	f    *configfile.File
	tab  *Table
	err  error
}

// file1M generates a File as Parse would return it: 100 groups ("" and
// g01..g99), 1000 devices, and 1,000,000 routes: a catch-all in "" and
// 999,999 distinct prefixes of 2 to 12 random digits spread over the
// groups, written "+DIGITS...", each with three devices weighted 60/30/0
// (targets in one shared arena, Prefix a substring of Number, as configfile
// stores them).
func file1M(b *testing.B) (*configfile.File, *Table) {
	big.once.Do(func() {
		rnd := newRand(2026)
		f := &configfile.File{Name: "bench.conf"}
		gname := func(g int) string {
			if g == 0 {
				return ""
			}
			return "g" + strconv.Itoa(100 + g)[1:]
		}
		for g := range benchGroups {
			f.Groups = append(f.Groups, configfile.Group{Name: gname(g), Line: g + 1})
		}
		for d := range benchDevices {
			f.Devices = append(f.Devices, configfile.Device{
				Name: "dev" + strconv.Itoa(d) + ".carrier.example.net", Group: gname(d % benchGroups),
				Enabled: d%10 != 9, Enrolled: true, Line: benchGroups + d + 1,
			})
		}
		f.Routes = make([]configfile.Route, 0, benchRoutes)
		arena := make([]configfile.Target, 0, 3*benchRoutes)
		seen := make(map[uint64]struct{}, benchRoutes)
		add := func(g int, number, prefix string) {
			i := len(f.Routes)
			d0 := int32(i*7) % benchDevices
			d1 := (d0 + 1 + int32(i%13)) % benchDevices
			d2 := (d1 + 1 + int32(i%17)) % benchDevices
			if d2 == d0 {
				d2 = (d2 + 1) % benchDevices
			}
			s := len(arena)
			arena = append(arena, configfile.Target{Device: d0, Weight: 60}, configfile.Target{Device: d1, Weight: 30}, configfile.Target{Device: d2, Weight: 0})
			f.Routes = append(f.Routes, configfile.Route{Group: gname(g), Number: number, Prefix: prefix,
				Targets: arena[s:len(arena):len(arena)], Line: benchGroups + benchDevices + i + 1})
		}
		add(0, "", "")
		var digits [12]byte
		for len(f.Routes) < benchRoutes {
			g := len(f.Routes) % benchGroups
			n := 2 + rnd.IntN(11)
			k := uint64(g)<<56 | uint64(n)<<48
			v := uint64(0)
			for j := 0; j < n; j++ {
				digits[j] = byte('0' + rnd.IntN(10))
				v = v*10 + uint64(digits[j]-'0')
			}
			if _, dup := seen[k|v]; dup {
				continue
			}
			seen[k|v] = struct{}{}
			number := "+" + string(digits[:n]) + "..."
			add(g, number, number[1:1+n])
		}
		big.f = f
		big.tab, big.err = Build(f, Options{})
	})
	if big.err != nil {
		b.Fatal(big.err)
	}
	return big.f, big.tab
}

// BenchmarkBuild1M builds the table of 1,000,000 prefixes and reports the
// heap it keeps (after GC, the File being alive before and after) per prefix.
func BenchmarkBuild1M(b *testing.B) {
	f, _ := file1M(b)
	var ms0, ms1 runtime.MemStats
	var perPrefix, sizePerPrefix float64
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		b.StartTimer()
		t, err := Build(f, Options{})
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&ms1)
		perPrefix = float64(int64(ms1.HeapAlloc)-int64(ms0.HeapAlloc)) / float64(len(f.Routes))
		sizePerPrefix = float64(t.Size()) / float64(len(f.Routes))
		runtime.KeepAlive(t)
		b.StartTimer()
	}
	b.ReportMetric(perPrefix, "B/prefix")
	b.ReportMetric(sizePerPrefix, "Size-B/prefix")
}

type benchQuery struct{ group, source, number string }

// queries1M: 64Ki calls from random devices, half to numbers that extend
// a random route's prefix of the device's group (to 11 digits), half to
// random 11-digit numbers.
func queries1M(f *configfile.File) []benchQuery {
	rnd := newRand(7)
	byGroup := map[string][]int32{}
	for i := range f.Routes {
		r := &f.Routes[i]
		if r.Prefix != "" {
			byGroup[r.Group] = append(byGroup[r.Group], int32(i))
		}
	}
	qs := make([]benchQuery, 1<<16)
	for i := range qs {
		src := &f.Devices[rnd.IntN(len(f.Devices))]
		var num []byte
		if rs := byGroup[src.Group]; i%2 == 0 && len(rs) > 0 {
			num = append(num, f.Routes[rs[rnd.IntN(len(rs))]].Prefix...)
		}
		for len(num) < 11 {
			num = append(num, byte('0'+rnd.IntN(10)))
		}
		qs[i] = benchQuery{group: src.Group, source: src.Name, number: string(num)}
	}
	return qs
}

// BenchmarkLookup1M: Lookup(group, number) on the 1,000,000-prefix table,
// random groups and numbers.
func BenchmarkLookup1M(b *testing.B) {
	f, t := file1M(b)
	qs := queries1M(f)
	hits := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q := &qs[i&(len(qs)-1)]
		if info, ok := t.Lookup(q.group, q.number); ok && info.Pattern != "" {
			hits++
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
	b.ReportMetric(float64(hits)/float64(b.N), "prefix-hit-ratio")
	if hits == 0 {
		b.Fatal("no lookup found a prefix")
	}
}

// BenchmarkRoute1M: a whole authorization answer (source, match, weighted
// choice, up to 10 destinations) on the 1,000,000-prefix table.
func BenchmarkRoute1M(b *testing.B) {
	f, t := file1M(b)
	qs := queries1M(f)
	rnd := newRand(1)
	dst := make([]Destination, 0, 10)
	eligible := func(string) bool { return true }
	b.ReportAllocs()
	b.ResetTimer()
	answered := 0
	for i := 0; i < b.N; i++ {
		q := &qs[i&(len(qs)-1)]
		var err error
		if dst, err = t.Route(q.source, q.number, 0, rnd, eligible, dst[:0]); err == nil && len(dst) > 0 {
			answered++
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "routes/s")
	if answered == 0 {
		b.Fatal("no query was answered with a destination")
	}
}

// BenchmarkWeightedChoice4 orders a route of four devices weighted
// 40/30/20/10 (the whole Route call: source, number, match, three draws).
func BenchmarkWeightedChoice4(b *testing.B) {
	src := `group ""
group W
device src.example W enabled enrolled
device a.example W enabled enrolled
device b.example W enabled enrolled
device c.example W enabled enrolled
device d.example W enabled enrolled
route W '+1...' a.example 40 b.example 30 c.example 20 d.example 10
`
	f, err := configfile.Parse("w4.conf", []byte(src))
	if err != nil {
		b.Fatal(err)
	}
	t := build(b, f, Options{})
	rnd := newRand(1)
	dst := make([]Destination, 0, 4)
	eligible := func(string) bool { return true }
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dst, err = t.Route("src.example", "14045550100", 4, rnd, eligible, dst[:0])
		if len(dst) != 4 {
			b.Fatal(len(dst), err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "choices/s")
}
