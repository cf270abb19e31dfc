package caddyenroll_test

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
	"github.com/clearinghouse-dev/caddy-clearinghouse/internal/carrierconf"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// A carrier's file through a real Caddy: 100,000 devices (none enrolled)
// and 200,000 routes.
//
//	go test -run '^$' -bench LargeEnrollRollout -benchtime 300x ./caddyenroll/

const (
	largeCaddyDevices = 100000
	largeCaddyRoutes  = 200000
	largeCaddyGroups  = 100
)

// carrierBenchConf is benchConfMarked's file at a carrier's size: devices
// gw00000.bench.example to gw99999.bench.example in 100 groups, and
// routes of distinct prefixes naming three of them each.
func carrierBenchConf() []byte {
	return carrierconf.Write(carrierconf.Spec{Devices: largeCaddyDevices, Routes: largeCaddyRoutes, Groups: largeCaddyGroups,
		Crypto: "imported", Name: func(d int) string { return fmt.Sprintf("gw%05d.bench.example", d) },
		Status: func(int) string { return " enabled" }})
}

// BenchmarkLargeEnrollRolloutThroughCaddy is BenchmarkEnrollRolloutThroughCaddy
// with a carrier's file: every enrollment marks its device enrolled in it
// (marks arriving together share one rewrite of the 30 MB file). It also
// reports how long Caddy took to start with the file.
func BenchmarkLargeEnrollRolloutThroughCaddy(b *testing.B) {
	if b.N > largeCaddyDevices {
		b.Fatalf("at most %d enrollments", largeCaddyDevices)
	}
	dir := b.TempDir()
	path := filepath.Join(dir, "bench.conf")
	if err := os.WriteFile(path, carrierBenchConf(), 0o640); err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	s := startBenchServerProfile(b, dir, "", 0, "modern")
	started := time.Since(t0)
	clients := s.clients(benchDevices)
	bodies := make([][]byte, b.N)
	for i := range bodies {
		nonce := make([]byte, 16)
		rand.Read(nonce)
		bodies[i] = wire.EncodeRequest(wire.Request{Operation: wire.OpRequest, Nonce: nonce, Username: "demo",
			Password: "demo-password", Device: fmt.Sprint(1000 + i), Customer: "0", CSR: benchCSR(b, fmt.Sprintf("gw%05d.bench.example", i))})
	}
	runLoad(b, clients, "/", benchDevices, func(int) []byte { return []byte("operation=getcacert") }, func(*wire.Response) error { return nil })
	profileServer(s)
	b.ResetTimer()
	start := time.Now()
	runLoad(b, clients, "/", b.N, func(i int) []byte { return bodies[i] }, func(a *wire.Response) error {
		if a.Status != wire.StatusOK || len(a.Certificate) == 0 {
			return fmt.Errorf("status %d %s", a.Status, a.Error)
		}
		return nil
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "enrollments/s")
	b.ReportMetric(started.Seconds(), "start-s")
	b.StopTimer()
	f, err := configfile.ParseFile(path)
	if err != nil {
		b.Fatal(err)
	}
	for i := range b.N {
		if d, _ := f.Device(fmt.Sprintf("gw%05d.bench.example", i)); d == nil || !d.Enrolled {
			b.Fatalf("gw%05d.bench.example not marked enrolled", i)
		}
	}
}
