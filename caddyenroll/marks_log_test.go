package caddyenroll

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// markTestApp is an App over the configuration file text, logging at
// DEBUG and above into the returned observer.
func markTestApp(t *testing.T, text string) (*App, string, *observer.ObservedLogs) {
	t.Helper()
	cs, conf, dir := testConfigState(t, text)
	st := localLocks{&certmagic.FileStorage{Path: filepath.Join(dir, "data")}}
	core, logs := observer.New(zapcore.DebugLevel)
	a := &App{cfg: cs, bgCtx: context.Background(), storage: st, state: newStateStore(st, time.Hour), log: zap.New(core),
		authz: &authz{revocations: new(revocations)}}
	a.marks = &markBatcher{apply: a.applyMarks}
	return a, conf, logs
}

// A kept mark applied once the file parses again logs what it did: a
// device gone from the file is said to be so (it logged "device marked
// (deferred) … enrolled: true" though nothing was written), a device the
// file marks already is said to need nothing, and only a written mark is
// "device marked (deferred)".
func TestDeferredMarkLogsWhatHappened(t *testing.T) {
	const good = "group \"\"\ndevice gone.example \"\" enabled\ndevice done.example \"\" enabled\ndevice todo.example \"\" enabled\ndevice off.example \"\" enabled enrolled\n"
	a, conf, logs := markTestApp(t, good)
	ctx := context.Background()
	saveRenamed(t, conf, good+"device x.example nogroup enabled\n")
	for _, d := range []string{"gone.example", "done.example", "todo.example"} {
		if err := a.markEnrolled(ctx, d, "", profileModern, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.deferMark(ctx, mark{Device: "off.example", Unmark: true}, errFileUnavailable); err != nil {
		t.Fatal(err)
	}
	a.noteRevoked(profileModern, "off.example", nil, true) // the revocation the unmark is for
	// the operator's fix: gone.example removed, done.example marked by hand
	saveRenamed(t, conf, "group \"\"\ndevice done.example \"\" enabled enrolled\ndevice todo.example \"\" enabled\ndevice off.example \"\" enabled enrolled\n")
	logs.TakeAll()
	if !a.applyDeferredMarks(ctx) {
		t.Fatal("kept marks left after the fix")
	}
	got := map[string]string{}
	for _, e := range logs.All() {
		if d, ok := e.ContextMap()["device"].(string); ok {
			got[d] = e.Level.CapitalString() + " " + e.Message
		}
	}
	for device, want := range map[string]string{
		"gone.example": "INFO deferred mark dropped: the device is not in the configuration file (any more)",
		"done.example": "INFO deferred mark not needed: the configuration file already marks the device enrolled",
		"todo.example": "INFO device marked (deferred)",
		"off.example":  "INFO device marked (deferred)",
	} {
		if got[device] != want {
			t.Errorf("%s: logged %q, want %q", device, got[device], want)
		}
	}
	f, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"device todo.example \"\" enabled enrolled\n", "device off.example \"\" enabled\n"} {
		if !strings.Contains(string(f), line) {
			t.Errorf("the file lacks %q:\n%s", line, f)
		}
	}
}

// A mark kept while the file does not parse is worth a warning only when
// the last version that parsed lacks it: a device asking again for its
// issued certificate (marked already) is logged at DEBUG. Either mark is
// kept (another instance may have cleared the flag in a version this one
// has not read), under one key for every spelling of the device.
func TestDeferredMarkWarnsOnlyWhenItChangesSomething(t *testing.T) {
	const good = "group \"\"\ndevice done.example \"\" enabled enrolled\ndevice todo.example \"\" enabled\n"
	a, conf, logs := markTestApp(t, good)
	ctx := context.Background()
	saveRenamed(t, conf, good+"device x.example nogroup enabled\n")
	for _, d := range []string{"done.example", "TODO.example."} {
		if err := a.markEnrolled(ctx, d, "", profileModern, false); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]string{}
	for _, e := range logs.All() {
		if d, ok := e.ContextMap()["device"].(string); ok && strings.Contains(e.Message, "once the file can be edited again") {
			got[strings.ToLower(d)] = e.Level.CapitalString()
		}
	}
	if got["done.example"] != "DEBUG" || got["todo.example."] != "WARN" {
		t.Fatalf("levels %v, want done.example DEBUG, todo.example WARN", got)
	}
	for _, d := range []string{"done.example", "todo.example"} {
		if !a.storage.Exists(ctx, deferredMarkKey(d)) {
			t.Errorf("the mark of %s is not kept", d)
		}
	}
}
