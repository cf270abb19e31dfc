package osp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
)

// TransactionIDs makes transaction ids that it recognizes later, so that a
// usage indication for a transaction that no authorization of this
// clearinghouse created (another clearinghouse's, or made up by the
// reporting device) can be told apart. An id is 63 bits, as
// NewTransactionID's: 39 random bits, then the first 24 bits of an
// HMAC-SHA256 of them under a secret key that the clearinghouse's
// instances share. A made-up id passes with probability 2^-24; the random
// part makes two ids of different calls equal with probability 2^-39 per
// pair (records of a call are told apart by reporter, role and call id
// too).
type TransactionIDs struct {
	key []byte
}

// TransactionKeySize is the size of the key NewTransactionIDs takes.
const TransactionKeySize = 32

const txMACBits = 24

// NewTransactionIDs returns a maker of transaction ids under key, which
// must be TransactionKeySize random bytes.
func NewTransactionIDs(key []byte) (*TransactionIDs, error) {
	if len(key) != TransactionKeySize {
		return nil, errors.New("osp: transaction id key must be 32 bytes")
	}
	return &TransactionIDs{key: append([]byte(nil), key...)}, nil
}

// New returns a fresh transaction id, never 0 (NewTransactionID's, for a
// nil maker).
func (t *TransactionIDs) New() uint64 {
	if t == nil {
		return NewTransactionID()
	}
	var b [8]byte
	for {
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
		if r := binary.BigEndian.Uint64(b[:]) >> (64 - 39); r != 0 {
			return r<<txMACBits | t.mac(r)
		}
	}
}

// Issued reports whether id is one that New made under this key (never,
// for a nil maker).
func (t *TransactionIDs) Issued(id uint64) bool {
	r := id >> txMACBits
	if t == nil || r == 0 || id>>63 != 0 {
		return false
	}
	return hmac.Equal(macBytes(id&(1<<txMACBits-1)), macBytes(t.mac(r)))
}

func (t *TransactionIDs) mac(r uint64) uint64 {
	h := hmac.New(sha256.New, t.key)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], r)
	h.Write(b[:])
	sum := h.Sum(nil)
	return uint64(sum[0])<<16 | uint64(sum[1])<<8 | uint64(sum[2])
}

func macBytes(m uint64) []byte { return []byte{byte(m >> 16), byte(m >> 8), byte(m)} }
