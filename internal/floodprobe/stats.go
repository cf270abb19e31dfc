package main

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// series records one kind of request: each answer's latency and status,
// and the failed requests (no answer, or not an enrollment answer) apart.
// Its rate is over its own span, from newSeries to the last request's end:
// the measuring clients stop at the flood's end, the flood's workers wait
// for their last answers.
type series struct {
	mu       sync.Mutex
	start    time.Time
	last     time.Time
	lat      []time.Duration // of the answered requests
	statuses map[int]int
	errors   int
	firstErr error
}

func newSeries() *series { return &series{start: time.Now()} }

// restart begins the span now (the logins after a reload).
func (s *series) restart() {
	s.mu.Lock()
	s.start = time.Now()
	s.mu.Unlock()
}

func (s *series) add(status int, d time.Duration, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = time.Now()
	if err != nil {
		s.errors++
		if s.firstErr == nil {
			s.firstErr = err
		}
		return
	}
	s.lat = append(s.lat, d)
	if s.statuses == nil {
		s.statuses = map[int]int{}
	}
	s.statuses[status]++
}

// quantile returns the q-quantile (nearest rank) of sorted d.
func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[min(len(d)-1, int(q*float64(len(d))))]
}

// line is the summary: answered count and rate, latency quantiles of the
// answered requests, the statuses (wire.Status*: 0 ok, 3 bad credentials,
// 10 rate limited or shed, 15 unsupported operation), and the errors.
func (s *series) line(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := slices.Clone(s.lat)
	slices.Sort(d)
	rate := 0.0
	if span := s.last.Sub(s.start).Seconds(); span > 0 {
		rate = float64(len(d)) / span
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: answered=%d (%.1f/s) p50=%v p99=%v max=%v statuses={%s} errors=%d",
		name, len(d), rate,
		quantile(d, .5).Round(time.Millisecond), quantile(d, .99).Round(time.Millisecond), quantile(d, 1).Round(time.Millisecond),
		statusList(s.statuses), s.errors)
	if s.firstErr != nil {
		fmt.Fprintf(&b, " (first: %v)", s.firstErr)
	}
	return b.String()
}

// statusList writes statuses as "0:12 10:3", in order of status.
func statusList(m map[int]int) string {
	ks := make([]int, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Ints(ks)
	parts := make([]string, len(ks))
	for i, k := range ks {
		parts[i] = fmt.Sprintf("%d:%d", k, m[k])
	}
	return strings.Join(parts, " ")
}
