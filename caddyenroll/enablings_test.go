package caddyenroll

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

// saveAs puts text at path as an operator's editor saving anew does.
func saveAs(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path+".new", []byte(text), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

// A reload (an operator's save, taken by the watcher's poll) reports what
// the new version changes against the one in force — devices disabled or
// gone, added disabled, spelled otherwise — and records the devices it
// enables again; the comparison is made before the file's lock is taken,
// with the same results.
func TestReloadReportsChangesAndEnablings(t *testing.T) {
	const head = "group \"\"\n"
	for _, tc := range []struct {
		name, from, to              string
		disabled, added, enabledNew []string
		respelled                   [][2]string
	}{
		{name: "disabled and removed",
			from:     head + "device a.example \"\" enabled\ndevice b.example \"\" enabled\ndevice c.example \"\" enabled\n",
			to:       head + "device a.example \"\" disabled\ndevice c.example \"\" enabled\n",
			disabled: []string{"a.example", "b.example"}},
		{name: "enabled again",
			from:       head + "device a.example \"\" disabled\ndevice b.example \"\" enabled\n",
			to:         head + "device a.example \"\" enabled\ndevice b.example \"\" enabled\n",
			enabledNew: []string{"a.example"}},
		{name: "added disabled and added enabled",
			from:       head + "device a.example \"\" enabled\n",
			to:         head + "device a.example \"\" enabled\ndevice n.example \"\" disabled\ndevice m.example \"\" enabled\n",
			added:      []string{"n.example"},
			enabledNew: []string{"m.example"}},
		{name: "respelled",
			from:      head + "device a.example \"\" enabled\n",
			to:        head + "device A.Example. \"\" enabled\n",
			respelled: [][2]string{{"a.example", "A.Example."}}},
		{name: "only a comment",
			from: head + "device a.example \"\" enabled\n",
			to:   "# edited\n" + head + "device a.example \"\" enabled\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs, path, _ := testConfigState(t, tc.from)
			var disabled, added []string
			var respelled [][2]string
			cs.onChange = func(_ *configfile.File, d []string) { disabled = append(disabled, d...) }
			cs.onAddedDisabled = func(d []string) { added = append(added, d...) }
			cs.onRespelled = func(r [][2]string) { respelled = append(respelled, r...) }
			before := time.Now()
			saveAs(t, path, tc.to)
			if changed, err := cs.poll(); err != nil || !changed {
				t.Fatalf("poll: %v %v", changed, err)
			}
			slices.Sort(disabled)
			if !slices.Equal(disabled, tc.disabled) || !slices.Equal(added, tc.added) || !slices.Equal(respelled, tc.respelled) {
				t.Errorf("disabled %q added %q respelled %q, want %q %q %q", disabled, added, respelled, tc.disabled, tc.added, tc.respelled)
			}
			for _, d := range []string{"a.example", "b.example", "c.example", "m.example", "n.example"} {
				_, again := cs.enabledAgainSince(d, before.Add(-time.Millisecond))
				if want := slices.Contains(tc.enabledNew, d); again != want {
					t.Errorf("%s enabled again: %v, want %v", d, again, want)
				}
			}
		})
	}
}

// A version compared with the enablings of one version (prepare) and
// recorded after another was observed meanwhile (as the old and the new
// config of a Caddy reload share the file's record) is compared again:
// a device the version in between disabled counts as enabled again.
func TestEnablingsPreparedBeforeAnotherVersion(t *testing.T) {
	dir := t.TempDir()
	parse := func(text string) *configfile.File {
		t.Helper()
		p := filepath.Join(dir, "v.conf")
		if err := os.WriteFile(p, []byte("group \"\"\n"+text), 0o640); err != nil {
			t.Fatal(err)
		}
		f, err := configfile.ParseFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	l := enablingsOf(filepath.Join(dir, "ch.conf"))
	t0 := time.Now()
	l.observe(parse("device a.example \"\" enabled\n"), t0)
	o := l.prepare(parse("device a.example \"\" enabled\n"))
	if len(o.anew) != 0 {
		t.Fatalf("prepared as enabled anew: %q", o.anew)
	}
	t1 := t0.Add(time.Second)
	l.observe(parse("device a.example \"\" disabled\n"), t1)
	t2 := t1.Add(time.Second)
	l.record(o, t2)
	if since, ok := l.enabledAgainSince("a.example", t1); !ok || !since.Equal(t2) {
		t.Errorf("enabled again since %v %v, want %v", since, ok, t2)
	}
	// and as prepared when nothing came in between
	o = l.prepare(parse("device a.example \"\" disabled\n"))
	l.record(o, t2.Add(time.Second))
	if _, ok := l.enabledAgainSince("a.example", t1); ok {
		t.Error("a disabled device enabled again")
	}
}
