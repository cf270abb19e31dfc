package caddyenroll

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

// Client nonces are kept in time buckets, one storage "directory" per
// retention window:
//
//	clearinghouse/enroll/nonces/<bucket>/<sha256 hex>   (value: nonceBinding, the request id and a hash of its ids)
//
// where bucket is floor(unix seconds / retention seconds). A nonce is looked
// up in the current, the previous and the next bucket (the next one holds
// the nonces that an instance whose clock runs ahead bound across a
// boundary, or this one before its clock was stepped back; and, after a change of
// nonce_retention, in the buckets of the other sizes still in use:
// noncesizes.go), so it is remembered at least the retention and at most
// twice that; older buckets are deleted whole by the janitor. "Current" is
// by the wall clock and by the wall clock at start plus the monotonic time
// since, which differ after a step of the wall clock (nonceClocks).
//
// Keys directly under nonces/ that are not buckets are the flat layout of
// earlier versions; the janitor deletes them once they are older than the
// retention.

// nonceJanitorLock is the storage lock the janitor runs under, so instances
// sharing a storage do not prune twice at once.
const nonceJanitorLock = "clearinghouse_enroll_nonce_janitor"

// nonceJanitorInterval is how often expired nonces are pruned.
const nonceJanitorInterval = time.Hour

func noncesPrefix() string { return path.Join(statePrefix, "nonces") }

func nonceKey(bucket int64, nonce []byte) string {
	return path.Join(noncesPrefix(), strconv.FormatInt(bucket, 10), hashKey("nonce", string(nonce)))
}

// bucket is the number of the time bucket that t falls in.
func (s *stateStore) bucket(t time.Time) int64 {
	return floorDiv(t.Unix(), s.bucketSeconds())
}

// deviceNonce is a client nonce as it is bound: within the device's name,
// in normal form (configfile.DeviceKey, as its lock, record and request ids
// are): an unknown device's spelling, then the file's, may differ.
// The OSP Toolkit's nonce is no random value (OSPPUtilGetRandom seeds
// rand_r() with time(NULL)): every `enroll` started in the same second sends
// the same one, so a nonce shared across devices is no replay; reused with
// another key, device id or customer of the same device, it is.
func deviceNonce(device string, nonce []byte) []byte {
	return []byte(hashKey("device nonce", configfile.DeviceKey(device), string(nonce)))
}

// nonceBinding is what a nonce binds to: the request (profile, device, key)
// and the device and customer ids it came with, so that the nonce reused
// with another CSR or id (of the device it is bound within) is refused.
func nonceBinding(reqID, deviceID, customer string) string {
	return reqID + ":" + hashKey("nonce ids", deviceID, customer)[:16]
}

// bindNonceTo records that a client nonce belongs to binding (a request:
// nonceBinding). It returns false when the nonce was already used, within
// the retention window, for another binding (a replay, or a reuse with
// another CSR, device or ids), true when it is new or bound to this same
// binding (a retrieve repeating its nonce) or to one of also (bindings of
// earlier versions, the request id alone; empty ones are skipped). Nonces
// are stored as hashes.
//
// Binds of one nonce run one at a time in this process, so two requests
// reusing a nonce at once cannot both find it free. Instances sharing the
// storage do not wait for each other here: that would cost a storage lock
// per enrollment.
func (s *stateStore) bindNonceTo(ctx context.Context, nonce []byte, binding string, also ...string) (bool, error) {
	lock := "clearinghouse_nonce_bind_" + hashKey("nonce", string(nonce))
	if _, err := acquireLocal(ctx, lock); err != nil {
		return false, err
	}
	defer releaseLocal(lock)
	clocks := s.nonceClocks()
	read := s.readBuckets(clocks...)
	seen, refused, in, err := s.lookNonce(ctx, nonce, read, binding, also)
	if err != nil || refused {
		return false, err
	}
	if seen {
		return s.completeBind(ctx, nonce, binding, clocks, in)
	}
	// About to bind it: first make sure that the other instances read the
	// buckets of this size (recordOwnSize), and read those of the sizes
	// they began using since this one last read the record (at start, at
	// its janitor's runs): one small read per new nonce, without which an
	// instance would not see, for up to an hour, the nonces another
	// instance with another nonce_retention binds.
	if err := s.recordOwnSize(ctx); err != nil {
		return false, err
	}
	more, err := s.refreshOtherSizes(ctx, clocks, read)
	if err != nil {
		return false, err
	}
	if seen, refused, in, err = s.lookNonce(ctx, nonce, more, binding, also); err != nil || refused {
		return false, err
	}
	if seen {
		return s.completeBind(ctx, nonce, binding, clocks, in)
	}
	for _, b := range s.currentBuckets(clocks) {
		if err := s.st.Store(ctx, nonceKey(b, nonce), []byte(binding)); err != nil {
			return false, err
		}
	}
	return true, nil
}

// currentBuckets are the current buckets of the clocks' readings, each
// once: the buckets a bind writes in.
func (s *stateStore) currentBuckets(clocks []time.Time) []int64 {
	var current []int64
	for _, t := range clocks {
		if b := s.bucket(t); !slices.Contains(current, b) {
			current = append(current, b)
		}
	}
	return current
}

// nonceClocks are the readings of the time that nonces are bucketed by:
// the wall clock and, when set, the wall clock at start plus the monotonic
// time since. They agree but after a step of the wall clock while the app
// runs. Then a lookup reads the buckets of both and a bind writes in the
// current bucket of each (one more write while they fall in different
// buckets), and the janitor keeps those of both: by the wall clock, this
// instance finds the nonces it binds after the step; by the other clock,
// those bound before it and by the other instances (whose clocks did not
// step), and those instances, whose janitors keep only their own buckets,
// find its nonces. Either alone missed nonces still in the window after a
// step of more than a bucket, which were then accepted again. Readings
// less than nonceClocksAgree apart are one (the wall clock's): read one
// after the other, or after a small step, they may fall on either side of
// a boundary, which the reads of the previous and the next bucket cover
// as they cover the skew between instances; counted as two, they cost an
// enrollment a write and a read more.
func (s *stateStore) nonceClocks() []time.Time {
	now := s.now()
	if s.sinceStart == nil {
		return []time.Time{now}
	}
	other := s.sinceStart()
	if d := other.Sub(now); d > -nonceClocksAgree && d < nonceClocksAgree {
		return []time.Time{now}
	}
	return []time.Time{now, other}
}

// nonceClocksAgree is how far apart nonceClocks' readings count as one:
// far under a bucket (an hour at least).
const nonceClocksAgree = time.Minute

// completeBind is bindNonceTo's answer for a nonce found bound to its
// binding in the buckets in: while the nonce clocks fall in different
// buckets (after a step of the wall clock), it first writes the nonce in
// the current bucket of each clock around which (the previous, current and
// next bucket) it is nowhere. A bind whose second write failed, or that a
// crash cut short between its writes, is so completed when the request is
// repeated: found in one clock's bucket, it was taken as bound, and the
// other instances, which read the other's, accepted it again. With the
// clocks in one bucket it writes nothing.
func (s *stateStore) completeBind(ctx context.Context, nonce []byte, binding string, clocks []time.Time, in []int64) (bool, error) {
	current := s.currentBuckets(clocks)
	if len(current) < 2 {
		return true, nil
	}
	for _, b := range current {
		if slices.Contains(in, b-1) || slices.Contains(in, b) || slices.Contains(in, b+1) {
			continue
		}
		if err := s.st.Store(ctx, nonceKey(b, nonce), []byte(binding)); err != nil {
			return false, err
		}
	}
	return true, nil
}

// lookNonce looks for nonce in buckets: seen when it is bound there to
// binding (or one of also), in the buckets in, refused when to another.
func (s *stateStore) lookNonce(ctx context.Context, nonce []byte, buckets []int64, binding string, also []string) (seen, refused bool, in []int64, err error) {
	for _, b := range buckets {
		v, err := s.st.Load(ctx, nonceKey(b, nonce))
		switch {
		case err == nil:
			if string(v) != binding && (len(v) == 0 || !slices.Contains(also, string(v))) {
				return false, true, nil, nil
			}
			seen, in = true, append(in, b)
		case !errors.Is(err, fs.ErrNotExist):
			return false, false, nil, err
		}
	}
	return seen, false, in, nil
}

// isBucketName reports whether a name under nonces/ is a time bucket: a
// decimal number. The flat files of earlier versions are 64 hex digits,
// which never parse as an int64.
func isBucketName(name string) (int64, bool) {
	if name == "" || strings.Trim(name, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(name, 10, 64)
	return n, err == nil
}

// isLegacyNonceName reports whether a name under nonces/ is a nonce file of
// the flat layout: a SHA-256 in lowercase hex.
func isLegacyNonceName(name string) bool {
	if len(name) != 64 {
		return false
	}
	for _, c := range name {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// pruneNonces deletes the nonce buckets that lookups no longer read (every
// bucket but the previous, the current and — for clocks of instances
// sharing the storage that run a little ahead — the next; a bucket far in
// the future was made with another retention), but for the buckets of the
// other sizes in nonce_sizes.json that lookups still read, or that an
// instance still using a longer retention reads (keptBuckets) (and,
// likewise, the next one of each), and the flat nonce files of
// earlier versions that are older than the retention. The buckets kept are
// those of each of nonceClocks, a file is deleted when it is old by each.
// It runs under the janitor's storage lock and returns how many buckets
// and files it deleted.
func (s *stateStore) pruneNonces(ctx context.Context) (buckets, files int, err error) {
	if err := s.st.Lock(ctx, nonceJanitorLock); err != nil {
		return 0, 0, fmt.Errorf("locking the nonce janitor: %v", err)
	}
	defer func() { _ = s.st.Unlock(context.WithoutCancel(ctx), nonceJanitorLock) }()

	others, err := s.registerBucketSize(ctx)
	if err != nil {
		return 0, 0, err
	}
	prefix := noncesPrefix()
	keys, err := s.list(ctx, prefix)
	if err != nil {
		return 0, 0, fmt.Errorf("listing nonces: %v", err)
	}
	clocks := s.nonceClocks()
	now := clocks[0]
	kept := make(map[int64]bool)
	for _, t := range clocks {
		cur := s.bucket(t)
		kept[cur-1], kept[cur], kept[cur+1] = true, true, true
		for _, o := range others {
			for _, b := range o.keptBuckets(t, s.retention) {
				kept[b], kept[b+1] = true, true // and the next one, as our own
			}
		}
		if t.Before(now) {
			now = t // the files' ages
		}
	}
	for _, k := range keys {
		if err := ctx.Err(); err != nil {
			return buckets, files, err
		}
		name := path.Base(k)
		if b, ok := isBucketName(name); ok {
			if kept[b] {
				continue
			}
			if err := s.deleteDir(ctx, path.Join(prefix, name)); err != nil {
				return buckets, files, fmt.Errorf("deleting nonce bucket %s: %v", name, err)
			}
			buckets++
			continue
		}
		if !isLegacyNonceName(name) {
			continue // not ours
		}
		key := path.Join(prefix, name)
		info, err := s.st.Stat(ctx, key)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted meanwhile
		}
		if err != nil {
			return buckets, files, fmt.Errorf("nonce file %s: %v", name, err)
		}
		if !info.IsTerminal || now.Sub(info.Modified) <= s.retention {
			continue
		}
		if err := s.st.Delete(ctx, key); err != nil {
			return buckets, files, fmt.Errorf("deleting nonce file %s: %v", name, err)
		}
		files++
	}
	return buckets, files, nil
}

// nonceJanitor prunes expired nonces at once and then every interval until
// the app stops. It keeps the buckets of both nonceClocks: after a step of
// the wall clock, the wall clock's are those this instance binds nonces
// in, the other's those the other instances do (and this one did before
// the step).
func (a *App) nonceJanitor(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		buckets, files, err := a.state.pruneNonces(a.bgCtx)
		switch {
		case err != nil && a.bgCtx.Err() == nil:
			a.log.Error("pruning expired nonces", zap.Error(err),
				zap.Int("buckets_removed", buckets), zap.Int("legacy_files_removed", files))
		case buckets+files > 0:
			a.log.Info("expired nonces pruned",
				zap.Int("buckets_removed", buckets), zap.Int("legacy_files_removed", files),
				zap.Duration("retention", a.state.retention))
		case err == nil:
			a.log.Debug("no expired nonces to prune")
		}
		select {
		case <-a.stop:
			return
		case <-t.C:
		}
	}
}
