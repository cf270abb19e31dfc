package caddyenroll

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/caddyserver/certmagic"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

// During a reload the old and the new config each hold a configState of
// the same file; their edits must not overwrite each other's.
func TestConfigStatesShareEdits(t *testing.T) {
	const n = 40
	var b strings.Builder
	b.WriteString("group \"\"\n")
	for i := range n {
		fmt.Fprintf(&b, "device gw%02d.example \"\" enabled\n", i)
	}
	path := filepath.Join(t.TempDir(), "ch.conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o640); err != nil {
		t.Fatal(err)
	}
	var states [2]*configState
	for i := range states {
		cs, err := loadConfigState(path, -1)
		if err != nil {
			t.Fatal(err)
		}
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

// Two instances sharing the storage and the file (two processes: each its
// own process-wide edit lock) write it one at a time under the storage
// lock, and none loses the other's marks.
func TestConfigStatesShareEditsAcrossInstances(t *testing.T) {
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
	st := &certmagic.FileStorage{Path: filepath.Join(dir, "data")}
	var states [2]*configState
	for i := range states {
		cs, err := loadConfigState(path, -1)
		if err != nil {
			t.Fatal(err)
		}
		cs.edits = new(sync.Mutex) // another process
		cs.lockFile = configFileLock(st, path)
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
