package main

import (
	"bufio"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// metricPrefixes are the clearinghouse's counters a flood moves: answers
// by operation and status, logins shed for want of a hash slot, lockouts.
var metricPrefixes = []string{
	"caddy_clearinghouse_enroll_requests_total",
	"caddy_clearinghouse_logins_shed_total",
	"caddy_clearinghouse_login_lockouts_total",
}

// scrape reads those series (name with labels → value) from the admin
// endpoint's Prometheus text.
func scrape(url string) (map[string]float64, error) {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, fmt.Errorf("scraping metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scraping metrics: HTTP %d", resp.StatusCode)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if !hasAnyPrefix(l, metricPrefixes) {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if i < 0 || err != nil {
			return nil, fmt.Errorf("scraping metrics: line %q", l)
		}
		m[l[:i]] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scraping metrics: %w", err)
	}
	return m, nil
}

func hasAnyPrefix(s string, ps []string) bool {
	for _, p := range ps {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// deltas returns the lines "series = change" of the series that moved
// between two scrapes, sorted.
func deltas(before, after map[string]float64) []string {
	var out []string
	for k, v := range after {
		if dv := v - before[k]; dv != 0 {
			out = append(out, fmt.Sprintf("%s = %.0f", k, dv))
		}
	}
	sort.Strings(out)
	return out
}
