package caddyenroll

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// The key of transaction ids is made once per storage: instances sharing
// it (and starting at once) recognize each other's ids; a key of the wrong
// size is refused with a message naming it.
func TestTransactionKeyShared(t *testing.T) {
	dir := t.TempDir()
	newApp := func() *App {
		return &App{storage: localLocks{&certmagic.FileStorage{Path: dir}}, authz: new(authz), log: zap.NewNop()}
	}
	ctx := context.Background()
	apps := []*App{newApp(), newApp(), newApp()}
	var wg sync.WaitGroup
	errs := make([]error, len(apps))
	for i, a := range apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = a.transactionIDs(ctx)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
	}
	for i, a := range apps {
		ids, _ := a.transactionIDs(ctx)
		id := ids.New()
		for j, b := range apps {
			other, _ := b.transactionIDs(ctx)
			if !other.Issued(id) {
				t.Errorf("an id of instance %d is not recognized by instance %d", i, j)
			}
		}
	}
	later := newApp() // a restart
	ids, err := later.transactionIDs(ctx)
	if err != nil || !ids.Issued(func() uint64 { i, _ := apps[0].transactionIDs(ctx); return i.New() }()) {
		t.Errorf("after a restart: %v", err)
	}

	if err := (&certmagic.FileStorage{Path: dir}).Store(ctx, transactionKeyKey(), []byte("short")); err != nil {
		t.Fatal(err)
	}
	if _, err := newApp().transactionIDs(ctx); err == nil || !strings.Contains(err.Error(), "transaction.key: 5 bytes, want 32") {
		t.Errorf("a key of 5 bytes: %v", err)
	}
}

// A key that storage fails to read is an error, never a reason for a new
// key (which would turn every earlier transaction into one not issued
// here), and the failure is not remembered: once storage reads it, the
// key is the one in storage.
func TestTransactionKeyUnreadable(t *testing.T) {
	ctx := context.Background()
	fs := &failingLoads{Storage: &certmagic.FileStorage{Path: t.TempDir()}}
	newApp := func() *App { return &App{storage: localLocks{fs}, authz: new(authz), log: zap.NewNop()} }
	first, err := newApp().transactionIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := fs.Storage.Load(ctx, transactionKeyKey())
	id := first.New()

	fs.failLoads("transaction.key")
	a := newApp()
	if _, err := a.transactionIDs(ctx); err == nil || !strings.Contains(err.Error(), "transaction.key: input/output error") {
		t.Fatalf("an unreadable key: %v", err)
	}
	if now, _ := fs.Storage.Load(ctx, transactionKeyKey()); string(now) != string(key) {
		t.Fatal("an unreadable key was replaced")
	}
	fs.failLoads("")
	if ids, err := a.transactionIDs(ctx); err != nil || !ids.Issued(id) {
		t.Fatalf("once readable: %v", err)
	}
}
