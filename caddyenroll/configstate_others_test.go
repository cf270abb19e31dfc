package caddyenroll

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

// During a reload the old and the new config each have a configState of
// the file; an edit through one puts its version in force in the other
// (tellOthers), which may not watch the file (watch_interval negative). An
// edit through a third that holds the file's edit lock while that happens,
// and then fails (here: the storage lock is not had), must not leave the
// other with the version before the edit: no later edit or poll would
// bring it the device's enrolled mark.
func TestEditReachesOthersWhileAnotherEditRuns(t *testing.T) {
	cs1, path, _ := testConfigState(t, "group \"\"\ndevice gw1.example \"\" enabled\n")
	cs2, err := loadConfigState(path, -1)
	if err != nil {
		t.Fatal(err)
	}
	cs3, err := loadConfigState(path, -1)
	if err != nil {
		t.Fatal(err)
	}
	for _, cs := range []*configState{cs1, cs2, cs3} {
		cs.join()
		t.Cleanup(cs.leave)
	}
	inLock, release := make(chan struct{}), make(chan struct{})
	cs3.lockFile = func(ctx context.Context) (func(), error) {
		close(inLock)
		<-release
		return nil, errors.New("storage lock not had")
	}
	otherDone := make(chan error, 1)
	var started atomic.Bool
	parseConfigFile = func(p string) (*configfile.File, error) {
		// the other's poll, after the edit wrote the file: another edit
		// starts and holds the edit lock (if it can) before it decides
		if started.CompareAndSwap(false, true) {
			go func() { otherDone <- cs3.edit(context.Background(), func(*configfile.File) error { return nil }) }()
			select {
			case <-inLock:
			case <-time.After(300 * time.Millisecond):
			}
		}
		return configfile.ParseFile(p)
	}
	t.Cleanup(func() { parseConfigFile = configfile.ParseFile })

	if err := cs1.edit(context.Background(), func(f *configfile.File) error {
		return f.SetEnrolled("gw1.example", true)
	}); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-otherDone; err == nil {
		t.Fatal("the other edit succeeded without its storage lock")
	}
	if !started.Load() {
		t.Fatal("the other config's version was not parsed after the edit")
	}
	if d := cs2.device("gw1.example"); !d.Enrolled {
		t.Errorf("the other config after the edit: %+v, want enrolled as on disk", d)
	}
}
