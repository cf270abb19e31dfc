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
	enabled map[string]bool      // by configfile.DeviceKey; nil before the first version
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
	now := make(map[string]bool, len(f.Devices))
	for i := range f.Devices {
		if f.Devices[i].Enabled {
			now[configfile.DeviceKey(f.Devices[i].Name)] = true
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.enabled != nil {
		for k := range now {
			if !l.enabled[k] {
				l.since[k] = at
			}
		}
	}
	l.enabled = now
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
