package routing

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRouterSwap routes from several goroutines while the table is swapped
// between Table 7 and a copy where device2 is disabled; every answer must
// be one of the two tables' answers, never a mix (run with -race).
func TestRouterSwap(t *testing.T) {
	f, t7 := table7(t)
	g := f.Clone()
	if err := g.SetEnabled("device2.itsp.com", false); err != nil {
		t.Fatal(err)
	}
	t7off := build(t, g, Options{})

	var zero Router
	if zero.Load() != nil {
		t.Fatal("zero Router holds a table")
	}
	if _, err := zero.Load().Route("device1.itsp.com", "1678", 0, nil, nil, nil); err != ErrUnknownSource {
		t.Fatalf("empty router: %v", err)
	}

	r := NewRouter(nil)
	if err := r.Rebuild(f, Options{}); err != nil || r.Load() == nil {
		t.Fatalf("Rebuild: %v", err)
	}
	bad := f.Clone()
	bad.Routes[0].Group = "nope"
	if err := r.Rebuild(bad, Options{}); err == nil || r.Load() == nil {
		t.Fatalf("Rebuild of a bad file: %v, table %v", err, r.Load())
	}
	r.Swap(t7)
	var stop atomic.Bool
	var wg sync.WaitGroup
	var seenOn, seenOff atomic.Int64
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(w), 1))
			dst := make([]Destination, 0, 4)
			for i := 0; !stop.Load(); i++ {
				if i%64 == 0 {
					runtime.Gosched() // let the swapper run on two cores
				}
				ds, err := r.Load().Route("device1.itsp.com", "+1 678 555 0100", 0, rnd, nil, dst[:0])
				if err != nil {
					t.Error(err)
					return
				}
				switch {
				case len(ds) == 2 && ds[0].Device == "device2.itsp.com" && ds[1].Device == "device4.carrier.com":
					seenOn.Add(1)
				case len(ds) == 1 && ds[0].Device == "device4.carrier.com":
					seenOff.Add(1)
				default:
					t.Errorf("mixed answer %v", names(ds))
					return
				}
			}
		}()
	}
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; i < 2000 || seenOn.Load() < 100 || seenOff.Load() < 100; i++ {
		runtime.Gosched()
		next := t7off
		if i%2 == 1 {
			next = t7
		}
		if old := r.Swap(next); old != t7 && old != t7off {
			t.Fatal("Swap returned a stranger")
		}
		if time.Now().After(deadline) {
			stop.Store(true)
			wg.Wait()
			t.Fatalf("readers never saw both tables: %d %d after %d swaps", seenOn.Load(), seenOff.Load(), i)
		}
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("answers: %d with device2, %d without", seenOn.Load(), seenOff.Load())
}

// TestTableIndependentOfFile: editing or dropping the File after Build does
// not change the Table.
func TestTableIndependentOfFile(t *testing.T) {
	f, tab := table7(t)
	if err := f.SetEnabled("device2.itsp.com", false); err != nil {
		t.Fatal(err)
	}
	f.Routes[0].Targets[1].Weight = 0
	f.Devices[2].Name = "renamed"
	ds, err := tab.Route("device8.isp.com", "1678", 0, newRand(1), nil, nil)
	if err != nil || len(ds) != 3 {
		t.Fatalf("%v %v", names(ds), err)
	}
	if _, ok := tab.Device("device2.itsp.com"); !ok {
		t.Fatal("device2 gone")
	}
}
