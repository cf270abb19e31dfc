package caddyenroll

import (
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// The throttle's windows at their edges: a summary is due at the end of
// the window its first dropped line fell in (not a window after it), each
// flood gets its own summary (a summary written lets the next be
// scheduled), and a clock stepped back starts a new window rather than
// dropping every line until the clock is back where it was.
func TestLogThrottleWindowEdges(t *testing.T) {
	for _, c := range []struct {
		name string
		run  func(t *testing.T, th *logThrottle, now *time.Time, write func(), fire func(), waits *[]time.Duration, logs *observer.ObservedLogs)
	}{
		{"summary due at the window's end", func(t *testing.T, th *logThrottle, now *time.Time, write func(), _ func(), waits *[]time.Duration, _ *observer.ObservedLogs) {
			write()
			*now = now.Add(300 * time.Millisecond)
			write() // dropped: the summary is due 700 ms on
			if len(*waits) != 1 || (*waits)[0] != logThrottleWindow-300*time.Millisecond {
				t.Errorf("summary scheduled after %v, want [%v]", *waits, logThrottleWindow-300*time.Millisecond)
			}
		}},
		{"each flood summarized", func(t *testing.T, th *logThrottle, now *time.Time, write func(), fire func(), _ *[]time.Duration, logs *observer.ObservedLogs) {
			for range 3 {
				write()
			}
			fire()
			*now = now.Add(logThrottleWindow)
			for range 4 {
				write()
			}
			fire()
			if got := suppressedBy(logs); got["junk"] != 2+3 || logs.FilterMessage("log lines suppressed").Len() != 2 {
				t.Errorf("summaries %v in %d lines, want 5 dropped in 2 (one a flood)", got, logs.FilterMessage("log lines suppressed").Len())
			}
		}},
		{"clock stepped back", func(t *testing.T, th *logThrottle, now *time.Time, write func(), _ func(), _ *[]time.Duration, logs *observer.ObservedLogs) {
			write()
			*now = now.Add(-time.Hour)
			write()
			if n := logs.FilterMessage("refused").Len(); n != 2 {
				t.Errorf("%d lines written, want 2: a step back starts a new window", n)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			core, logs := observer.New(zapcore.InfoLevel)
			log := zap.New(core)
			now := time.Unix(1_000_000, 0)
			th, fire := testThrottle(1, &now)
			var mu sync.Mutex
			var waits []time.Duration
			after := th.after
			th.after = func(d time.Duration, f func()) {
				mu.Lock()
				waits = append(waits, d)
				mu.Unlock()
				after(d, f)
			}
			write := func() { th.write(log, "junk", zapcore.InfoLevel, "refused") }
			c.run(t, th, &now, write, fire, &waits, logs)
		})
	}
}

// Only the refusals any client causes without a password are throttled:
// decisions (issued, pending, rejected), and the refusals of a client
// that logged in, are always logged.
func TestThrottledStatusesNoDecisions(t *testing.T) {
	throttled := map[int]bool{wire.StatusBadRequest: true, wire.StatusBadCredentials: true,
		wire.StatusEnrollmentDisabled: true, wire.StatusSSLRequired: true, wire.StatusUnsupportedOperation: true}
	for st := wire.StatusOK; st <= wire.StatusUnsupportedOperation; st++ {
		if got := throttledStatus(st); got != throttled[st] {
			t.Errorf("status %d throttled %v, want %v", st, got, throttled[st])
		}
	}
}

// Of the OSP refusals only those of a requester that is no usable device
// are throttled: a device's refused authorizations (no route) are each
// logged however many there are.
func TestOSPDeviceRefusalsNotThrottled(t *testing.T) {
	f := newOSPFixture(t)
	core, logs := observer.New(zapcore.DebugLevel)
	f.h.log = zap.New(core)
	now := time.Now()
	f.h.refusals, _ = testThrottle(3, &now)
	f.setFlags(flags{})
	const n = 10
	for range n {
		if code, body := f.post(authRequestBody(t), "192.0.2.1:5060"); code != 200 {
			t.Fatalf("HTTP %d %s", code, body)
		}
	}
	refused := logs.FilterMessage("OSP answered").FilterField(zap.Bool("refused", true))
	if got := refused.Len(); got != n {
		t.Errorf("%d of the device's %d refused authorizations logged, want all", got, n)
	}
	if got := refused.FilterField(zap.String("outcome", "unauthorized")).Len(); got != 0 {
		t.Errorf("%d of them unauthorized; want a device's refusals", got)
	}
}
