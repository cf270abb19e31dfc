package caddyenroll

import (
	"context"
	"errors"
	"io/fs"
	"path"
	"slices"
	"sort"

	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

// A device's pending requests are also indexed by device, one marker each
// under clearinghouse/enroll/pending-of/<device hash>/, so that the
// requests a device no longer needs are found without reading every
// pending request:
//
//   - when a request of the device is issued, its pending requests made
//     before that one with the same device and customer ids are rejected
//     as superseded (the device enrolled with another key since; approving
//     one later would supersede the newer certificate with one the device
//     may no longer hold the key of);
//   - a device has at most maxPendingPerDevice pending requests: a new one
//     rejects the oldest of the same device and customer ids beyond that (a
//     device that generates a new key at every restart while it waits for
//     approval); one of other ids, which would push out another claimant's,
//     is refused.
//
// Markers follow the global pending index: written before the request
// becomes pending, removed after it stops being pending; one a crash left
// is removed by the next listing once older than markerStaleAge.

// maxPendingPerDevice bounds the pending requests of one device.
const maxPendingPerDevice = 4

func pendingOfDir(device string) string {
	return path.Join(statePrefix, "pending-of", hashKey("device", configfile.DeviceKey(device)))
}

// legacyPendingOfDir is where earlier versions put the device's markers
// (its name lower-cased), when that differs: instances of those versions
// sharing the storage still do.
func legacyPendingOfDir(device string) string {
	if l := legacySpelling(device); l != "" {
		return path.Join(statePrefix, "pending-of", hashKey("device", l))
	}
	return ""
}

func pendingOfKey(device, id string) string { return path.Join(pendingOfDir(device), id) }

// pendingOfIndexKey marks that the per-device index covers every pending
// request (those of versions without it are indexed once, at start). Its
// second version keys a device by every spelling of its name
// (configfile.DeviceKey), where the first lower-cased it: the requests of
// devices spelled otherwise are indexed again, so that a device respelled
// since is found (pendingOf also lists where the first version puts them,
// for instances of it sharing the storage).
func pendingOfIndexKey() string { return path.Join(statePrefix, "pending-of-index-2") }

// firstPendingOfIndexKey marks the first version's index.
func firstPendingOfIndexKey() string { return path.Join(statePrefix, "pending-of-index") }

// pendingOf lists the device's pending requests, oldest first. A marker
// whose request is not pending is stale and removed once old enough.
func (s *stateStore) pendingOf(ctx context.Context, device string) ([]*Request, error) {
	keys, err := s.list(ctx, pendingOfDir(device))
	if err != nil {
		return nil, err
	}
	if old := legacyPendingOfDir(device); old != "" {
		more, err := s.list(ctx, old)
		if err != nil {
			return nil, err
		}
		keys = append(keys, more...)
	}
	var out []*Request
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		id := path.Base(k)
		if seen[id] {
			continue // in both folders
		}
		seen[id] = true
		r, err := s.request(ctx, id)
		if err != nil {
			return nil, err
		}
		if r == nil || r.State != statePending {
			if s.markerStale(ctx, k) {
				_ = s.st.Delete(ctx, k)
			}
			continue
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

// unindexPendingOf removes the device's marker of a request that is no
// longer pending.
func (s *stateStore) unindexPendingOf(ctx context.Context, device, id string) error {
	if err := s.st.Delete(ctx, pendingOfKey(device, id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if old := legacyPendingOfDir(device); old != "" {
		if err := s.st.Delete(ctx, path.Join(old, id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// unindexRequest removes the pending markers of a request (the index's,
// its device's and its account's) once it is no longer pending.
func (s *stateStore) unindexRequest(ctx context.Context, r *Request) error {
	return errors.Join(s.unindexPending(ctx, r.ID), s.unindexPendingOf(ctx, r.Device, r.ID),
		s.unindexPendingBy(ctx, r.Username, r.ID))
}

// indexPendingOf indexes by device, once, the pending requests that
// versions without the per-device index stored.
func (s *stateStore) indexPendingOf(ctx context.Context) error {
	first := s.st.Exists(ctx, firstPendingOfIndexKey())
	return s.indexPendingOnce(ctx, pendingOfIndexKey(), func(r *Request) string {
		if first && legacyPendingOfDir(r.Device) == "" {
			return "" // where the first version indexed it
		}
		return pendingOfKey(r.Device, r.ID)
	})
}

// indexPendingOnce writes, unless the key done says it was, a marker at
// markerKey(r) for each pending request r ("": none), then done.
func (s *stateStore) indexPendingOnce(ctx context.Context, done string, markerKey func(r *Request) string) error {
	if s.st.Exists(ctx, done) {
		return nil
	}
	reqs, err := s.pending(ctx)
	if err != nil {
		return err
	}
	for _, r := range reqs {
		if k := markerKey(r); k != "" {
			if err := s.st.Store(ctx, k, s.markerValue(r.ID)); err != nil {
				return err
			}
		}
	}
	return s.st.Store(ctx, done, []byte("1"))
}

// rejectSuperseded rejects, under the device's lock, the pending requests
// reqs of a device, with why as their reason. Each failure is logged; the
// error says whether any request is left pending.
func (a *App) rejectSuperseded(ctx context.Context, reqs []*Request, why string) error {
	var errs []error
	for _, r := range reqs {
		if err := a.storeRejected(ctx, r, why); err != nil {
			a.log.Error("rejecting a superseded pending request", zap.String("request", r.ID), zap.Error(err))
			errs = append(errs, err)
			continue
		}
		a.leftPending(ctx, r)
		a.log.Info("pending request superseded", zap.String("request", r.ID), zap.String("device", r.Device), zap.String("reason", why))
	}
	return errors.Join(errs...)
}

// sameClaimant reports whether two requests for a device come from the
// same claimant: the same device and customer ids.
func sameClaimant(a, b *Request) bool { return a.DeviceID == b.DeviceID && a.Customer == b.Customer }

// madeBefore picks the requests made before req, other than req, with
// the same device and customer ids: the same device's. Another claimant's
// request stays for the operator to see (approving it is refused: its ids
// differ from those the device enrolled with).
func madeBefore(req *Request) func([]*Request) []*Request {
	return func(reqs []*Request) []*Request {
		var out []*Request
		for _, r := range reqs {
			if r.ID != req.ID && r.Created.Before(req.Created) && sameClaimant(r, req) {
				out = append(out, r)
			}
		}
		return out
	}
}

// beyondOwn picks, when the device has more than keep pending, as many of
// the oldest requests of req's claimant (other than req) as are too many:
// a claimant's new request never pushes out another's (anyone holding an
// account's password could push out a device's own request).
func beyondOwn(req *Request, keep int) func([]*Request) []*Request {
	return func(reqs []*Request) []*Request {
		var out []*Request
		for _, r := range reqs {
			if len(out) >= len(reqs)-keep {
				break
			}
			if r.ID != req.ID && sameClaimant(r, req) {
				out = append(out, r)
			}
		}
		return out
	}
}

// admitForDevice refuses a new pending request for a device that has
// maxPendingPerDevice pending already, none of them the same claimant's
// (whose oldest the new one would supersede). It returns the device's
// pending requests.
func (a *App) admitForDevice(ctx context.Context, req *Request) ([]*Request, *outcome) {
	reqs, err := a.state.pendingOf(ctx, req.Device)
	if err != nil {
		a.log.Error("listing the device's pending requests", zap.String("device", req.Device), zap.Error(err))
		o := fail(wire.StatusServerError, "server error")
		return nil, &o
	}
	if len(reqs) < maxPendingPerDevice || slices.ContainsFunc(reqs, func(r *Request) bool { return sameClaimant(r, req) }) {
		return reqs, nil
	}
	a.warnBound("device:"+configfile.DeviceKey(req.Device), "pending request refused: the device has as many requests of other device or customer ids pending as it may keep",
		zap.String("device", req.Device), zap.Int("pending", len(reqs)))
	o := fail(wire.StatusRateLimited, "too many requests are pending approval for this device; try again later")
	return nil, &o
}
