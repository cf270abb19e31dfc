package osp

import (
	"bytes"
	"container/heap"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/smallstep/pkcs7"
)

// The errors of Verifier.Verify, one per reason a token is refused. Verify
// wraps them with detail; test with errors.Is.
var (
	ErrTokenMalformed   = errors.New("osp: token malformed")
	ErrTokenUnsigned    = errors.New("osp: unsigned token refused")
	ErrTokenSignature   = errors.New("osp: token signature invalid")
	ErrTokenChain       = errors.New("osp: token signer not issued by a trusted CA")
	ErrTokenSignerUsage = errors.New("osp: token signer certificate is not for signing tokens")
	ErrTokenSignerPin   = errors.New("osp: token signer not among the pinned signers")
	ErrTokenMissing     = errors.New("osp: no token")
	ErrTokenMismatch    = errors.New("osp: token does not match the call")
	ErrTokenNotYetValid = errors.New("osp: token not yet valid")
	ErrTokenExpired     = errors.New("osp: token expired")
	ErrTokenReplay      = errors.New("osp: token already used")
	ErrReplayCacheFull  = errors.New("osp: replay cache full")
)

// Call is what a terminating device knows of the call a token must
// authorise.
type Call struct {
	Calling string // calling number, compared with the token's SourceInfo
	Called  string // called number, compared with the token's DestinationInfo
	// CallID is the call's identifier; when empty, or when the token has
	// none or "UNDEFINED", it is not compared (as the toolkit does).
	CallID []byte
	// Destination is this device's signal address ("[ip]:port" or
	// "host:port"). When set, the token must name it in its
	// DestinationAlternate type="transport": a token issued for another
	// destination is refused. When empty, not compared.
	Destination string
}

// Verifier checks tokens the way a Go gateway should, and more strictly
// than the OSP Toolkit's OSPPTransactionValidateAuthorisation. It checks:
//   - the signature (CMS SignedData);
//   - that the signer certificate is issued directly by one of Roots, with
//     no intermediates (PKCS7_NOCHAIN);
//   - that the signer certificate is made for signing tokens: KeyUsage,
//     when present, with digitalSignature (or contentCommitment);
//     ExtKeyUsage absent or with emailProtection or anyExtendedKeyUsage.
//     A device certificate (clientAuth or serverAuth) is refused. The
//     toolkit checks no purpose: it takes tokens signed with any key the
//     CA certified;
//   - optionally, that the signer is one of Signers;
//   - for a token that embeds no certificate: that its signer is one of
//     CASigners, valid now, instead of the three checks above;
//   - the calling and called numbers, call id and destination;
//   - the validity window, widened by Skew;
//   - single use, through Replay.
//
// The zero Skew means none; a nil Now means time.Now; a nil Replay
// disables the single-use check (not recommended). A Verifier is safe for
// concurrent use once configured.
type Verifier struct {
	Roots *x509.CertPool
	// Signers pins the token signers: when not empty, only a signer
	// certificate whose SHA-256 fingerprint (sha256.Sum256(cert.Raw)) is
	// listed is accepted, on top of the other checks. The clearinghouse
	// renews its signer (new key, at once) in the last third of its life:
	// pins must follow.
	Signers [][sha256.Size]byte
	// AnySignerUsage accepts signer certificates of any key usage, as the
	// toolkit does: for tokens of other OSP servers that sign with TLS
	// certificates. Never for this clearinghouse's tokens: its CA also
	// issues the devices' certificates, whose keys could then sign tokens.
	AnySignerUsage bool
	// CASigners are certificates trusted to sign tokens themselves, for
	// tokens that embed no certificate (TokenSigner's CASigned form, the
	// CA's own signature): the token's signer, named by issuer and serial
	// number, must be one of them and valid at the Verifier's clock. No
	// key usage is required of them and Signers does not apply. Without
	// them such tokens are refused (ErrTokenChain). They play no part for
	// tokens that embed their signer's certificate.
	CASigners     []*x509.Certificate
	Now           func() time.Time
	Skew          time.Duration
	Replay        *ReplayCache
	AllowUnsigned bool // accept plain TokenInfo tokens: anyone who can reach the device can forge those
}

// Verify checks token for call and returns its content. The checks run in
// this order, each failing with its own error:
//   - form: ErrTokenUnsigned (when unsigned tokens are not allowed),
//     ErrTokenMalformed;
//   - CMS signature: ErrTokenSignature;
//   - signer certificate: ErrTokenChain, then ErrTokenSignerUsage, then
//     ErrTokenSignerPin. Its validity is part of ErrTokenChain, checked at
//     the Verifier's clock as PKCS7_verify does, not at the token's signing
//     time;
//   - content: ErrTokenMalformed;
//   - call match: ErrTokenMismatch;
//   - validity window: ErrTokenNotYetValid, ErrTokenExpired;
//   - single use: ErrTokenReplay, ErrReplayCacheFull. It fails with
//     ErrTokenExpired when another verification has meanwhile seen a time
//     after the token's expiry (see ReplayCache).
func (v *Verifier) Verify(token []byte, call Call) (*TokenInfo, error) {
	now := v.now()
	info, content, err := v.open(token, now)
	if err != nil {
		return nil, err
	}
	if err := matchCall(info, call); err != nil {
		return nil, err
	}
	if err := v.checkWindow(info, now, 0); err != nil {
		return nil, err
	}
	if v.Replay != nil {
		// The key is the signed content, not the token bytes: CMS
		// encodings and ECDSA signatures are malleable, the content is not.
		if err := v.Replay.Add(sha256.Sum256(content), info.ValidUntil.Add(v.Skew), now); err != nil {
			return nil, err
		}
	}
	return info, nil
}

// MaxReauthorizationDelay bounds how long after its ValidUntil a token
// still backs a reauthorization (VerifyReauthorization): the longest a
// call is extended. The OSP Toolkit sends the call's first token with
// every reauthorization of the call (OSPPTransactionBuildReauthRequest
// copies the current destination's tokens, and the fresh token goes to the
// application only), so the bound is counted from that token, not from
// the last extension; the route and the destination are checked anew each
// time by the server.
const MaxReauthorizationDelay = 24 * time.Hour

// VerifyReauthorization checks the token a ReauthorizationRequest carries,
// for the server that issued it, and returns its content. The toolkit
// sends the tokens of the call's current destination
// (OSPPTransactionBuildReauthRequest).
//
// A token must pass the checks of Verify except the destination and single
// use: the same token backs every reauthorization of the call until a
// fresh one replaces it. The checks are:
//   - form, signature and signer: ErrTokenUnsigned, ErrTokenMalformed,
//     ErrTokenSignature, ErrTokenChain, ErrTokenSignerUsage,
//     ErrTokenSignerPin;
//   - the request's transaction id, calling and called numbers and call
//     id, all compared exactly: ErrTokenMismatch;
//   - the window ValidAfter−Skew to
//     ValidUntil+MaxReauthorizationDelay+Skew: ErrTokenNotYetValid,
//     ErrTokenExpired.
//
// A request without a token fails with ErrTokenMissing. When the request
// has several tokens, the first that passes is returned, else the first
// one's error.
//
// The new token's destination must come from the returned TokenInfo
// (SignalAddress), never from the request: Reauthorize does so.
func (v *Verifier) VerifyReauthorization(req *ReauthorizationRequest) (*TokenInfo, error) {
	if req == nil || len(req.Tokens) == 0 {
		return nil, ErrTokenMissing
	}
	now := v.now()
	var first error
	for _, token := range req.Tokens {
		info, err := v.checkReauth(token, req, now)
		if err == nil {
			return info, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, first
}

func (v *Verifier) checkReauth(token []byte, req *ReauthorizationRequest, now time.Time) (*TokenInfo, error) {
	info, _, err := v.open(token, now)
	if err != nil {
		return nil, err
	}
	switch {
	case info.TransactionID != req.TransactionID:
		return nil, fmt.Errorf("%w: transaction id %d, token has %d", ErrTokenMismatch, req.TransactionID, info.TransactionID)
	case info.SourceInfo.Value != req.Calling().Value:
		return nil, fmt.Errorf("%w: calling number %q, token has %q", ErrTokenMismatch, req.Calling().Value, info.SourceInfo.Value)
	case info.DestinationInfo.Value != req.Called().Value:
		return nil, fmt.Errorf("%w: called number %q, token has %q", ErrTokenMismatch, req.Called().Value, info.DestinationInfo.Value)
	case !bytes.Equal(info.CallID, req.CallID):
		return nil, fmt.Errorf("%w: call id", ErrTokenMismatch)
	}
	if err := v.checkWindow(info, now, MaxReauthorizationDelay); err != nil {
		return nil, err
	}
	return info, nil
}

// checkWindow checks that now is in the token's validity window, widened
// by Skew on both sides and by extra after its end.
func (v *Verifier) checkWindow(info *TokenInfo, now time.Time, extra time.Duration) error {
	if now.Before(info.ValidAfter.Add(-v.Skew)) {
		return fmt.Errorf("%w: valid after %s", ErrTokenNotYetValid, formatTime(info.ValidAfter))
	}
	if now.After(info.ValidUntil.Add(extra + v.Skew)) {
		if extra > 0 {
			return fmt.Errorf("%w: valid until %s, for reauthorization %s longer", ErrTokenExpired, formatTime(info.ValidUntil), extra)
		}
		return fmt.Errorf("%w: valid until %s", ErrTokenExpired, formatTime(info.ValidUntil))
	}
	return nil
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// open checks a token's form and signature and parses its content.
func (v *Verifier) open(token []byte, now time.Time) (*TokenInfo, []byte, error) {
	if len(token) == 0 {
		return nil, nil, fmt.Errorf("%w: empty", ErrTokenMalformed)
	}
	if len(token) > MaxTokenBytes {
		return nil, nil, fmt.Errorf("%w: %d bytes", ErrTokenMalformed, len(token))
	}
	content := token
	if IsUnsignedToken(token) {
		if !v.AllowUnsigned {
			return nil, nil, ErrTokenUnsigned
		}
	} else {
		c, err := v.checkSigned(token, now)
		if err != nil {
			return nil, nil, err
		}
		content = c
	}
	// The toolkit parses the content as XML only when it starts with
	// "<?xml" (anything else is its ASCII token format).
	if bytes.HasPrefix(content, []byte("V=1\n")) {
		return nil, nil, fmt.Errorf("%w: ASCII token format (V=1) not supported", ErrTokenMalformed)
	}
	if !bytes.HasPrefix(content, []byte("<?xml")) {
		return nil, nil, fmt.Errorf("%w: content does not start with <?xml", ErrTokenMalformed)
	}
	info, err := ParseTokenInfo(content)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrTokenMalformed, err)
	}
	return info, content, nil
}

func (v *Verifier) checkSigned(token []byte, now time.Time) ([]byte, error) {
	p7, err := pkcs7.Parse(token)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTokenSignature, err)
	}
	if len(p7.Signers) != 1 {
		return nil, fmt.Errorf("%w: %d signers", ErrTokenSignature, len(p7.Signers))
	}
	signer := p7.GetOnlySigner()
	if signer == nil && len(p7.Certificates) > 0 {
		return nil, fmt.Errorf("%w: signer certificate not embedded", ErrTokenSignature)
	}
	if signer == nil {
		return v.checkCASigned(p7, now)
	}
	if len(p7.Content) == 0 {
		return nil, fmt.Errorf("%w: no attached content", ErrTokenSignature)
	}
	if err := verifySignatureOnly(p7, signer); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTokenSignature, err)
	}
	if v.Roots == nil {
		return nil, fmt.Errorf("%w: no CA configured", ErrTokenChain)
	}
	// PKCS7_NOCHAIN: the certificates in the token are not used as
	// intermediates; the signer must be issued by a root directly. As in
	// PKCS7_verify, no purpose is required of it.
	if _, err := signer.Verify(x509.VerifyOptions{
		Roots:       v.Roots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTokenChain, err)
	}
	// The devices' CA also issues the devices' certificates (clientAuth):
	// without this, any enrolled device could sign tokens with its own key.
	if err := checkSignerUsage(signer); err != nil && !v.AnySignerUsage {
		return nil, fmt.Errorf("%w: %v", ErrTokenSignerUsage, err)
	}
	if len(v.Signers) > 0 && !slices.Contains(v.Signers, sha256.Sum256(signer.Raw)) {
		return nil, fmt.Errorf("%w: %q, SHA-256 %x", ErrTokenSignerPin, signer.Subject.CommonName, sha256.Sum256(signer.Raw))
	}
	return p7.Content, nil
}

// checkCASigned checks a token that embeds no certificate (TokenSigner's
// CASigned form): its signer, named by issuer and serial number, must be
// one of CASigners, valid at now; no key usage is required of it, as
// PKCS7_verify with PKCS7_NOCHAIN requires none. Signers (pins) do not
// apply: CASigners is itself the list of the signers trusted.
func (v *Verifier) checkCASigned(p7 *pkcs7.PKCS7, now time.Time) ([]byte, error) {
	if len(v.CASigners) == 0 {
		return nil, fmt.Errorf("%w: token embeds no signer certificate and no CA signers are configured", ErrTokenChain)
	}
	p7.Certificates = slices.Clone(v.CASigners)
	signer := p7.GetOnlySigner()
	if signer == nil {
		return nil, fmt.Errorf("%w: token embeds no signer certificate and its signer is none of the CA signers", ErrTokenChain)
	}
	if len(p7.Content) == 0 {
		return nil, fmt.Errorf("%w: no attached content", ErrTokenSignature)
	}
	if err := verifySignatureOnly(p7, signer); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTokenSignature, err)
	}
	if now.Before(signer.NotBefore) || now.After(signer.NotAfter) {
		return nil, fmt.Errorf("%w: CA signer %q valid %s to %s", ErrTokenChain, signer.Subject.CommonName,
			formatTime(signer.NotBefore), formatTime(signer.NotAfter))
	}
	return p7.Content, nil
}

// verifySignatureOnly checks the token's signature and the message digest
// of its content. It does not check the signer certificate's validity:
// checkSigned does, at the Verifier's clock, with the chain, as
// PKCS7_verify does.
//
// pkcs7's Verify also compares the signing-time attribute (the signing
// server's clock) with the signer's validity, and stops there before it
// checks the signature. So when that comparison fails, Verify runs again
// with a copy of the signer that is valid at every time. A signer expired
// or not yet valid is then reported by the chain check (ErrTokenChain),
// and a token signed by a server whose clock was behind the signer's
// NotBefore is accepted, as OpenSSL accepts it.
func verifySignatureOnly(p7 *pkcs7.PKCS7, signer *x509.Certificate) error {
	err := p7.Verify()
	var ste *pkcs7.SigningTimeNotValidError
	if !errors.As(err, &ste) {
		return err
	}
	always := *signer
	always.NotBefore, always.NotAfter = time.Time{}, time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
	certs := slices.Clone(p7.Certificates)
	for i, c := range certs {
		if c == signer {
			certs[i] = &always
		}
	}
	orig := p7.Certificates
	p7.Certificates = certs
	defer func() { p7.Certificates = orig }()
	return p7.Verify()
}

// checkSignerUsage reports whether a certificate's key usages make it a
// token signer's: KeyUsage (when present) with digitalSignature (or
// contentCommitment), ExtKeyUsage absent or including emailProtection
// (S/MIME signing) or anyExtendedKeyUsage. The clearinghouse's token
// signer has no ExtKeyUsage (ca.IssueTokenSigner); device certificates
// have clientAuth (and serverAuth) without emailProtection and fail.
func checkSignerUsage(c *x509.Certificate) error {
	if c.KeyUsage != 0 && c.KeyUsage&(x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment) == 0 {
		return errors.New("KeyUsage lacks digitalSignature")
	}
	if len(c.ExtKeyUsage) > 0 || len(c.UnknownExtKeyUsage) > 0 {
		if !slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageEmailProtection) && !slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageAny) {
			return errors.New("ExtKeyUsage must include emailProtection (S/MIME signing) or be absent")
		}
	}
	return nil
}

func matchCall(info *TokenInfo, call Call) error {
	if info.SourceInfo.Value != call.Calling {
		return fmt.Errorf("%w: calling number %q, token has %q", ErrTokenMismatch, call.Calling, info.SourceInfo.Value)
	}
	if info.DestinationInfo.Value != call.Called {
		return fmt.Errorf("%w: called number %q, token has %q", ErrTokenMismatch, call.Called, info.DestinationInfo.Value)
	}
	if len(call.CallID) > 0 && len(info.CallID) > 0 && !bytes.Equal(info.CallID, UndefinedCallID) &&
		!bytes.Equal(info.CallID, call.CallID) {
		return fmt.Errorf("%w: call id", ErrTokenMismatch)
	}
	if call.Destination != "" {
		want, err := NormalizeSignalAddress(call.Destination)
		if err != nil {
			return fmt.Errorf("%w: call destination: %v", ErrTokenMismatch, err)
		}
		got, err := NormalizeSignalAddress(info.SignalAddress)
		if err != nil || got != want {
			return fmt.Errorf("%w: destination %q, token issued for %q", ErrTokenMismatch, call.Destination, info.SignalAddress)
		}
	}
	return nil
}

// ReplayCache remembers the tokens a Verifier accepted until they expire,
// so that each is accepted once. Safe for concurrent use.
//
// It keys tokens by their content, not by transaction: the tokens of one
// authorization for different destinations are different tokens. (A
// gateway that sets Call.Destination accepts only its own; the toolkit
// also refuses a second token of a transaction it has seen.) It holds at
// most its capacity of entries. When full of unexpired entries it refuses
// new tokens (ErrReplayCacheFull) rather than forget one.
//
// Its clock is the latest now any Add was given. An entry is forgotten
// once that clock is past its expiry, never by an earlier now (a caller
// that sampled its time before another's, or a wall clock stepped back).
// A key whose expiry that clock is past is refused as expired, since it
// may have been forgotten. Verify's nows are never past the tokens'
// expiry: after a backward step of the wall clock, only tokens expiring
// before the latest expiry of a token it was given are refused.
type ReplayCache struct {
	mu      sync.Mutex
	max     int
	entries map[[32]byte]time.Time
	order   expiryHeap
	clock   time.Time // the latest now seen
}

// DefaultReplayCapacity is the capacity of NewReplayCache(0): at 60 s
// validity it allows some 16 000 calls a second.
const DefaultReplayCapacity = 1 << 20

// NewReplayCache returns a cache for up to capacity unexpired tokens (0:
// DefaultReplayCapacity).
func NewReplayCache(capacity int) *ReplayCache {
	if capacity <= 0 {
		capacity = DefaultReplayCapacity
	}
	return &ReplayCache{max: capacity, entries: make(map[[32]byte]time.Time)}
}

// Add records key until expires. It fails with ErrTokenExpired when now,
// or a later now of another Add, is after expires (the key may have been
// forgotten already), ErrTokenReplay when key is already recorded,
// ErrReplayCacheFull when the cache is full of unexpired keys.
func (c *ReplayCache) Add(key [32]byte, expires, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Wall clock only: between two time.Now readings After compares the
	// monotonic clock, which would hide a step back.
	if now = now.Round(0); now.After(c.clock) {
		c.clock = now
	}
	c.purge(c.clock)
	if c.clock.After(expires) {
		return fmt.Errorf("%w: expires %s, replay cache already at %s", ErrTokenExpired,
			expires.UTC().Format(time.RFC3339Nano), c.clock.UTC().Format(time.RFC3339Nano))
	}
	// Entries left are not expired at c.clock, hence not at now.
	if _, ok := c.entries[key]; ok {
		return ErrTokenReplay
	}
	if len(c.entries) >= c.max {
		return ErrReplayCacheFull
	}
	c.entries[key] = expires
	heap.Push(&c.order, expiryEntry{key, expires})
	return nil
}

// Len returns the number of keys recorded (expired ones included until the
// next Add purges them).
func (c *ReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

func (c *ReplayCache) purge(now time.Time) {
	for len(c.order) > 0 && now.After(c.order[0].expires) {
		e := heap.Pop(&c.order).(expiryEntry)
		if exp, ok := c.entries[e.key]; ok && exp.Equal(e.expires) {
			delete(c.entries, e.key)
		}
	}
}

type expiryEntry struct {
	key     [32]byte
	expires time.Time
}

type expiryHeap []expiryEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiryEntry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
