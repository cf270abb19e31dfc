package caddyenroll

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
)

// Pending requests are listed through their index: decided ones leave it,
// a marker left by a crash is dropped by the next listing, and requests of
// versions without the index are indexed once.
func TestPendingIndex(t *testing.T) {
	ctx := context.Background()
	st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	s := newStateStore(st, time.Hour)
	now := time.Now().UTC()
	req := func(id, state string, age time.Duration) *Request {
		return &Request{ID: id, Device: id + ".example", State: state, Created: now.Add(-age)}
	}
	ids := func(list []*Request) []string {
		var out []string
		for _, r := range list {
			out = append(out, r.ID)
		}
		return out
	}
	for _, r := range []*Request{req("aaaaaa01", statePending, 3*time.Minute), req("bbbbbb02", statePending, 2*time.Minute),
		req("cccccc03", stateIssued, time.Minute)} {
		if err := s.putRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// a request stored by an earlier version: pending, not indexed
	if err := s.storeJSON(ctx, requestKey("dddddd04"), req("dddddd04", statePending, 4*time.Minute)); err != nil {
		t.Fatal(err)
	}

	got, err := s.requests(ctx, statePending)
	if err != nil || len(got) != 2 || got[0].ID != "aaaaaa01" || got[1].ID != "bbbbbb02" {
		t.Fatalf("pending %v %v, want aaaaaa01 bbbbbb02", ids(got), err)
	}
	if err := s.indexPending(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.requests(ctx, statePending); len(got) != 3 || got[0].ID != "dddddd04" {
		t.Fatalf("pending after indexing %v, want dddddd04 first of 3", ids(got))
	}
	// indexing runs once: a request stored unindexed later is not picked up
	if err := s.storeJSON(ctx, requestKey("eeeeee05"), req("eeeeee05", statePending, 0)); err != nil {
		t.Fatal(err)
	}
	if err := s.indexPending(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.requests(ctx, statePending); len(got) != 3 {
		t.Fatalf("pending %v: indexed twice", ids(got))
	}

	// decided: the request is stored, then its marker removed
	r := req("aaaaaa01", stateIssued, 3*time.Minute)
	if err := s.putRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.unindexPending(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	// a crash between storing the decision and removing the marker
	if err := s.putRequest(ctx, req("bbbbbb02", stateRejected, 2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	// a request being written: its marker is stored, the request not yet
	if err := st.Store(ctx, pendingKey("ffffff06"), []byte("ffffff06")); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.requests(ctx, statePending); len(got) != 1 || got[0].ID != "dddddd04" {
		t.Fatalf("pending %v, want dddddd04", ids(got))
	}
	if !st.Exists(ctx, pendingKey("bbbbbb02")) || !st.Exists(ctx, pendingKey("ffffff06")) {
		t.Fatal("a marker younger than the grace removed: its request may be being written")
	}
	s.now = func() time.Time { return time.Now().Add(markerStaleAge + time.Second) }
	if got, _ = s.requests(ctx, statePending); len(got) != 1 || got[0].ID != "dddddd04" {
		t.Fatalf("pending %v, want dddddd04", ids(got))
	}
	if st.Exists(ctx, pendingKey("bbbbbb02")) || st.Exists(ctx, pendingKey("ffffff06")) {
		t.Fatal("stale markers not removed by the listing")
	}
	s.now = time.Now
	if keys, _ := st.List(ctx, path.Join(statePrefix, "pending"), false); len(keys) != 1 {
		t.Fatalf("markers %v", keys)
	}

	// all requests, and lookups by id prefix
	if all, _ := s.requests(ctx, ""); len(all) != 5 {
		t.Fatalf("all requests %v", ids(all))
	}
	for _, c := range []struct {
		prefix, want string
		err          error
	}{
		{"cccccc", "cccccc03", nil},
		{"DDDDDD0", "dddddd04", nil},
		{"ffffff", "", nil},
		{"abc", "", errBadRequest},
	} {
		r, err := s.findRequest(ctx, c.prefix)
		if !errors.Is(err, c.err) || (c.want == "") != (r == nil) || (r != nil && r.ID != c.want) {
			t.Errorf("findRequest(%q) = %v, %v; want %q, %v", c.prefix, r, err, c.want, c.err)
		}
	}
	// ambiguous
	if err := s.putRequest(ctx, req("cccccc99", stateIssued, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.findRequest(ctx, "cccccc"); !errors.Is(err, errBadRequest) {
		t.Errorf("ambiguous prefix: %v", err)
	}
}

// Approving or rejecting an id that matches no request says which id.
func TestDecidePendingNotFound(t *testing.T) {
	ctx := context.Background()
	st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	a := &App{state: newStateStore(st, time.Hour)}
	if err := a.state.putRequest(ctx, &Request{ID: "aaaaaa01", Device: "d.example", State: statePending, Created: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"abcdef", "0123456789abcdef0123456789abcdef"} {
		_, err := a.decidePending(ctx, id, func(*Request) error { t.Fatal("decided"); return nil })
		want := `no pending request matches the id or id prefix "` + id + `"`
		if !errors.Is(err, errNotFound) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want errNotFound saying %q", id, err, want)
		}
	}
}

// The per-device index: pending requests of earlier versions (indexed
// globally only) are indexed by device once, and a marker whose request is
// no longer pending is skipped, and dropped once older than the grace.
func TestPendingOfIndex(t *testing.T) {
	ctx := context.Background()
	st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	s := newStateStore(st, time.Hour)
	now := time.Now().UTC()
	old := &Request{ID: "aaaaaa01", Device: "gw1.example", State: statePending, Created: now.Add(-time.Hour)}
	// as an earlier version stored it: the global marker, then the request
	if err := st.Store(ctx, pendingKey(old.ID), []byte(old.ID)); err != nil {
		t.Fatal(err)
	}
	if err := s.storeJSON(ctx, requestKey(old.ID), old); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*Request{
		{ID: "bbbbbb02", Device: "GW1.example", State: statePending, Created: now},
		{ID: "cccccc03", Device: "gw2.example", State: statePending, Created: now},
	} {
		if err := s.putRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(device string) []string {
		t.Helper()
		reqs, err := s.pendingOf(ctx, device)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range reqs {
			out = append(out, r.ID)
		}
		return out
	}
	if got := ids("gw1.example"); strings.Join(got, " ") != "bbbbbb02" {
		t.Fatalf("before indexing: %v", got)
	}
	if err := s.indexPendingOf(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ids("gw1.example"); strings.Join(got, " ") != "aaaaaa01 bbbbbb02" {
		t.Fatalf("after indexing: %v, want the older first", got)
	}
	// decided, and a crash before its marker was removed
	old.State = stateRejected
	if err := s.putRequest(ctx, old); err != nil {
		t.Fatal(err)
	}
	if got := ids("gw1.example"); strings.Join(got, " ") != "bbbbbb02" {
		t.Fatalf("a decided request listed: %v", got)
	}
	if !st.Exists(ctx, pendingOfKey("gw1.example", old.ID)) {
		t.Fatal("a young stale marker was removed (its request may be being written)")
	}
	s.now = func() time.Time { return time.Now().Add(markerStaleAge + time.Second) }
	ids("gw1.example")
	if st.Exists(ctx, pendingOfKey("gw1.example", old.ID)) {
		t.Fatal("an old stale marker is kept")
	}
	if got := ids("gw2.example"); strings.Join(got, " ") != "cccccc03" {
		t.Fatalf("gw2.example: %v", got)
	}
}

// The first version of the per-device index keyed a device by its name
// lower-cased: on upgrade, the requests of devices spelled otherwise
// ("2001:DB8:0:0::1") are indexed again under every spelling's key, the
// others are left where the first version indexed them.
func TestPendingOfIndexOfFirstVersion(t *testing.T) {
	ctx := context.Background()
	st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	s := newStateStore(st, time.Hour)
	now := time.Now().UTC()
	spelled := &Request{ID: "aaaaaa01", Device: "2001:DB8:0:0::1", State: statePending, Created: now}
	plain := &Request{ID: "bbbbbb02", Device: "gw1.example", State: statePending, Created: now}
	firstDir := func(device string) string {
		return path.Join(statePrefix, "pending-of", hashKey("device", strings.ToLower(device)))
	}
	// as the first version stored them: its index marker, the requests
	// with their global markers and their markers in its per-device index
	if err := st.Store(ctx, firstPendingOfIndexKey(), []byte("1")); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*Request{spelled, plain} {
		if err := st.Store(ctx, pendingKey(r.ID), []byte(r.ID)); err != nil {
			t.Fatal(err)
		}
		if err := s.storeJSON(ctx, requestKey(r.ID), r); err != nil {
			t.Fatal(err)
		}
		if err := st.Store(ctx, path.Join(firstDir(r.Device), r.ID), s.markerValue(r.ID)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.indexPendingOf(ctx); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"2001:db8::1", "[2001:DB8::1]", spelled.Device} {
		reqs, err := s.pendingOf(ctx, name)
		if err != nil || len(reqs) != 1 || reqs[0].ID != spelled.ID {
			t.Fatalf("pendingOf(%q) = %v, %v; want %s", name, reqs, err, spelled.ID)
		}
	}
	if reqs, err := s.pendingOf(ctx, "GW1.example"); err != nil || len(reqs) != 1 || reqs[0].ID != plain.ID {
		t.Fatalf("pendingOf(GW1.example) = %v, %v; want %s", reqs, err, plain.ID)
	}
	if !st.Exists(ctx, pendingOfIndexKey()) {
		t.Fatal("the index is not marked done")
	}
	// an instance of the first version sharing the storage indexes a new
	// request where it does: found by the file's spelling, unindexed there
	late := &Request{ID: "cccccc03", Device: spelled.Device, State: statePending, Created: now.Add(time.Second)}
	if err := s.storeJSON(ctx, requestKey(late.ID), late); err != nil {
		t.Fatal(err)
	}
	if err := st.Store(ctx, path.Join(firstDir(late.Device), late.ID), s.markerValue(late.ID)); err != nil {
		t.Fatal(err)
	}
	if reqs, err := s.pendingOf(ctx, spelled.Device); err != nil || len(reqs) != 2 || reqs[1].ID != late.ID {
		t.Fatalf("pendingOf(%q) with the first version's new marker = %v, %v; want both", spelled.Device, reqs, err)
	}
	if err := s.unindexPendingOf(ctx, late.Device, late.ID); err != nil {
		t.Fatal(err)
	}
	if st.Exists(ctx, path.Join(firstDir(late.Device), late.ID)) {
		t.Fatal("the first version's marker is kept once unindexed")
	}
	// a request this version stores is indexed where the first version
	// looks too
	mine := &Request{ID: "dddddd04", Device: spelled.Device, State: statePending, Created: now.Add(2 * time.Second)}
	if err := s.putRequest(ctx, mine); err != nil {
		t.Fatal(err)
	}
	if !st.Exists(ctx, path.Join(firstDir(mine.Device), mine.ID)) || !st.Exists(ctx, pendingOfKey(mine.Device, mine.ID)) {
		t.Fatal("a pending request of a device spelled otherwise is not indexed in both folders")
	}
}

// The marker of a request being written (stored, its request not yet) is
// kept by a listing of an instance whose clock is ahead of the writer's
// (or of the storage's that stamped it) by up to the skew allowed between
// instances, and removed once older than the grace by that clock too.
func TestPendingMarkerOfClockBehind(t *testing.T) {
	for _, noModified := range []bool{false, true} {
		for _, c := range []struct {
			ahead   time.Duration
			removed bool
		}{
			{0, false},
			{pendingMarkerGrace + time.Second, false},
			{ca.Backdate, false},
			{ca.Backdate + pendingMarkerGrace - time.Second, false},
			{ca.Backdate + pendingMarkerGrace + time.Second, true},
		} {
			t.Run(fmt.Sprintf("modified=%v/ahead=%v", !noModified, c.ahead), func(t *testing.T) {
				ctx := context.Background()
				st := newStrictStorage()
				st.noModified = noModified
				writer := newStateStore(st, time.Hour)
				if err := st.Store(ctx, pendingKey("ffffff06"), writer.markerValue("ffffff06")); err != nil {
					t.Fatal(err)
				}
				reader := newStateStore(st, time.Hour)
				reader.now = func() time.Time { return time.Now().Add(c.ahead) }
				if _, err := reader.pending(ctx); err != nil {
					t.Fatal(err)
				}
				if got := !st.Exists(ctx, pendingKey("ffffff06")); got != c.removed {
					t.Errorf("marker removed %v, want %v", got, c.removed)
				}
			})
		}
	}
}
