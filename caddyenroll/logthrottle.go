package caddyenroll

import (
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// The refusals that any client can cause without a password or a
// certificate (a malformed body, an unknown operation, bad credentials,
// plain HTTP under `ssl enabled`, an OSP request from no usable device)
// log a line each; a flood of them wrote 195 MB of log a minute. They are
// throttled per kind: the first logThrottleBurst of each logThrottleWindow
// are written, and at the end of a window in which some were dropped one
// line says how many. Decisions (issued, pending, approved, revoked) and
// lockouts are never throttled: only the lines of the kinds passed here.

// logThrottleWindow and logThrottleBurst: at most 10 lines a second of one
// kind, and a summary line a second while a flood lasts.
const (
	logThrottleWindow = time.Second
	logThrottleBurst  = 10
)

// logThrottle counts the lines of each kind. A nil *logThrottle writes
// every line (handlers built without Provision, in tests).
type logThrottle struct {
	window time.Duration
	burst  int
	now    func() time.Time
	after  func(time.Duration, func()) // time.AfterFunc; tests run it by hand

	mu     sync.Mutex
	kinds  map[string]*throttledKind // bounded: kinds are the code's constants
	closed bool                      // flushed at Cleanup: nothing more is throttled
}

type throttledKind struct {
	start      time.Time // of the current window
	written    int       // in it
	suppressed int       // since the last summary
	scheduled  bool      // a summary is due
	log        *zap.Logger
	level      zapcore.Level
	msg        string
}

func newLogThrottle() *logThrottle {
	return &logThrottle{window: logThrottleWindow, burst: logThrottleBurst, now: time.Now,
		after: func(d time.Duration, f func()) { time.AfterFunc(d, f) }, kinds: make(map[string]*throttledKind)}
}

// write writes msg with fields to log at level, unless lines of kind
// already took the window's burst: then it is counted for the summary.
func (t *logThrottle) write(log *zap.Logger, kind string, level zapcore.Level, msg string, fields ...zap.Field) {
	ce := log.Check(level, msg)
	if ce == nil {
		return // not logged anyway: nothing to count
	}
	if t == nil {
		ce.Write(fields...)
		return
	}
	now := t.now()
	t.mu.Lock()
	if t.closed { // no summary could be written: every line is
		t.mu.Unlock()
		ce.Write(fields...)
		return
	}
	k := t.kinds[kind]
	if k == nil {
		k = &throttledKind{start: now}
		t.kinds[kind] = k
	}
	if since := now.Sub(k.start); since >= t.window || since < 0 {
		k.start, k.written = now, 0
	}
	if k.written < t.burst {
		k.written++
		t.mu.Unlock()
		ce.Write(fields...)
		return
	}
	k.suppressed++
	k.log, k.level, k.msg = log, level, msg
	schedule := !k.scheduled
	k.scheduled = true
	wait := k.start.Add(t.window).Sub(now)
	t.mu.Unlock()
	if schedule {
		t.after(wait, func() { t.summarize(kind) })
	}
}

// flush writes the summaries due now and throttles nothing more: it runs
// at the handler's Cleanup, while the config's logger still writes. A
// summary timer firing after the config was unloaded would write to a
// logger the unload may have closed, and the count would be lost; those
// still pending find nothing to write.
func (t *logThrottle) flush() {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.closed = true
	var due []string
	for kind, k := range t.kinds {
		if k.suppressed > 0 {
			due = append(due, kind)
		}
	}
	t.mu.Unlock()
	for _, kind := range due {
		t.summarize(kind)
	}
}

// summarize writes how many lines of kind were dropped since the last
// summary.
func (t *logThrottle) summarize(kind string) {
	t.mu.Lock()
	k := t.kinds[kind]
	n, log, level, msg := k.suppressed, k.log, k.level, k.msg
	k.suppressed, k.scheduled = 0, false
	t.mu.Unlock()
	if n == 0 {
		return
	}
	if ce := log.Check(level, "log lines suppressed"); ce != nil {
		ce.Write(zap.String("line", msg), zap.String("kind", kind), zap.Int("suppressed", n),
			zap.Duration("window", t.window), zap.Int("logged_per_window", t.burst))
	}
}
