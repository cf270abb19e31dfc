package caddyenroll

import (
	"context"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// limiter slows down password guessing: after `free` consecutive failures
// for a key (an account, an account at one of its known addresses, or a
// client address) every further attempt is refused until a lockout
// expires; the lockout doubles with each failure up to `max`: with free=5
// the sixth attempt waits. For an account, a success clears the key; an
// address (limited by its own limiter, with more failures allowed: the
// devices of a site share one) keeps its failures.
//
// Attempts are counted from begin, not only when they fail: no more are
// in flight at once than failures are still allowed before a lockout (one
// at a time past it), so concurrent guesses, each waiting for its bcrypt
// check, cannot run ahead of the count. An attempt beyond that waits for
// one in flight to end (up to maxAttemptWait): a fleet of devices sharing
// an account enrolls at once, each check taking microseconds once the
// first succeeded. The table is bounded: stale
// entries go first, then idle ones under no lockout; lockouts and attempts
// in flight are never dropped (a key that finds the table full of them is
// not tracked). The table is the process's; App shares failures and
// lockouts with a cluster's other instances through the storage
// (sharedfailures.go).
type limiter struct {
	mu         sync.Mutex
	m          map[string]*failState
	free       int
	base, max  time.Duration
	maxEntries int
	recording  map[string]*recordLock // keys whose storage record is being updated
	epochs     uint64                 // the last failState.epoch given
}

// recordLock orders the updates of one key's storage record by this
// process: a count written late must not overwrite a higher one.
type recordLock struct {
	ch   chan struct{} // holds a token while an update runs
	refs int
}

// lockRecord waits (until ctx is done) until no other failure of key is
// updating its storage record here; if ok, unlock lets the next one.
func (l *limiter) lockRecord(ctx context.Context, key string) (unlock func(), ok bool) {
	l.mu.Lock()
	if l.recording == nil {
		l.recording = make(map[string]*recordLock)
	}
	rl := l.recording[key]
	if rl == nil {
		rl = &recordLock{ch: make(chan struct{}, 1)}
		l.recording[key] = rl
	}
	rl.refs++
	l.mu.Unlock()
	release := func() {
		l.mu.Lock()
		if rl.refs--; rl.refs == 0 {
			delete(l.recording, key)
		}
		l.mu.Unlock()
	}
	select {
	case rl.ch <- struct{}{}:
		return func() { <-rl.ch; release() }, true
	case <-ctx.Done():
		release()
		return nil, false
	}
}

type failState struct {
	failures int
	inflight int           // attempts begun and not yet ended
	freed    chan struct{} // closed when an attempt ends; nil if none waits
	until    time.Time
	last     time.Time
	// recorded: the storage record holds the last failure (its write
	// succeeded), so that a record found missing was deleted (a valid
	// login, an unlock) and was not merely never written
	recorded bool
	checked  time.Time // when its storage record was last read for a lockout
	epoch    uint64    // new when the entry is made or cleared: a record read before is not adopted
	// adopted: the lockout end (a wall-clock reading) of the record last
	// adopted, which adopt takes once: read again, the lockout it gave
	// stands (else a record of a clock far ahead, capped at max each time,
	// was taken anew at each read until its end came by this clock)
	adopted time.Time
}

// addressFailuresFactor is how many more failures a client address is
// allowed than an account: the devices of a site share one address.
const addressFailuresFactor = 4

// addressKey is the limiter key of a client address: an IPv6 address by
// its /64, which one host commonly holds whole.
func addressKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "ip:" + ip
	}
	if a = a.Unmap(); a.Is6() {
		p, _ := a.WithZone("").Prefix(64)
		return "ip:" + p.String()
	}
	return "ip:" + a.String()
}

// maxAttemptWait bounds how long an attempt waits for one in flight.
const maxAttemptWait = 5 * time.Second

func newLimiter(free int, base, max time.Duration) *limiter {
	return &limiter{m: make(map[string]*failState), free: free, base: base, max: max, maxEntries: 100000}
}

// begin reserves an attempt for key at now, waiting (until ctx is done,
// at most maxAttemptWait) while as many attempts as allowed are in flight.
// If it is refused, it returns how long a lockout still lasts (0: too many
// attempts in flight). A reserved attempt ends with fail, succeed or
// cancel.
func (l *limiter) begin(ctx context.Context, key string, now time.Time) (bool, time.Duration) {
	var timeout <-chan time.Time
	for {
		l.mu.Lock()
		st := l.entryLocked(key, now)
		if st == nil {
			l.mu.Unlock()
			return true, 0 // untracked: the table is full of lockouts
		}
		if now.Before(st.until) {
			left := st.until.Sub(now) // under the lock: fail and end write it
			l.mu.Unlock()
			return false, left
		}
		l.forgetLocked(st, now)
		if st.inflight < max(l.free-st.failures, 1) {
			st.inflight++
			l.mu.Unlock()
			return true, 0
		}
		if st.freed == nil {
			st.freed = make(chan struct{})
		}
		freed := st.freed
		l.mu.Unlock()
		if timeout == nil {
			t := time.NewTimer(maxAttemptWait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-freed:
			now = time.Now()
		case <-ctx.Done():
			return false, 0
		case <-timeout:
			return false, 0
		}
	}
}

// endLocked ends an attempt in flight and wakes those waiting for one.
func (st *failState) endLocked() {
	if st.inflight > 0 {
		st.inflight--
	}
	if st.freed != nil {
		close(st.freed)
		st.freed = nil
	}
}

// fail ends an attempt as failed and reports whether the key is now past
// its free failures, and the lockout this failure starts (0: none). Every
// failure from the free-th on starts one (attempts are refused while one
// lasts, so they are not failures): each lockout is reported once.
func (l *limiter) fail(key string, now time.Time) (past bool, lockout time.Duration) {
	past, lockout, _ = l.failWith(key, now, sharedFailure{})
	return past, lockout
}

// failWith is fail counting also the failures other instances recorded for
// key (shared; the larger count wins, unless it is stale), and returns the
// key's state after it, for them.
func (l *limiter) failWith(key string, now time.Time, shared sharedFailure) (past bool, lockout time.Duration, after sharedFailure) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.entryLocked(key, now)
	if st == nil {
		return false, 0, sharedFailure{}
	}
	st.endLocked()
	l.forgetLocked(st, now)
	if shared.Failures > st.failures && !l.stale(shared.Last, now) {
		st.failures = shared.Failures
	}
	st.failures++
	st.last = now
	st.recorded = false
	if over := st.failures - l.free; over >= 0 {
		d := l.base
		for i := 0; i < over && d < l.max; i++ {
			d *= 2
		}
		if d > l.max {
			d = l.max
		}
		// a longer lockout in force (adopted while this attempt was
		// in flight) is kept, not shortened
		if u := now.Add(d); u.After(st.until) {
			st.until = u
		}
		lockout = st.until.Sub(now)
	}
	after = sharedFailure{Failures: st.failures, Last: st.last}
	if !st.until.IsZero() {
		// the lockout's end as the wall clock now tells it, as Last is:
		// a deadline kept by the monotonic clock (adopt's, or one set
		// before a step of the wall clock) has a stale wall reading
		after.Until = now.Round(0).Add(st.until.Sub(now))
	}
	return st.failures > l.free, lockout, after
}

// hasFailures reports whether key has failures or a lockout here.
func (l *limiter) hasFailures(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	st, ok := l.m[key]
	return ok && (st.failures > 0 || !st.until.IsZero())
}

// shouldRead reports whether an attempt for key at now reads its storage
// record: only if key failed here and its failures are not stale (or its
// lockout lasts), and while a lockout here refuses the attempts, once per
// sharedRecheckInterval (a guesser hammering it must not read the storage
// at each request). adopt takes epoch back.
func (l *limiter) shouldRead(key string, now time.Time) (epoch uint64, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st, ok := l.m[key]
	if !ok || (st.failures == 0 || l.stale(st.last, now)) && !now.Before(st.until) {
		return 0, false
	}
	if since := now.Sub(st.checked); now.Before(st.until) && since >= 0 && since < sharedRecheckInterval {
		return 0, false
	}
	st.checked = now
	return st.epoch, true
}

// clear forgets key's failures and lockout (not its attempts in flight),
// and reports whether it had any.
func (l *limiter) clear(key string) (had bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st, ok := l.m[key]
	if !ok {
		return false
	}
	had = st.failures > 0 || !st.until.IsZero()
	l.clearLocked(key, st)
	return had
}

// clearLocked forgets st's failures and lockout, and st with them unless
// attempts are in flight.
func (l *limiter) clearLocked(key string, st *failState) {
	st.failures, st.until, st.recorded, st.adopted = 0, time.Time{}, false, time.Time{}
	l.epochs++
	st.epoch = l.epochs
	if st.inflight == 0 {
		delete(l.m, key)
	}
}

// markRecorded notes that the storage record holds key's failures as
// after (failWith's) says, unless another failure came since.
func (l *limiter) markRecorded(key string, after sharedFailure) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if st, ok := l.m[key]; ok && st.failures == after.Failures && st.last.Equal(after.Last) {
		st.recorded = true
	}
}

// forgetRecorded is clear for a key whose storage record is gone, if this
// instance had written its failures there: someone deleted it. Failures
// whose record could not be written are kept (the storage failing must not
// reset the count at every attempt).
func (l *limiter) forgetRecorded(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if st, ok := l.m[key]; ok && st.recorded { // (a failure since is not)
		l.clearLocked(key, st)
	}
}

// adopt takes the failures and lockout other instances recorded for key
// (shared) where they exceed its own, unless stale (its own too). Another
// clock may be ahead: a lockout is taken as long as this instance would
// have started at most (once per record: read again, it is not started
// anew), and a last failure as now at the latest. The
// record's times are wall-clock readings; they are taken as times from
// now, on now's clock: with time.Now's monotonic reading, a step of the
// wall clock after the adoption neither ends the lockout early (forward)
// nor lengthens it (back), nor makes its failures stale early, as the
// lockouts started here are kept. epoch is shouldRead's: a key cleared
// since the record was read keeps clear.
func (l *limiter) adopt(key string, shared sharedFailure, now time.Time, epoch uint64) {
	if shared.Failures <= 0 || l.stale(shared.Last, now) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	st, ok := l.m[key]
	if !ok || st.epoch != epoch {
		return // forgotten or cleared meanwhile: its next failure reads the record
	}
	l.forgetLocked(st, now) // else its stale count would pass for a fresh one
	st.failures = max(st.failures, shared.Failures)
	// another clock may be ahead: a last failure at now at the latest
	if !shared.Last.IsZero() {
		if last := now.Add(-max(now.Sub(shared.Last), 0)); st.last.Before(last) {
			st.last = last
		}
	}
	if left := shared.Until.Sub(now); !shared.Until.IsZero() && left > 0 && !shared.Until.Equal(st.adopted) {
		if until := now.Add(min(left, l.max)); until.After(st.until) {
			st.until = until
		}
		st.adopted = shared.Until
	}
}

// succeed ends an attempt as successful: the key's failures are cleared.
// It reports whether there were any (or a lockout).
func (l *limiter) succeed(key string) (had bool) { return l.end(key, true) }

// cancel ends an attempt that was not made.
func (l *limiter) cancel(key string) { l.end(key, false) }

// end ends an attempt, clearing the key's failures or not, and forgets a
// key with nothing left to remember. It reports whether the key had
// failures or a lockout.
func (l *limiter) end(key string, clear bool) (had bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st, ok := l.m[key]
	if !ok {
		return false
	}
	st.endLocked()
	had = st.failures > 0 || !st.until.IsZero()
	if clear && had {
		l.clearLocked(key, st)
	} else if st.inflight == 0 && st.failures == 0 && st.until.IsZero() {
		delete(l.m, key)
	}
	return had
}

// entryLocked returns key's entry, made if need be; nil when the table is
// full of entries it must keep.
func (l *limiter) entryLocked(key string, now time.Time) *failState {
	if st, ok := l.m[key]; ok {
		return st
	}
	if len(l.m) >= l.maxEntries {
		l.evictLocked(now)
		if len(l.m) >= l.maxEntries {
			return nil
		}
	}
	l.epochs++
	st := &failState{epoch: l.epochs}
	l.m[key] = st
	return st
}

// forgetLocked forgets failures older than twice the longest lockout.
func (l *limiter) forgetLocked(st *failState, now time.Time) {
	if l.stale(st.last, now) {
		st.failures = 0
	}
}

// stale reports whether failures last counted at last are forgotten at now.
func (l *limiter) stale(last, now time.Time) bool {
	return !last.IsZero() && now.Sub(last) > 2*l.max
}

// dropRecord gives up the read that storedRecord claimed, unread: the
// logins waiting for it find no address, and the next one claims it
// again.
func (k *knownAddresses) dropRecord(username string, r *readRecord) {
	k.recordsMu.Lock()
	if k.records[username] == r {
		delete(k.records, username)
	}
	k.recordsMu.Unlock()
	close(r.done)
}

// evictLocked makes room: entries with nothing to remember first, then
// idle ones under no lockout, down to 90 % of the bound.
func (l *limiter) evictLocked(now time.Time) {
	droppable := func(st *failState) bool { return st.inflight == 0 && !now.Before(st.until) }
	for k, st := range l.m {
		if droppable(st) && now.Sub(st.last) > 2*l.max {
			delete(l.m, k)
		}
	}
	for k, st := range l.m {
		if len(l.m) < l.maxEntries*9/10 {
			break
		}
		if droppable(st) {
			delete(l.m, k)
		}
	}
}

// knownAddresses remembers, per account, the client addresses (by
// addressKey) that logged in to it in the last knownFor: a known address
// is not held off by the account's lockout, so failures from elsewhere
// cannot keep the account's devices from logging in where they did
// before. Only a valid login adds an address, so only the holders of an
// account's password fill its entry. It is bounded: at most perAccount
// addresses an account (the least recently used goes), at most maxAccounts
// accounts (those whose last success expired go first, then those whose
// last success is the oldest). Like the limiters it is kept across
// reloads; App records it in storage too (knownrecords.go), so that a
// restart and the other instances of a cluster learn it.
type knownAddresses struct {
	mu          sync.Mutex
	m           map[string][]knownAddress // by username; least recently used first
	perAccount  int
	maxAccounts int
	knownFor    time.Duration
	// by username: its record in storage as last read, under recordsMu
	// (the devices' logins take mu, never this)
	recordsMu sync.Mutex
	records   map[string]*readRecord
}

// readRecord is an account's record of known addresses as read at read:
// rec once done is closed (empty if the read failed).
type readRecord struct {
	read time.Time
	rec  knownRecord
	done chan struct{}
}

type knownAddress struct {
	key  string // addressKey
	last time.Time
	// recorded: when the storage's record last got it (or was being
	// written with it), so that a login refreshes it once per
	// knownRecordRefresh, not at each login
	recorded time.Time
	// failed: the account failed at this address, so the record names
	// the account's failure record there (for an unlock)
	failed bool
	// named: a write of the record with failed was made or is pending
	// (recordFailed unsets it, so that the next failure there writes
	// again: a device retrying a stale password makes no valid login
	// that would)
	named bool
}

// knownPerAccount bounds the addresses known to an account, here and in
// its storage record.
const knownPerAccount = 16

// knownAddressesFor is how long after its last valid login an address
// stays known to an account.
const knownAddressesFor = 30 * 24 * time.Hour

func newKnownAddresses() *knownAddresses {
	return &knownAddresses{m: make(map[string][]knownAddress), perAccount: knownPerAccount, maxAccounts: 10000, knownFor: knownAddressesFor}
}

// expired reports whether an address last used at last is no longer
// known at now.
func (k *knownAddresses) expired(last, now time.Time) bool { return now.Sub(last) > k.knownFor }

// has reports whether addrKey logged in to username within knownFor of now.
func (k *knownAddresses) has(username, addrKey string, now time.Time) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, e := range k.m[username] {
		if e.key == addrKey {
			return !k.expired(e.last, now)
		}
	}
	return false
}

// addresses are the address keys known to username (expired ones too,
// whose failures may still count).
func (k *knownAddresses) addresses(username string) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	for _, e := range k.m[username] {
		out = append(out, e.key)
	}
	return out
}

// add records a valid login to username from addrKey at now, and reports
// whether the storage's record is to get it: the address was not known
// here, or the record last got it more than knownRecordRefresh ago. It
// then counts as recorded at now, so that the logins of a fleet at once
// write it once (recordFailed undoes that).
func (k *knownAddresses) add(username, addrKey string, now time.Time) (record bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	e, known := knownAddress{key: addrKey}, false
	for _, o := range k.m[username] {
		if o.key == addrKey && !k.expired(o.last, now) {
			e, known = o, true
		}
	}
	if d := now.Sub(e.recorded); !known || d > knownRecordRefresh || d < 0 {
		e.recorded, record = now, true
	}
	e.last = now
	k.putLocked(username, e, now)
	return record
}

// noteFailed notes that username failed at addrKey, a known address, and
// reports whether the storage's record is then to be written, to name the
// account's failure record there: the first failure there, or the first
// since a write failed (recordFailed).
func (k *knownAddresses) noteFailed(username, addrKey string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	for i, e := range k.m[username] {
		if e.key == addrKey && !e.named {
			k.m[username][i].failed, k.m[username][i].named = true, true
			return true
		}
	}
	return false
}

// entries are the addresses known to username (addKnown drops the
// expired ones).
func (k *knownAddresses) entries(username string) []knownAddress {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.m[username])
}

// adopt makes addrKey known to username as the storage's record says:
// last used at last (at now at the latest: another clock may be ahead).
func (k *knownAddresses) adopt(username, addrKey string, last, now time.Time) {
	if last.After(now) {
		last = now
	}
	if k.expired(last, now) {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, e := range k.m[username] {
		if e.key == addrKey && !e.last.Before(last) {
			return // known here as recently
		}
	}
	k.putLocked(username, knownAddress{key: addrKey, last: last, recorded: last}, now)
}

// recordFailed notes that the storage's record of username did not get
// its addresses: the next login from one of them tries again once
// knownRecordRetry passed, and the next failure at one where the account
// failed at once.
func (k *knownAddresses) recordFailed(username string, now time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	retry := now.Add(knownRecordRetry - knownRecordRefresh)
	for i, e := range k.m[username] {
		if e.recorded.After(retry) {
			k.m[username][i].recorded = retry
		}
		k.m[username][i].named = false
	}
}

// putLocked sets username's entry for e.key to e, dropping expired
// entries and, past perAccount, the least recently used.
func (k *knownAddresses) putLocked(username string, e knownAddress, now time.Time) {
	old, tracked := k.m[username]
	if !tracked && len(k.m) >= k.maxAccounts {
		k.evictLocked(now)
	}
	list := make([]knownAddress, 0, min(len(old)+1, k.perAccount+1))
	for _, o := range old {
		if o.key != e.key && !k.expired(o.last, now) {
			list = append(list, o)
		}
	}
	list = append(list, e)
	slices.SortStableFunc(list, func(a, b knownAddress) int { return a.last.Compare(b.last) })
	if len(list) > k.perAccount {
		list = list[len(list)-k.perAccount:]
	}
	k.m[username] = list
}

// storedRecord returns username's record in storage as read (or being
// read) within sharedRecheckInterval of now, or else claims the read:
// claimed, the caller reads it and gives it to keepRecord, and the logins
// meanwhile wait for that read (r.done). So the logins that a lockout
// refuses read it once per interval at most, as the failure records are
// re-read (a guesser hammering a locked-out account must not read the
// storage at each request), and a device's login after a guesser's in
// the same interval, or during its read, still finds its address.
func (k *knownAddresses) storedRecord(username string, now time.Time) (r *readRecord, claimed bool) {
	k.recordsMu.Lock()
	defer k.recordsMu.Unlock()
	fresh := func(r *readRecord) bool {
		since := now.Sub(r.read)
		return since >= 0 && since < sharedRecheckInterval
	}
	if r, ok := k.records[username]; ok && fresh(r) {
		return r, false
	}
	if k.records == nil || len(k.records) >= k.maxAccounts {
		kept := make(map[string]*readRecord)
		for name, r := range k.records {
			if fresh(r) {
				kept[name] = r
			}
		}
		if len(kept) >= k.maxAccounts*9/10 {
			// a flood: the reads of an interval go, so that the next scan
			// is a tenth of the bound away at least
			kept = make(map[string]*readRecord)
		}
		k.records = kept
	}
	r = &readRecord{read: now, done: make(chan struct{})}
	k.records[username] = r
	return r, true
}

// keepRecord gives the read that storedRecord claimed its record (empty
// if the read failed), to the logins waiting for it and those of the
// rest of the interval.
func (k *knownAddresses) keepRecord(r *readRecord, rec knownRecord) {
	r.rec = rec
	close(r.done)
}

// evictLocked makes room: accounts whose addresses all expired, then
// those whose last valid login is the oldest, down to 90 % of the bound.
func (k *knownAddresses) evictLocked(now time.Time) {
	type account struct {
		name string
		last time.Time
	}
	var kept []account
	for name, list := range k.m {
		last := list[len(list)-1].last
		if k.expired(last, now) {
			delete(k.m, name)
		} else {
			kept = append(kept, account{name, last})
		}
	}
	if len(k.m) < k.maxAccounts {
		return
	}
	slices.SortFunc(kept, func(a, b account) int { return a.last.Compare(b.last) })
	for _, a := range kept[:len(kept)-k.maxAccounts*9/10] {
		delete(k.m, a.name)
	}
}

// login is a login attempt's reservations in the limiters: user is the
// account's key, or at an address known to the account the key of the
// account at that address; addr is the address's key.
type login struct {
	username, user, addr string
	known                bool
	shed                 bool // refused: no hash slot to name a record it had to read
}

// knownKey is the limiter key of an account at one of its known
// addresses: it cannot collide with an account's key ("user:" + name).
func knownKey(username, addrKey string) string {
	return "known:" + strconv.Itoa(len(addrKey)) + ":" + addrKey + username
}

// beginLogin reserves a login attempt for username from clientIP (waiting
// as limiter.begin does; clock tells the time after any wait). From an
// address that logged in to the account recently the attempt counts
// against the account at that address, which has the account's allowance
// and lockouts of its own, instead of against the account: failures
// elsewhere do not lock it out there, and failures there are still limited
// (and do not lock it out elsewhere). An address not known here that the
// account's lockout refuses is looked up in the account's record in
// storage (knownrecords.go): known to another instance, or before a
// restart, it is known here too. Either way it counts against the
// address. If it is refused, nothing stays reserved; else it ends with
// loginFailed or loginSucceeded.
func (a *App) beginLogin(ctx context.Context, username, clientIP string, clock func() time.Time) (login, bool) {
	now := clock()
	lg := login{username: username, user: "user:" + username, addr: addressKey(clientIP)}
	if a.known.has(username, lg.addr, now) {
		lg.user, lg.known = knownKey(username, lg.addr), true
	}
	if lg.shed = a.adoptSharedLockout(ctx, a.limiter, lg.user, now); lg.shed {
		return lg, false
	}
	ok, left := a.limiter.begin(ctx, lg.user, now)
	if !ok && left > 0 && !lg.known && a.adoptKnownAddress(ctx, username, lg.addr, now) {
		// known to the account on another instance, or before a restart
		lg.user, lg.known = knownKey(username, lg.addr), true
		now = clock()
		if lg.shed = a.adoptSharedLockout(ctx, a.limiter, lg.user, now); lg.shed {
			return lg, false
		}
		ok, _ = a.limiter.begin(ctx, lg.user, now)
	}
	if !ok {
		return lg, false // without reading the address's record
	}
	now = clock()
	a.adoptSharedLockout(ctx, a.addrLimiter, lg.addr, now) // an address's record name is no PBKDF2: never shed
	if ok, _ := a.addrLimiter.begin(ctx, lg.addr, now); !ok {
		a.limiter.cancel(lg.user)
		return lg, false
	}
	return lg, true
}

// loginFailed ends a failed login's attempts and returns the lockouts it
// starts, of the account (at a known address: of the account at that
// address) and of the address (0: none). An address counts an account's
// failures only until that account is locked out: one device retrying a
// stale password must not lock out its site, while guesses spread over
// accounts still add up there.
func (a *App) loginFailed(ctx context.Context, lg login, now time.Time) (account, address time.Duration) {
	defer func() { countLockouts(lg, account, address) }()
	if lg.known && a.known.noteFailed(lg.username, lg.addr) {
		a.scheduleKnownWrite(lg.username, now) // names the account's failure record there
	}
	past, account := a.failShared(ctx, a.limiter, lg.user, now)
	if past {
		a.addrLimiter.cancel(lg.addr)
		return account, 0
	}
	_, address = a.failShared(ctx, a.addrLimiter, lg.addr, now)
	return account, address
}

// countLockouts counts the lockouts a failed login started, by what is
// locked out.
func countLockouts(lg login, account, address time.Duration) {
	initMetrics()
	switch {
	case account > 0 && lg.known:
		metrics.lockouts.WithLabelValues("account_at_known_address").Inc()
	case account > 0:
		metrics.lockouts.WithLabelValues("account").Inc()
	}
	if address > 0 {
		metrics.lockouts.WithLabelValues("address").Inc()
	}
}

// loginSucceeded ends a valid login's attempts: the failures counted
// against the account (at a known address: at that address) are cleared,
// its address's stay (a valid login must not wipe the guesses made from
// there against other accounts), and the address is known to the account
// from now on. A valid login from a known address leaves the account's
// own failures and lockout alone: else each login of its devices would
// give a guesser elsewhere a fresh allowance. An address new here, or
// last recorded over knownRecordRefresh ago, goes into the account's
// record in storage (knownrecords.go); the others cost no storage access.
func (a *App) loginSucceeded(ctx context.Context, lg login, now time.Time) {
	a.succeedShared(ctx, a.limiter, lg.user)
	a.addrLimiter.cancel(lg.addr)
	if a.known.add(lg.username, lg.addr, now) {
		a.scheduleKnownWrite(lg.username, now)
	}
}

// loginLimiters are an App's limiters and known addresses, kept across
// reloads with the same settings in limitersPool: a `caddy reload` does
// not reset lockouts, nor forget the addresses accounts logged in from.
type loginLimiters struct {
	account, address *limiter
	known            *knownAddresses
}

// Destruct lets loginLimiters live in a caddy.UsagePool.
func (*loginLimiters) Destruct() error { return nil }

var limitersPool = caddy.NewUsagePool()
