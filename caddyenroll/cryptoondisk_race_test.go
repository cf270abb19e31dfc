package caddyenroll

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

// Readers of the crypto item on disk racing edits that change it, through
// another configState of the file and the readers' own, never see a
// value that goes back to an earlier version's, and see the last one once
// the edits are done (the cache of the version written is keyed by the
// version on disk, whatever order its notes come in). Run with -race.
func TestCryptoOnDiskRacingEdits(t *testing.T) {
	reader, path, _ := testConfigState(t, "crypto 'c0'\ngroup \"\"\ndevice gw1.example \"\" enabled\n")
	writer, err := loadConfigState(path, -1)
	if err != nil {
		t.Fatal(err)
	}
	const edits = 30
	var wg sync.WaitGroup
	done := make(chan struct{})
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := 0
			for {
				select {
				case <-done:
					return
				default:
				}
				c, err := reader.cryptoOnDisk()
				if err != nil {
					t.Errorf("cryptoOnDisk: %v", err)
					return
				}
				n, err := strconv.Atoi(c[1:])
				if err != nil || n < last {
					t.Errorf("cryptoOnDisk = %q after c%d", c, last)
					return
				}
				last = n
			}
		}()
	}
	for i := 1; i <= edits; i++ {
		cs := writer
		if i%3 == 0 {
			cs = reader
		}
		if err := cs.edit(context.Background(), func(f *configfile.File) error {
			return f.SetCrypto("c" + strconv.Itoa(i))
		}); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	want := "c" + strconv.Itoa(edits)
	for name, cs := range map[string]*configState{"reader": reader, "writer": writer} {
		if c, err := cs.cryptoOnDisk(); err != nil || c != want {
			t.Errorf("%s after the edits: cryptoOnDisk = %q, %v; want %q", name, c, err, want)
		}
	}
}
