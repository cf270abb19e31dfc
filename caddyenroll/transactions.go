package caddyenroll

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
	"github.com/clearinghouse-dev/caddy-clearinghouse/osp"
)

// Authorizations take their transaction ids from an osp.TransactionIDs
// whose key every instance sharing the storage reads, each id made For the
// requesting device (configfile.DeviceKey), so that a reauthorization is
// taken from the call's source alone and a usage record says whether its
// transaction is one this clearinghouse authorized, and for which device
// (CDR.TransactionIssued, CDR.TransactionSource):
//
//	clearinghouse/osp/transaction.key   (32 random bytes)
//
// Ids of versions before sources were named name none (their tag is 0):
// they are still recognized as issued here.

func transactionKeyKey() string { return path.Join("clearinghouse", "osp", "transaction.key") }

const transactionKeyLock = "clearinghouse_osp_transaction_key"

// transactionIDs returns the maker of transaction ids, creating its key in
// storage the first time.
func (a *App) transactionIDs(ctx context.Context) (*osp.TransactionIDs, error) {
	a.authz.txMu.Lock()
	defer a.authz.txMu.Unlock()
	if a.authz.txIDs != nil {
		return a.authz.txIDs, nil
	}
	key, err := a.storage.Load(ctx, transactionKeyKey())
	if errors.Is(err, fs.ErrNotExist) {
		key, err = a.createTransactionKey(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("transaction id key %s: %v", transactionKeyKey(), err)
	}
	ids, err := osp.NewTransactionIDs(key)
	if err != nil {
		return nil, fmt.Errorf("transaction id key %s: %d bytes, want %d (delete it to make a new one; records of earlier transactions then read as not issued here)",
			transactionKeyKey(), len(key), osp.TransactionKeySize)
	}
	a.authz.txIDs = ids
	a.noteTransactionIDs(ids)
	return ids, nil
}

// createTransactionKey writes a new key unless another instance did first.
func (a *App) createTransactionKey(ctx context.Context) ([]byte, error) {
	if err := a.storage.Lock(ctx, transactionKeyLock); err != nil {
		return nil, err
	}
	defer a.storage.Unlock(context.WithoutCancel(ctx), transactionKeyLock)
	key, err := a.storage.Load(ctx, transactionKeyKey())
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	key = make([]byte, osp.TransactionKeySize)
	_, _ = rand.Read(key) // crypto/rand.Read never fails
	if err := a.storage.Store(ctx, transactionKeyKey(), key); err != nil {
		return nil, err
	}
	return key, nil
}

// sourceIndex finds the devices of the file by their tag in transaction
// ids (osp.TransactionIDs.Tag): made for the devices of one route table
// (authz.deviceByAddr, set with it) and one maker. It is made again for
// every version of the file put in force, from the previous index,
// changing only the devices that changed, rather than by the first usage
// record that needs it: with the version's route table before the
// version is put in force (App.prepareRoutes), or, for a table built
// under the lock, in the background (indexSources). At a carrier's
// 100,000 devices, making it whole took the record a sixth of a second. A
// lookup made before it is ready waits for it: the answer is always the
// file's.
type sourceIndex struct {
	byAddr *map[string][]string
	ids    *osp.TransactionIDs
	ready  chan struct{} // closed once byTag is made
	byTag  map[uint32][]string
}

// transactionSource tells whether an authorization of this clearinghouse
// made a transaction id (issued) and, when the id names its source, which
// device that is, as the file names it now: the reporter when its tag is
// the id's, else the one device of the file with that tag. An id naming a
// device the file no longer has counts as not issued; two devices with the
// same tag (24 bits: n devices share one with probability about
// n²·2^-25) leave the source empty. Ids of earlier versions are issued
// with no source.
func (a *App) transactionSource(ids *osp.TransactionIDs, id uint64, reporter string) (issued bool, source string) {
	tag, ok := ids.SourceOf(id)
	switch {
	case !ok:
		return false, ""
	case tag == 0:
		return true, ""
	case reporter != "" && tag == ids.Tag(configfile.DeviceKey(reporter)):
		return true, reporter
	}
	switch names := a.sourceTags(ids)[tag]; len(names) {
	case 0:
		return false, ""
	case 1:
		return true, names[0]
	default:
		return true, ""
	}
}

// sourceTags is the index of the file's devices by tag, made again when
// the route table or the maker changed.
func (a *App) sourceTags(ids *osp.TransactionIDs) map[uint32][]string {
	ix := a.indexSources(ids, false)
	<-ix.ready
	return ix.byTag
}

// noteTransactionIDs has the index of sources made for ids now and again
// with every version of the file put in force, off the request path.
func (a *App) noteTransactionIDs(ids *osp.TransactionIDs) {
	if a.cfg != nil {
		a.cfg.mu.Lock()
		a.cfg.afterChange = func() { a.indexSources(ids, true) }
		a.cfg.mu.Unlock()
	}
	a.indexSources(ids, true)
}

// indexSources returns the index of the route table's devices by tag for
// ids: the one made or being made, else a new one, made in the background
// (background) or before it returns.
func (a *App) indexSources(ids *osp.TransactionIDs, background bool) *sourceIndex {
	for {
		byAddr := a.authz.deviceByAddr.Load()
		afterDevicesLoad(a)
		cur := a.authz.sources.Load()
		if cur != nil && cur.byAddr == byAddr && cur.ids == ids {
			return cur
		}
		if a.authz.deviceByAddr.Load() != byAddr {
			// a version was put in force in between, cur may be its
			// index: one made for byAddr would replace it
			continue
		}
		ix := &sourceIndex{byAddr: byAddr, ids: ids, ready: make(chan struct{})}
		if !a.authz.sources.CompareAndSwap(cur, ix) {
			continue // another caller's: look again
		}
		if cur != nil && cur.ids != ids {
			cur = nil // another maker's tags
		}
		if background {
			go ix.build(cur) // short, and needs nothing Stop ends
		} else {
			ix.build(cur)
		}
		return ix
	}
}

// afterDevicesLoad is called by indexSources between reading the devices'
// index and the index of sources (a variable for tests).
var afterDevicesLoad = func(*App) {}

// build makes the index: from prev, the index of the same maker made
// before (once it is ready), with the devices that changed since; whole
// without one.
func (ix *sourceIndex) build(prev *sourceIndex) {
	defer close(ix.ready)
	if prev != nil {
		<-prev.ready
		if prev.byAddr != nil && ix.byAddr != nil {
			ix.byTag = maps.Clone(prev.byTag)
			gone, added := changedDevices(*prev.byAddr, *ix.byAddr)
			for _, d := range gone {
				tag := ix.ids.Tag(configfile.DeviceKey(d))
				if names := slices.DeleteFunc(slices.Clone(ix.byTag[tag]), func(n string) bool { return n == d }); len(names) > 0 {
					ix.byTag[tag] = names
				} else {
					delete(ix.byTag, tag)
				}
			}
			for _, d := range added {
				tag := ix.ids.Tag(configfile.DeviceKey(d))
				ix.byTag[tag] = append(slices.Clip(ix.byTag[tag]), d)
			}
			return
		}
	}
	ix.byTag = make(map[uint32][]string)
	if ix.byAddr == nil {
		return
	}
	for _, names := range *ix.byAddr {
		for _, d := range names {
			tag := ix.ids.Tag(configfile.DeviceKey(d))
			ix.byTag[tag] = append(ix.byTag[tag], d)
		}
	}
}

// changedDevices lists the devices (as the file spells them) that old's
// addresses list and now's do not, and the reverse: a device whose address
// changed is in neither.
func changedDevices(old, now map[string][]string) (gone, added []string) {
	in := func(names []string, set map[string]bool, n string) bool {
		if set != nil {
			return set[n]
		}
		return slices.Contains(names, n)
	}
	setOf := func(names []string) map[string]bool {
		if len(names) <= 16 {
			return nil // searched
		}
		set := make(map[string]bool, len(names))
		for _, n := range names {
			set[n] = true
		}
		return set
	}
	for addr, names := range now {
		o := old[addr]
		if slices.Equal(o, names) {
			continue
		}
		oset, nset := setOf(o), setOf(names)
		for _, n := range names {
			if !in(o, oset, n) {
				added = append(added, n)
			}
		}
		for _, n := range o {
			if !in(names, nset, n) {
				gone = append(gone, n)
			}
		}
	}
	for addr, o := range old {
		if _, ok := now[addr]; !ok {
			gone = append(gone, o...)
		}
	}
	// a device at another address: the same tag, the same name
	moved := make(map[string]bool, len(gone))
	for _, n := range gone {
		moved[n] = true
	}
	added = slices.DeleteFunc(added, func(n string) bool {
		if moved[n] {
			moved[n] = false
			return true
		}
		return false
	})
	gone = slices.DeleteFunc(gone, func(n string) bool { return !moved[n] })
	return gone, added
}
