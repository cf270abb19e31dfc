package caddyenroll

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

// Marks that arrive while a write runs go into the next write together,
// written by one of their callers once the first has returned, and every
// caller gets the outcome of the write that carried its mark.
func TestMarkBatcherCoalesces(t *testing.T) {
	const n = 64
	var mu sync.Mutex
	var writes [][]mark
	release := make(chan struct{})
	firstReturned := make(chan struct{})
	first := true
	b := &markBatcher{apply: func(batch []mark) []error {
		mu.Lock()
		wait := first
		first = false
		writes = append(writes, batch)
		mu.Unlock()
		if wait {
			<-release // hold the first write until the others queued
		} else {
			// the first caller has handed over and returned
			select {
			case <-firstReturned:
			case <-time.After(10 * time.Second):
				t.Error("the first caller is still writing for the others")
			}
		}
		errs := make([]error, len(batch))
		for i, m := range batch {
			if m.Device == "bad" {
				errs[i] = errors.New("bad name")
			}
		}
		return errs
	}}
	var wg sync.WaitGroup
	results := make([]error, n+1)
	wg.Add(1)
	go func() { defer wg.Done(); results[0] = b.do(mark{Device: "first"}); close(firstReturned) }()
	for {
		b.mu.Lock()
		busy := b.busy
		b.mu.Unlock()
		if busy {
			break
		}
	}
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("gw%d", i)
		if i == n {
			name = "bad"
		}
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = b.do(mark{Device: name}) }()
	}
	for {
		b.mu.Lock()
		queued := len(b.queue)
		b.mu.Unlock()
		if queued == n {
			break
		}
	}
	close(release)
	wg.Wait()
	if len(writes) != 2 || len(writes[0]) != 1 || len(writes[1]) != n {
		sizes := []int{}
		for _, w := range writes {
			sizes = append(sizes, len(w))
		}
		t.Fatalf("writes of sizes %v, want [1 %d]", sizes, n)
	}
	for i, err := range results {
		if (err != nil) != (i == n) {
			t.Errorf("mark %d: error %v", i, err)
		}
	}
}

// A batch marks known devices, adds unknown ones to their group (or the
// default group), leaves enrolled ones alone and writes the file once.
func TestApplyMarks(t *testing.T) {
	src := "# fleet\ngroup \"\"\ngroup 'west'\ndevice a.example \"\" enabled\ndevice b.example west enabled enrolled\n"
	cs, conf, _ := testConfigState(t, src)
	a := &App{cfg: cs, bgCtx: context.Background()}
	errs := a.applyMarks([]mark{{Device: "a.example"}, {Device: "b.example"}, {Device: "new.example", Group: "west", Add: true},
		{Device: "other.example", Group: "nowhere", Add: true}, {Device: "gone.example"}, {Device: "bad\x01name", Add: true}})
	for i, err := range errs[:5] {
		if err != nil {
			t.Errorf("mark %d: %v", i, err)
		}
	}
	if errs[5] == nil {
		t.Error("an invalid device name was accepted")
	}
	f, err := configfile.ParseFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	for name, group := range map[string]string{"a.example": "", "b.example": "west", "new.example": "west", "other.example": ""} {
		d, ok := f.Device(name)
		if !ok || !d.Enrolled || !d.Enabled || d.Group != group {
			t.Errorf("%s: %+v", name, d)
		}
	}
	if _, ok := f.Device("gone.example"); ok {
		t.Error("a listed device that left the file was added back")
	}

	// the file unavailable: every mark gets errFileUnavailable, the disk is untouched
	broken := []byte(src + "device x.example nogroup enabled\n")
	if err := os.WriteFile(conf, broken, 0o640); err != nil {
		t.Fatal(err)
	}
	for i, err := range a.applyMarks([]mark{{Device: "c.example"}, {Device: "a.example"}}) {
		if !errors.Is(err, errFileUnavailable) {
			t.Errorf("mark %d on an invalid file: %v", i, err)
		}
	}
	if now, _ := os.ReadFile(conf); string(now) != string(broken) {
		t.Error("the invalid file was rewritten")
	}
}

// Marks kept while the file was invalid are written once it parses; a
// device the operator removed meanwhile is not brought back, an unreadable
// mark is dropped, and none is left behind.
func TestDeferredMarks(t *testing.T) {
	good := "group \"\"\ndevice a.example \"\" enabled\ndevice r.example \"\" enabled\n"
	broken := good + "device c.example \"\" enabled\ndevice x.example nogroup enabled\n"
	cs, conf, dir := testConfigState(t, good)
	st := localLocks{&certmagic.FileStorage{Path: filepath.Join(dir, "data")}}
	a := &App{cfg: cs, bgCtx: context.Background(), storage: st, state: newStateStore(st, time.Hour), log: zap.NewNop(),
		authz: &authz{revocations: new(revocations)}}
	a.marks = &markBatcher{apply: a.applyMarks}
	ctx := context.Background()

	if err := os.WriteFile(conf, []byte(good+"device c.example \"\" enabled\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := a.cfg.edit(context.Background(), func(*configfile.File) error { return nil }); err != nil { // take in c.example
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte(broken), 0o640); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"a.example", "new.example", "c.example", "r.example"} {
		if err := a.markEnrolled(ctx, d, "", profileModern, d == "new.example"); err != nil {
			t.Fatalf("%s: %v", d, err)
		}
	}
	a.noteRevoked(profileModern, "r.example", nil, true) // revoked while its mark waits
	if !marksDeferred.Load() {
		t.Fatal("no deferred mark noted")
	}
	if err := st.Store(ctx, deferredMarkKey("junk"), []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	// the temporary file of a mark being stored: left alone (deleting it
	// would fail that store)
	storing := path.Join(statePrefix, "unmarked", "1178162834")
	if err := st.Store(ctx, storing, []byte("{\"dev")); err != nil {
		t.Fatal(err)
	}
	if a.applyDeferredMarks(ctx) {
		t.Fatal("marks applied to an invalid file")
	}
	if now, _ := os.ReadFile(conf); string(now) != broken {
		t.Fatal("the invalid file was rewritten")
	}

	if err := os.WriteFile(conf, []byte(good), 0o640); err != nil {
		t.Fatal(err)
	}
	if !a.applyDeferredMarks(ctx) {
		t.Fatal("deferred marks left after the fix")
	}
	f, err := configfile.ParseFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"a.example", "new.example"} {
		if dev, ok := f.Device(d); !ok || !dev.Enrolled {
			t.Errorf("%s not marked enrolled", d)
		}
	}
	if dev, _ := f.Device("r.example"); dev == nil || dev.Enrolled {
		t.Error("r.example, revoked while its mark waited, was marked enrolled")
	}
	if _, ok := f.Device("c.example"); ok {
		t.Error("c.example, removed by the operator, was added back")
	}
	if !st.Exists(ctx, storing) {
		t.Error("a mark being stored was taken for an unreadable one and deleted")
	}
	if err := st.Delete(ctx, storing); err != nil {
		t.Fatal(err)
	}
	if keys, _ := st.List(ctx, path.Join(statePrefix, "unmarked"), false); len(keys) != 0 {
		t.Fatalf("markers left: %v", keys)
	}
}

// A device the parsed file marks enrolled is marked again when the file
// changed since it was parsed: the operator may have removed the flag, and
// the watcher not yet reloaded it.
func TestMarkAfterTheFlagWasRemovedByHand(t *testing.T) {
	cs, conf, dir := testConfigState(t, "group \"\"\ndevice a.example \"\" enabled enrolled\n")
	st := localLocks{&certmagic.FileStorage{Path: filepath.Join(dir, "data")}}
	a := &App{cfg: cs, bgCtx: context.Background(), storage: st, state: newStateStore(st, time.Hour), log: zap.NewNop()}
	a.marks = &markBatcher{apply: a.applyMarks}
	// the operator's edit, not yet reloaded (no watching here)
	saveRenamed(t, conf, "group \"\"\ndevice a.example \"\" enabled # re-enroll\n")
	if !a.cfg.device("a.example").Enrolled {
		t.Fatal("the test needs the parsed file to still say enrolled")
	}
	if err := a.markEnrolled(context.Background(), "a.example", "", profileModern, false); err != nil {
		t.Fatal(err)
	}
	f, err := configfile.ParseFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := f.Device("a.example"); d == nil || !d.Enrolled {
		t.Fatalf("a.example not marked enrolled again:\n%s", f.Bytes())
	}
	if !bytes.Contains(f.Bytes(), []byte("# re-enroll")) {
		t.Fatalf("the operator's edit was lost:\n%s", f.Bytes())
	}
}

// listHook runs after the first List of prefix returns its keys.
type listHook struct {
	certmagic.Storage
	prefix string
	once   sync.Once
	after  func()
}

func (h *listHook) List(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	keys, err := h.Storage.List(ctx, prefix, recursive)
	if prefix == h.prefix {
		h.once.Do(h.after)
	}
	return keys, err
}

// A mark deferred while the watcher applies the deferred ones (after it
// listed them) is applied at the next watch: the watcher does not clear
// the flag that says marks wait after it has applied what it listed.
func TestMarkDeferredWhileMarksAreApplied(t *testing.T) {
	cs, conf, dir := testConfigState(t, "group \"\"\ndevice a.example \"\" enabled\ndevice b.example \"\" enabled\n")
	ctx := context.Background()
	hook := &listHook{Storage: &certmagic.FileStorage{Path: filepath.Join(dir, "data")}, prefix: path.Join(statePrefix, "unmarked")}
	st := localLocks{hook}
	a := &App{cfg: cs, bgCtx: ctx, storage: st, state: newStateStore(st, time.Hour), log: zap.NewNop(),
		authz: &authz{revocations: new(revocations)}}
	a.marks = &markBatcher{apply: a.applyMarks}
	if err := a.deferMark(ctx, mark{Device: "a.example"}, errFileUnavailable); err != nil {
		t.Fatal(err)
	}
	hook.after = func() {
		if err := a.deferMark(ctx, mark{Device: "b.example"}, errFileUnavailable); err != nil {
			t.Error(err)
		}
	}
	a.watchOnce() // applies a's mark; b's is deferred after the listing
	a.watchOnce()
	f, err := configfile.ParseFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"a.example", "b.example"} {
		if dev, _ := f.Device(d); dev == nil || !dev.Enrolled {
			t.Errorf("%s not marked enrolled after two watches", d)
		}
	}
}
