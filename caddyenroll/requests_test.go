package caddyenroll

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

// The janitor deletes issued requests whose certificate expired and
// rejected ones older than a certificate's validity; it keeps pending ones
// and everything that may still be asked for.
func TestPruneRequests(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := localLocks{&certmagic.FileStorage{Path: dir}}
	s := newStateStore(st, time.Hour)
	now := time.Now().UTC()
	const validity = 365 * 24 * time.Hour
	day := 24 * time.Hour
	cases := []struct {
		id       string
		state    string
		written  time.Duration // ago
		notAfter time.Duration // from now; issued only
		keep     bool
	}{
		{"issued0expired", stateIssued, 400 * day, -35 * day, false},
		{"issued0valid00", stateIssued, 400 * day, 300 * day, true}, // issued under a longer validity
		{"issued0recent0", stateIssued, 10 * day, 355 * day, true},
		{"rejected0old00", stateRejected, 400 * day, 0, false},
		{"rejected0new00", stateRejected, 30 * day, 0, true},
		{"pending0old000", statePending, 500 * day, 0, true},
	}
	for _, c := range cases {
		r := &Request{ID: c.id, Device: c.id + ".example", State: c.state,
			Created: now.Add(-c.written), Updated: now.Add(-c.written)}
		if c.state == stateIssued {
			r.NotAfter = now.Add(c.notAfter)
		}
		if err := s.putRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, filepath.FromSlash(requestKey(c.id)))
		if err := os.Chtimes(file, now.Add(-c.written), now.Add(-c.written)); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.pruneRequests(ctx, now, validity)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, c := range cases {
		r, err := s.request(ctx, c.id)
		if err != nil {
			t.Fatal(err)
		}
		if (r != nil) != c.keep {
			t.Errorf("%s: kept %v, want %v", c.id, r != nil, c.keep)
		}
		if !c.keep {
			want++
		}
	}
	if n != want {
		t.Errorf("deleted %d, want %d", n, want)
	}
	if got, _ := s.requests(ctx, statePending); len(got) != 1 {
		t.Errorf("pending after pruning: %d", len(got))
	}
	// a second run finds nothing (and the lock was released)
	if n, err := s.pruneRequests(ctx, now, validity); err != nil || n != 0 {
		t.Errorf("second run: %d, %v", n, err)
	}
}

// A request found over is read again under its device's lock before it is
// deleted: one the device made afresh with the same key (same id) stays,
// with its pending marker.
func TestPruneRequestsRereadsUnderLock(t *testing.T) {
	ctx := context.Background()
	st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}}
	s := newStateStore(st, time.Hour)
	now := time.Now().UTC()
	const validity = 24 * time.Hour
	over := &Request{ID: "abc123", Device: "gw1.example", State: stateIssued, NotAfter: now.Add(-time.Hour), Updated: now.Add(-48 * time.Hour)}
	if !requestOver(over, now, validity) {
		t.Fatal("fixture: the request is not over")
	}
	// meanwhile the device enrolled again with the same key: pending
	again := &Request{ID: "abc123", Device: "gw1.example", State: statePending, Created: now, Updated: now}
	if err := s.putRequest(ctx, again); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.deleteIfOver(ctx, over.Device, over.ID, now, validity); err != nil || ok {
		t.Fatalf("deleteIfOver = %v, %v; want the new request kept", ok, err)
	}
	if r, _ := s.request(ctx, "abc123"); r == nil || r.State != statePending || !st.Exists(ctx, pendingKey("abc123")) {
		t.Fatal("the request made afresh, or its marker, was deleted")
	}
	if err := s.putRequest(ctx, over); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.deleteIfOver(ctx, over.Device, over.ID, now, validity); err != nil || !ok {
		t.Fatalf("deleteIfOver of a request still over = %v, %v", ok, err)
	}
}
