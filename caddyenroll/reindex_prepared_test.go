package caddyenroll

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

// preparedCount is how many route tables prepareRoutes keeps for versions
// not yet put in force.
func preparedCount(a *App) int {
	a.authz.preparedMu.Lock()
	defer a.authz.preparedMu.Unlock()
	return len(a.authz.prepared)
}

// A route table made before the lock for a version that is not put in
// force after all is not kept until the next version is: it holds the
// parsed file, the table and its indexes (at a carrier's file, hundreds of
// megabytes). The watcher's poll drops its version when an edit took the
// operator's save meanwhile; an edit drops the save it parsed ahead when
// the operator saved again, an invalid version, before the lock.
func TestPreparedRouteTableDroppedWithItsVersion(t *testing.T) {
	const v1 = "group \"\"\ndevice gw1.example \"\" enabled\ndevice gw2.example \"\" enabled\n"
	const v2 = v1 + "device gw3.example \"\" enabled\n"
	mark := func(f *configfile.File) error { return f.SetEnrolled("gw1.example", true) }

	t.Run("a poll meeting an edit", func(t *testing.T) {
		a := followingApp(t, v1)
		a.cfg.settle = 0
		saveRenamed(t, a.cfg.path, v2)
		var prepared atomic.Int32
		a.cfg.mu.Lock()
		prepare := a.cfg.prepare
		a.cfg.prepare = func(f *configfile.File) func() {
			if prepared.Add(1) == 1 {
				// the poll parsed and compared the save; an edit takes it
				// itself and puts its own version in force before the
				// poll's table is made (from the edit's)
				within(t, "a mark", func() {
					if err := a.cfg.edit(context.Background(), mark); err != nil {
						t.Error(err)
					}
				})
			}
			return prepare(f)
		}
		a.cfg.mu.Unlock()
		if changed, err := a.cfg.poll(); changed || err != nil {
			t.Fatalf("poll: %v %v, want its version dropped (the edit's in force)", changed, err)
		}
		if n := prepared.Load(); n != 3 {
			t.Fatalf("%d versions prepared, want the poll's, the save the edit parsed ahead and its own", n)
		}
		if n := preparedCount(a); n != 0 {
			t.Errorf("%d route tables kept for versions not put in force", n)
		}
		if d, ok := a.router.Load().Device("gw1.example"); !ok || !d.Enrolled {
			t.Errorf("the route table lost the mark: %+v", d)
		}
	})

	t.Run("an edit whose save is replaced by an invalid one", func(t *testing.T) {
		a := followingApp(t, v1)
		a.cfg.settle = 0
		saveRenamed(t, a.cfg.path, v2)
		var prepared atomic.Int32
		a.cfg.mu.Lock()
		prepare := a.cfg.prepare
		a.cfg.prepare = func(f *configfile.File) func() {
			discard := prepare(f)
			if prepared.Add(1) == 1 {
				saveRenamed(t, a.cfg.path, v2+"device gw4.example \"\" enabeld\n") // after the parse ahead
			}
			return discard
		}
		a.cfg.mu.Unlock()
		if err := a.cfg.edit(context.Background(), mark); err == nil {
			t.Fatal("an edit of an invalid save was taken")
		}
		if n := prepared.Load(); n != 1 {
			t.Fatalf("%d versions prepared, want the save parsed ahead", n)
		}
		if a.cfg.device("gw3.example").Known {
			t.Error("the save replaced before the lock was put in force")
		}
		if n := preparedCount(a); n != 0 {
			t.Errorf("%d route tables kept for versions not put in force", n)
		}
	})
}
