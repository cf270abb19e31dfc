package caddyenroll

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

// During a reload the old and the new config each hold a configState of
// the same file; their edits must not overwrite each other's.
func TestConfigStatesShareEdits(t *testing.T) {
	checkSharedEdits(t, func(string, string, *configState) {})
}

// Two instances sharing the storage and the file (two processes: each its
// own process-wide edit lock) write it one at a time under the storage
// lock, and none loses the other's marks.
func TestConfigStatesShareEditsAcrossInstances(t *testing.T) {
	checkSharedEdits(t, func(dir, path string, cs *configState) {
		cs.edits = new(sync.Mutex) // another process
		cs.lockFile = configFileLock(&certmagic.FileStorage{Path: filepath.Join(dir, "data")}, path)
	})
}

// An operator's save (an editor renaming its file into place, without any
// lock) that lands while the server writes its own edit is not written
// over: the server's edit is made again on the operator's version. A
// device the server's first attempt added is not taken for one the
// operator's version lacks (a reload would revoke its certificates).
func TestEditKeepsAnOperatorsSaveMadeWhileWriting(t *testing.T) {
	cs, path, _ := testConfigState(t, "group \"\"\ndevice gw1.example \"\" enabled\ndevice gw2.example \"\" enabled\n")
	var disabled []string
	cs.onChange = func(_ *configfile.File, d []string) { disabled = append(disabled, d...) }
	saved := false
	err := cs.edit(context.Background(), func(f *configfile.File) error {
		if !saved {
			// the file parsed, the server's version not written yet
			saved = true
			tmp := path + ".editor"
			if err := os.WriteFile(tmp, []byte("group \"\"\ndevice gw1.example \"\" enabled\ndevice gw2.example \"\" disabled\n"), 0o640); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.SetEnrolled("gw1.example", true); err != nil {
			return err
		}
		return f.AddDevice("gw3.example", "", true, true)
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err := configfile.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	gw1, _ := f.Device("gw1.example")
	gw2, _ := f.Device("gw2.example")
	gw3, _ := f.Device("gw3.example")
	if gw2 == nil || gw2.Enabled {
		t.Errorf("the operator's edit (gw2.example disabled) was written over:\n%s", f.Bytes())
	}
	if gw1 == nil || !gw1.Enrolled || gw3 == nil || !gw3.Enabled || !gw3.Enrolled {
		t.Errorf("the server's edit is not in the file:\n%s", f.Bytes())
	}
	if d := cs.device("gw2.example"); !d.Known || d.Enabled {
		t.Errorf("gw2.example in force: %+v, want it disabled", d)
	}
	if d := cs.device("gw3.example"); !d.Known || !d.Enrolled {
		t.Errorf("gw3.example in force: %+v, want it enrolled", d)
	}
	if len(disabled) != 1 || disabled[0] != "gw2.example" {
		t.Errorf("devices reported disabled: %q, want gw2.example", disabled)
	}
}

// checkSharedEdits marks 40 devices enrolled, alternately through two
// configStates of one file (set up by setup), and checks no mark is lost.
func checkSharedEdits(t *testing.T, setup func(dir, path string, cs *configState)) {
	t.Helper()
	const n = 40
	var b strings.Builder
	b.WriteString("group \"\"\n")
	for i := range n {
		fmt.Fprintf(&b, "device gw%02d.example \"\" enabled\n", i)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "ch.conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o640); err != nil {
		t.Fatal(err)
	}
	var states [2]*configState
	for i := range states {
		cs, err := loadConfigState(path, -1)
		if err != nil {
			t.Fatal(err)
		}
		setup(dir, path, cs)
		states[i] = cs
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("gw%02d.example", i)
			if err := states[i%2].edit(context.Background(), func(f *configfile.File) error { return f.SetEnrolled(name, true) }); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	f, err := configfile.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if d, _ := f.Device(fmt.Sprintf("gw%02d.example", i)); d == nil || !d.Enrolled {
			t.Errorf("gw%02d.example: its enrolled mark was lost", i)
		}
	}
}

// A device line is found under every spelling the CA takes for the same
// device, as the file writes it, and the index follows the server's edits;
// an enrolled mark for another spelling marks the line rather than adding
// the device again.
func TestDeviceLookupSpellings(t *testing.T) {
	cs, path, _ := testConfigState(t, "group \"\"\ndevice 192.0.2.10 \"\" disabled\ndevice '2001:DB8::1' \"\" enabled\ndevice GW1.Example \"\" enabled\n")
	for spelling, want := range map[string]string{
		"192.0.2.10": "192.0.2.10", "[192.0.2.10]": "192.0.2.10", "::ffff:192.0.2.10": "192.0.2.10",
		"2001:db8::1": "2001:DB8::1", "2001:db8:0::1": "2001:DB8::1", "[2001:DB8::1]": "2001:DB8::1",
		"gw1.example": "GW1.Example", "GW1.EXAMPLE.": "GW1.Example",
	} {
		if d := cs.device(spelling); !d.Known || d.Name != want {
			t.Errorf("%s: %+v, want %s", spelling, d, want)
		}
	}
	for _, other := range []string{"192.0.2.1", "2001:db8::10", "gw2.example", "not a name"} {
		if d := cs.device(other); d.Known || d.Name != other {
			t.Errorf("%s: %+v, want unknown", other, d)
		}
	}
	if err := cs.edit(context.Background(), func(f *configfile.File) error { return f.AddDevice("2001:db8::2", "", true, false) }); err != nil {
		t.Fatal(err)
	}
	if d := cs.device("2001:DB8:0::2"); !d.Known || d.Name != "2001:db8::2" {
		t.Errorf("added 2001:db8::2 as 2001:DB8:0::2: %+v", d)
	}
	err := cs.edit(context.Background(), func(f *configfile.File) error {
		_, err := markIn(f, mark{Device: "gw1.example", Add: true})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err := configfile.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := f.Device("GW1.Example"); len(f.Devices) != 4 || !ok || !d.Enrolled {
		t.Errorf("after marking gw1.example: %+v", f.Devices)
	}
}

// Every spelling of a device takes one storage lock: enrollment locks the
// file's name, an administrator's revocation the CA's normal form.
func TestDeviceLockNameSpellings(t *testing.T) {
	for _, c := range [][]string{
		{"192.0.2.10", "[192.0.2.10]", "::ffff:192.0.2.10"},
		{"2001:db8::1", "2001:DB8:0::1", "[2001:db8::1]"},
		{"gw1.example", "GW1.Example", "gw1.example."},
	} {
		for _, other := range c[1:] {
			if deviceLockName(other) != deviceLockName(c[0]) {
				t.Errorf("%s and %s take different locks", other, c[0])
			}
		}
	}
	if deviceLockName("gw1.example") == deviceLockName("gw2.example") {
		t.Error("two devices share a lock")
	}
}

// The marks of a config being stopped (a reload: the old config's last
// enrollments) are still written, not deferred: the storage lock's wait
// is not cut short by Stop.
func TestMarksOfAStoppedConfigAreWritten(t *testing.T) {
	cs, path, dir := testConfigState(t, "group \"\"\ndevice gw1.example \"\" enabled\n")
	cs.lockFile = configFileLock(localLocks{&certmagic.FileStorage{Path: filepath.Join(dir, "data")}}, path)
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	a := &App{cfg: cs, bgCtx: stopped}
	for i := range 20 { // a cancelled wait would fail some at random
		name := "gw1.example"
		if i%2 == 1 {
			name = "gw2.example"
		}
		if errs := a.applyMarks([]mark{{Device: name, Add: true}}); errs[0] != nil {
			t.Fatalf("mark %d: %v", i, errs[0])
		}
	}
	f, err := configfile.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"gw1.example", "gw2.example"} {
		if d, _ := f.Device(n); d == nil || !d.Enrolled {
			t.Errorf("%s not marked", n)
		}
	}
}

// A request keeps its id whatever the spelling of its device's name: an
// operator respelling the line while it waits does not make it another
// request (whose nonce binding would refuse the device's retrieves).
func TestRequestIDSpellings(t *testing.T) {
	const key = "0f1e2d"
	for _, c := range [][2]string{{"2001:DB8:0::1", "2001:db8::1"}, {"GW1.Example.", "gw1.example"}, {"[192.0.2.10]", "192.0.2.10"}} {
		if requestID("modern", c[0], key) != requestID("modern", c[1], key) {
			t.Errorf("%s and %s: different request ids", c[0], c[1])
		}
	}
	if requestID("modern", "gw1.example", key) == requestID("legacy", "gw1.example", key) ||
		requestID("modern", "gw1.example", key) == requestID("modern", "gw2.example", key) {
		t.Error("request ids collide")
	}
}

// device_address names one device once, in whatever spelling.
func TestDeviceAddressSpelledTwice(t *testing.T) {
	a := &App{ConfigFile: "x.conf", Approval: ApprovalAuto, UnknownDevices: UnknownPending,
		NonceRetention: caddy.Duration(time.Hour), LockoutBase: caddy.Duration(time.Second), LockoutMax: caddy.Duration(time.Minute),
		DeviceAddresses: map[string]string{"gw1.example": "192.0.2.1", "GW1.example": "192.0.2.2"}}
	if err := a.Validate(); err == nil || !strings.Contains(err.Error(), "names one device twice") {
		t.Fatalf("Validate: %v", err)
	}
	delete(a.DeviceAddresses, "GW1.example")
	if err := a.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

// testConfigState writes text as ch.conf in a new directory and loads it,
// keeping no backups when it is written.
// saveRenamed writes text to path as most editors save: a new file renamed
// into place (another file each time: a new version even within the
// clock's resolution).
func saveRenamed(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path+".new", []byte(text), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

func testConfigState(t *testing.T, text string) (cs *configState, path, dir string) {
	t.Helper()
	dir = t.TempDir()
	path = filepath.Join(dir, "ch.conf")
	if err := os.WriteFile(path, []byte(text), 0o640); err != nil {
		t.Fatal(err)
	}
	cs, err := loadConfigState(path, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cs, path, dir
}

// A version others wrote is taken once left alone for settle: an editor
// writing in place leaves the file empty or cut short for a moment, and a
// version cut after a device line parses without the devices after it
// (which would count as removed, their certificates revoked). An emptied
// file is never taken, by the watcher or by an edit.
func TestConfigStateWaitsForWritesToSettle(t *testing.T) {
	full := "group \"\"\ndevice gw1.example \"\" enabled\ndevice gw2.example \"\" enabled\n"
	cs, path, _ := testConfigState(t, full)
	cs.settle = 300 * time.Millisecond
	var disabled []string
	cs.onChange = func(_ *configfile.File, d []string) { disabled = append(disabled, d...) }

	// cut short after the first device: fresh, so not taken yet
	if err := os.WriteFile(path, []byte("group \"\"\ndevice gw1.example \"\" enabled\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if changed, err := cs.reload(); changed || err != nil {
		t.Fatalf("a version written moments ago was taken: %v %v", changed, err)
	}
	// the write completes
	if err := os.WriteFile(path, []byte(full+"device gw3.example \"\" enabled\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if changed, _ := cs.reload(); changed {
		t.Fatal("the completed version was taken before it settled")
	}
	time.Sleep(cs.settle)
	if changed, err := cs.reload(); !changed || err != nil {
		t.Fatalf("the settled version was not taken: %v %v", changed, err)
	}
	if d := cs.device("gw3.example"); !d.Known || len(disabled) != 0 {
		t.Fatalf("after the settled version: gw3 %+v, disabled %v", d, disabled)
	}

	// emptied: refused once settled too, and an edit waits, then refuses
	if err := os.WriteFile(path, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	time.Sleep(cs.settle)
	if changed, err := cs.reload(); changed || !errors.Is(err, errEmptied) {
		t.Fatalf("an emptied file: %v %v, want errEmptied", changed, err)
	}
	err := cs.edit(context.Background(), func(f *configfile.File) error { return f.SetEnrolled("gw1.example", true) })
	if !errors.Is(err, errFileUnavailable) || !errors.Is(err, errEmptied) {
		t.Fatalf("an edit of an emptied file: %v", err)
	}
	if len(disabled) != 0 || !cs.device("gw2.example").Enabled {
		t.Fatalf("the emptied file was taken: disabled %v", disabled)
	}
	if b, _ := os.ReadFile(path); len(b) != 0 {
		t.Fatalf("the edit wrote the emptied file: %q", b)
	}
}

// A file that goes missing, unreadable or invalid leaves the version in
// force, is reported once (naming the file, and the line of an error),
// not at every poll, and the next good version is taken.
func TestConfigStateBrokenFile(t *testing.T) {
	const good = "group \"\"\ndevice gw1.example \"\" enabled\n"
	const fixed = good + "device gw2.example \"\" enabled\n"
	for _, tc := range []struct {
		name   string
		break_ func(t *testing.T, path string)
		fix    func(t *testing.T, path string)
		same   bool   // fix makes the broken version good: no new one is saved
		want   string // in the error
	}{
		{name: "deleted", break_: func(t *testing.T, path string) { os.Remove(path) },
			want: "no such file"},
		{name: "directory", break_: func(t *testing.T, path string) {
			os.Remove(path)
			os.Mkdir(path, 0o755)
		}, fix: func(t *testing.T, path string) { os.Remove(path) }, want: "is a directory"},
		{name: "dangling symlink", break_: func(t *testing.T, path string) {
			os.Remove(path)
			os.Symlink("missing.conf", path)
		}, fix: func(t *testing.T, path string) { os.Remove(path) }, want: "no such file"},
		{name: "unreadable", break_: func(t *testing.T, path string) {
			saveRenamed(t, path, fixed) // a new version, with a mode the server cannot read
			parseConfigFile = func(p string) (*configfile.File, error) {
				return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrPermission}
			}
			t.Cleanup(func() { parseConfigFile = configfile.ParseFile })
		}, fix: func(t *testing.T, path string) { parseConfigFile = configfile.ParseFile }, same: true, want: "permission denied"},
		{name: "invalid", break_: func(t *testing.T, path string) {
			saveRenamed(t, path, good+"device gw2.example \"\" enabeld\n")
		}, want: "ch.conf:3: device"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs, path, _ := testConfigState(t, good)
			cs.settle = 0 // a new file may reuse the inode of the one deleted: not a write in place
			tc.break_(t, path)
			for poll := range 3 {
				changed, err := cs.reload()
				if changed || (poll == 0) != (err != nil) {
					t.Fatalf("poll %d of the broken file: changed %v, %v; want it reported once", poll, changed, err)
				}
				if poll == 0 && (!strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want)) {
					t.Errorf("the error %q does not name the file and say %q", err, tc.want)
				}
			}
			if !cs.device("gw1.example").Enabled {
				t.Fatal("the version in force was dropped")
			}
			if tc.fix != nil {
				tc.fix(t, path)
			}
			if !tc.same {
				saveRenamed(t, path, fixed)
			}
			if changed, err := cs.reload(); !changed || err != nil || !cs.device("gw2.example").Known {
				t.Fatalf("the repaired file was not taken: %v %v", changed, err)
			}
			// broken again: reported again
			tc.break_(t, path)
			if _, err := cs.reload(); err == nil {
				t.Fatal("the file broken again was not reported")
			}
		})
	}
}

// An editor that starts writing the file in place just after the server
// stat'ed it (the version then looked settled) leaves it cut short while
// the server reads it: what was read is not the version stat'ed, and is
// not taken, by the watcher or by an edit, nor at a (re)load.
func TestConfigStateFileCutWhileRead(t *testing.T) {
	full := "group \"\"\ndevice gw1.example \"\" enabled\ndevice gw2.example \"\" enabled\n"
	cut := full[:strings.Index(full, "device gw2")]
	for _, tc := range []struct {
		name string
		run  func(cs *configState) error
	}{
		{"watcher", func(cs *configState) error { _, err := cs.reload(); return err }},
		{"edit", func(cs *configState) error {
			return cs.edit(context.Background(), func(f *configfile.File) error { return f.SetEnrolled("gw1.example", true) })
		}},
		{"load", func(cs *configState) error {
			ncs, err := loadConfigState(cs.path, -1)
			if err == nil && !ncs.device("gw2.example").Known {
				return errors.New("loaded without gw2")
			}
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs, path, _ := testConfigState(t, full)
			cs.settle = 100 * time.Millisecond
			var disabled []string
			cs.onChange = func(_ *configfile.File, d []string) { disabled = append(disabled, d...) }
			old := time.Now().Add(-time.Minute) // settled
			if err := os.Chtimes(path, old, old); err != nil {
				t.Fatal(err)
			}
			reads := 0
			parseConfigFile = func(p string) (*configfile.File, error) {
				reads++
				if reads > 1 {
					return configfile.ParseFile(p)
				}
				// the editor truncates and writes the first lines, the
				// server reads, the editor writes the rest
				if err := os.WriteFile(p, []byte(cut), 0o640); err != nil {
					t.Fatal(err)
				}
				f, err := configfile.ParseFile(p)
				if err := os.WriteFile(p, []byte(full), 0o640); err != nil {
					t.Fatal(err)
				}
				return f, err
			}
			t.Cleanup(func() { parseConfigFile = configfile.ParseFile })
			if err := tc.run(cs); err != nil {
				t.Fatal(err)
			}
			if len(disabled) != 0 || !cs.device("gw2.example").Known {
				t.Fatalf("the cut version was taken: disabled %v", disabled)
			}
			if f, err := configfile.ParseFile(path); err != nil || len(f.Devices) != 2 {
				t.Fatalf("the file on disk lost a device: %v", err)
			}
		})
	}
}

// An editor that moves the original away and writes a new file (vim's and
// emacs's default) leaves a new file cut short at the path while it
// writes. A settled edit (enrolled marks, an administrator's changes) does
// not write back a version others made less than settle ago: written back, the cut version would replace
// the editor's file, whose last lines would go to a file no longer there.
func TestEditWaitsForANewFileToSettle(t *testing.T) {
	full := "group \"\"\ndevice gw1.example \"\" enabled\ndevice gw2.example \"\" enabled\n"
	cut := full[:strings.Index(full, "device gw2")]
	cs, path, dir := testConfigState(t, full)
	cs.settle = time.Second
	if err := os.Rename(path, filepath.Join(dir, filepath.Base(path)+"~")); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(cut); err != nil {
		t.Fatal(err)
	}
	wrote := make(chan error, 1)
	go func() { // the editor writes the rest through the file it opened
		time.Sleep(cs.settle / 10)
		_, err := f.WriteString(full[len(cut):])
		wrote <- errors.Join(err, f.Close())
	}()
	if err := cs.editSettled(context.Background(), func(f *configfile.File) error { return f.SetEnrolled("gw1.example", true) }); err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	got, err := configfile.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Devices) != 2 || !got.Devices[0].Enrolled {
		b, _ := os.ReadFile(path)
		t.Fatalf("after the edit the file holds:\n%s", b)
	}
}

// A path that is a symbolic link, laid out as a Kubernetes ConfigMap
// mounts a file (FILE -> ..data/FILE, ..data -> a directory swapped
// atomically at each update): the server's edits are written through to
// the file at the end of the links, with its backups beside it, and the
// links stay links; a swap of ..data is taken as a new version.
func TestConfigStateSymlinkedFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ch.conf")
	publish := func(gen, text string) { // as the kubelet updates a ConfigMap
		if err := os.Mkdir(filepath.Join(dir, gen), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, gen, "ch.conf"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(gen, filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	const one = "group \"\"\ndevice gw1.example \"\" enabled\n"
	publish("..gen1", one)
	if err := os.Symlink("..data/ch.conf", path); err != nil {
		t.Fatal(err)
	}
	cs, err := loadConfigState(path, 2)
	if err != nil {
		t.Fatal(err)
	}
	mark := func(device string) {
		t.Helper()
		if err := cs.edit(context.Background(), func(f *configfile.File) error { return f.SetEnrolled(device, true) }); err != nil {
			t.Fatal(err)
		}
	}
	links := func() {
		t.Helper()
		for _, l := range []string{path, filepath.Join(dir, "..data")} {
			if fi, err := os.Lstat(l); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Fatalf("%s is no longer a symbolic link", l)
			}
		}
	}
	mark("gw1.example")
	links()
	if b, _ := os.ReadFile(filepath.Join(dir, "..gen1", "ch.conf")); !strings.Contains(string(b), "gw1.example \"\" enabled enrolled") {
		t.Fatalf("the edit did not reach the file the links name:\n%s", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "..gen1", "ch.conf.~1~")); string(b) != one {
		t.Fatalf("backup beside it: %q", b)
	}

	publish("..gen2", one+"device gw2.example \"\" enabled\n")
	if changed, err := cs.reload(); !changed || err != nil || !cs.device("gw2.example").Known {
		t.Fatalf("the swapped ..data was not taken: %v %v", changed, err)
	}
	mark("gw2.example")
	links()
	if b, _ := os.ReadFile(filepath.Join(dir, "..gen2", "ch.conf")); !strings.Contains(string(b), "gw2.example \"\" enabled enrolled") {
		t.Fatalf("the edit did not reach the new file:\n%s", b)
	}
}
