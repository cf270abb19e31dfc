package caddyenroll

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
	"github.com/clearinghouse-dev/caddy-clearinghouse/routing"
)

// heldRouteUpdate holds the first route table made from now on
// (updateRoutes) until release is called; started is closed once it is
// being made, and calls counts them all.
type heldRouteUpdate struct {
	started chan struct{}
	release func()
	calls   atomic.Int32
}

func holdFirstRouteUpdate(t *testing.T) *heldRouteUpdate {
	t.Helper()
	h := &heldRouteUpdate{started: make(chan struct{})}
	released := make(chan struct{})
	var once sync.Once
	h.release = func() { once.Do(func() { close(released) }) }
	updateRoutes = func(prev *routing.Table, f *configfile.File, o routing.Options) (*routing.Table, error) {
		if h.calls.Add(1) == 1 {
			close(h.started)
			<-released
		}
		return routing.Update(prev, f, o)
	}
	t.Cleanup(func() {
		h.release()
		updateRoutes = routing.Update
	})
	return h
}

// within runs fn and fails the test unless it returns within a few
// seconds (what it waited for is never released otherwise).
func within(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s did not return within 5 s: it waited for what the test holds", what)
	}
}

// The route table of a new version of the file (an operator's save the
// watcher takes, a mark) is made before the file's lock is taken, and only
// swapped in under it: enrollments' lookups in the file go on with the
// version in force meanwhile (at a carrier's 200,000 routes, indexing
// them again takes 0.12–0.3 s), the route table too, and the table made
// is the one put in force (not made again under the lock).
func TestRouteTableMadeBeforeTheLock(t *testing.T) {
	const v1 = "group \"\"\ndevice gw1.example \"\" enabled\ndevice gw2.example \"\" enabled enrolled\nroute \"\" 1 gw2.example 1\n"
	poll := func(a *App) error { _, err := a.cfg.poll(); return err }
	for _, tc := range []struct {
		name string
		save string // an operator's version, saved before run
		run  func(a *App) error
		// whether the new version is in force, with its route table
		after func(a *App) bool
	}{
		{"operator's save, route lines moved", "# an operator's edit\n" + v1 + "route \"\" 2 gw2.example 1\n", poll, func(a *App) bool {
			_, ok := a.router.Load().Lookup("", "2")
			return ok
		}},
		{"operator's save, device added", v1 + "device gw3.example \"\" enabled\n", poll, func(a *App) bool {
			_, ok := a.router.Load().Device("gw3.example")
			return ok && a.cfg.device("gw3.example").Known && len(a.devicesAt("gw3.example:5060")) == 1
		}},
		{"a mark", "", func(a *App) error {
			return a.cfg.edit(context.Background(), func(f *configfile.File) error { return f.SetEnrolled("gw1.example", true) })
		}, func(a *App) bool {
			d, _ := a.router.Load().Device("gw1.example")
			return d.Enrolled && a.cfg.device("gw1.example").Enrolled
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := followingApp(t, v1)
			if tc.after(a) {
				t.Fatal("the first version answers as the next one")
			}
			if tc.save != "" {
				saveRenamed(t, a.cfg.path, tc.save)
			}
			h := holdFirstRouteUpdate(t)
			changed := make(chan error, 1)
			go func() { changed <- tc.run(a) }()
			select {
			case <-h.started:
			case err := <-changed:
				t.Fatalf("the change made no route table: %v", err)
			}
			within(t, "a device lookup in the file", func() {
				if d := a.cfg.device("gw2.example"); !d.Known {
					t.Error("gw2.example unknown while the table is made")
				}
			})
			if tc.after(a) {
				t.Error("the new version was in force before its route table")
			}
			h.release()
			if err := <-changed; err != nil {
				t.Fatal(err)
			}
			if !tc.after(a) {
				t.Error("the new version is not in force, or not in its route table")
			}
			if n := h.calls.Load(); n != 1 {
				t.Errorf("the route table was made %d times, want once (made before the lock, swapped in under it)", n)
			}
		})
	}
}

// An edit (a mark) that runs while the watcher makes the route table of an
// operator's save takes that save itself and is not lost: the watcher's
// version, made from the version before the mark, is not put in force
// over it, nor its route table.
func TestEditDuringAReloadsRouteTable(t *testing.T) {
	const v1 = "group \"\"\ndevice gw1.example \"\" enabled\ndevice gw2.example \"\" enabled enrolled\nroute \"\" 1 gw1.example 1\n"
	a := followingApp(t, v1)
	h := holdFirstRouteUpdate(t)
	saveRenamed(t, a.cfg.path, v1+"device gw3.example \"\" enabled\n")
	polled := make(chan bool, 1)
	go func() {
		changed, err := a.cfg.poll()
		if err != nil {
			t.Error(err)
		}
		polled <- changed
	}()
	<-h.started
	within(t, "a mark", func() {
		if err := a.cfg.edit(context.Background(), func(f *configfile.File) error { return f.SetEnrolled("gw1.example", true) }); err != nil {
			t.Error(err)
		}
	})
	h.release()
	if <-polled {
		t.Error("the watcher put its version in force after the edit")
	}
	check := func(when string) {
		t.Helper()
		if d := a.cfg.device("gw1.example"); !d.Enrolled {
			t.Errorf("%s: the mark was lost in the file: %+v", when, d)
		}
		if !a.cfg.device("gw3.example").Known {
			t.Errorf("%s: the operator's device was lost", when)
		}
		if d, ok := a.router.Load().Device("gw1.example"); !ok || !d.Enrolled {
			t.Errorf("%s: the route table lost the mark: %+v", when, d)
		}
		if _, ok := a.router.Load().Device("gw3.example"); !ok {
			t.Errorf("%s: the route table lacks the operator's device", when)
		}
		if ds, _ := a.router.Load().Route("gw2.example", "1", 0, nil, nil, nil); len(ds) != 1 {
			t.Errorf("%s: the route to the marked device offers %v", when, ds)
		}
	}
	check("after the edit")
	if changed, err := a.cfg.poll(); changed || err != nil {
		t.Errorf("the next poll: %v %v, want nothing new (the edit's version is on disk)", changed, err)
	}
	check("after the next poll")
}

// The watcher's poll while an edit runs parses nothing: the edit takes an
// operator's save itself, and the version on disk is the edit's own,
// written but not in force yet while its route table is made (a carrier's
// file would be parsed for nothing).
func TestPollParsesNothingDuringAnEdit(t *testing.T) {
	a := followingApp(t, "group \"\"\ndevice gw1.example \"\" enabled\n")
	var parses atomic.Int32
	parseConfigFile = func(p string) (*configfile.File, error) {
		parses.Add(1)
		return configfile.ParseFile(p)
	}
	t.Cleanup(func() { parseConfigFile = configfile.ParseFile })
	h := holdFirstRouteUpdate(t)
	edited := make(chan error, 1)
	go func() {
		edited <- a.cfg.edit(context.Background(), func(f *configfile.File) error { return f.SetEnrolled("gw1.example", true) })
	}()
	<-h.started
	within(t, "the watcher", func() {
		if changed, err := a.cfg.poll(); changed || err != nil {
			t.Errorf("poll during the edit: %v %v, want nothing put in force", changed, err)
		}
	})
	h.release()
	if err := <-edited; err != nil {
		t.Fatal(err)
	}
	if changed, err := a.cfg.poll(); changed || err != nil {
		t.Errorf("poll after the edit: %v %v, want its version in force", changed, err)
	}
	if n := parses.Load(); n != 0 {
		t.Errorf("the file was parsed %d times, want none (the edit's own version)", n)
	}
}
