package caddyenroll

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

// The crypto item on disk is read without parsing the file again when
// the version on disk is one this process wrote (another configState of
// the file, as during a reload, not told yet) or already parsed: an
// enrollment asks for it whenever the version in force is not the one on
// disk, and a carrier's file takes a quarter of a second to parse. A
// version saved by others is parsed, once.
func TestCryptoOnDiskParsesEachVersionOnce(t *testing.T) {
	var parses atomic.Int32
	parse := parseConfigFile
	parseConfigFile = func(path string) (*configfile.File, error) {
		parses.Add(1)
		return parse(path)
	}
	t.Cleanup(func() { parseConfigFile = parse })

	lagging, path, _ := testConfigState(t, "crypto 'old'\ngroup \"\"\ndevice gw1.example \"\" enabled\n")
	writer, err := loadConfigState(path, -1)
	if err != nil {
		t.Fatal(err)
	}
	if err := writer.edit(context.Background(), func(f *configfile.File) error {
		if err := f.SetCrypto("mine"); err != nil {
			return err
		}
		return f.SetEnrolled("gw1.example", true)
	}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		step, want string
		parses     int32
	}{
		{"the writer's version", "mine", 0},
		{"again", "mine", 0},
		{"an operator's save", "theirs", 1},
		{"again", "theirs", 0},
	} {
		if c.step == "an operator's save" {
			saveRenamed(t, path, "crypto 'theirs'\ngroup \"\"\ndevice gw1.example \"\" enabled\n")
		}
		parses.Store(0)
		if lagging.current() {
			t.Fatalf("%s: the lagging configState has the version on disk in force", c.step)
		}
		got, err := lagging.cryptoOnDisk()
		if err != nil || got != c.want {
			t.Errorf("%s: cryptoOnDisk = %q, %v; want %q", c.step, got, err, c.want)
		}
		if n := parses.Load(); n > c.parses {
			t.Errorf("%s: %d parses, want at most %d", c.step, n, c.parses)
		}
	}
}
