package ca

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/big"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Revocation reason codes (RFC 5280 section 5.3.1).
const (
	ReasonUnspecified          = 0
	ReasonKeyCompromise        = 1
	ReasonCACompromise         = 2
	ReasonAffiliationChanged   = 3
	ReasonSuperseded           = 4
	ReasonCessationOfOperation = 5
	ReasonCertificateHold      = 6
	ReasonRemoveFromCRL        = 8
	ReasonPrivilegeWithdrawn   = 9
	ReasonAACompromise         = 10
)

var reasonNames = map[int]string{
	ReasonUnspecified:          "unspecified",
	ReasonKeyCompromise:        "keyCompromise",
	ReasonAffiliationChanged:   "affiliationChanged",
	ReasonSuperseded:           "superseded",
	ReasonCessationOfOperation: "cessationOfOperation",
	ReasonPrivilegeWithdrawn:   "privilegeWithdrawn",
}

// ReasonName returns the RFC 5280 name of an accepted reason code.
func ReasonName(r int) string {
	if n, ok := reasonNames[r]; ok {
		return n
	}
	return fmt.Sprintf("reason(%d)", r)
}

// ParseReason accepts an RFC 5280 reason name (case-insensitive, "-"/"_"
// ignored: "superseded", "key-compromise", "cessationOfOperation") or its
// number. Only reasons that make sense for a device certificate are
// accepted: unspecified, keyCompromise, affiliationChanged, superseded,
// cessationOfOperation and privilegeWithdrawn (no CA/AA compromise, no hold,
// which would need un-revocation, no removeFromCRL, a delta-CRL code).
func ParseReason(s string) (int, error) {
	if code, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
		if _, ok := reasonNames[code]; ok {
			return code, nil
		}
		return 0, fmt.Errorf("ca: unknown or unsupported revocation reason %q (%s)", s, acceptedReasons)
	}
	n := strings.ToLower(strings.NewReplacer("-", "", "_", "", " ", "").Replace(strings.TrimSpace(s)))
	for code, name := range reasonNames {
		if n == strings.ToLower(name) {
			return code, nil
		}
	}
	return 0, fmt.Errorf("ca: unknown or unsupported revocation reason %q (%s)", s, acceptedReasons)
}

// acceptedReasons lists the codes ParseReason accepts, for its errors.
const acceptedReasons = "accepted: 0 unspecified, 1 keyCompromise, 3 affiliationChanged, 4 superseded, " +
	"5 cessationOfOperation, 9 privilegeWithdrawn"

func checkReason(r int) error {
	if _, ok := reasonNames[r]; !ok {
		return fmt.Errorf("ca: revocation reason %d is not accepted for device certificates", r)
	}
	return nil
}

// revokedEntry is one line of revoked.json, the CRL's source.
type revokedEntry struct {
	At       time.Time `json:"at"`
	Reason   int       `json:"reason"`
	NotAfter time.Time `json:"not_after"`
}

type revokedFile struct {
	Entries map[string]revokedEntry `json:"entries"`
}

type crlMeta struct {
	Number     int64     `json:"number"`
	ThisUpdate time.Time `json:"this_update"`
	NextUpdate time.Time `json:"next_update"`
	Digest     string    `json:"revoked_digest"`
	// SHA-256 of the stored CRL: a reader without the lock checks that the
	// CRL it read is the one this describes
	CRLSHA256 string `json:"crl_sha256,omitempty"`
	// SHA-256 of the certificate that signed it: an operator's CA whose
	// intermediate was replaced (same root, same storage) signs anew
	IssuerSHA256 string `json:"issuer_sha256,omitempty"`
}

// NormalizeSerial accepts a serial in hex (any case, optional colons or
// "0x", leading zeros) and returns the record key form: lower-case hex
// without leading zeros.
func NormalizeSerial(s string) (string, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimPrefix(t, "0x")
	t = strings.ReplaceAll(t, ":", "")
	n, ok := new(big.Int).SetString(t, 16)
	if !ok || n.Sign() <= 0 || len(t) > 64 {
		return "", fmt.Errorf("ca: invalid serial number %s", quoted(s))
	}
	return n.Text(16), nil
}

func (c *CA) lockName() string { return c.prefix + "/" + lockStateKey }

// withLock runs f holding the CA's storage lock, so read-modify-write of
// revocation state is consistent across processes sharing the Store.
func (c *CA) withLock(ctx context.Context, f func() error) (err error) {
	if err := c.st.Lock(ctx, c.lockName()); err != nil {
		return fmt.Errorf("ca: locking %s: %w", c.lockName(), err)
	}
	defer func() {
		// Unlock even when ctx is already canceled.
		if uerr := c.st.Unlock(context.WithoutCancel(ctx), c.lockName()); uerr != nil && err == nil {
			err = uerr
		}
	}()
	return f()
}

// loadRevoked reads the revoked list; the caller may change what it gets.
func (c *CA) loadRevoked(ctx context.Context) (*revokedFile, error) {
	rf := &revokedFile{Entries: map[string]revokedEntry{}}
	b, err := c.st.Load(ctx, c.key(keyRevoked))
	if errors.Is(err, fs.ErrNotExist) {
		return rf, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ca: loading %s: %w", c.key(keyRevoked), err)
	}
	sum := sha256.Sum256(b)
	if cached := c.revoked.get(sum); cached != nil {
		return cached, nil
	}
	if err := json.Unmarshal(b, rf); err != nil {
		return nil, fmt.Errorf("ca: %s: %w", c.key(keyRevoked), err)
	}
	if rf.Entries == nil {
		rf.Entries = map[string]revokedEntry{}
	}
	c.revoked.put(sum, rf)
	return rf, nil
}

// storeRevokedList writes the revoked list.
func (c *CA) storeRevokedList(ctx context.Context, rf *revokedFile) error {
	b, err := json.Marshal(rf)
	if err != nil {
		return err
	}
	if err := c.st.Store(ctx, c.key(keyRevoked), b); err != nil {
		return fmt.Errorf("ca: storing %s: %w", c.key(keyRevoked), err)
	}
	c.revoked.put(sha256.Sum256(b), rf)
	return nil
}

// pruneRevoked writes rf without the entries not in kept (which the CRLs
// no longer list), the caller holding the CA's lock. The record of each
// entry left out is marked revoked first, where a revocation cut short
// (the list written, the record not) left it unmarked: the list is what
// completes such a revocation, and it is about to forget it. A failure
// keeps the list as it is, for the next CRL to try again.
func (c *CA) pruneRevoked(ctx context.Context, rf *revokedFile, kept []string) {
	out := &revokedFile{Entries: make(map[string]revokedEntry, len(kept))}
	for _, s := range kept {
		out.Entries[s] = rf.Entries[s]
	}
	for s, e := range rf.Entries {
		if _, ok := out.Entries[s]; ok {
			continue
		}
		rec, err := c.Lookup(ctx, s)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return
		}
		if !rec.Revoked {
			rec.Revoked, rec.RevokedAt, rec.Reason = true, e.At, e.Reason
			if c.storeJSON(ctx, c.issuedKey(s), rec) != nil {
				return
			}
		}
	}
	_ = c.storeRevokedList(ctx, out)
}

// revokedCache keeps the revoked list as this process last read or wrote
// it, by the SHA-256 of its bytes: a read that finds those bytes (no other
// writer since) copies it instead of decoding the JSON again, the larger
// part of a supersession's cost once thousands of certificates are
// revoked. A nil cache keeps nothing.
type revokedCache struct {
	mu  sync.Mutex
	sum [sha256.Size]byte
	rf  *revokedFile
}

func (r *revokedCache) get(sum [sha256.Size]byte) *revokedFile {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rf == nil || r.sum != sum {
		return nil
	}
	return &revokedFile{Entries: maps.Clone(r.rf.Entries)}
}

func (r *revokedCache) put(sum [sha256.Size]byte, rf *revokedFile) {
	if r == nil {
		return
	}
	cp := &revokedFile{Entries: maps.Clone(rf.Entries)}
	r.mu.Lock()
	r.sum, r.rf = sum, cp
	r.mu.Unlock()
}

func (c *CA) storeJSON(ctx context.Context, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := c.st.Store(ctx, key, b); err != nil {
		return fmt.Errorf("ca: storing %s: %w", key, err)
	}
	return nil
}

// Lookup returns the issuance record of serial (ErrNotFound if none).
func (c *CA) Lookup(ctx context.Context, serial string) (*Record, error) {
	s, err := NormalizeSerial(serial)
	if err != nil {
		return nil, err
	}
	b, err := c.st.Load(ctx, c.issuedKey(s))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errorf(ErrNotFound, "no certificate with serial %s issued by %s", s, c.params)
	}
	if err != nil {
		return nil, fmt.Errorf("ca: loading the record of serial %s: %w", s, err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("ca: record %s: %w", s, err)
	}
	return &r, nil
}

// Records lists issuance records, oldest (first signed) first: of device,
// or all when device is "".
func (c *CA) Records(ctx context.Context, device string) ([]Record, error) {
	var serials []string
	if device == "" {
		keys, err := c.list(ctx, c.prefix+"/"+keyIssued)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			if s, ok := strings.CutSuffix(path.Base(k), ".json"); ok {
				serials = append(serials, s)
			}
		}
	} else {
		name, _, err := NormalizeDevice(device)
		if err != nil {
			return nil, err
		}
		if serials, err = c.deviceSerials(ctx, name); err != nil {
			return nil, err
		}
	}
	out := make([]Record, 0, len(serials))
	for _, s := range serials {
		r, err := c.Lookup(ctx, s)
		if errors.Is(err, ErrNotFound) {
			continue // index written, record not (yet)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := &out[i], &out[j]
		if SignedBefore(a.IssuedAt, a.NotBefore, b.IssuedAt, b.NotBefore) {
			return true
		}
		return !SignedBefore(b.IssuedAt, b.NotBefore, a.IssuedAt, a.NotBefore) && a.Serial < b.Serial
	})
	return out, nil
}

// SignedBefore orders two certificates as they were signed, given their
// records' IssuedAt (zero in records of earlier versions) and NotBefore:
// by IssuedAt where both have one (NotBefore has seconds only, so two
// signed within one second tie on it), else by NotBefore.
func SignedBefore(issuedA, notBeforeA, issuedB, notBeforeB time.Time) bool {
	if !issuedA.IsZero() && !issuedB.IsZero() && !issuedA.Equal(issuedB) {
		return issuedA.Before(issuedB)
	}
	return notBeforeA.Before(notBeforeB)
}

func (c *CA) deviceSerials(ctx context.Context, name string) ([]string, error) {
	keys, err := c.list(ctx, c.prefix+"/"+keyDevices+"/"+deviceKey(name))
	if err != nil {
		return nil, err
	}
	serials := make([]string, 0, len(keys))
	for _, k := range keys {
		serials = append(serials, path.Base(k))
	}
	return serials, nil
}

// list is ListDir of the CA's storage.
func (c *CA) list(ctx context.Context, prefix string) ([]string, error) {
	return ListDir(ctx, c.st, prefix)
}

// Revoke revokes the certificate with serial for reason. Revoking a revoked
// certificate again is a no-op (the first time and reason stand), except
// that keyCompromise replaces another reason.
//
// The list of revoked serials (what IsRevoked and the CRL read) is written
// before the issuance record is marked: a crash in between leaves the
// certificate revoked, and the next Revoke of it marks its record.
func (c *CA) Revoke(ctx context.Context, serial string, reason int) error {
	_, err := c.RevokeSerial(ctx, serial, reason)
	return err
}

// RevokeSerial is Revoke, and reports whether this call revoked the
// certificate (false: it was revoked already, whatever the reason, which
// keyCompromise may still have replaced). With an error it may still
// report true: the revoked list was written, so the certificate is
// revoked, and what failed after it (its record, the unlock) is completed
// by the next revocation. It is decided under the CA's
// lock, so that of revocations of one certificate racing each other (two
// operators, an issuance's check and an operator's revocation, instances
// sharing the storage) exactly one reports it, as metrics count it.
func (c *CA) RevokeSerial(ctx context.Context, serial string, reason int) (newly bool, err error) {
	var listed bool
	if err := checkReason(reason); err != nil {
		return false, err
	}
	s, err := NormalizeSerial(serial)
	if err != nil {
		return false, err
	}
	err = c.withLock(ctx, func() error {
		rf, err := c.loadRevoked(ctx)
		if err != nil {
			return err
		}
		before, had := rf.Entries[s]
		rec, fresh, err := c.revokeLocked(ctx, rf, s, reason, false)
		if err != nil {
			return err
		}
		newly = fresh
		if after, has := rf.Entries[s]; rec == nil && has == had && after == before {
			return nil // revoked already: nothing to write
		}
		marked := map[string]*Record{}
		if rec != nil {
			marked[s] = rec
		}
		listed, err = c.storeRevoked(ctx, rf, marked)
		return err
	})
	// written to the list, the certificate is revoked whatever failed
	// after (a record, the unlock): the revocation is this call's, as
	// a repeat finds it listed and reports it revoked already
	return newly && (err == nil || listed), err
}

// revokeLocked enters s in rf and returns its record marked revoked, to be
// stored after rf (nil: the record is marked already); the caller holds
// the lock. It reports whether s was newly revoked. A half-finished
// revocation (in rf but its record unmarked, or the other way round, as
// earlier versions wrote them) is completed with its first time and reason.
// With skipExpired, an unrevoked certificate that expired more than
// revokeExpiredWithin ago is left alone (a CRL would not list it), unless
// its key is compromised.
func (c *CA) revokeLocked(ctx context.Context, rf *revokedFile, s string, reason int, skipExpired bool) (*Record, bool, error) {
	rec, err := c.Lookup(ctx, s)
	if err != nil {
		return nil, false, err
	}
	e, listed := rf.Entries[s]
	if skipExpired && !listed && !rec.Revoked && reason != ReasonKeyCompromise && c.cfg.Now().Sub(rec.NotAfter) > revokeExpiredWithin {
		return nil, false, nil
	}
	if listed || rec.Revoked {
		if !listed {
			e = revokedEntry{At: rec.RevokedAt, Reason: rec.Reason, NotAfter: rec.NotAfter}
			// the record marked, the list not: a revocation earlier
			// versions left half done, completed; or an entry the CRLs
			// dropped (a day after expiry) and the list forgot, which
			// stays out
			if listed = c.cfg.Now().Sub(rec.NotAfter) <= day; listed {
				rf.Entries[s] = e
			}
		}
		if reason == ReasonKeyCompromise && e.Reason != ReasonKeyCompromise {
			// a revoked certificate whose key then leaked: the CRL must say
			// so (its first revocation time stands); not newly revoked
			if err := c.markCompromised(ctx, rec.PublicKeySHA256, s); err != nil {
				return nil, false, err
			}
			e.Reason = ReasonKeyCompromise
			if listed {
				rf.Entries[s] = e
			}
			rec.Revoked, rec.RevokedAt, rec.Reason = true, e.At, e.Reason
			return rec, false, nil
		}
		if rec.Revoked {
			return nil, false, nil
		}
		rec.Revoked, rec.RevokedAt, rec.Reason = true, e.At, e.Reason
		return rec, false, nil
	}
	if reason == ReasonKeyCompromise {
		if err := c.markCompromised(ctx, rec.PublicKeySHA256, s); err != nil {
			return nil, false, err
		}
	}
	now := c.cfg.Now().UTC().Truncate(time.Second)
	rec.Revoked, rec.RevokedAt, rec.Reason = true, now, reason
	rf.Entries[s] = revokedEntry{At: now, Reason: reason, NotAfter: rec.NotAfter}
	return rec, true, nil
}

// Keys revoked for key compromise have a marker each, shared by every CA
// of the storage (a leaked key is leaked whichever CA certified it), so
// that enrollment asks one storage key instead of reading the revoked
// list: clearinghouse/ca/compromised/<public key SHA-256>. The marker is
// written before the revocation it records (a crash in between refuses a
// key whose revocation the operator is told failed), and each CA indexes
// the key-compromise revocations of earlier versions once, when opened.
const (
	keyCompromised        = "compromised"
	keyCompromisedIndexed = "compromised-indexed"
)

func (c *CA) compromisedKey(publicKeySHA256 string) string {
	return storageRoot + "/" + keyCompromised + "/" + strings.ToLower(publicKeySHA256)
}

// validKeyHash reports whether h is a public key hash as CSR and Record
// give it (hex of SHA-256).
func validKeyHash(h string) bool {
	return len(h) == 64 && strings.Trim(strings.ToLower(h), "0123456789abcdef") == ""
}

func (c *CA) markCompromised(ctx context.Context, publicKeySHA256, serial string) error {
	if !validKeyHash(publicKeySHA256) {
		return fmt.Errorf("ca: certificate %s has no valid public key hash (%q)", serial, publicKeySHA256)
	}
	if err := c.st.Store(ctx, c.compromisedKey(publicKeySHA256), []byte(serial)); err != nil {
		return fmt.Errorf("ca: recording the compromised key of %s: %w", serial, err)
	}
	return nil
}

// indexCompromised marks the keys of the key-compromise revocations in the
// revoked list, once per CA (those revoked by earlier versions, which kept
// no marker).
func (c *CA) indexCompromised(ctx context.Context) error {
	if c.st.Exists(ctx, c.key(keyCompromisedIndexed)) {
		return nil
	}
	rf, err := c.loadRevoked(ctx)
	if err != nil {
		return err
	}
	for s, e := range rf.Entries {
		if e.Reason != ReasonKeyCompromise {
			continue
		}
		rec, err := c.Lookup(ctx, s)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if err := c.markCompromised(ctx, rec.PublicKeySHA256, s); err != nil {
			return err
		}
	}
	return c.st.Store(ctx, c.key(keyCompromisedIndexed), []byte("1"))
}

// storeRevoked writes rf, then the records revokeLocked marked, by serial.
// listed reports whether rf was written: what it lists is revoked then,
// even when a record's write failed (the next revocation marks it).
func (c *CA) storeRevoked(ctx context.Context, rf *revokedFile, marked map[string]*Record) (listed bool, err error) {
	defer c.crl.drop() // also after a failure: the list may have been written
	if err := c.storeRevokedList(ctx, rf); err != nil {
		return false, err
	}
	// before the records say revoked: a CRL served from the cache until
	// the deferred drop would not list what a record already shows
	c.crl.drop()
	for _, s := range slices.Sorted(maps.Keys(marked)) {
		if err := c.storeJSON(ctx, c.issuedKey(s), marked[s]); err != nil {
			return true, err
		}
	}
	return true, nil
}

// revokeExpiredWithin is how long after a certificate expired, by this
// CA's clock, the revocation of its device still revokes it: as long as
// the CRLs list an expired certificate's entry (crlDrops; an entry they
// dropped is not written back either), far beyond the clock skew allowed
// between instances (Backdate). Judged by the expiry alone, a certificate
// about to expire was left valid for an instance whose clock is behind,
// and for every other instance when this clock had been stepped forward;
// a day covers a step of up to a day, for at most a day's entries more in
// the revoked list and the CRLs.
const revokeExpiredWithin = day

// RevokeDevice revokes every unrevoked certificate of device except
// exceptSerial (typically the one just issued, with ReasonSuperseded) and
// returns the serials it revoked; with ReasonKeyCompromise it also changes
// the reason of revoked ones to it (they are not returned: not newly
// revoked). With an error the serials returned are revoked all the same
// (the revoked list holding them was written before a record's write or
// the unlock failed); none when nothing was.
func (c *CA) RevokeDevice(ctx context.Context, device string, reason int, exceptSerial string) ([]string, error) {
	return c.revokeDevice(ctx, device, reason, exceptSerial, time.Time{})
}

// RevokeDeviceIssuedBefore is RevokeDevice for the certificates of device
// signed before cutoff (all of them when cutoff is zero); records of
// earlier versions, which do not say when they were signed, count as
// signed before. A device disabled and enabled again keeps the
// certificate it enrolled for since.
func (c *CA) RevokeDeviceIssuedBefore(ctx context.Context, device string, reason int, cutoff time.Time) ([]string, error) {
	return c.revokeDevice(ctx, device, reason, "", cutoff)
}

func (c *CA) revokeDevice(ctx context.Context, device string, reason int, exceptSerial string, cutoff time.Time) ([]string, error) {
	if err := checkReason(reason); err != nil {
		return nil, err
	}
	name, _, err := NormalizeDevice(device)
	if err != nil {
		return nil, err
	}
	except := ""
	if exceptSerial != "" {
		if except, err = NormalizeSerial(exceptSerial); err != nil {
			return nil, err
		}
	}
	// a device with no other certificate (its first enrollment) needs
	// neither the lock nor a write
	serials, err := c.deviceSerials(ctx, name)
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(serials, func(s string) bool { return s != except }) {
		return nil, nil
	}
	var revoked []string
	var listed bool
	err = c.withLock(ctx, func() error {
		serials, err := c.deviceSerials(ctx, name)
		if err != nil {
			return err
		}
		rf, err := c.loadRevoked(ctx)
		if err != nil {
			return err
		}
		marked := map[string]*Record{}
		for _, s := range serials {
			if s == except {
				continue
			}
			if !cutoff.IsZero() {
				switch rec, err := c.Lookup(ctx, s); {
				case errors.Is(err, ErrNotFound):
					continue
				case err != nil:
					return err
				case !rec.IssuedAt.IsZero() && !rec.IssuedAt.Before(cutoff):
					continue
				}
			}
			rec, newly, err := c.revokeLocked(ctx, rf, s, reason, true)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if rec != nil {
				marked[s] = rec
			}
			if newly {
				revoked = append(revoked, s)
			}
		}
		if len(marked) == 0 && len(revoked) == 0 {
			return nil // all revoked already: nothing to write
		}
		listed, err = c.storeRevoked(ctx, rf, marked)
		return err
	})
	if err != nil && !listed {
		return nil, err
	}
	sort.Strings(revoked)
	return revoked, err
}

// IsRevoked reports whether serial is revoked. It reads the shared state, so
// a revocation made by another process sharing the Store is seen at once.
func (c *CA) IsRevoked(ctx context.Context, serial string) (bool, error) {
	s, err := NormalizeSerial(serial)
	if err != nil {
		return false, err
	}
	rf, err := c.loadRevoked(ctx)
	if err != nil {
		return false, err
	}
	_, ok := rf.Entries[s]
	return ok, nil
}

// KeyCompromised reports whether a certificate of the public key whose
// SubjectPublicKeyInfo has SHA-256 publicKeySHA256 (CSR.PublicKeySHA256,
// hex) was revoked for key compromise, whatever device it was issued to
// and by whichever CA of the storage: such a key must not be certified
// again. Like IsRevoked it reads the shared state (one storage key).
func (c *CA) KeyCompromised(ctx context.Context, publicKeySHA256 string) (bool, error) {
	if !validKeyHash(publicKeySHA256) {
		return false, fmt.Errorf("ca: invalid public key hash %q", publicKeySHA256)
	}
	_, err := c.st.Load(ctx, c.compromisedKey(publicKeySHA256))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("ca: looking up a compromised key: %w", err)
}

// CRL returns a DER certificate revocation list signed by the issuing CA
// (crypto/x509.CreateRevocationList: SHA-2 signature, authority key
// identifier, CRL number, nextUpdate = now + Config.CRLValidity). The CRL
// number is kept in storage and increases by one per new CRL; while the
// revoked set is unchanged and the stored CRL is younger than half its
// validity, the stored CRL is returned instead of signing a new one.
// Entries for certificates expired more than a day are dropped once a CRL
// signed after their expiry has listed them (RFC 5280 section 3.3).
//
// When a new CRL is due but cannot be stored (the storage is full or
// read-only: its lock or its writes fail), the stored CRL is returned with
// an error wrapping ErrCRLNotRenewed, as long as it lists exactly the
// revoked set and has not reached its nextUpdate: it is as true as a new
// one, only older. Otherwise (it lacks a revocation, or has expired) a CRL
// signed in memory is returned with an error wrapping ErrCRLNotStored
// (crlunstored.go); the error alone when even that cannot be made.
func (c *CA) CRL(ctx context.Context) ([]byte, error) {
	gen := c.crl.generation()
	der, err := c.crlFromStorage(ctx)
	if err == nil || errors.Is(err, ErrCRLNotRenewed) || errors.Is(err, ErrCRLNotStored) {
		c.crl.put(der, c.cfg.Now(), gen)
	}
	return der, err
}

// CachedCRL is CRL for serving to anyone who asks: the CRL returned moments
// ago is returned again (this CA's revocations drop it at once; another
// instance's show within maxCRLCacheAge), so that a flood of fetches does not
// re-read the revoked list each time.
func (c *CA) CachedCRL(ctx context.Context) ([]byte, error) {
	if der := c.crl.get(c.cfg.Now(), c.crlCacheAge()); der != nil {
		return der, nil
	}
	return c.CRL(ctx)
}

// crlCacheAge is how long a served CRL is served again without looking at
// storage: maxCRLCacheAge, or a quarter of the CRL's validity if shorter.
func (c *CA) crlCacheAge() time.Duration {
	return min(maxCRLCacheAge, c.cfg.CRLValidity/4)
}

// maxCRLCacheAge bounds how late a revocation made by another instance
// sharing the storage shows in this one's CRL.
const maxCRLCacheAge = 30 * time.Second

// CRLCache is the CRL a CA served last (CachedCRL). CAs opened on the same
// storage and issuer in one process share one through ShareCRLCache, so
// that a revocation through either drops what both serve: a reload opens
// the CA again while the previous configuration finishes its requests.
type CRLCache struct {
	mu  sync.Mutex
	der []byte
	at  time.Time
	gen uint64 // bumped by each revocation of this CA: a put from before is stale

	// the CRL signed last while storage failed, and the highest number
	// such a CRL had (crlunstored.go)
	unstoredMu  sync.Mutex
	unstored    *unstoredCRL
	unstoredMax int64
}

// NewCRLCache returns an empty CRLCache for ShareCRLCache.
func NewCRLCache() *CRLCache { return new(CRLCache) }

// ShareCRLCache makes c serve and drop cache, shared with the other CAs of
// the same storage and issuer in this process. Call it before c serves.
func (c *CA) ShareCRLCache(cache *CRLCache) {
	if cache != nil {
		c.crl = cache
	}
}

func (m *CRLCache) get(now time.Time, ttl time.Duration) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.der == nil || now.Before(m.at) || now.Sub(m.at) >= ttl {
		return nil
	}
	return m.der
}

func (m *CRLCache) generation() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gen
}

// put keeps der, read or made at at, unless a revocation came since gen.
func (m *CRLCache) put(der []byte, at time.Time, gen uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if gen == m.gen {
		m.der, m.at = der, at
	}
}

// drop forgets the CRL: the revoked list changed.
func (m *CRLCache) drop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.der = nil
	m.gen++
}

// crlFromStorage returns the stored CRL if current, else signs a new one.
func (c *CA) crlFromStorage(ctx context.Context) ([]byte, error) {
	// Most calls find the stored CRL current: they read it without the
	// lock, so that fetches of the CRL (anyone may ask) do not contend with
	// revocations. Storage writes are atomic, and the CRL read must be the
	// one the metadata read describes (crl_sha256).
	if der, err := c.currentCRL(ctx, c.cfg.Now().UTC().Truncate(time.Second), true); der != nil || err != nil {
		return der, err
	}
	var out []byte
	err := c.withLock(ctx, func() error {
		now := c.cfg.Now().UTC().Truncate(time.Second)
		if der, err := c.currentCRL(ctx, now, false); der != nil || err != nil {
			out = der
			return err
		}
		rf, serials, digest, meta, err := c.crlInputs(ctx, now)
		if err != nil {
			return err
		}
		// above any number a CRL signed here without storage had, and
		// stored before one is signed so meanwhile reads it
		var der []byte
		err = c.crl.numbered(meta.Number, c.cfg.Now(), func(number int64) error {
			d, next, err := c.signCRL(rf, serials, now, number)
			if err != nil {
				return err
			}
			// The number first: a crash in between must not let a later CRL reuse it.
			sum := sha256.Sum256(d)
			meta = crlMeta{Number: number, ThisUpdate: now, NextUpdate: next, Digest: digest, CRLSHA256: hex.EncodeToString(sum[:]),
				IssuerSHA256: c.issuerFP}
			der = d
			return c.storeJSON(ctx, c.key(keyCRLMeta), meta)
		})
		if err != nil {
			return err
		}
		if err := c.st.Store(ctx, c.key(keyCRL), der); err != nil {
			return fmt.Errorf("ca: storing %s: %w", c.key(keyCRL), err)
		}
		out = der
		if len(serials) < len(rf.Entries) {
			// what no CRL lists any more (expired and listed after it
			// expired) leaves the list too: every revocation rewrites the
			// list, which must not grow with the CA's history. The CRL's
			// digest is the same; a crash before this write only delays it.
			c.pruneRevoked(ctx, rf, serials)
		}
		return nil
	})
	if err != nil && out == nil {
		if der := c.unrenewedCRL(ctx); der != nil {
			return der, fmt.Errorf("%w: %w", ErrCRLNotRenewed, err)
		}
		if der := c.unstoredCRL(ctx); der != nil {
			return der, fmt.Errorf("%w: %w", ErrCRLNotStored, err)
		}
	}
	return out, err
}

// signCRL signs a CRL at now listing serials (their entries in rf),
// numbered number, and returns it with its nextUpdate.
func (c *CA) signCRL(rf *revokedFile, serials []string, now time.Time, number int64) ([]byte, time.Time, error) {
	// thisUpdate is backdated as certificates are (a verifier whose
	// clock is a little behind would find a CRL signed just now not
	// yet valid), but never before a revocation it lists
	thisUpdate := now.Add(-Backdate)
	entries := make([]x509.RevocationListEntry, 0, len(serials))
	for _, s := range serials {
		e := rf.Entries[s]
		n, _ := new(big.Int).SetString(s, 16)
		entries = append(entries, x509.RevocationListEntry{SerialNumber: n, RevocationTime: e.At, ReasonCode: e.Reason})
		if e.At.After(thisUpdate) {
			thisUpdate = e.At
		}
	}
	if thisUpdate.After(now) { // revoked by an instance whose clock is ahead
		thisUpdate = now
	}
	next := now.Add(c.cfg.CRLValidity)
	tmpl := &x509.RevocationList{
		RevokedCertificateEntries: entries,
		Number:                    big.NewInt(number),
		ThisUpdate:                thisUpdate,
		NextUpdate:                next,
	}
	issuer := *c.issuer
	issuer.SubjectKeyId = c.issuerSKI
	if issuer.KeyUsage == 0 {
		// no keyUsage extension: every usage is allowed (RFC 5280,
		// 4.2.1.3), as operators' `openssl req -x509` CAs have it
		issuer.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	}
	der, err := x509.CreateRevocationList(c.cfg.Rand, tmpl, &issuer, c.signer)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("ca: creating CRL: %w", err)
	}
	return der, next, nil
}

// unrenewedCRL returns the stored CRL when it is what a new one would list
// (the revoked set of now, this issuer), is the CRL its metadata names and
// has not reached its nextUpdate; nil otherwise.
func (c *CA) unrenewedCRL(ctx context.Context) []byte {
	now := c.cfg.Now().UTC().Truncate(time.Second)
	_, _, digest, meta, err := c.crlInputs(ctx, now)
	if err != nil || meta.Number == 0 || meta.Digest != digest || meta.IssuerSHA256 != c.issuerFP ||
		meta.CRLSHA256 == "" || now.Before(meta.ThisUpdate) || !now.Before(meta.NextUpdate) {
		return nil
	}
	der, err := c.st.Load(ctx, c.key(keyCRL))
	if err != nil {
		return nil
	}
	if sum := sha256.Sum256(der); hex.EncodeToString(sum[:]) != meta.CRLSHA256 {
		return nil
	}
	return der
}

// crlInputs reads what a CRL at now lists: the revoked list, the serials
// it keeps (sorted; see crlDrops), their digest, and the stored CRL's
// metadata (zero if none).
func (c *CA) crlInputs(ctx context.Context, now time.Time) (*revokedFile, []string, string, crlMeta, error) {
	var meta crlMeta
	rf, err := c.loadRevoked(ctx)
	if err != nil {
		return nil, nil, "", meta, err
	}
	if b, err := c.st.Load(ctx, c.key(keyCRLMeta)); err == nil {
		if err := json.Unmarshal(b, &meta); err != nil {
			return nil, nil, "", meta, fmt.Errorf("ca: %s: %w", c.key(keyCRLMeta), err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, "", meta, fmt.Errorf("ca: loading %s: %w", c.key(keyCRLMeta), err)
	}
	serials := make([]string, 0, len(rf.Entries))
	for s, e := range rf.Entries {
		if crlDrops(e, now, meta.ThisUpdate) {
			continue
		}
		serials = append(serials, s)
	}
	sort.Strings(serials)
	h := sha256.New()
	for _, s := range serials {
		e := rf.Entries[s]
		fmt.Fprintf(h, "%s %d %d\n", s, e.Reason, e.At.Unix())
	}
	digest := hex.EncodeToString(h.Sum(nil))
	return rf, serials, digest, meta, nil
}

// crlDrops reports whether a CRL signed at now leaves out entry e, given
// that the last CRL was signed at last (zero: none). RFC 5280 section 3.3:
// an entry stays until it has appeared on a CRL issued after the
// certificate expired. The last CRL listed e if it was signed after e's
// revocation and its thisUpdate (at least last less Backdate) is after e's
// expiry (the CRLs before it kept e, by the same rule); e is then left out
// from a day after expiry on.
func crlDrops(e revokedEntry, now, last time.Time) bool {
	return now.Sub(e.NotAfter) > day && last.Add(-Backdate).After(e.NotAfter) && last.After(e.At)
}

// currentCRL returns the stored CRL when it lists exactly the revoked set,
// is younger than half its validity and is the CRL its metadata names
// (by SHA-256; metadata of earlier versions names none, which only the
// holder of the lock accepts); nil when a new one is due.
func (c *CA) currentCRL(ctx context.Context, now time.Time, unlocked bool) ([]byte, error) {
	_, _, digest, meta, err := c.crlInputs(ctx, now)
	if err != nil {
		return nil, err
	}
	if meta.Number == 0 || meta.Digest != digest || meta.IssuerSHA256 != c.issuerFP || now.Before(meta.ThisUpdate) ||
		!now.Before(meta.ThisUpdate.Add(c.cfg.CRLValidity/2)) || unlocked && meta.CRLSHA256 == "" {
		return nil, nil
	}
	der, err := c.st.Load(ctx, c.key(keyCRL))
	if err != nil {
		return nil, nil // made again under the lock
	}
	if meta.CRLSHA256 != "" {
		if sum := sha256.Sum256(der); hex.EncodeToString(sum[:]) != meta.CRLSHA256 {
			return nil, nil // written meanwhile, or a crash came between the two writes
		}
	}
	return der, nil
}

// PruneDeviceIndex removes from the per-device index (what Records of a
// device, the device listing and a device's revocation read) the
// certificates that expired before cutoff, and returns how many. Their
// issuance records stay: Lookup by serial still finds them. Without it a
// device's index, and every supersession reading it, grows with each
// certificate it was ever issued.
func (c *CA) PruneDeviceIndex(ctx context.Context, cutoff time.Time) (int, error) {
	dirs, err := c.list(ctx, c.prefix+"/"+keyDevices)
	if err != nil {
		return 0, err
	}
	pruned := 0
	for _, dir := range dirs {
		keys, err := c.list(ctx, dir)
		if err != nil {
			return pruned, err
		}
		for _, k := range keys {
			if err := ctx.Err(); err != nil {
				return pruned, err
			}
			rec, err := c.Lookup(ctx, path.Base(k))
			if err != nil || !rec.NotAfter.Before(cutoff) {
				continue // kept: a record not (yet) readable, or not expired long enough
			}
			if err := c.st.Delete(ctx, k); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return pruned, fmt.Errorf("ca: pruning %s: %w", k, err)
			}
			pruned++
		}
	}
	return pruned, nil
}
