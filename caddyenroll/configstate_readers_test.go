package caddyenroll

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

// An edit does not hold the readers up while it runs and writes the file
// (a carrier's file takes a good part of a second to write and sync):
// they go on with the version in force, and see the edit once it is
// written. The watcher's poll meanwhile puts no version in force (the
// edit takes an operator's save itself) and does not wait for the edit.
func TestReadersGoOnDuringAnEdit(t *testing.T) {
	cs, path, _ := testConfigState(t, "group \"\"\ndevice gw1.example \"\" enabled\ndevice gw2.example \"\" enabled\n")
	inEdit := func(what string, fn func()) {
		t.Helper()
		done := make(chan struct{})
		go func() {
			defer close(done)
			fn()
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s waited for the edit", what)
		}
	}
	tries := 0
	err := cs.edit(context.Background(), func(f *configfile.File) error {
		tries++
		if err := f.SetEnrolled("gw1.example", true); err != nil {
			return err
		}
		inEdit("a reader", func() {
			if d := cs.device("gw1.example"); !d.Known || d.Enrolled {
				t.Errorf("during the edit: %+v, want the version in force (not enrolled)", d)
			}
		})
		if tries == 1 {
			// an operator's save, which the watcher sees first
			saveRenamed(t, path, "group \"\"\ndevice gw1.example \"\" enabled\ndevice gw2.example \"\" disabled\n")
			inEdit("the watcher", func() {
				if changed, err := cs.poll(); changed || err != nil {
					t.Errorf("poll during the edit: %v, %v; want no version put in force", changed, err)
				}
			})
			if d := cs.device("gw2.example"); !d.Enabled {
				t.Error("the operator's version was put in force during the edit")
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if tries != 2 {
		t.Errorf("the edit ran %d times, want 2 (again on the operator's version)", tries)
	}
	if d := cs.device("gw1.example"); !d.Enrolled {
		t.Errorf("after the edit: %+v, want enrolled", d)
	}
	if d := cs.device("gw2.example"); d.Enabled {
		t.Errorf("after the edit: %+v, want the operator's gw2.example (disabled)", d)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := "group \"\"\ndevice gw1.example \"\" enabled enrolled\ndevice gw2.example \"\" disabled\n"; string(data) != want {
		t.Errorf("file:\n%s\nwant:\n%s", data, want)
	}
}

// An edit copies the version in force without the readers' lock (the
// copy of a carrier's file is megabytes: enrollments' lookups waited for
// it), and the copy is the version in force.
func TestEditCopiesWithoutTheReadersLock(t *testing.T) {
	cs, _, _ := testConfigState(t, "group \"\"\ndevice gw1.example \"\" enabled\n")
	copies := 0
	prev := snapshotForEdit
	t.Cleanup(func() { snapshotForEdit = prev })
	snapshotForEdit = func(f *configfile.File) *configfile.File {
		copies++
		if !cs.mu.TryLock() {
			t.Error("the version in force is copied holding the readers' lock")
		} else {
			if f != cs.file {
				t.Error("the copy is not of the version in force")
			}
			cs.mu.Unlock()
		}
		return prev(f)
	}
	if err := cs.edit(context.Background(), func(f *configfile.File) error { return f.SetEnrolled("gw1.example", true) }); err != nil {
		t.Fatal(err)
	}
	if copies != 1 || !cs.device("gw1.example").Enrolled {
		t.Fatalf("%d copies, device %+v; want one, enrolled", copies, cs.device("gw1.example"))
	}
}
