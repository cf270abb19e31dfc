package caddyenroll

import (
	"runtime/debug"
	"sync"
	"time"

	"go.uber.org/zap"
)

// background runs f in a goroutine that Stop waits for (once stopping,
// one it does not wait for); a panic in f is logged (recovered).
func (a *App) background(f func()) {
	a.bg.mu.Lock()
	if a.bg.stopping {
		a.bg.mu.Unlock()
		go recovered(a.log, f)
		return
	}
	a.bg.wg.Add(1)
	a.bg.mu.Unlock()
	go func() {
		defer a.bg.wg.Done()
		recovered(a.log, f)
	}()
}

// recovered runs f, logging a panic in it with its stack instead of
// ending the process: Caddy recovers the panics of HTTP handlers only,
// and background work calls code of other modules (a storage module, an
// events handler), as certmagic's maintenance does, which recovers too.
func recovered(log *zap.Logger, f func()) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("panic in background work, recovered", zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
		}
	}()
	f()
}

// backgroundWork is the goroutines Stop waits for.
type backgroundWork struct {
	mu       sync.Mutex
	stopping bool
	wg       sync.WaitGroup
}

// every runs f at each interval until the app stops.
func (a *App) every(interval time.Duration, f func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
		}
		recovered(a.log, f) // a panic skips one run, not the later ones
	}
}

// watchOnce reloads the configuration file if it changed on disk, and
// applies the enrolled marks that wait for it to parse.
func (a *App) watchOnce() {
	if !a.reloadFile() {
		return
	}
	if marksDeferred.Load() && a.cfg.editableOnDisk() {
		a.applyKeptMarks()
	}
}

// applyKeptMarks applies the marks kept in storage, and clears
// marksDeferred unless some are left: while it is set, every issuance
// edits the file under its lock (marksMayWait), even for a device the
// file marks already.
func (a *App) applyKeptMarks() {
	// cleared before the marks are listed: one deferred meanwhile sets
	// it again (cleared after, it would wait for the next deferral)
	marksDeferred.Store(false)
	if !a.applyDeferredMarks(a.bgCtx) {
		marksDeferred.Store(true)
	}
}

// reloadFile takes a new version of the file, if any, and logs what came of
// it; false when the version on disk is invalid.
func (a *App) reloadFile() bool {
	changed, err := a.cfg.reload()
	if err != nil {
		a.log.Error("configuration file changed but is invalid; keeping the previous version",
			zap.String("file", a.ConfigFile), zap.Error(err))
		return false
	}
	if changed {
		a.log.Info("configuration file reloaded", zap.String("file", a.ConfigFile))
	}
	return true
}

// revokedRefreshInterval is how often revocations are re-read from storage.
var revokedRefreshInterval = 30 * time.Second // a variable for tests

// refreshOnce re-reads what other instances sharing the storage change,
// whatever the file's watch interval: their revocations, and the number of
// pending requests (each instance counts its own requests and decisions;
// the shared index is the truth).
func (a *App) refreshOnce() {
	if err := a.refreshRevoked(a.bgCtx); err != nil {
		a.log.Error("refreshing revocations", zap.Error(err))
	}
	if n, err := a.state.pendingMarkers(a.bgCtx); err == nil {
		a.setPending(n)
	}
}

// setPending sets the pending count (and gauge) to a count this config
// made, unless it has stopped meanwhile: the count is the process's, and
// the config that replaced it counts later.
func (a *App) setPending(n int) {
	if a.bgCtx.Err() == nil {
		pendingSet(n)
	}
}
