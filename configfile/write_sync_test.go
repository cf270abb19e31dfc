package configfile

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// syncEvent is one fsync: of a directory or a file, and what the target
// path held at that moment.
type syncEvent struct {
	dir     bool
	name    string
	content []byte // of the synced file (nil for a directory)
	target  []byte // of the written path then (nil: absent)
}

// recordSyncs replaces fsync for the test, recording each call against
// target.
func recordSyncs(t *testing.T, target string) *[]syncEvent {
	var events []syncEvent
	prev := fsync
	t.Cleanup(func() { fsync = prev })
	fsync = func(f *os.File) error {
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		e := syncEvent{dir: fi.IsDir(), name: f.Name()}
		if !e.dir {
			e.content, _ = os.ReadFile(f.Name())
		}
		e.target, _ = os.ReadFile(target)
		events = append(events, e)
		return prev(f)
	}
	return &events
}

// A write is durable before it replaces the file: the new version's
// temporary file is synced before the rename puts it in place, and the
// directory after it, so that a power loss leaves the old version or the
// new one, never an empty or partial file.
func TestWriteSyncsBeforeAndAfterRename(t *testing.T) {
	for _, tc := range []struct {
		name    string
		old     string // "" : no file before
		backups int
	}{
		{"new file", "", 0},
		{"replacing a file", "ssl disabled\n", 0},
		{"replacing a file, with backups", "ssl disabled\n", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "ch.conf")
			if tc.old != "" {
				if err := os.WriteFile(p, []byte(tc.old), 0o640); err != nil {
					t.Fatal(err)
				}
			}
			want := []byte("ssl enabled\n")
			events := recordSyncs(t, p)
			if err := WriteFileAtomic(p, want, SaveOptions{Backups: tc.backups}); err != nil {
				t.Fatal(err)
			}
			fileSynced, dirSynced := -1, -1
			for i, e := range *events {
				switch {
				case !e.dir && bytes.Equal(e.content, want) && !bytes.Equal(e.target, want) && fileSynced < 0:
					fileSynced = i
				case e.dir && filepath.Clean(e.name) == filepath.Dir(p) && bytes.Equal(e.target, want):
					dirSynced = i
				}
			}
			if fileSynced < 0 {
				t.Errorf("the new version was not synced before it replaced the file: %+v", *events)
			}
			if dirSynced < fileSynced || dirSynced < 0 {
				t.Errorf("the directory was not synced after the rename: %+v", *events)
			}
		})
	}
}
