package routing

import (
	"math"
	"math/bits"
	"unsafe"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

// maxDigits is the most significant characters of a number; two 64-bit
// words hold 32 of 4 bits each.
const maxDigits = configfile.MaxNumberDigits

// A compile-time check that configfile's limit still fits in a key.
const _ = uint(32 - maxDigits)

// key is a number or pattern packed 4 bits per digit, first digit in the
// top bits of hi, digits 17 to 32 in lo. Codes are 1..12, so a zero nibble
// is padding: the integer order of keys is the string order of the digit
// strings, a string sorting before its extensions.
type key struct{ hi, lo uint64 }

// codeOf maps '0'-'9', '*', '#' to 1..12 and everything else to 0.
var codeOf = [256]uint8{
	'0': 1, '1': 2, '2': 3, '3': 4, '4': 5, '5': 6, '6': 7, '7': 8, '8': 9, '9': 10,
	'*': 11, '#': 12,
}

// put sets the digit at position i (0-based, i < maxDigits).
func (k *key) put(i int, code uint8) {
	if i < 16 {
		k.hi |= uint64(code) << (60 - 4*uint(i))
	} else {
		k.lo |= uint64(code) << (60 - 4*uint(i-16))
	}
}

func (a key) less(b key) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

// keyLen is the number of digits of a key.
func keyLen(hi, lo uint64) int {
	if lo != 0 {
		return 32 - bits.TrailingZeros64(lo)>>2
	}
	if hi != 0 {
		return 16 - bits.TrailingZeros64(hi)>>2
	}
	return 0
}

// patternKey packs a normalized pattern (configfile Route.Prefix).
func patternKey(digits string) (key, bool) {
	var k key
	if len(digits) > maxDigits {
		return k, false
	}
	for i := 0; i < len(digits); i++ {
		c := codeOf[digits[i]]
		if c == 0 {
			return k, false
		}
		k.put(i, c)
	}
	return k, true
}

// dialedKey normalizes and packs a dialed number by the rules of
// configfile.NormalizeNumber, and accepts it only if those rules make it an
// exact number: significant characters 0-9 * #, at most 32 of them and at
// least one; separators ' ', '-', '.' ignored, but never two dots in a row,
// even with spaces or '-' between (".." and ". ." are errors there, "..."
// makes a pattern); one '+' before the first digit. It does not allocate.
func dialedKey(s string) (key, bool) {
	// fast path: 1 to 16 plain digits, the usual E.164 number
	if n := len(s); n > 0 && n <= 16 {
		var hi uint64
		i := 0
		for ; i < n; i++ {
			d := s[i] - '0'
			if d > 9 {
				break
			}
			hi = hi<<4 | uint64(d+1)
		}
		if i == n {
			return key{hi: hi << (4 * uint(16-n))}, true
		}
	}
	var k key
	n := 0
	plus := false
	dot := false // a '.' since the last digit
	for i := 0; i < len(s); i++ {
		c := s[i]
		if d := codeOf[c]; d != 0 {
			if n == maxDigits {
				return key{}, false
			}
			k.put(n, d)
			n++
			dot = false
			continue
		}
		switch c {
		case ' ', '-':
		case '.':
			if dot || i+1 < len(s) && s[i+1] == '.' {
				return key{}, false
			}
			dot = true
		case '+':
			if plus || n > 0 {
				return key{}, false
			}
			plus = true
		default:
			return key{}, false
		}
	}
	return k, n > 0
}

// payload is what a lookup returns: a route, or a gap (tLen 0). It is
// stored in the index entries themselves, so that a match costs no further
// memory access.
type payload struct {
	tOff   uint32 // first target in Table.targets
	numOff uint32 // pattern as written: Table.numbers[numOff:numOff+numLen]
	line   int32
	tLen   uint16 // number of targets | exactBit; 0 = no route
	numLen uint16
}

const (
	exactBit   = 1 << 15
	maxTargets = exactBit - 1
)

func (p *payload) targets() uint32 { return uint32(p.tLen &^ exactBit) }
func (p *payload) exact() bool     { return p.tLen&exactBit != 0 }

// entry is one boundary of an index: from its key (high word here, low word
// in index.lo) up to the next entry's key, numbers get its payload.
type entry struct {
	hi uint64
	payload
}

// index maps every number to the route of a group that applies to it. A
// prefix route covers the interval of keys that start with its digits, an
// exact route the interval holding its number alone; these intervals are
// nested or disjoint, and a number gets the innermost interval holding it
// (an exact number inside a prefix with the same digits being the inner
// one). The index stores the boundaries of that partition of the key space,
// sorted: a lookup is one search for the last boundary ≤ the number.
//
// When nb > 0, the search for a number is narrowed to the entries of its
// bucket (see grid): bucket b's entries start at base[b>>blockBits] +
// starts[b], bucket nb at len(ents). Two bytes per bucket keep the table
// small enough to stay in cache; if a block of buckets spans more than
// 65535 entries, wide holds the starts instead.
type index struct {
	ents   []entry
	lo     []uint64 // low words; nil when all are 0 (no key beyond 16 digits)
	nb     int      // number of buckets; 0 = no buckets
	starts []uint16
	base   []uint32
	wide   []uint32
	grid
}

const blockBits = 8

// bucketStart returns the first entry of bucket b (0 ≤ b ≤ nb).
func (x *index) bucketStart(b int) int {
	if x.wide != nil {
		return int(x.wide[b])
	}
	return int(x.base[b>>blockBits]) + int(x.starts[b])
}

// grid maps keys onto buckets, preserving order, densely for the keys of
// the index: the first nd nibbles of the key are read as a number in mixed
// radix, position i holding values min[i]..min[i]+radix[i]-1 (the range
// seen in the index's keys), and the result is shifted right by shift
// (about 4 entries per bucket). A nibble outside its range is clamped and
// the following positions take their lowest (or highest) value, which
// keeps the map monotone for every key.
type grid struct {
	nd     int
	shift  uint
	min    [maxGrid]uint8
	radix  [maxGrid]uint8
	stride [maxGrid + 1]int // stride[i] = radix[i] × … × radix[nd-1]
}

const (
	maxGrid       = 8       // nibbles read at most
	maxGridValues = 1 << 24 // fine buckets (before the shift) at most
	entsPerBucket = 4       // target of the shift
)

// item is a route of a group, to sort while building.
type item struct {
	k     key
	route int32
	exact bool
}

// cmpItems orders items by key, a prefix before the exact route with the
// same digits (its interval holds the exact one's).
func cmpItems(a, b item) int {
	switch {
	case a.k.less(b.k):
		return -1
	case b.k.less(a.k):
		return 1
	case a.exact != b.exact:
		if a.exact {
			return 1
		}
		return -1
	}
	return int(a.route - b.route)
}

// end returns the first key after the interval of an item (ok false for the
// catch-all, whose interval has no end). A nibble never exceeds 12, so
// adding 1 at the digit after the pattern never carries.
func (it *item) end() (key, bool) {
	n := keyLen(it.k.hi, it.k.lo)
	k := it.k
	switch {
	case it.exact && n < maxDigits:
		// the next valid number after N is N followed by '0'; keys in
		// between have a 0 nibble before a digit and are no numbers
		k.put(n, codeOf['0'])
	case it.exact || n == maxDigits:
		k.lo++
	case n == 0:
		return k, false
	case n <= 16:
		k.hi += 1 << (4 * uint(16-n))
	default:
		k.lo += 1 << (4 * uint(32-n))
	}
	return k, true
}

// newIndex builds an index from items sorted by cmpItems, without
// duplicates; pay gives each route's payload.
func newIndex(items []item, pay []payload) index {
	if len(items) == 0 {
		return index{}
	}
	type bound struct {
		k key
		p payload
	}
	out := make([]bound, 0, 2*len(items)+1)
	emit := func(k key, p payload) {
		n := len(out)
		if n > 0 && out[n-1].k == k {
			out = out[:n-1] // a boundary at the same key is superseded
			n--
		}
		if n > 0 && out[n-1].p == p || n == 0 && p.tLen == 0 {
			return // no change of route (or a leading gap)
		}
		out = append(out, bound{k, p})
	}
	type open struct {
		end    key
		hasEnd bool
		p      payload
	}
	var stack [2*maxDigits + 2]open // nested intervals: 33 prefixes, one exact
	sp := 0
	cur := func() payload {
		if sp == 0 {
			return payload{}
		}
		return stack[sp-1].p
	}
	for i := range items {
		it := &items[i]
		for sp > 0 && stack[sp-1].hasEnd && !it.k.less(stack[sp-1].end) {
			sp--
			emit(stack[sp].end, cur())
		}
		p := pay[it.route]
		emit(it.k, p)
		end, hasEnd := it.end()
		stack[sp] = open{end, hasEnd, p}
		sp++
	}
	for sp > 0 {
		sp--
		if stack[sp].hasEnd {
			emit(stack[sp].end, cur())
		}
	}

	n := len(out)
	x := index{ents: make([]entry, n)}
	for i := range out {
		if out[i].k.lo != 0 {
			x.lo = make([]uint64, n)
			break
		}
	}
	for i, b := range out {
		x.ents[i] = entry{hi: b.k.hi, payload: b.p}
		if x.lo != nil {
			x.lo[i] = b.k.lo
		}
	}
	if n >= 2*entsPerBucket {
		x.grid = newGrid(x.ents)
		nb := x.bucket(^uint64(0)) + 1
		wide := make([]uint32, nb+1)
		j := 0
		for b := 0; b <= nb; b++ {
			for j < n && x.bucket(x.ents[j].hi) < b {
				j++
			}
			wide[b] = uint32(j)
		}
		x.nb = nb
		x.base = make([]uint32, nb>>blockBits+1)
		x.starts = make([]uint16, nb+1)
		for b, w := range wide {
			if b&(1<<blockBits-1) == 0 {
				x.base[b>>blockBits] = w
			}
			d := w - x.base[b>>blockBits]
			if d > math.MaxUint16 {
				x.base, x.starts, x.wide = nil, nil, wide
				break
			}
			x.starts[b] = uint16(d)
		}
	}
	return x
}

// newGrid fits a grid to the keys of ents.
func newGrid(ents []entry) grid {
	var g grid
	var lo, hi [maxGrid]uint8
	for i := range lo {
		lo[i] = 15
	}
	for i := range ents {
		h := ents[i].hi
		for p := 0; p < maxGrid; p++ {
			v := uint8(h >> (60 - 4*uint(p)) & 15)
			lo[p] = min(lo[p], v)
			hi[p] = max(hi[p], v)
		}
	}
	// as few positions as give at least the target number of buckets
	target := max(len(ents)/entsPerBucket, 1)
	total := 1
	for g.nd < maxGrid && total < target {
		r := int(hi[g.nd]-lo[g.nd]) + 1
		if total*r > maxGridValues {
			break
		}
		g.min[g.nd], g.radix[g.nd] = lo[g.nd], uint8(r)
		total *= r
		g.nd++
	}
	g.stride[g.nd] = 1
	for i := g.nd - 1; i >= 0; i-- {
		g.stride[i] = g.stride[i+1] * int(g.radix[i])
	}
	for total>>g.shift > target {
		g.shift++
	}
	return g
}

// bucket returns the bucket of a key's high word.
func (g *grid) bucket(hi uint64) int {
	b := 0
	for i := 0; i < g.nd; i++ {
		v := int(hi>>(60-4*uint(i))&15) - int(g.min[i])
		r := int(g.radix[i])
		if uint(v) >= uint(r) { // out of range: clamp, then lowest or highest
			if v < 0 {
				return b * g.stride[i] >> g.shift
			}
			return ((b+1)*g.stride[i] - 1) >> g.shift
		}
		b = b*r + v
	}
	return b >> g.shift
}

// upperBound returns the last entry whose key is ≤ k, or -1.
func (x *index) upperBound(k key) int {
	lo, hi := 0, len(x.ents)
	if x.nb > 0 {
		// keys before bucket b are in earlier buckets, < k; keys from
		// bucket b+1 on are in later buckets, > k
		b := x.bucket(k.hi)
		lo, hi = x.bucketStart(b), x.bucketStart(b+1)
	}
	ents := x.ents
	// Branch-free: a binary search while more than linearMax entries are
	// left, then a count of the entries ≤ k, whose loads do not depend on
	// each other and so overlap: the few cache lines of a bucket cost about
	// one memory latency, not one each.
	if x.lo == nil { // every low word is 0: (e.hi, 0) ≤ k ⇔ e.hi ≤ k.hi
		kh := k.hi
		for n := hi - lo; n > linearMax; {
			half := n >> 1
			lo += half & -b2i(ents[lo+half-1].hi <= kh)
			n -= half
			hi = lo + n
		}
		c := 0
		for _, e := range ents[lo:hi] {
			c += b2i(e.hi <= kh)
		}
		return lo + c - 1
	}
	los := x.lo
	le := func(i int) bool { h := ents[i].hi; return h < k.hi || h == k.hi && los[i] <= k.lo }
	for n := hi - lo; n > linearMax; {
		half := n >> 1
		lo += half & -b2i(le(lo+half-1))
		n -= half
		hi = lo + n
	}
	c := 0
	for i := lo; i < hi; i++ {
		c += b2i(le(i))
	}
	return lo + c - 1
}

// linearMax is the most entries upperBound counts in a row.
const linearMax = 16

// b2i is 1 for true, 0 for false, without a branch (SETcc).
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// find returns the payload of the route for number k, or nil.
func (x *index) find(k key) *payload {
	i := x.upperBound(k)
	if i < 0 || x.ents[i].tLen == 0 {
		return nil
	}
	return &x.ents[i].payload
}

// size is the memory held by the index, in bytes.
func (x *index) size() int {
	return cap(x.ents)*int(unsafe.Sizeof(entry{})) + cap(x.lo)*8 + cap(x.starts)*2 + cap(x.base)*4 + cap(x.wide)*4
}
