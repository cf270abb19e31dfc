package caddyenroll

import (
	"path/filepath"
	"sync"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

// enablings remembers, per configuration file, when this process last saw
// each device become enabled in a version read from disk (the server's own
// edits enable no device it saw disabled: an approval refuses those, and a
// removed device it adds back is found by revokeRemoved on disk).
//
// The revocation of a device seen disabled can run late (it waits for the
// device's lock, and may be a stopped config's during a reload); if the
// operator enabled the device again meanwhile and it enrolled, the
// certificate it enrolled for must stay good. Every configState of one
// file (the old and the new config of a reload) shares the file's record.
var enablings sync.Map // absolute path -> *enabledLog

type enabledLog struct {
	mu      sync.Mutex
	enabled map[string]bool      // by configfile.DeviceKey; nil before the first version; never changed, replaced
	gen     uint64               // how many versions were observed
	since   map[string]time.Time // when a version first showed the device enabled again
}

func enablingsOf(path string) *enabledLog {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	v, _ := enablings.LoadOrStore(path, &enabledLog{since: map[string]time.Time{}})
	return v.(*enabledLog)
}

// observe takes note of a version of the file put in force at at. The
// first version the process sees enables nothing anew: its devices were
// enabled before anything here saw them disabled.
func (l *enabledLog) observe(f *configfile.File, at time.Time) {
	l.record(l.prepare(f), at)
}

// observation is what observe learns of a version, made by prepare before
// the version is put in force (at a carrier's 100,000 devices, tens of
// milliseconds that the file's lock need not be held for): the devices it
// enables, and which of them the version last observed (gen) did not.
type observation struct {
	enabled map[string]bool
	gen     uint64
	anew    []string
}

// prepare compares f with the version last observed, for record.
func (l *enabledLog) prepare(f *configfile.File) observation {
	o := observation{enabled: make(map[string]bool, len(f.Devices))}
	for i := range f.Devices {
		if f.Devices[i].Enabled {
			o.enabled[configfile.DeviceKey(f.Devices[i].Name)] = true
		}
	}
	l.mu.Lock()
	prev := l.enabled // replaced, never changed: read below without the lock
	o.gen = l.gen
	l.mu.Unlock()
	o.anew = newlyEnabled(prev, o.enabled)
	return o
}

// record takes note of the version o was prepared from, put in force at
// at: the same as observe, compared again if another version was observed
// since prepare.
func (l *enabledLog) record(o observation, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if o.gen != l.gen {
		o.anew = newlyEnabled(l.enabled, o.enabled)
	}
	for _, k := range o.anew {
		l.since[k] = at
	}
	l.enabled = o.enabled
	l.gen++
}

// newlyEnabled lists the devices of now that prev did not enable; none
// when there was no prev (the first version).
func newlyEnabled(prev, now map[string]bool) []string {
	if prev == nil {
		return nil
	}
	var anew []string
	for k := range now {
		if !prev[k] {
			anew = append(anew, k)
		}
	}
	return anew
}

// enabledAgainSince returns when device was last seen enabled again after
// seenDisabled, the time its disabling was seen; ok is false when it was
// not (it is still disabled, or gone).
func (l *enabledLog) enabledAgainSince(device string, seenDisabled time.Time) (time.Time, bool) {
	k := configfile.DeviceKey(device)
	l.mu.Lock()
	defer l.mu.Unlock()
	since, ok := l.since[k]
	if !ok || !l.enabled[k] || !since.After(seenDisabled) {
		return time.Time{}, false
	}
	return since, true
}
