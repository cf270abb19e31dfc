package caddyenroll

import (
	"sync/atomic"
	"testing"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

// A version the watcher parsed, compared and made the route table of is
// not put in force if the operator saved again meanwhile (the table takes
// a carrier's file a few tenths of a second): the devices it disables are
// not revoked, as an edit that parsed a save ahead does not put it in
// force once replaced. The watcher's next poll takes the version on disk;
// an edit telling the others (tellOthers) polls again at once.
func TestPollDropsAVersionReplacedWhileItsTableIsMade(t *testing.T) {
	const v1 = "group \"\"\ndevice gw1.example \"\" enabled\ndevice gw2.example \"\" enabled\n"
	// gw2.example disabled by mistake, enabled again at the next save
	const v2 = "group \"\"\ndevice gw1.example \"\" enabled\ndevice gw2.example \"\" disabled\n"
	const v3 = v1 + "device gw3.example \"\" enabled\n"
	for _, held := range []bool{false, true} {
		name := "the watcher's"
		if held {
			name = "an edit telling the others" // tellOthers: takes the version on disk now
		}
		t.Run(name, func(t *testing.T) {
			cs, path, _ := testConfigState(t, v1)
			cs.settle = 0
			var disabled []string
			cs.onChange = func(_ *configfile.File, d []string) { disabled = append(disabled, d...) }
			var prepared atomic.Int32
			cs.prepare = func(f *configfile.File) func() {
				if prepared.Add(1) == 1 {
					saveRenamed(t, path, v3) // once v2 is parsed and compared
				}
				return nil
			}
			saveRenamed(t, path, v2)
			poll := cs.poll
			if held {
				poll = func() (bool, error) {
					cs.edits.Lock()
					defer cs.edits.Unlock()
					return cs.pollEditsHeld(true)
				}
			}
			changed, err := poll()
			if err != nil || changed != held {
				t.Errorf("poll: %v %v, want the version replaced meanwhile dropped (and the next taken: %v)", changed, err, held)
			}
			if len(disabled) != 0 {
				t.Errorf("devices taken as disabled: %q (a version replaced on disk was put in force)", disabled)
			}
			if !held {
				if changed, err := poll(); !changed || err != nil {
					t.Fatalf("next poll: %v %v, want the version on disk", changed, err)
				}
			}
			if !cs.device("gw3.example").Known || !cs.device("gw2.example").Enabled {
				t.Error("the version on disk is not in force")
			}
			if len(disabled) != 0 {
				t.Errorf("devices taken as disabled: %q", disabled)
			}
		})
	}
}
