package caddyenroll

import (
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// Lines at a level the logger does not write cost the throttle nothing: no
// count, no summary timer (a flood at debug under an info logger must not
// start a timer a window), and they take none of the burst of lines of
// the kind that are written.
func TestLogThrottleSkipsDisabledLevel(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	log := zap.New(core)
	now := time.Unix(1_000_000, 0)
	th, _ := testThrottle(2, &now)
	timers := 0
	th.after = func(time.Duration, func()) { timers++ }
	for range 5 {
		th.write(log, "junk", zapcore.DebugLevel, "not written")
	}
	th.write(log, "junk", zapcore.InfoLevel, "written")
	if n := logs.FilterMessage("written").Len(); n != 1 || timers != 0 {
		t.Errorf("%d lines written, %d summary timers started; want 1, 0", n, timers)
	}
}
