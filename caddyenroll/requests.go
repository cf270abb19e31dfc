package caddyenroll

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Requests are kept while a device may still ask for them: an issued one
// until its certificate has expired (the device may fetch it again until
// then), a rejected one as long as a certificate would have lived (the
// device is told it was rejected), a pending one until an operator decides.
// A daily janitor deletes the others. It looks at each record's
// modification time first and reads only those old enough to be due, so a
// run costs one stat per request and a read per request older than the
// certificates' validity.

const (
	requestJanitorLock     = "clearinghouse_enroll_request_janitor"
	requestJanitorInterval = 24 * time.Hour
)

// pruneRequests deletes the requests that are over at now; validity is the
// longest validity of the certificates issued. It runs under the janitor's
// storage lock and returns how many it deleted.
func (s *stateStore) pruneRequests(ctx context.Context, now time.Time, validity time.Duration) (int, error) {
	if err := s.st.Lock(ctx, requestJanitorLock); err != nil {
		return 0, fmt.Errorf("locking the request janitor: %v", err)
	}
	defer func() { _ = s.st.Unlock(context.WithoutCancel(ctx), requestJanitorLock) }()

	keys, err := s.list(ctx, path.Join(statePrefix, "requests"))
	if err != nil {
		return 0, fmt.Errorf("listing requests: %v", err)
	}
	deleted := 0
	for _, k := range keys {
		if err := ctx.Err(); err != nil {
			return deleted, err
		}
		id, ok := strings.CutSuffix(path.Base(k), ".json")
		if !ok {
			continue
		}
		// a record is last written when it is issued or rejected: before
		// validity has passed since, it cannot be over
		if info, err := s.st.Stat(ctx, k); err != nil || now.Sub(info.Modified) <= validity {
			continue
		}
		r, err := s.request(ctx, id)
		if err != nil || r == nil || !requestOver(r, now, validity) {
			continue
		}
		ok, err = s.deleteIfOver(ctx, r.Device, id, now, validity)
		if err != nil {
			return deleted, err
		}
		if ok {
			deleted++
		}
	}
	return deleted, nil
}

// deleteIfOver deletes a request under its device's lock if, read again
// there, it is still over: the device may have enrolled afresh with the
// same key meanwhile (same request id).
func (s *stateStore) deleteIfOver(ctx context.Context, device, id string, now time.Time, validity time.Duration) (bool, error) {
	unlock, err := s.lockDevice(ctx, device)
	if err != nil {
		return false, err // it names the device
	}
	defer unlock()
	r, err := s.request(ctx, id)
	if err != nil || r == nil || !requestOver(r, now, validity) {
		return false, nil
	}
	if err := s.st.Delete(ctx, requestKey(id)); err != nil {
		return false, fmt.Errorf("deleting request %s: %v", id, err)
	}
	_ = s.unindexRequest(ctx, r) // markers a crash left
	return true, nil
}

// requestOver reports whether no device can still need the request.
func requestOver(r *Request, now time.Time, validity time.Duration) bool {
	switch r.State {
	case stateIssued:
		return !r.NotAfter.IsZero() && now.After(r.NotAfter)
	case stateRejected:
		return now.Sub(r.Updated) > validity
	}
	return false // pending: the operator decides
}

// longestValidity is the longest validity of the certificates the CAs
// issue, as configured.
func (a *App) longestValidity() time.Duration {
	var v time.Duration
	for profile, c := range a.cas {
		pv := c.Validity()
		if au := a.Authorities[profile]; au != nil && au.Validity > 0 {
			pv = time.Duration(au.Validity)
		}
		v = max(v, pv)
	}
	return v
}

// requestJanitor prunes requests that are over, soon after start and then
// every interval until the app stops.
func (a *App) requestJanitor(every time.Duration) {
	first := time.NewTimer(time.Minute)
	defer first.Stop()
	select {
	case <-a.stop:
		return
	case <-first.C:
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n, err := a.state.pruneRequests(a.bgCtx, a.janitorNow(), a.longestValidity())
		switch {
		case err != nil && a.bgCtx.Err() == nil:
			a.log.Error("pruning enrollment requests", zap.Error(err), zap.Int("deleted", n))
		case n > 0:
			a.log.Info("enrollment requests that are over deleted", zap.Int("deleted", n))
		}
		a.pruneDeviceIndexes(a.janitorNow())
		select {
		case <-a.stop:
			return
		case <-t.C:
		}
	}
}

// deviceIndexRetention is how long after a certificate expired it is
// still listed with its device (GET /enroll/devices); its record stays,
// found by serial.
const deviceIndexRetention = 30 * 24 * time.Hour

// pruneDeviceIndexes drops certificates expired deviceIndexRetention ago
// from the CAs' per-device indexes, which the device listing and every
// supersession read: they would otherwise grow with each certificate ever
// issued.
func (a *App) pruneDeviceIndexes(now time.Time) {
	for profile, c := range a.cas {
		n, err := c.PruneDeviceIndex(a.bgCtx, now.Add(-deviceIndexRetention))
		switch {
		case err != nil && a.bgCtx.Err() == nil:
			a.log.Error("pruning the device index of the CA", zap.String("profile", profile), zap.Error(err), zap.Int("pruned", n))
		case n > 0:
			a.log.Info("expired certificates dropped from the device listing", zap.String("profile", profile), zap.Int("pruned", n))
		}
	}
}
