package configfile

import (
	"hash/maphash"
	"math/bits"
)

// duplicateRoutes reports routes with the same group and number (same
// normalized prefix and exactness) as an earlier route.
//
// It runs once all routes are known and avoids a hash table probed in
// random order (a cache miss per route for a million routes): the routes'
// hashes are bucketed by their top bits with a counting sort, and each small
// bucket is sorted and scanned for equal hashes, whose routes are compared.
func (p *parser) duplicateRoutes() {
	routes := p.f.Routes
	n := len(routes)
	if n < 2 {
		return
	}
	seed := maphash.MakeSeed()
	b := bits.Len(uint(n / 8))
	b = min(max(b, 1), 16)
	shift := 64 - b
	hashes := make([]uint64, n)
	start := make([]int32, 1<<b+1)
	for i := range routes {
		r := &routes[i]
		h := maphash.String(seed, r.Prefix)
		h ^= (maphash.String(seed, r.Group) + 0x9e3779b97f4a7c15) * 0xbf58476d1ce4e5b9
		if r.Exact {
			h ^= 0x94d049bb133111eb
		}
		h ^= h >> 31
		h *= 0xd6e8feb86659fd3b
		h ^= h >> 32
		hashes[i] = h
		start[h>>shift+1]++
	}
	for k := 1; k < len(start); k++ {
		start[k] += start[k-1]
	}
	keys := make([]uint64, n)
	idx := make([]int32, n)
	pos := make([]int32, 1<<b)
	copy(pos, start)
	for i, h := range hashes {
		k := h >> shift
		j := pos[k]
		pos[k]++
		keys[j], idx[j] = h, int32(i)
	}
	hashes, pos = nil, nil
	for k := 0; k+1 < len(start); k++ {
		lo, hi := int(start[k]), int(start[k+1])
		if hi-lo < 2 {
			continue
		}
		kk, ii := keys[lo:hi], idx[lo:hi]
		// insertion sort by (hash, index): buckets hold ~8 routes
		for a := 1; a < len(kk); a++ {
			for c := a; c > 0 && (kk[c] < kk[c-1] || kk[c] == kk[c-1] && ii[c] < ii[c-1]); c-- {
				kk[c], kk[c-1] = kk[c-1], kk[c]
				ii[c], ii[c-1] = ii[c-1], ii[c]
			}
		}
		run := 0 // start of the run of equal hashes that a is in
		for a := 1; a < len(kk); a++ {
			if kk[a] != kk[a-1] {
				run = a
				continue
			}
			// the first earlier route of this run with the same key: for
			// true duplicates the run's first, so a file repeating one
			// route k times costs O(k), not O(k²)
			r := &routes[ii[a]]
			first := -1
			for c := run; c < a; c++ {
				q := &routes[ii[c]]
				if q.Prefix == r.Prefix && q.Exact == r.Exact && q.Group == r.Group {
					first = int(ii[c])
					break
				}
			}
			if first >= 0 {
				p.line = r.Line
				p.errorf(r.Number, "route: duplicate route for this group and number, first defined on line %d", routes[first].Line)
			}
		}
	}
}
