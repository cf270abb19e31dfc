package caddyenroll

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
)

// The events the enroll app emits through Caddy's events app, so that an
// operator can act on them (a mail when a request waits for approval, an
// audit trail, a CMDB update) with any events handler module, e.g.
// github.com/mholt/caddy-events-exec:
//
//	{
//		events {
//			on enroll_pending exec /usr/local/bin/notify-approver {event.data.device} {event.data.request}
//		}
//	}
//
// They are notifications of what is done and stored: emitted after the
// decision, from one goroutine in the order made (decisions hold storage
// locks, which a handler, run synchronously by Caddy, must not hold), so
// a handler cannot abort them. Their data never holds a password, a key
// or a nonce.
const (
	// a request waits for an administrator: device, request, profile,
	// account, customer, device_id, client, reason (why it waits)
	eventPending = "enroll_pending"
	// a certificate was issued: device, request, profile, serial (as
	// revoked's are written), not_after (RFC 3339), account, customer,
	// device_id
	eventIssued = "enroll_issued"
	// a pending request was rejected (by an administrator, or superseded):
	// device, request, profile, account, customer, device_id, reason
	eventRejected = "enroll_rejected"
	// certificates were revoked: device, profile (empty for an
	// administrator's revocation, which may span both), serials (a
	// []string of serials in the admin API's form, lower-case hex without
	// leading zeros, which the placeholder renders "[2ce0… a78f…]"), reason
	// (the RFC 5280 code), reason_text, by (admin, superseded: the device
	// enrolled again, disabled: the file disabled or removed the device,
	// key_compromise: its key was revoked for key compromise meanwhile)
	eventRevoked = "enroll_revoked"
	// failed logins started a lockout: kind (account,
	// account_at_known_address, address), username (a configured
	// account's) or username_hash (of another name, which may be a
	// password typed in the wrong field; neither for address), address
	// (the address or IPv6 /64 locked out, or at which the account is),
	// client, lockout (a Go duration), lockout_seconds
	eventLockout = "enroll_lockout"
)

// eventQueueSize bounds the events waiting for their handlers; beyond it
// (handlers slower than the decisions for that long) events are dropped
// and the count logged.
const eventQueueSize = 1024

// emitter is what the notifier needs of Caddy's events app.
type emitter interface {
	Emit(ctx caddy.Context, eventName string, data map[string]any) caddy.Event
	ShouldEmit(eventName string) bool
}

// notifier emits the app's events in order, from its own goroutine.
type notifier struct {
	events  emitter // nil: events are not emitted
	ctx     caddy.Context
	log     *zap.Logger
	queue   chan queuedEvent
	dropped atomic.Int64
	// stopped is set, under mu's write lock, when run has stopped taking
	// events from the queue; notify checks it and queues under the read
	// lock, so that an event is either queued before run drains the queue
	// or emitted on its own after (checked, then queued once run had
	// drained it, it was never emitted)
	mu      sync.RWMutex
	stopped bool
	// beforeQueue, when set (tests), runs between notify's check of
	// stopped and its queueing
	beforeQueue func()
}

type queuedEvent struct {
	name string
	data map[string]any
}

func newNotifier(events emitter, ctx caddy.Context, log *zap.Logger) *notifier {
	return &notifier{events: events, ctx: ctx, log: log, queue: make(chan queuedEvent, eventQueueSize)}
}

// wants reports whether name could be observed: callers skip building
// the data otherwise (the auto-approved enrollment is a hot path).
func (n *notifier) wants(name string) bool {
	return n != nil && n.events != nil && n.events.ShouldEmit(name)
}

// notify queues the event, which the caller made only if the notifier
// wants it. Once the notifier stopped (the config is being replaced,
// while requests of it finish), it is emitted at once, from a goroutine
// of its own.
func (n *notifier) notify(name string, data map[string]any) {
	e := queuedEvent{name: name, data: data}
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.stopped {
		go n.emit(e)
		return
	}
	if n.beforeQueue != nil {
		n.beforeQueue()
	}
	select {
	case n.queue <- e:
	default:
		if n.dropped.Add(1) == 1 { // the count follows at the next event
			n.log.Warn("events dropped: their handlers are too slow", zap.Int("queue", eventQueueSize))
		}
	}
}

// startNotifier starts emitting the queued events until the app stops.
// Stop does not wait for it, nor for the events queued then, which it
// emits before it ends: handlers do not write to the app's storage, and a
// slow one must not hold up a reload.
func (a *App) startNotifier() {
	if a.events != nil {
		go a.events.run(a.stop)
	}
}

// run emits the queued events until stop is closed, then those queued
// by then.
func (n *notifier) run(stop <-chan struct{}) {
	for {
		select {
		case e := <-n.queue:
			n.emit(e)
		case <-stop:
			n.mu.Lock() // waits for the notify queueing now
			n.stopped = true
			n.mu.Unlock()
			for {
				select {
				case e := <-n.queue:
					n.emit(e)
				default:
					n.reportDropped()
					return
				}
			}
		}
	}
}

// emit hands e to the events app, whose handlers run here: a panic in
// one is logged, and the next events are still emitted.
func (n *notifier) emit(e queuedEvent) {
	n.reportDropped()
	recovered(n.log, func() { n.events.Emit(n.ctx, e.name, e.data) })
}

// reportDropped logs how many events were dropped since it last did.
func (n *notifier) reportDropped() {
	if d := n.dropped.Swap(0); d > 0 {
		n.log.Warn("events dropped: their handlers were too slow", zap.Int64("dropped", d), zap.Int("queue", eventQueueSize))
	}
}

// requestEventData is the data of an event about req.
func requestEventData(req *Request) map[string]any {
	data := map[string]any{
		"device":    req.Device,
		"request":   req.ID,
		"profile":   req.Profile,
		"account":   req.Username,
		"customer":  req.Customer,
		"device_id": req.DeviceID,
	}
	if req.Serial != "" {
		data["serial"] = req.Serial
		data["not_after"] = req.NotAfter.UTC().Format(time.RFC3339)
	}
	return data
}

// notifyRequest emits name about req, with the data more adds.
func (a *App) notifyRequest(name string, req *Request, more map[string]any) {
	if !a.events.wants(name) {
		return
	}
	data := requestEventData(req)
	for k, v := range more {
		data[k] = v
	}
	a.events.notify(name, data)
}

// notifyRevoked emits enroll_revoked for serials, revoked for reason by
// what by names.
func (a *App) notifyRevoked(by, profile, device string, serials []string, reason int) {
	if len(serials) == 0 || !a.events.wants(eventRevoked) {
		return
	}
	a.events.notify(eventRevoked, map[string]any{
		"device": device, "profile": profile, "serials": append([]string(nil), serials...),
		"reason": reason, "reason_text": ca.ReasonName(reason), "by": by,
	})
}

// pendingReason says why req waits for an administrator.
func (a *App) pendingReason(req *Request) string {
	switch {
	case req.Held && req.Reason != "":
		return req.Reason
	case !req.Known:
		return "the device is not in the configuration file"
	default:
		return "approval is manual"
	}
}

// notifyLockout emits enroll_lockout: failed logins locked out what kind
// names for lockout; username is named as the log names it.
func (a *App) notifyLockout(kind, username, address, client string, lockout time.Duration) {
	if !a.events.wants(eventLockout) {
		return
	}
	data := map[string]any{"kind": kind, "address": address, "client": client,
		"lockout": lockout.String(), "lockout_seconds": int64(lockout / time.Second)}
	if kind != "address" {
		f := a.accounts.logField(username)
		data[f.Key] = f.String
	}
	a.events.notify(eventLockout, data)
}
