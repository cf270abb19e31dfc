package caddyenroll

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"sync"
	"time"
)

// Bucket numbers depend on the bucket size, which is the retention: after
// nonce_retention changes, the buckets of the old size hold nonces that
// lookups of the new size would not find. So the janitor records the sizes
// in use, each with the time an instance last ran it:
//
//	clearinghouse/enroll/nonce_sizes.json   [{"seconds":2592000,"seen":"…"}, …]
//
// ("also": the time by its other nonce clock, when its wall clock was
// stepped), and lookups and the janitor read the buckets of the other
// sizes in that record too, until the nonces in them are older than the
// retention.

func nonceSizesKey() string { return path.Join(statePrefix, "nonce_sizes.json") }

// nonceSize is a bucket size that an instance used, and the time of its
// janitor's last run with it; the instance may write buckets of that size
// until its next runs (nonceJanitorInterval apart). Also is the other
// reading of nonceClocks at that run, when they differed (its wall clock
// was stepped): the instance writes in the buckets of both, and the
// others, whose clocks may agree with either, read those of both.
type nonceSize struct {
	Seconds int64     `json:"seconds"`
	Seen    time.Time `json:"seen"`
	Also    time.Time `json:"also,omitzero"`
}

// maxOtherBuckets bounds the buckets read per other size. The retention is
// at least an hour, so a size in use keeps at most the buckets of three
// hours; a record that asks for more is not ours.
const maxOtherBuckets = 6

// maxOtherSizes bounds the other sizes lookups read and the record keeps:
// the retention changes rarely, so a record with more is not ours.
const maxOtherSizes = 16

// buckets are the buckets of this size that may hold nonces used less than
// retention before now: from the oldest one its janitor kept at its last
// run (the previous bucket) to the one it may have written last, by Seen
// and by Also (in order, each once).
func (o nonceSize) buckets(now time.Time, retention time.Duration) []int64 {
	out := o.bucketsSeen(o.Seen, now, retention)
	if !o.Also.IsZero() {
		for _, b := range o.bucketsSeen(o.Also, now, retention) {
			if !slices.Contains(out, b) {
				out = append(out, b)
			}
		}
		slices.Sort(out)
	}
	return out
}

// bucketsSeen is buckets by one reading of the time at the janitor's run.
func (o nonceSize) bucketsSeen(seen, now time.Time, retention time.Duration) []int64 {
	if o.Seconds < int64(time.Hour/time.Second) {
		return nil
	}
	last := seen.Add(2 * nonceJanitorInterval)
	if now.Before(last) {
		last = now
	}
	first := seen.Add(-time.Duration(o.Seconds) * time.Second)
	if t := now.Add(-retention); first.Before(t) {
		first = t
	}
	if last.Before(first) {
		return nil
	}
	from, to := floorDiv(first.Unix(), o.Seconds), floorDiv(last.Unix(), o.Seconds)
	if to-from >= maxOtherBuckets {
		return nil
	}
	out := make([]int64, 0, to-from+1)
	for b := from; b <= to; b++ {
		out = append(out, b)
	}
	return out
}

// keptBuckets are the buckets of this size that a janitor of retention
// keeps: those its lookups read and, while an instance may still use the
// size (its janitor ran less than two runs ago), those that instance's
// lookups read under its own retention (the size), when it is longer:
// deleting them would make that instance forget nonces it must still
// refuse.
func (o nonceSize) keptBuckets(now time.Time, retention time.Duration) []int64 {
	seen := o.Seen
	if o.Also.After(seen) {
		seen = o.Also
	}
	if own := time.Duration(o.Seconds) * time.Second; own > retention && now.Before(seen.Add(2*nonceJanitorInterval)) {
		retention = own
	}
	return o.buckets(now, retention)
}

func floorDiv(n, d int64) int64 {
	q := n / d
	if n%d < 0 {
		q--
	}
	return q
}

// bucketSeconds is the bucket size of this store.
func (s *stateStore) bucketSeconds() int64 {
	if size := int64(s.retention / time.Second); size > 0 {
		return size
	}
	return 1
}

// readBuckets are the buckets a lookup at the times at reads (the clocks'
// readings: nonceClocks): for each, the current, the previous and the next
// one (written by an instance whose clock is ahead of ours, up to a
// bucket: the skew allowed between instances, or this clock before it was
// stepped back; the janitor keeps it too), then those of other sizes still
// in the record.
func (s *stateStore) readBuckets(at ...time.Time) []int64 {
	var out []int64
	add := func(b int64) {
		if !slices.Contains(out, b) {
			out = append(out, b)
		}
	}
	for _, now := range at {
		cur := s.bucket(now)
		add(cur)
		add(cur - 1)
		add(cur + 1)
	}
	if others := s.otherSizes.Load(); others != nil {
		for _, now := range at {
			for _, o := range *others {
				for _, b := range o.buckets(now, s.retention) {
					add(b)
				}
			}
		}
	}
	return out
}

// errNonceSizesCorrupt marks a record of bucket sizes, or an entry of it,
// that does not decode.
var errNonceSizesCorrupt = errors.New("corrupt record")

// loadBucketSizes reads the record of bucket sizes; a missing record is
// empty. An entry that does not decode (a time that does not parse, a
// number where a time should be) is left out and reported with
// errNonceSizesCorrupt, as is a record that is not a JSON array, along
// with the entries that decoded.
func (s *stateStore) loadBucketSizes(ctx context.Context) ([]nonceSize, error) {
	raw, err := s.st.Load(ctx, nonceSizesKey())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %v", nonceSizesKey(), err)
	}
	var entries []json.RawMessage
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", nonceSizesKey(), errNonceSizesCorrupt, err)
	}
	sizes := make([]nonceSize, 0, len(entries))
	var bad error
	for i, e := range entries {
		var o nonceSize
		if err := json.Unmarshal(e, &o); err != nil {
			if bad == nil {
				bad = fmt.Errorf("%s: %w: entry %d: %v", nonceSizesKey(), errNonceSizesCorrupt, i, err)
			}
			continue
		}
		sizes = append(sizes, o)
	}
	return sizes, bad
}

// useOtherSizes keeps, of sizes, those other than this store's whose
// buckets may still hold nonces within the retention, for lookups to read,
// and returns them: each size once (as last seen), at most maxOtherSizes
// of them, those seen last. A size is kept while its buckets are read by
// any of nonceClocks, as lookups and the janitor read and keep them: judged
// by the wall clock alone, after a step of it a size whose buckets the
// other clock still reads was dropped, and its nonces accepted again and
// deleted by the janitor.
func (s *stateStore) useOtherSizes(sizes []nonceSize) []nonceSize {
	clocks, own := s.nonceClocks(), s.bucketSeconds()
	read := func(o nonceSize) bool {
		for _, now := range clocks {
			if len(o.buckets(now, s.retention)) > 0 {
				return true
			}
		}
		return false
	}
	last := make(map[int64]nonceSize)
	for _, o := range sizes {
		if o.Seconds == own || !read(o) {
			continue
		}
		if seen, ok := last[o.Seconds]; !ok || o.Seen.After(seen.Seen) {
			last[o.Seconds] = o
		}
	}
	others := slices.SortedFunc(maps.Values(last), func(a, b nonceSize) int {
		if c := b.Seen.Compare(a.Seen); c != 0 {
			return c
		}
		return cmp.Compare(a.Seconds, b.Seconds)
	})
	if len(others) > maxOtherSizes {
		others = others[:maxOtherSizes]
	}
	s.otherSizes.Store(&others)
	return others
}

// readBucketSizes makes lookups read the buckets of the other sizes in the
// record, before this store's janitor first runs.
func (s *stateStore) readBucketSizes(ctx context.Context) error {
	sizes, err := s.loadBucketSizes(ctx)
	if err == nil || errors.Is(err, errNonceSizesCorrupt) {
		s.useOtherSizes(sizes) // those that decoded
	}
	return err
}

// registerBucketSize records this store's size as seen now, forgets the
// sizes whose buckets hold only nonces older than the retention, and
// returns the other sizes still to read. It runs under the janitor's lock.
// A record that does not decode is rewritten with the entries that did: the
// sizes of the others are lost, which only shortens how long nonces of an
// old retention are refused (failing instead would stop the pruning for
// good).
func (s *stateStore) registerBucketSize(ctx context.Context) ([]nonceSize, error) {
	sizes, err := s.loadBucketSizes(ctx)
	if err != nil && !errors.Is(err, errNonceSizesCorrupt) {
		return nil, err
	}
	others := s.useOtherSizes(sizes)
	clocks := s.nonceClocks()
	own := nonceSize{Seconds: s.bucketSeconds(), Seen: clocks[0].UTC()}
	if len(clocks) > 1 {
		own.Also = clocks[1].UTC() // the other instances read the buckets of both
	}
	record := append([]nonceSize{own}, others...)
	raw, err := json.Marshal(record)
	if err != nil {
		return nil, err
	}
	if err := s.st.Store(ctx, nonceSizesKey(), raw); err != nil {
		return nil, fmt.Errorf("writing %s: %v", nonceSizesKey(), err)
	}
	return others, nil
}

// ownSizeRecorded says whether a store's own size is in the record, seen
// less than nonceJanitorInterval ago (its janitor then keeps it there).
type ownSizeRecorded struct {
	mu   sync.Mutex
	done bool
}

// recordOwnSize makes sure, before this store binds its first nonce, that
// the record lists its size, so that the other instances read its buckets
// (refreshOtherSizes): its janitor's first run records it too, but runs in
// the background and may wait on the janitor's lock (held by another
// instance, or left by one killed, for up to fileLockStale).
func (s *stateStore) recordOwnSize(ctx context.Context) error {
	s.ownSize.mu.Lock()
	defer s.ownSize.mu.Unlock()
	if s.ownSize.done {
		return nil
	}
	sizes, err := s.loadBucketSizes(ctx)
	if err != nil && !errors.Is(err, errNonceSizesCorrupt) {
		return err
	}
	own, now := s.bucketSeconds(), s.now()
	for _, o := range sizes {
		if o.Seconds == own && now.Sub(o.Seen) < nonceJanitorInterval {
			s.ownSize.done = true // another instance of the same size keeps it there meanwhile
			return nil
		}
	}
	if err := s.st.Lock(ctx, nonceJanitorLock); err != nil {
		return fmt.Errorf("locking the nonce janitor: %v", err)
	}
	defer func() { _ = s.st.Unlock(context.WithoutCancel(ctx), nonceJanitorLock) }()
	if _, err := s.registerBucketSize(ctx); err != nil {
		return err
	}
	s.ownSize.done = true
	return nil
}

// refreshOtherSizes reads the record again and returns the buckets that
// lookups at the times at read now and did not before (read).
func (s *stateStore) refreshOtherSizes(ctx context.Context, at []time.Time, read []int64) ([]int64, error) {
	sizes, err := s.loadBucketSizes(ctx)
	if err != nil && !errors.Is(err, errNonceSizesCorrupt) {
		return nil, err
	}
	var more []int64
	for _, o := range s.useOtherSizes(sizes) {
		for _, now := range at {
			for _, b := range o.buckets(now, s.retention) {
				if !slices.Contains(read, b) && !slices.Contains(more, b) {
					more = append(more, b)
				}
			}
		}
	}
	return more, nil
}
