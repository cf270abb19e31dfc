package caddyenroll

import (
	"context"
	"testing"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

// BenchmarkLargeEditMeetsSave is an edit (a device marked enrolled) that
// finds an operator's save of the carrier's file on disk before the
// watcher took it (alternately with one more comment line: every route
// line moves): the edit parses that version, puts it in force, marks and
// writes. It reports the longest wait of a device lookup in the file made
// meanwhile, as enrollments make them.
//
//	go test -run '^$' -bench LargeEditMeetsSave -benchtime 6x -cpu 2 ./caddyenroll/
func BenchmarkLargeEditMeetsSave(b *testing.B) {
	a, path := largeApp(b)
	saveWithProbe(b, a.cfg, path, func(i int) {
		name := largeName(i)
		if err := a.cfg.edit(context.Background(), func(f *configfile.File) error { return f.SetEnrolled(name, true) }); err != nil {
			b.Fatal(err)
		}
	})
}
