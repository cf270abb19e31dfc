package caddyenroll

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// The issuance bound at its edges: an issuance exactly a window old has
// left it; the bound itself holds (max issued, not max+1); after the bound
// was lowered, approval auto resumes when the oldest issuance that still
// counts leaves the window, not the oldest of all; and the list recorded
// keeps the newest, a serial issued again (a retry) once.
func TestIssuanceBoundEdges(t *testing.T) {
	t0 := time.Unix(1_000_000, 0).UTC()
	a := &App{MaxIssuedPerDevice: 2, IssuanceWindow: caddy.Duration(time.Hour)}
	at := func(serial string, d time.Duration) Issuance { return Issuance{Serial: serial, At: t0.Add(d)} }
	for _, c := range []struct {
		name     string
		issued   []Issuance
		now      time.Duration // since t0
		wantHeld string        // "": not held; else the resume time it names
	}{
		{"one a window old, one recent", []Issuance{at("1", 0), at("2", 30*time.Minute)}, time.Hour, ""},
		{"two within the window", []Issuance{at("1", time.Second), at("2", 30*time.Minute)}, time.Hour, t0.Add(time.Hour + time.Second).Format(time.RFC3339)},
		{"three after the bound was lowered", []Issuance{at("1", time.Second), at("2", 10*time.Minute), at("3", 30*time.Minute)}, time.Hour,
			t0.Add(time.Hour + 10*time.Minute).Format(time.RFC3339)},
	} {
		t.Run(c.name, func(t *testing.T) {
			why := a.issuanceHeld(&DeviceRecord{Issued: c.issued}, t0.Add(c.now))
			switch {
			case c.wantHeld == "" && why != "":
				t.Errorf("held: %q", why)
			case c.wantHeld != "" && !strings.Contains(why, "resumes after "+c.wantHeld):
				t.Errorf("held %q, want resuming after %s", why, c.wantHeld)
			}
		})
	}
	for _, c := range []struct {
		name   string
		prev   []Issuance
		serial string
		want   []string
	}{
		{"newest kept", []Issuance{at("1", time.Second), at("2", 2*time.Second)}, "3", []string{"2", "3"}},
		{"a retry counted once", []Issuance{at("1", time.Second)}, "1", []string{"1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, is := range a.issuedWith(&DeviceRecord{Issued: c.prev}, c.serial, t0.Add(time.Minute)) {
				got = append(got, is.Serial)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("recorded %v, want %v", got, c.want)
			}
		})
	}
}
