package caddyenroll

import (
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// testThrottle is a logThrottle of burst lines a window on a clock the
// test moves, whose summaries run when the test calls fire.
func testThrottle(burst int, now *time.Time) (t *logThrottle, fire func()) {
	var mu sync.Mutex
	var due []func()
	t = newLogThrottle()
	t.burst, t.now = burst, func() time.Time { return *now }
	t.after = func(_ time.Duration, f func()) {
		mu.Lock()
		due = append(due, f)
		mu.Unlock()
	}
	return t, func() {
		mu.Lock()
		fs := due
		due = nil
		mu.Unlock()
		for _, f := range fs {
			f()
		}
	}
}

// suppressedBy returns the summaries' counts, by kind.
func suppressedBy(logs *observer.ObservedLogs) map[string]int64 {
	out := make(map[string]int64)
	for _, e := range logs.FilterMessage("log lines suppressed").All() {
		out[e.ContextMap()["kind"].(string)] += e.ContextMap()["suppressed"].(int64)
	}
	return out
}

// Per kind, the first lines of a window are written, the others counted
// and summed up in one line at the window's end; a kind under its burst
// gets no summary, a new window writes again, and a level not logged
// counts nothing.
func TestLogThrottle(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	log := zap.New(core)
	now := time.Unix(1_000_000, 0)
	th, fire := testThrottle(3, &now)
	for i := range 100 {
		th.write(log, "junk", zapcore.InfoLevel, "refused", zap.Int("i", i))
	}
	th.write(log, "other", zapcore.InfoLevel, "refused")
	th.write(log, "other", zapcore.InfoLevel, "refused")
	for range 50 {
		th.write(log, "quiet", zapcore.DebugLevel, "refused at debug")
	}
	if n := logs.FilterMessage("refused").Len(); n != 3+2 {
		t.Errorf("%d lines written in the window, want 3 of junk and 2 of other", n)
	}
	fire()
	if got := suppressedBy(logs); len(got) != 1 || got["junk"] != 97 {
		t.Errorf("summaries %v, want junk: 97 only", got)
	}
	fire() // nothing more is due
	if n := logs.FilterMessage("log lines suppressed").Len(); n != 1 {
		t.Errorf("%d summaries, want 1", n)
	}
	now = now.Add(logThrottleWindow)
	th.write(log, "junk", zapcore.InfoLevel, "refused")
	if n := logs.FilterMessage("refused").Len(); n != 6 {
		t.Errorf("%d lines, want 6: a new window writes again", n)
	}
	var nilThrottle *logThrottle
	for range 20 {
		nilThrottle.write(log, "junk", zapcore.InfoLevel, "unthrottled")
	}
	if n := logs.FilterMessage("unthrottled").Len(); n != 20 {
		t.Errorf("a nil throttle wrote %d of 20 lines", n)
	}
}

// A flood of unknown operations and of bad credentials for many
// usernames logs a bounded number of refusals per kind and a summary
// with the count dropped, while every lockout they start is still
// logged.
func TestRefusalLogsThrottled(t *testing.T) {
	h, logs := loginTestHandler(t, 1, 1000)
	logs.TakeAll()
	now := time.Now()
	var fire func()
	h.refusals, fire = testThrottle(3, &now)
	const n = 30
	for i := range n {
		if st := postForm(t, h, "198.51.100.1", url.Values{"operation": {"junk"}}).Status; st != wire.StatusUnsupportedOperation {
			t.Fatalf("unknown operation: status %d", st)
		}
		if st := retrieveAs(t, h, fmt.Sprintf("203.0.113.%d", i), fmt.Sprintf("user%d", i), "wrong").Status; st != wire.StatusBadCredentials {
			t.Fatalf("bad credentials: status %d", st)
		}
	}
	refused := logs.FilterMessage("enrollment refused")
	for _, st := range []int{wire.StatusUnsupportedOperation, wire.StatusBadCredentials} {
		if got := refused.FilterField(zap.Int("status", st)).Len(); got != 3 {
			t.Errorf("status %d: %d lines of %d refusals, want 3", st, got, n)
		}
	}
	if got := logs.FilterMessage("username locked out after failed logins").Len(); got != n {
		t.Errorf("%d lockouts logged, want %d (never throttled)", got, n)
	}
	fire()
	want := map[string]int64{"enrollment refused: status 15": n - 3, "enrollment refused: status 3": n - 3}
	if got := suppressedBy(logs); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("summaries %v, want %v", got, want)
	}
}

// OSP: a flood of usage indications from an unidentified sender logs a
// bounded number of refusals and a summary of the rest; a device's usage
// is still logged.
func TestOSPRefusalLogsThrottled(t *testing.T) {
	f := newOSPFixture(t)
	core, logs := observer.New(zapcore.DebugLevel)
	f.h.log = zap.New(core)
	now := time.Now()
	var fire func()
	f.h.refusals, fire = testThrottle(3, &now)
	f.setFlags(flags{})
	const n = 20
	for range n {
		if code, body := f.post(usageBody(t, 1), "198.51.100.9:5060"); code != 200 {
			t.Fatalf("HTTP %d %s", code, body)
		}
	}
	if code, body := f.post(usageBody(t, 1), "192.0.2.1:5060"); code != 200 {
		t.Fatalf("HTTP %d %s", code, body)
	}
	answered := logs.FilterMessage("OSP answered")
	if got := answered.FilterField(zap.Bool("refused", true)).Len(); got != 3 {
		t.Errorf("%d refusals logged of %d, want 3", got, n)
	}
	if got := answered.Len() - 3; got != 1 {
		t.Errorf("%d answers to the device logged, want 1", got)
	}
	fire()
	if got := suppressedBy(logs); len(got) != 1 || got["osp answered: unauthorized"] != n-3 {
		t.Errorf("summaries %v, want osp answered: unauthorized: %d", got, n-3)
	}
}

// A handler's Cleanup (its config unloaded) writes the summaries still
// due at once, with the config's logger; the timers firing later write
// nothing (they wrote after the unload, with a logger it may have closed),
// and a line written after it is not throttled.
func TestLogThrottleFlushedAtCleanup(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	log := zap.New(core)
	now := time.Unix(1_000_000, 0)
	for _, c := range []struct {
		name    string
		cleanup func(*logThrottle) error
	}{
		{"enroll", func(th *logThrottle) error { return (&Handler{refusals: th}).Cleanup() }},
		{"osp", func(th *logThrottle) error { return (&OSPHandler{refusals: th}).Cleanup() }},
	} {
		t.Run(c.name, func(t *testing.T) {
			logs.TakeAll()
			th, fire := testThrottle(2, &now)
			for range 5 {
				th.write(log, "junk", zapcore.InfoLevel, "refused")
			}
			if err := c.cleanup(th); err != nil {
				t.Fatal(err)
			}
			if got := suppressedBy(logs); got["junk"] != 3 {
				t.Errorf("summaries at Cleanup %v, want junk: 3", got)
			}
			fire()
			if n := logs.FilterMessage("log lines suppressed").Len(); n != 1 {
				t.Errorf("%d summaries after the timers fired, want the 1 of Cleanup", n)
			}
			th.write(log, "junk", zapcore.InfoLevel, "refused")
			fire()
			if n, s := logs.FilterMessage("refused").Len(), logs.FilterMessage("log lines suppressed").Len(); n != 3 || s != 1 {
				t.Errorf("after Cleanup: %d lines, %d summaries; want the line written, no summary", n, s)
			}
		})
	}
}
