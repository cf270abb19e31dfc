package caddyenroll

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

// An edit (a mark) that meets an operator's save the watcher has not taken
// yet parses it before it takes the file's lock: lookups in the file go on
// with the version in force meanwhile (a carrier's 30 MB take a good part
// of a second to parse). The save is parsed once: put in force under the lock if the disk still holds it,
// parsed again there if the operator saved once more meanwhile (the
// version replaced is never put in force: its disabled devices would be
// revoked), refused
// without a second parse if it is invalid. The mark is never lost, nor
// the operator's version.
func TestEditParsesAnOperatorsSaveBeforeTheLock(t *testing.T) {
	const v1 = "group \"\"\ndevice gw1.example \"\" enabled\ndevice gw2.example \"\" enabled\n"
	const v2 = v1 + "device gw3.example \"\" enabled\n"
	const v3 = v2 + "device gw4.example \"\" enabled\n"
	// v2 with gw2.example disabled: never in force when v3 replaced it
	const v2off = "group \"\"\ndevice gw1.example \"\" enabled\ndevice gw2.example \"\" disabled\ndevice gw3.example \"\" enabled\n"
	mark := func(f *configfile.File) error { return f.SetEnrolled("gw1.example", true) }
	for _, tc := range []struct {
		name string
		save string
		// once the save is parsed ahead: the operator's next save, if any
		again string
		// the file after the edit ("": refused, the save left as it is)
		want   string
		parses int
	}{
		{name: "taken", save: v2, parses: 1,
			want: "group \"\"\ndevice gw1.example \"\" enabled enrolled\ndevice gw2.example \"\" enabled\ndevice gw3.example \"\" enabled\n"},
		{name: "saved again meanwhile", save: v2off, again: v3, parses: 2,
			want: "group \"\"\ndevice gw1.example \"\" enabled enrolled\ndevice gw2.example \"\" enabled\ndevice gw3.example \"\" enabled\ndevice gw4.example \"\" enabled\n"},
		{name: "invalid", save: v1 + "device gw3.example \"\" enabeld\n", parses: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs, path, _ := testConfigState(t, v1)
			cs.settle = 0 // a save may reuse the inode of one replaced: not a write in place
			saveRenamed(t, path, tc.save)
			var parses atomic.Int32
			parsing, release := make(chan struct{}), make(chan struct{})
			parseConfigFile = func(p string) (*configfile.File, error) {
				if parses.Add(1) == 1 {
					close(parsing)
					<-release
				}
				return configfile.ParseFile(p)
			}
			t.Cleanup(func() { parseConfigFile = configfile.ParseFile })
			var disabled []string
			cs.onChange = func(_ *configfile.File, d []string) { disabled = append(disabled, d...) }
			var prepared atomic.Int32
			cs.prepare = func(f *configfile.File) func() {
				if prepared.Add(1) == 1 && tc.again != "" {
					saveRenamed(t, path, tc.again) // after the parse, before the lock
				}
				return nil
			}
			edited := make(chan error, 1)
			go func() { edited <- cs.edit(context.Background(), mark) }()
			select {
			case <-parsing:
			case err := <-edited:
				close(release)
				t.Fatalf("the edit did not parse the operator's save: %v", err)
			}
			within(t, "a device lookup in the file", func() {
				if d := cs.device("gw1.example"); !d.Known || d.Enrolled || cs.device("gw3.example").Known {
					t.Errorf("during the parse: %+v; want the version in force", d)
				}
			})
			close(release)
			err := <-edited
			data, rerr := os.ReadFile(path)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if tc.want == "" {
				if !errors.Is(err, errFileUnavailable) || !strings.Contains(err.Error(), "ch.conf:4") {
					t.Errorf("edit of an invalid save: %v, want it refused at its line", err)
				}
				if string(data) != tc.save {
					t.Errorf("the invalid save was written over:\n%s", data)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if string(data) != tc.want {
					t.Errorf("file:\n%s\nwant:\n%s", data, tc.want)
				}
				if d := cs.device("gw1.example"); !d.Enrolled || !cs.device("gw3.example").Known {
					t.Errorf("in force: gw1 %+v, gw3 known %v", d, cs.device("gw3.example").Known)
				}
			}
			if len(disabled) != 0 {
				t.Errorf("devices taken as disabled: %q (a version replaced on disk was put in force)", disabled)
			}
			if n := parses.Load(); n != int32(tc.parses) {
				t.Errorf("parsed %d times, want %d", n, tc.parses)
			}
		})
	}
}
