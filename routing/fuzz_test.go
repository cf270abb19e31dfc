package routing

import (
	"testing"
)

// FuzzRoute routes arbitrary dialed numbers from arbitrary sources over
// Table 7 (with the Lab extension). Route must never panic, must know
// exactly the device names the file writes, must reject exactly the numbers
// configfile.NormalizeNumber does not make exact, must agree with the plain
// matching rule, and its answers must obey the destination rules.
func FuzzRoute(f *testing.F) {
	for _, s := range []struct {
		source, called string
		max            int
		seed           uint64
	}{
		{"device1.itsp.com", "1678", 0, 1},
		{"device1.itsp.com", "+1 404-872.4799", 2, 2},
		{"device4.com", "33612345678", 0, 3},
		{"device6.isp.com", "4930123456", 1, 4},
		{"lab1.example.net", "1678", 0, 5},
		{"lab1.example.net", "14045550100", 0, 6},
		{"nobody", "1", 0, 7},
		{"device8.isp.com", "1...", 0, 8},
		{"device8.isp.com", "*72#", -1, 9},
	} {
		f.Add(s.source, s.called, s.max, s.seed)
	}
	file, tab := table7Lab(f)
	ref := newRef(file)
	f.Fuzz(func(t *testing.T, source, called string, max int, seed uint64) {
		checkDialed(t, called)
		ds, err := tab.Route(source, called, max, newRand(seed), nil, nil)
		dev, known := file.Device(source)
		// Route takes the name as the file writes it; File.Device also
		// finds other spellings of it ("DEVICE4.COM."), which callers map
		// to dev.Name first.
		known = known && dev.Name == source
		_, numOK := dialedKey(called)
		want, fb := -1, false
		group := "\x00no such group"
		if known {
			group = dev.Group
			want, fb = ref.match(group, called)
		}
		info, found := tab.Lookup(group, called)
		switch {
		case !known:
			if err != ErrUnknownSource {
				t.Fatalf("unknown source %q: %v", source, err)
			}
			return
		case !numOK:
			if err != ErrInvalidNumber || found {
				t.Fatalf("invalid number %q: %v %v", called, err, found)
			}
			return
		case want < 0:
			if err != ErrNoRoute || found {
				t.Fatalf("%q -> %q: %v %v, reference has no route", source, called, err, found)
			}
			return
		}
		r := &file.Routes[want]
		if !found || info.Line != r.Line || info.Fallback != fb || info.Pattern != r.Number {
			t.Fatalf("%q -> %q: Lookup %+v %v, reference line %d fallback %v", source, called, info, found, r.Line, fb)
		}
		if err == ErrNoDestination {
			for _, tg := range r.Targets {
				d := &file.Devices[tg.Device]
				if d.Enabled && d.Enrolled && d.Name != source {
					t.Fatalf("%q -> %q: ErrNoDestination but %q is usable", source, called, d.Name)
				}
			}
			return
		}
		if err != nil {
			t.Fatalf("%q -> %q: %v", source, called, err)
		}
		limit := DefaultMaxDestinations
		if max > 0 && max < limit {
			limit = max
		}
		checkDestinations(t, file, r, source, limit, ds, nil)
		usable := 0
		for _, tg := range r.Targets {
			if d := &file.Devices[tg.Device]; d.Enabled && d.Enrolled && d.Name != source {
				usable++
			}
		}
		if len(ds) != min(limit, usable) {
			t.Fatalf("%q -> %q: %d destinations, want min(%d, %d)", source, called, len(ds), limit, usable)
		}
	})
}
