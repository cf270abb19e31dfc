package routing

import "math/rand/v2"

// candidate is a usable device of positive weight of the route.
type candidate struct {
	dev    int32
	weight uint32
}

// Route answers an authorization request: it finds the route for a call
// from device source (its name as the file writes it) to the called number
// and appends to dst the devices to offer, in the order to try them (see
// the package documentation for the rules). At most maxDest destinations
// are appended (the request's maximum), and never more than
// Options.MaxDestinations; maxDest ≤ 0 means that cap. eligible, if not
// nil, vetoes devices (revoked certificates). rnd is the source of the
// weighted draw; nil uses math/rand/v2's top-level functions. The
// Destination strings belong to the Table and stay valid after a Swap.
//
// Errors are ErrUnknownSource, ErrInvalidNumber, ErrNoRoute and
// ErrNoDestination; dst is then returned unchanged. Route allocates only
// when dst lacks capacity or a route has more than 32 usable devices of
// positive weight.
func (t *Table) Route(source, called string, maxDest int, rnd *rand.Rand, eligible func(device string) bool, dst []Destination) ([]Destination, error) {
	if t == nil {
		return dst, ErrUnknownSource
	}
	src, ok := t.devIdx[source]
	if !ok {
		return dst, ErrUnknownSource
	}
	k, ok := dialedKey(called)
	if !ok {
		return dst, ErrInvalidNumber
	}
	p, _ := t.match(t.devices[src].gi, k)
	if p == nil {
		return dst, ErrNoRoute
	}
	limit := t.maxDest
	if maxDest > 0 && maxDest < limit {
		limit = maxDest
	}
	targets := t.targets[p.tOff : p.tOff+p.targets()]
	n0 := len(dst)

	// positive weights: weighted draw without replacement
	var buf [32]candidate
	cands := buf[:0]
	var total uint64
	for _, tg := range targets {
		if tg.Weight == 0 || !t.usable(tg.Device, src, eligible) {
			continue
		}
		cands = append(cands, candidate{tg.Device, tg.Weight})
		total += uint64(tg.Weight)
	}
	for len(cands) > 0 && len(dst)-n0 < limit {
		j := 0
		if len(cands) > 1 {
			var x uint64
			if rnd != nil {
				x = rnd.Uint64N(total)
			} else {
				x = rand.Uint64N(total)
			}
			for x >= uint64(cands[j].weight) {
				x -= uint64(cands[j].weight)
				j++
			}
		}
		c := cands[j]
		dst = t.appendDest(dst, c.dev, c.weight)
		total -= uint64(c.weight)
		last := len(cands) - 1
		cands[j] = cands[last]
		cands = cands[:last]
	}

	// weight 0: fallbacks in route order
	for _, tg := range targets {
		if len(dst)-n0 >= limit {
			break
		}
		if tg.Weight == 0 && t.usable(tg.Device, src, eligible) {
			dst = t.appendDest(dst, tg.Device, 0)
		}
	}
	if len(dst) == n0 {
		return dst, ErrNoDestination
	}
	return dst, nil
}

// usable tells whether device d may be offered for a call from src.
func (t *Table) usable(d, src int32, eligible func(string) bool) bool {
	dev := &t.devices[d]
	return dev.usable && d != src && (eligible == nil || eligible(dev.name))
}

func (t *Table) appendDest(dst []Destination, d int32, w uint32) []Destination {
	dev := &t.devices[d]
	return append(dst, Destination{Device: dev.name, Group: dev.group, Weight: w, SignalAddress: dev.addr, Protocol: dev.proto, NonOSP: dev.nonOSP})
}
