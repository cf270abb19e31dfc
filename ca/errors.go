package ca

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Error kinds. Every error returned by this package for one of these reasons
// wraps the matching sentinel, so callers map them to protocol statuses with
// errors.Is while the message stays specific ("CSR names X, device is Y").
var (
	// ErrMalformedCSR: the input is not a decodable PKCS#10 request.
	ErrMalformedCSR = errors.New("malformed certificate request")
	// ErrBadSignature: proof of possession failed (the CSR signature does not verify).
	ErrBadSignature = errors.New("certificate request signature invalid")
	// ErrKeyPolicy: the CSR's key type or size is refused by the key policy.
	ErrKeyPolicy = errors.New("key refused by policy")
	// ErrLegacyAlgorithm: the CSR is signed with MD5 or SHA-1 and Policy.Legacy is off.
	ErrLegacyAlgorithm = errors.New("legacy signature algorithm refused")
	// ErrUnsupportedAlgorithm: the CSR's signature algorithm is never accepted
	// (MD2, unknown OIDs, or an algorithm that does not match the key).
	ErrUnsupportedAlgorithm = errors.New("unsupported signature algorithm")
	// ErrNameMismatch: the CSR names a host other than the device.
	ErrNameMismatch = errors.New("certificate request names another host")
	// ErrBadDeviceName: the device name is neither a DNS name nor an IP literal.
	ErrBadDeviceName = errors.New("invalid device name")
	// ErrBadCryptoParam: the crypto parameter string is malformed.
	ErrBadCryptoParam = errors.New("malformed crypto parameters")
	// ErrCANotInStorage: the crypto parameter names a CA that storage does not hold.
	ErrCANotInStorage = errors.New("CA not in storage")
	// ErrNotFound: no issuance record for the serial.
	ErrNotFound = errors.New("not found")
	// ErrExpired: the issuing CA certificate is expired or not yet valid.
	ErrExpired = errors.New("CA certificate outside its validity period")
	// ErrCRLNotRenewed: a new CRL was due (half its validity passed) but
	// could not be signed and stored (a full or read-only storage); CRL
	// returns it with the stored CRL, which lists every revocation and has
	// not reached its nextUpdate.
	ErrCRLNotRenewed = errors.New("a new CRL is due but could not be stored; the stored one, still valid, is served")
	// ErrCRLNotStored: a new CRL was needed (the stored one lacks a
	// revocation, or has reached its nextUpdate) but could not be stored;
	// CRL returns it with one signed in memory, which lists every
	// revocation.
	ErrCRLNotStored = errors.New("a new CRL is needed but could not be stored; one signed in memory is served")
)

type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return "ca: " + e.msg }
func (e *kindError) Unwrap() error { return e.kind }

func errorf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// maxQuoted bounds what of a caller's input an error repeats: a name or
// serial of 64 KiB (an admin API body) is not echoed whole into answers
// and logs.
const maxQuoted = 80

// quoted is s as %q writes it, cut to maxQuoted bytes (on a rune
// boundary) with the length said when longer.
func quoted(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	i := maxQuoted
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return strconv.Quote(s[:i]) + fmt.Sprintf("… (%d bytes)", len(s))
}
