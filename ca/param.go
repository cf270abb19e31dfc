package ca

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// CryptoParams is the parsed form of the configuration file's crypto item:
//
//	<profile>:<algorithm>:sha256:<fingerprint>
//
// for example "modern:p256:sha256:3f1c…" (64 lower-case hex digits, the
// SHA-256 of the DER of the CA's root certificate, i.e. the certificate
// devices trust). It names a CA; it never contains key material.
type CryptoParams struct {
	Profile     Profile
	Algorithm   Algorithm
	Fingerprint string // 64 lower-case hex digits
}

// String formats p in the canonical form.
func (p CryptoParams) String() string {
	return fmt.Sprintf("%s:%s:sha256:%s", p.Profile, p.Algorithm, p.Fingerprint)
}

// ParseCryptoParams parses one crypto parameter in the documented form.
// Profile and algorithm are case-insensitive; the fingerprint may be given in
// either case, with or without colons.
func ParseCryptoParams(s string) (CryptoParams, error) {
	s = strings.TrimSpace(s)
	parts := strings.SplitN(s, ":", 4)
	if len(parts) != 4 {
		return CryptoParams{}, errorf(ErrBadCryptoParam, "crypto parameters %q: want <profile>:<algorithm>:sha256:<hex fingerprint>", s)
	}
	prof, err := ParseProfile(parts[0])
	if err != nil {
		return CryptoParams{}, errorf(ErrBadCryptoParam, "crypto parameters %q: unknown profile %q", s, parts[0])
	}
	alg, err := ParseAlgorithm(parts[1])
	if err != nil {
		return CryptoParams{}, errorf(ErrBadCryptoParam, "crypto parameters %q: unknown algorithm %q", s, parts[1])
	}
	if !strings.EqualFold(parts[2], "sha256") {
		return CryptoParams{}, errorf(ErrBadCryptoParam, "crypto parameters %q: fingerprint hash %q is not sha256", s, parts[2])
	}
	fp := strings.ToLower(strings.ReplaceAll(parts[3], ":", ""))
	if b, err := hex.DecodeString(fp); err != nil || len(b) != 32 {
		return CryptoParams{}, errorf(ErrBadCryptoParam, "crypto parameters %q: fingerprint must be 64 hex digits", s)
	}
	if prof == ProfileLegacy && !alg.isRSA() {
		return CryptoParams{}, errorf(ErrBadCryptoParam, "crypto parameters %q: the legacy profile is RSA only", s)
	}
	return CryptoParams{Profile: prof, Algorithm: alg, Fingerprint: fp}, nil
}

// looksLikeCryptoParams reports whether s is meant to be in the documented
// form (and so must parse strictly) rather than a foreign placeholder such as
// the seed's 'keys'.
func looksLikeCryptoParams(s string) bool {
	l := strings.ToLower(strings.TrimSpace(s))
	return strings.HasPrefix(l, string(ProfileModern)+":") ||
		strings.HasPrefix(l, string(ProfileLegacy)+":") ||
		strings.Contains(l, "sha256:")
}

// paramChoice is how Open interprets the crypto item for one profile.
type paramChoice struct {
	named    *CryptoParams // the entry naming this profile's CA, if any
	replaced bool          // the item held a value not in the documented form
}

// selectCryptoParams interprets the crypto item for profile.
//
//   - empty: nothing named (a new CA is made).
//   - one value not in the documented form (e.g. Table 7's 'keys'): unknown,
//     treated like empty but reported as replaced.
//   - one or more documented entries separated by spaces or commas (one per
//     profile, so a server running both a modern and a legacy CA keeps both
//     in one item): the entry for profile is selected; entries for other
//     profiles are ignored; no entry for profile means nothing named.
//   - a documented-looking entry that does not parse is an error, as are
//     two entries for the same profile naming different CAs (the same
//     entry twice is accepted).
func selectCryptoParams(item string, profile Profile) (paramChoice, error) {
	s := strings.TrimSpace(item)
	if len(s) >= 2 && (s[0] == '"' || s[0] == '\'') && s[len(s)-1] == s[0] {
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	if s == "" {
		return paramChoice{}, nil
	}
	fields := strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ';' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})
	if len(fields) == 1 && !looksLikeCryptoParams(fields[0]) {
		return paramChoice{replaced: true}, nil
	}
	var ch paramChoice
	for _, f := range fields {
		p, err := ParseCryptoParams(f)
		if err != nil {
			if !looksLikeCryptoParams(f) {
				return paramChoice{}, errorf(ErrBadCryptoParam, "crypto parameters: %q among several entries is not in the form <profile>:<algorithm>:sha256:<hex>", f)
			}
			return paramChoice{}, err
		}
		if p.Profile != profile {
			continue
		}
		if ch.named != nil && ch.named.Fingerprint != p.Fingerprint {
			return paramChoice{}, errorf(ErrBadCryptoParam, "crypto parameters name two %s CAs (sha256:%s and sha256:%s)", profile, ch.named.Fingerprint, p.Fingerprint)
		}
		pp := p
		ch.named = &pp
	}
	return ch, nil
}
