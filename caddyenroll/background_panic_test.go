package caddyenroll

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// A panic in background work (a storage module's, an events handler's) is
// logged and recovered: it ended the process, as Caddy recovers only the
// panics of HTTP handlers. A periodic job goes on at its next run, and
// the events after a handler's panic are still emitted.
func TestBackgroundPanicsRecovered(t *testing.T) {
	core, logs := observer.New(zapcore.ErrorLevel)
	a := &App{log: zap.New(core), bg: new(backgroundWork), stop: make(chan struct{})}

	a.background(func() { panic("storage module bug") })
	var runs atomic.Int32
	a.background(func() {
		a.every(time.Millisecond, func() {
			if runs.Add(1) == 1 {
				panic("first run")
			}
		})
	})
	for deadline := time.Now().Add(10 * time.Second); runs.Load() < 3; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("periodic job ran %d times after its first run panicked", runs.Load())
		}
	}
	close(a.stop)
	a.bg.wg.Wait()
	if n := logs.FilterMessage("panic in background work, recovered").Len(); n != 2 {
		t.Fatalf("%d panics logged, want 2: %v", n, logs.All())
	}

	rec := &panickyEmitter{}
	n := newNotifier(rec, caddy.Context{}, a.log)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { n.run(stop); close(done) }()
	n.notify(eventPending, map[string]any{"n": 1})
	n.notify(eventPending, map[string]any{"n": 2})
	close(stop)
	<-done
	if got := rec.emitted.Load(); got != 1 {
		t.Fatalf("%d events emitted after a handler's panic, want 1", got)
	}
}

// panickyEmitter's handler panics at the first event.
type panickyEmitter struct {
	calls, emitted atomic.Int32
}

func (p *panickyEmitter) Emit(caddy.Context, string, map[string]any) caddy.Event {
	if p.calls.Add(1) == 1 {
		panic("handler bug")
	}
	p.emitted.Add(1)
	return caddy.Event{}
}

func (p *panickyEmitter) ShouldEmit(string) bool { return true }
