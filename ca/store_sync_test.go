package ca

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// The file store's writes are durable before they replace a record: the
// temporary file is synced before the rename, the directory after it, so
// that a power loss leaves the old record or the new one (an issued
// certificate's record, a key), never an empty or partial file.
func TestFileStoreSyncsBeforeAndAfterRename(t *testing.T) {
	dir := t.TempDir()
	st := NewFileStore(dir)
	ctx := context.Background()
	if err := st.Store(ctx, "issued/01", []byte("old")); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "data", "issued", "01")
	if _, err := os.Stat(target); err != nil {
		t.Fatalf("the record is not at %s: %v", target, err)
	}
	want := []byte("new record")
	type event struct {
		dir             bool
		name            string
		content, stored []byte
	}
	var events []event
	prev := fsync
	t.Cleanup(func() { fsync = prev })
	fsync = func(f *os.File) error {
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		e := event{dir: fi.IsDir(), name: filepath.Clean(f.Name())}
		if !e.dir {
			e.content, _ = os.ReadFile(f.Name())
		}
		e.stored, _ = os.ReadFile(target)
		events = append(events, e)
		return prev(f)
	}
	if err := st.Store(ctx, "issued/01", want); err != nil {
		t.Fatal(err)
	}
	fileSynced, dirSynced := -1, -1
	for i, e := range events {
		switch {
		case !e.dir && bytes.Equal(e.content, want) && !bytes.Equal(e.stored, want) && fileSynced < 0:
			fileSynced = i
		case e.dir && e.name == filepath.Dir(target) && bytes.Equal(e.stored, want):
			dirSynced = i
		}
	}
	if fileSynced < 0 {
		t.Errorf("the new record was not synced before it replaced the old: %+v", events)
	}
	if dirSynced < 0 || dirSynced < fileSynced {
		t.Errorf("the directory was not synced after the rename: %+v", events)
	}
}
