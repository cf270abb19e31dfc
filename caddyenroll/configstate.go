package caddyenroll

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

// configState is the parsed configuration file shared by every handler.
// Readers take the read lock for the few field reads they need; edits take
// the write lock, change the parsed file and write it back atomically
// (comments and quoting of untouched lines preserved, backups rotated).
type configState struct {
	path    string
	backups int

	// onChange is called, under the write lock, with every new version of
	// the file (after an edit or a reload).
	onChange func(f *configfile.File)

	mu      sync.RWMutex
	file    *configfile.File
	modTime time.Time
	size    int64
}

func loadConfigState(path string, backups int) (*configState, error) {
	if backups == 0 {
		backups = -1 // configfile: 0 means its default, negative means none
	}
	cs := &configState{path: path, backups: backups}
	f, fi, err := parseConfigFile(path)
	if err != nil {
		return nil, err
	}
	cs.file, cs.modTime, cs.size = f, fi.ModTime(), fi.Size()
	return cs, nil
}

func parseConfigFile(path string) (*configfile.File, os.FileInfo, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("configuration file: %v", err)
	}
	f, err := configfile.ParseFile(path)
	if err != nil {
		return nil, nil, err
	}
	return f, fi, nil
}

// read calls fn with the current file under the read lock. fn must not
// keep references to the file's slices past its return.
func (cs *configState) read(fn func(f *configfile.File)) {
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	fn(cs.file)
}

// edit applies fn and writes the file back when fn succeeds. A failed
// write restores the previous parsed state by re-reading the file.
func (cs *configState) edit(fn func(f *configfile.File) error) error {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	// pick up edits an operator saved since the last poll, so we never
	// overwrite them with an older parse
	if err := cs.refreshLocked(); err != nil {
		return err
	}
	if err := fn(cs.file); err != nil {
		return err
	}
	mode := os.FileMode(0o640)
	if fi, err := os.Stat(cs.path); err == nil {
		mode = fi.Mode().Perm()
	}
	if err := cs.file.Save(cs.path, configfile.SaveOptions{Backups: cs.backups, Mode: mode}); err != nil {
		// the parsed file no longer matches the disk: reload it
		if f, fi, perr := parseConfigFile(cs.path); perr == nil {
			cs.file, cs.modTime, cs.size = f, fi.ModTime(), fi.Size()
		}
		return fmt.Errorf("writing %s: %v", cs.path, err)
	}
	if fi, err := os.Stat(cs.path); err == nil {
		cs.modTime, cs.size = fi.ModTime(), fi.Size()
	}
	cs.changed()
	return nil
}

func (cs *configState) changed() {
	if cs.onChange != nil {
		cs.onChange(cs.file)
	}
}

// refreshLocked re-parses the file when it changed on disk.
func (cs *configState) refreshLocked() error {
	fi, err := os.Stat(cs.path)
	if err != nil {
		return fmt.Errorf("configuration file: %v", err)
	}
	if fi.ModTime().Equal(cs.modTime) && fi.Size() == cs.size {
		return nil
	}
	f, err := configfile.ParseFile(cs.path)
	if err != nil {
		return err
	}
	cs.file, cs.modTime, cs.size = f, fi.ModTime(), fi.Size()
	cs.changed()
	return nil
}

// reloadIfChanged re-parses the file if it changed on disk. It reports
// whether it did and which devices went from enabled to disabled (or
// disappeared), whose certificates the caller revokes.
func (cs *configState) reloadIfChanged() (bool, []string, error) {
	fi, err := os.Stat(cs.path)
	if err != nil {
		return false, nil, err
	}
	cs.mu.RLock()
	same := fi.ModTime().Equal(cs.modTime) && fi.Size() == cs.size
	cs.mu.RUnlock()
	if same {
		return false, nil, nil
	}
	f, err := configfile.ParseFile(cs.path)
	if err != nil {
		// remember this version so the error is logged once per change
		cs.mu.Lock()
		cs.modTime, cs.size = fi.ModTime(), fi.Size()
		cs.mu.Unlock()
		return false, nil, err
	}
	cs.mu.Lock()
	old := cs.file
	cs.file, cs.modTime, cs.size = f, fi.ModTime(), fi.Size()
	cs.changed()
	cs.mu.Unlock()
	var disabled []string
	for i := range old.Devices {
		d := &old.Devices[i]
		if !d.Enabled {
			continue
		}
		if nd, ok := f.Device(d.Name); !ok || !nd.Enabled {
			disabled = append(disabled, d.Name)
		}
	}
	return true, disabled, nil
}

// flags is a snapshot of the file's switches.
type flags struct {
	Enroll, Routing, CDRs, SSL bool
}

func (cs *configState) flags() flags {
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	f := cs.file
	return flags{Enroll: f.Enroll, Routing: f.Routing, CDRs: f.CDRs, SSL: f.SSL}
}

// deviceInfo is a copy of a device line.
type deviceInfo struct {
	Name, Group       string
	Enabled, Enrolled bool
	Known             bool
}

func (cs *configState) device(name string) deviceInfo {
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	d, ok := cs.file.Device(name)
	if !ok {
		// DNS names are case-insensitive: a CSR may spell the name
		// differently from the file's (usually lower-case) line
		d, ok = cs.file.Device(strings.ToLower(name))
	}
	if !ok {
		return deviceInfo{Name: name}
	}
	return deviceInfo{Name: d.Name, Group: d.Group, Enabled: d.Enabled, Enrolled: d.Enrolled, Known: true}
}
