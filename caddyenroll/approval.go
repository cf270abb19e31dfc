package caddyenroll

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

// decidePending runs decide on a pending request (found by id or unique id
// prefix) under its device's lock, re-read after locking.
func (a *App) decidePending(ctx context.Context, id string, decide func(req *Request) error) (*Request, error) {
	req, err := a.state.findRequest(ctx, id)
	if err != nil {
		return nil, err
	}
	if req == nil {
		return nil, fmt.Errorf("%w: no pending request matches the id or id prefix %q (caddy enroll pending lists them)", errNotFound, id)
	}
	unlock, err := a.state.lockDevice(ctx, req.Device)
	if err != nil {
		return nil, err
	}
	defer unlock()
	found := req.ID
	// a storage error is the server's (500), not "no such request" (404)
	if req, err = a.state.request(ctx, found); err != nil {
		return nil, fmt.Errorf("reading request %s: %w", found, err)
	}
	if req == nil {
		return nil, fmt.Errorf("%w: request %s was deleted meanwhile", errNotFound, found)
	}
	if req.State != statePending {
		return req, fmt.Errorf("%w: request is %s", errConflict, req.State)
	}
	if err := decide(req); err != nil {
		return nil, err
	}
	a.leftPending(ctx, req)
	return req, nil
}

// leftPending counts and unindexes a request that was pending and has just
// been stored decided.
func (a *App) leftPending(ctx context.Context, req *Request) {
	pendingAdd(-1)
	if err := a.state.unindexRequest(ctx, req); err != nil {
		a.log.Warn("removing a decided request from the pending index; the next listing will", zap.String("request", req.ID), zap.Error(err))
	}
}

// storeRejected stores req rejected, for reason.
func (a *App) storeRejected(ctx context.Context, req *Request, reason string) error {
	req.State = stateRejected
	req.Reason, req.Held = reason, false
	req.Updated = time.Now().UTC()
	if err := a.state.putRequest(ctx, req); err != nil {
		return err
	}
	a.notifyRequest(eventRejected, req, map[string]any{"reason": reason})
	return nil
}

// approve issues a pending request (admin API). group places an approved
// unknown device; "" is the default group.
func (a *App) approve(ctx context.Context, id, group string) (*Request, error) {
	req, err := a.decidePending(ctx, id, func(req *Request) error {
		authority, err := a.authority(req.Profile)
		if err != nil {
			// the request's profile is no longer configured: its
			// conflict with the configuration, not a server error
			return fmt.Errorf("%w: %v; or reject the request", errConflict, err)
		}
		dev := a.cfg.device(req.Device)
		// a request is locked and recorded under its device's name: one made
		// under another spelling than the file's (before the file listed the
		// device, or by a version that did not normalize names) would skip
		// the device's record, its customer and its current certificate
		if dev.Known && !strings.EqualFold(dev.Name, req.Device) {
			return fmt.Errorf("%w: the configuration file lists %s as %s; reject this request (the device enrolls again under the file's name)",
				errConflict, req.Device, dev.Name)
		}
		if dev.Known && !dev.Enabled {
			return fmt.Errorf("%w: device %s is disabled in the configuration file", errConflict, req.Device)
		}
		if why := a.caExpired(authority); why != "" {
			return fmt.Errorf("%w: %s (README: Renewing the operational CA)", errConflict, why)
		}
		req.Known = dev.Known
		if group != "" {
			// checked for a device the file has too (a typo is said), where
			// it is not applied: the admin answer's note says so
			known := false
			a.cfg.read(func(f *configfile.File) { _, known = f.Group(group) })
			if !known {
				return fmt.Errorf("%w: group %q is not in the configuration file", errBadRequest, group)
			}
			if !dev.Known {
				req.Group = group
			}
		}
		prev, err := a.state.device(ctx, req.Device)
		if err != nil {
			return fmt.Errorf("loading device record: %v", err)
		}
		// the device may have enrolled with other ids since this request came
		if prev.idsDiffer(req.DeviceID, req.Customer) {
			return fmt.Errorf("%w: the request's device or customer id differs from those %s enrolled with; reject it",
				errConflict, req.Device)
		}
		return a.issueLocked(ctx, req, nil, prev, authority, a.Authorities[req.Profile].policy(req.Profile))
	})
	if err == nil {
		a.log.Info("enrollment approved", zap.String("request", req.ID), zap.String("device", req.Device), zap.String("serial", req.Serial))
	}
	return req, err
}

// reject refuses a pending request (admin API).
func (a *App) reject(ctx context.Context, id, reason string) (*Request, error) {
	req, err := a.decidePending(ctx, id, func(req *Request) error { return a.storeRejected(ctx, req, reason) })
	if err == nil {
		a.log.Info("enrollment rejected", zap.String("request", req.ID), zap.String("device", req.Device))
	}
	return req, err
}

var (
	errNotFound   = errors.New("not found")
	errConflict   = errors.New("conflict")
	errBadRequest = errors.New("bad request")
)
