package ca

import (
	"context"
	"runtime"
	"sync"
	"testing"
)

// TestConcurrentSign signs 10,000 certificates from many goroutines and
// checks every serial is distinct. Under -race with -short it signs 1,000.
func TestConcurrentSign(t *testing.T) {
	n := 10000
	if raceEnabled && testing.Short() {
		n = 1000
	}
	c, _ := openCA(t, NewMemStore(), Config{}, "")
	csrs := [][]byte{
		makeCSR(t, testKey(t, "p256"), csrOpts{}),
		makeCSR(t, testKey(t, "ed25519"), csrOpts{cn: "device1.itsp.com"}),
	}
	workers := 4 * runtime.GOMAXPROCS(0)
	if workers < 16 {
		workers = 16
	}
	serials := make([]string, n)
	var wg sync.WaitGroup
	next := make(chan int, n)
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				is, err := c.Sign(csrs[i%len(csrs)], "device1.itsp.com", Policy{})
				if err != nil {
					t.Error(err)
					return
				}
				serials[i] = is.Serial
				if i%500 == 0 { // some records too, concurrently
					if err := c.Record(context.Background(), is); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	seen := make(map[string]bool, n)
	for _, s := range serials {
		if s == "" || seen[s] {
			t.Fatalf("serial %q missing or repeated", s)
		}
		seen[s] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct serials, want %d", len(seen), n)
	}
}
