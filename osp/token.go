package osp

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/smallstep/pkcs7"
)

// MaxTokenBytes bounds a token (raw, before base64). A signed token with a
// P-256 certificate is about 1 KB, with an RSA-2048 one about 1.7 KB.
const MaxTokenBytes = 8 << 10

// TokenInfo is the content of an authorisation token (src/osptokeninfo.c,
// OSPPTokenInfoFromElement): the root element <TokenInfo> itself, not
// wrapped in <Message> — wrapped, the toolkit finds no fields and refuses it
// with 11270 "information does not match". The toolkit compares SourceInfo,
// DestinationInfo and CallId with the call, then checks ValidAfter <= now <=
// ValidUntil, then refuses a TransactionId it has seen before (until
// ValidUntil); UsageDetail gives the call's time limit.
type TokenInfo struct {
	Random          string // <TokenInfo random>: makes two tokens of the same call differ
	SourceInfo      Info   // calling number, compared byte for byte by the toolkit
	DestinationInfo Info   // called number, compared byte for byte
	// NumberPortability is the request's number portability data: the
	// routing number the call was routed on, so that a reauthorization
	// routes the call as its authorization did. Written as DestinationInfo
	// elements before the called number: the toolkit takes the last
	// DestinationInfo of a token, whatever its type, as the number it
	// compares with the call's (OSPPTokenInfoFromElement).
	NumberPortability NumberPortability
	// SignalAddress is <DestinationAlternate type="transport">: the
	// destination the token was issued for ("[ip]:port"). The toolkit keeps
	// it as look-ahead information; Verifier compares it with the call's
	// destination.
	SignalAddress string
	NetworkID     string // <DestinationAlternate type="network">
	CallID        []byte // nil: no CallId element (matches any call)
	ValidAfter    time.Time
	ValidUntil    time.Time
	TransactionID uint64
	MaxDuration   time.Duration // <UsageDetail>; 0 writes none (no limit)
	Service       ServiceType
}

// Encode writes the token info exactly as the toolkit's tokens look
// (token-unsigned-accepted.xml): an XML declaration and <TokenInfo>, no
// whitespace between elements. The result is an unsigned token, or the
// content a TokenSigner signs.
func (t *TokenInfo) Encode() ([]byte, error) {
	w := newWriter(false, t.size())
	w.open("TokenInfo", "random", t.Random)
	w.leaf("SourceInfo", t.SourceInfo.Value, "type", t.SourceInfo.Type)
	writeNumberPortability(w, t.NumberPortability)
	w.leaf("DestinationInfo", t.DestinationInfo.Value, "type", t.DestinationInfo.Type)
	w.leafOpt("DestinationAlternate", t.SignalAddress, "type", TypeTransport)
	w.leafOpt("DestinationAlternate", t.NetworkID, "type", TypeNetwork)
	if len(t.CallID) > 0 {
		w.leafBin("CallId", t.CallID)
	}
	w.leafTimeAlways("ValidAfter", t.ValidAfter)
	w.leafTimeAlways("ValidUntil", t.ValidUntil)
	w.leafUint("TransactionId", t.TransactionID)
	if t.MaxDuration >= time.Second {
		writeLimit(w, t.MaxDuration, t.Service)
	}
	w.close("TokenInfo")
	return w.bytes()
}

// size is a little more than Encode writes (unless values need escaping).
func (t *TokenInfo) size() int {
	n := 480 + len(t.Random) + len(t.SourceInfo.Type) + len(t.SourceInfo.Value) +
		len(t.DestinationInfo.Type) + len(t.DestinationInfo.Value) + len(t.SignalAddress) +
		base64.StdEncoding.EncodedLen(len(t.CallID)) + t.NumberPortability.size()
	if t.NetworkID != "" {
		n += 60 + len(t.NetworkID)
	}
	if t.Service != "" {
		n += 40 + len(t.Service)
	}
	return n
}

// ParseTokenInfo parses an unsigned token, or the content of a signed one.
// The root element must be <TokenInfo>; SourceInfo, DestinationInfo,
// ValidAfter, ValidUntil and TransactionId are required.
func ParseTokenInfo(data []byte) (*TokenInfo, error) {
	lim := DefaultLimits
	lim.MaxBytes = MaxTokenBytes
	root, err := parseTree(data, lim)
	if err != nil {
		return nil, err
	}
	if root.name != "TokenInfo" {
		if root.name == "Message" {
			return nil, perr(ErrTokenInfoWrapped, "<TokenInfo> inside <Message>")
		}
		return nil, perr(ErrUnknownMessage, "token root element <%s>", root.name)
	}
	t := &TokenInfo{}
	t.Random, _ = root.attr("random")
	var has struct{ src, dst, after, until, tx bool }
	var np []Info
	for e := range root.children {
		switch e.name {
		case "SourceInfo":
			t.SourceInfo, has.src = decodeInfo(e), true
		case "DestinationInfo":
			// the last one is the called number whatever its type, as
			// the toolkit reads it
			t.DestinationInfo, has.dst = decodeInfo(e), true
			if nonNumberTypes[t.DestinationInfo.Type] {
				np = append(np, t.DestinationInfo)
			}
		case "DestinationAlternate":
			if typ, _ := e.attr("type"); typ == TypeNetwork {
				t.NetworkID = e.value()
			} else {
				t.SignalAddress = e.value()
			}
		case "CallId":
			if t.CallID, err = decodeCallID(e); err != nil {
				return nil, err
			}
		case "ValidAfter":
			if t.ValidAfter, err = decodeTime(e); err != nil {
				return nil, err
			}
			has.after = !t.ValidAfter.IsZero()
		case "ValidUntil":
			if t.ValidUntil, err = decodeTime(e); err != nil {
				return nil, err
			}
			has.until = !t.ValidUntil.IsZero()
		case "TransactionId":
			if t.TransactionID, err = decodeUint(e); err != nil {
				return nil, err
			}
			has.tx = true
		case "UsageDetail":
			if t.MaxDuration, t.Service, err = decodeLimit(e); err != nil {
				return nil, err
			}
		case "SignalingProtocol", "OSPVersion":
			// look-ahead information, not used here
		default:
			if err := checkUnknown(e); err != nil {
				return nil, err
			}
		}
	}
	switch {
	case !has.src:
		return nil, perr(ErrMissingElement, "<SourceInfo>")
	case !has.dst:
		return nil, perr(ErrMissingElement, "<DestinationInfo>")
	case !has.after:
		return nil, perr(ErrMissingElement, "<ValidAfter>")
	case !has.until:
		return nil, perr(ErrMissingElement, "<ValidUntil>")
	case !has.tx:
		return nil, perr(ErrMissingElement, "<TransactionId>")
	}
	t.NumberPortability = numberPortability(np)
	return t, nil
}

// IsUnsignedToken reports whether a token is unsigned rather than CMS:
// the toolkit takes a token starting with "<?xml" (TokenInfo XML) or
// "V=1\n" (its ASCII token format, which this package does not read) as
// unsigned. A token starting with "<" (after whitespace) counts as
// unsigned here.
func IsUnsignedToken(token []byte) bool {
	return bytes.HasPrefix(bytes.TrimLeft(token, " \t\r\n"), []byte("<")) || bytes.HasPrefix(token, []byte("V=1\n"))
}

// TokenSigner signs tokens: CMS SignedData (PKCS #7, DER) with the TokenInfo
// XML attached as id-data content, one signer, SHA-256, signed attributes
// (content type, message digest, signing time), and the signer certificate
// embedded. Devices check it with OpenSSL PKCS7_verify(…, PKCS7_NOCHAIN)
// (src/ospsecurity.c): Cert must be issued directly by a CA certificate
// the device holds — the operational CA, not an intermediate the device
// does not have. Chain adds more certificates to the SignedData; NOCHAIN
// verifiers ignore them, so it only helps verifiers that build chains.
//
// With CASigned, Cert is the CA certificate devices hold and Key its key:
// the token then carries no certificate and no signed attributes (the
// signature is over the content's digest), which makes it some 0.6 KB
// smaller. PKCS7_verify finds the signer by issuer and serial number among
// the certificates the device is configured with and, with PKCS7_NOCHAIN,
// checks no key usage of it. The OSP modules of OpenSIPS and Kamailio
// base64-encode a token into 2048 bytes (OSPPBase64Encode wants twice the
// input): only tokens of 1024 bytes or less reach the terminating gateway.
//
// Key may be any crypto.Signer for ECDSA (P-256, P-384, P-521) or RSA
// (2048 bits or more). A TokenSigner is safe for concurrent use when its
// Key is (the standard library keys are).
type TokenSigner struct {
	Cert  *x509.Certificate
	Key   crypto.Signer
	Chain []*x509.Certificate
	// CASigned: Cert is the CA's own certificate; it is not embedded
	// (verifiers must hold it: Verifier.CASigners), nor is Chain.
	CASigned bool
}

// Sign wraps info (TokenInfo.Encode's output) in CMS SignedData and returns
// the DER.
func (s *TokenSigner) Sign(info []byte) ([]byte, error) {
	if s == nil || s.Cert == nil || s.Key == nil {
		return nil, errors.New("osp: token signer without certificate or key")
	}
	sd, err := pkcs7.NewSignedData(info)
	if err != nil {
		return nil, fmt.Errorf("osp: sign token: %w", err)
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if s.CASigned {
		if len(s.Chain) > 0 {
			return nil, errors.New("osp: a CA-signed token embeds no certificates: Chain must be empty")
		}
		if err := sd.SignWithoutAttr(s.Cert, s.Key, pkcs7.SignerInfoConfig{}); err != nil {
			return nil, fmt.Errorf("osp: sign token: %w", err)
		}
		return finishWithoutCertificates(sd)
	}
	if err := sd.AddSigner(s.Cert, s.Key, pkcs7.SignerInfoConfig{}); err != nil {
		return nil, fmt.Errorf("osp: sign token: %w", err)
	}
	for _, c := range s.Chain {
		sd.AddCertificate(c)
	}
	der, err := sd.Finish()
	if err != nil {
		return nil, fmt.Errorf("osp: sign token: %w", err)
	}
	return der, nil
}

// contentInfo is pkcs7's ContentInfo, which is unexported.
type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"explicit,optional,tag:0"`
}

// finishWithoutCertificates is pkcs7's SignedData.Finish without its first
// step, which always fills the certificates field with the signer's
// certificate (the list is private). Left zero, the optional field is
// omitted by encoding/asn1; the rest is Finish's marshalling as is.
func finishWithoutCertificates(sd *pkcs7.SignedData) ([]byte, error) {
	inner, err := asn1.Marshal(*sd.GetSignedData())
	if err != nil {
		return nil, fmt.Errorf("osp: sign token: %w", err)
	}
	der, err := asn1.Marshal(contentInfo{
		ContentType: pkcs7.OIDSignedData,
		Content:     asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, Bytes: inner, IsCompound: true},
	})
	if err != nil {
		return nil, fmt.Errorf("osp: sign token: %w", err)
	}
	return der, nil
}

// Check reports whether the signer can produce tokens devices accept at
// now:
//   - the key matches the certificate and is of a supported type;
//   - the certificate is valid at now;
//   - its KeyUsage, when present, allows digitalSignature (not checked
//     with CASigned: PKCS7_verify with PKCS7_NOCHAIN checks no usage, and
//     a CA certificate has certSign);
//   - its ExtKeyUsage, when present, includes emailProtection or
//     anyExtendedKeyUsage;
//   - when roots is not nil, it chains to one of roots directly, without
//     intermediates, as PKCS7_NOCHAIN demands.
//
// OpenSSL's PKCS7_verify with PKCS7_NOCHAIN sets no purpose, but CMS_verify
// (`openssl cms -verify`, and verifiers that build chains) checks the
// S/MIME signing purpose: a certificate whose ExtKeyUsage is only
// clientAuth/serverAuth fails there with "unsupported certificate purpose".
func (s *TokenSigner) Check(roots *x509.CertPool, now time.Time) error {
	if s == nil || s.Cert == nil || s.Key == nil {
		return errors.New("osp: token signer without certificate or key")
	}
	c := s.Cert
	pub, ok := s.Key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(c.PublicKey) {
		return errors.New("osp: token key does not match the token certificate")
	}
	switch k := c.PublicKey.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return fmt.Errorf("osp: token key: curve %s is not supported (P-256, P-384, P-521)", k.Curve.Params().Name)
		}
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("osp: token key: RSA %d bits, need 2048 or more", k.N.BitLen())
		}
	default:
		return fmt.Errorf("osp: token key: %T is not supported (ECDSA or RSA)", c.PublicKey)
	}
	if now.Before(c.NotBefore) || now.After(c.NotAfter) {
		return fmt.Errorf("osp: token certificate valid %s to %s, not at %s",
			c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if err := checkSignerUsage(c); err != nil && !s.CASigned {
		return fmt.Errorf("osp: token certificate %w", err)
	}
	if roots != nil {
		if _, err := c.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			return fmt.Errorf("osp: token certificate does not chain directly to the CA devices hold: %w", err)
		}
	}
	return nil
}
