package osp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
)

// TransactionIDs makes transaction ids that it recognizes later. A usage
// indication for a transaction that no authorization of this
// clearinghouse created (another clearinghouse's, or one made up by the
// reporting device) can then be told apart. Each id also names the device
// whose authorization made it (the transaction's source), so that a
// reauthorization or a usage record can be checked against it.
//
// An id is 63 bits, as NewTransactionID's: 39 random bits r, then 24 bits
// m XOR tag. m is the first 24 bits of an HMAC-SHA256 of r under a secret
// key that the clearinghouse's instances share. tag is the source's Tag:
// 24 bits of an HMAC of the source's name under a key derived from the
// same key, never 0. An id made without a source has tag 0: those of a
// maker that For did not make, as every id of the versions before sources
// were named.
//
// Without the key no id can be made for a source, nor an id of one source
// turned into one of another: a guess passes for a given source with
// probability 2^-24. SourceOf gives back the tag of an id's source, with
// which the holder of the key finds the device among its own. The random
// part makes two ids of different calls of one source equal with
// probability 2^-39 per pair (records of a call are told apart by
// reporter, role and call id too).
type TransactionIDs struct {
	key    []byte // MACs the random part
	tagKey []byte // makes the sources' tags
	tag    uint32 // the source of the ids New makes (For); 0: none
}

// TransactionKeySize is the size of the key NewTransactionIDs takes.
const TransactionKeySize = 32

const (
	txMACBits = 24
	txMACMask = 1<<txMACBits - 1
)

// NewTransactionIDs returns a maker of transaction ids under key, which
// must be TransactionKeySize random bytes. Its ids name no source (For
// makes a maker of one source's ids).
func NewTransactionIDs(key []byte) (*TransactionIDs, error) {
	if len(key) != TransactionKeySize {
		return nil, errors.New("osp: transaction id key must be 32 bytes")
	}
	h := hmac.New(sha256.New, key)
	h.Write([]byte("osp transaction source tags")) // not 8 bytes: never an r
	return &TransactionIDs{key: append([]byte(nil), key...), tagKey: h.Sum(nil)}, nil
}

// For returns a maker, under the same key, of the ids of transactions
// whose source is the device named source: the caller's name of it, in a
// normal form of its choosing (the clearinghouse's configfile.DeviceKey),
// the same every time. An empty source names none. A nil maker gives nil.
func (t *TransactionIDs) For(source string) *TransactionIDs {
	if t == nil {
		return nil
	}
	return &TransactionIDs{key: t.key, tagKey: t.tagKey, tag: t.Tag(source)}
}

// Tag returns the tag of a source in the ids made For it: 24 bits, never
// 0; 0 for the empty source (and for a nil maker).
func (t *TransactionIDs) Tag(source string) uint32 {
	if t == nil || source == "" {
		return 0
	}
	h := hmac.New(sha256.New, t.tagKey)
	h.Write([]byte(source))
	sum := h.Sum(nil)
	if tag := uint32(sum[0])<<16 | uint32(sum[1])<<8 | uint32(sum[2]); tag != 0 {
		return tag
	}
	return 1
}

// New returns a fresh transaction id, never 0, of the maker's source (For;
// none for a maker of NewTransactionIDs); NewTransactionID's, for a nil
// maker.
func (t *TransactionIDs) New() uint64 {
	if t == nil {
		return NewTransactionID()
	}
	var b [8]byte
	for {
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
		if r := binary.BigEndian.Uint64(b[:]) >> (64 - 39); r != 0 {
			return r<<txMACBits | (t.mac(r) ^ uint64(t.tag))
		}
	}
}

// Issued reports whether id is one that New made under this key for this
// maker's source: For(source).Issued(id) is whether an authorization made
// id for source; a maker of NewTransactionIDs recognizes the ids made
// without a source, those of earlier versions among them. A nil maker
// recognizes none.
func (t *TransactionIDs) Issued(id uint64) bool {
	tag, ok := t.SourceOf(id)
	return ok && hmac.Equal(tagBytes(tag), tagBytes(t.tag))
}

// SourceOf returns the tag of the source id was made for (For, Tag): 0 for
// an id made without one, a value no source may have for an id not made
// under this key (which holds a tag of one of n sources with probability
// n·2^-24). ok is false for what no maker makes: 0, an id of 64 bits, one
// whose random part is 0, and any id for a nil maker.
func (t *TransactionIDs) SourceOf(id uint64) (tag uint32, ok bool) {
	r := id >> txMACBits
	if t == nil || r == 0 || id>>63 != 0 {
		return 0, false
	}
	return uint32((id & txMACMask) ^ t.mac(r)), true
}

func (t *TransactionIDs) mac(r uint64) uint64 {
	h := hmac.New(sha256.New, t.key)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], r)
	h.Write(b[:])
	sum := h.Sum(nil)
	return uint64(sum[0])<<16 | uint64(sum[1])<<8 | uint64(sum[2])
}

func tagBytes(m uint32) []byte { return []byte{byte(m >> 16), byte(m >> 8), byte(m)} }
