package routing

import (
	"sync"
	"testing"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
	"github.com/clearinghouse-dev/caddy-clearinghouse/internal/carrierconf"
)

// Production-scale benchmarks: a carrier's file of 100,000 devices and
// 200,000 routes in 100 groups, three devices per route, parsed as the
// server parses it.
//
//	go test -run x -bench Large -benchtime 5x -cpu 1 ./routing/

const (
	largeDevices = 100000
	largeRoutes  = 200000
	largeGroups  = 100
)

// carrierSource writes the carrier's file: devices named
// devN.carrier.example.net (every seventh disabled, the others enrolled)
// and routes of distinct prefixes.
func carrierSource() []byte {
	return carrierconf.Write(carrierconf.Spec{Devices: largeDevices, Routes: largeRoutes, Groups: largeGroups,
		Crypto: "keys", Name: carrierconf.CarrierName, Status: func(d int) string {
			if d%7 == 0 {
				return " disabled"
			}
			return " enabled enrolled"
		}})
}

var carrier struct {
	once sync.Once
	f    *configfile.File
	err  error
}

func carrierFile(b *testing.B) *configfile.File {
	b.Helper()
	carrier.once.Do(func() {
		carrier.f, carrier.err = configfile.Parse("carrier.conf", carrierSource())
	})
	if carrier.err != nil {
		b.Fatal(carrier.err)
	}
	if len(carrier.f.Devices) != largeDevices || len(carrier.f.Routes) != largeRoutes {
		b.Fatalf("%d devices, %d routes", len(carrier.f.Devices), len(carrier.f.Routes))
	}
	return carrier.f
}

// BenchmarkLargeBuild builds the carrier's table from scratch, as every
// new version of the file did.
func BenchmarkLargeBuild(b *testing.B) {
	f := carrierFile(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Build(f, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLargeDevice looks a device up by name in the carrier's table.
func BenchmarkLargeDevice(b *testing.B) {
	f := carrierFile(b)
	t, err := Build(f, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := t.Device(f.Devices[(i*7919)%largeDevices].Name); !ok {
			b.Fatal("device not found")
		}
		i++
	}
}

// BenchmarkLargeUpdate is Update after one device's enrolled flag
// changed, as after a mark: the route index is kept.
func BenchmarkLargeUpdate(b *testing.B) {
	f := carrierFile(b).Clone()
	t, err := Build(f, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		d := &f.Devices[(i*7919)%largeDevices]
		i++
		d.Enrolled = !d.Enrolled
		u, err := Update(t, f, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if !u.SameDevices(t) {
			b.Fatal("table built again")
		}
		t = u
	}
}

// BenchmarkLargeUpdateRoutes is Update after an operator's edit that moved
// every route (a comment added above them): the devices are kept, the
// route index made again.
func BenchmarkLargeUpdateRoutes(b *testing.B) {
	f := carrierFile(b).Clone()
	t, err := Build(f, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		for i := range f.Routes {
			f.Routes[i].Line++
		}
		u, err := Update(t, f, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if !u.SameDevices(t) {
			b.Fatal("devices indexed again")
		}
		t = u
	}
}
