package caddyenroll_test

import (
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// goroutines reads the server's goroutine count from the admin API's pprof
// endpoint, leaving out certmagic's lock-file refreshers: each outlives its
// lock by up to 5 s by design.
func (s *server) goroutines() int {
	s.t.Helper()
	code, body := s.Admin(http.MethodGet, "/debug/pprof/goroutine?debug=1", "")
	if code != http.StatusOK {
		s.t.Fatalf("goroutine profile: HTTP %d", code)
	}
	line, rest, _ := strings.Cut(body, "\n")
	n, err := strconv.Atoi(strings.TrimPrefix(line, "goroutine profile: total "))
	if err != nil {
		s.t.Fatalf("goroutine profile: %q", line)
	}
	for _, stack := range strings.Split(rest, "\n\n") {
		if count, _, ok := strings.Cut(strings.TrimSpace(stack), " @ "); ok && strings.Contains(stack, "certmagic.keepLockfileFresh") {
			m, err := strconv.Atoi(count)
			if err != nil {
				s.t.Fatalf("goroutine profile: %q", count)
			}
			n -= m
		}
	}
	return n
}

// TestReloadsLeakNoGoroutines reloads a config with the enroll app, its
// configuration-file watcher and both handlers many times, with enrollment
// and authorization traffic in between: the goroutines of each replaced
// config (watchers, refreshers, writers) must end with it.
func TestReloadsLeakNoGoroutines(t *testing.T) {
	if testing.Short() {
		t.Skip("reloads a real Caddy")
	}
	s := startOSPServer(t)
	device, _, _ := s.enrolledDevice("device2.itsp.com")
	caddyfile, err := os.ReadFile(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	reload := func() {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, "http://"+s.AdminAddr+"/load", strings.NewReader(string(caddyfile)))
		req.Header.Set("Content-Type", "text/caddyfile")
		// the same config again: without this Caddy would skip the reload
		req.Header.Set("Cache-Control", "must-revalidate")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1000))
			t.Fatalf("reload: HTTP %d: %s", resp.StatusCode, b)
		}
	}
	traffic := func() {
		t.Helper()
		// a connection the replaced server accepted while it stopped may be
		// closed unanswered: that is Caddy's hand-over, so retry once
		for _, post := range []struct {
			c         *http.Client
			url, body string
		}{
			{s.client, s.https, "operation=getcacert"},
			{device, s.ospURL, string(authRequest("1678", 3))},
		} {
			for try := 0; ; try++ {
				resp, err := post.c.Post(post.url, "text/plain", strings.NewReader(post.body))
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						t.Fatalf("POST %s after reload: HTTP %d", post.url, resp.StatusCode)
					}
					break
				}
				if try == 2 {
					t.Fatal(err)
				}
			}
		}
		s.client.CloseIdleConnections()
		device.CloseIdleConnections()
	}
	// settle: the first reload starts whatever a reload keeps for good
	reload()
	traffic()
	settled := func() int {
		// idle connections of the test's client end on the server's side
		// shortly after the client closes them
		n := s.goroutines()
		for range 40 {
			time.Sleep(50 * time.Millisecond)
			m := s.goroutines()
			if m >= n {
				return n
			}
			n = m
		}
		return n
	}
	before := settled()
	const reloads = 15
	for range reloads {
		reload()
		traffic()
	}
	after := settled()
	// a leak of even one goroutine per reload shows as 15 more
	if after > before+reloads/3 {
		_, profile := s.Admin(http.MethodGet, "/debug/pprof/goroutine?debug=1", "")
		t.Fatalf("goroutines grew from %d to %d over %d reloads:\n%s", before, after, reloads, profile)
	}
	t.Logf("goroutines: %d before, %d after %d reloads", before, after, reloads)
}
