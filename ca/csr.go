package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"strings"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// MaxCSRSize bounds DecodeCSR's input and the DER it returns (an RSA-8192
// request is about 2.3 KiB of DER, 3.2 KiB of PEM).
const MaxCSRSize = 16 << 10

// MaxRSABits bounds device RSA keys, so a request cannot make the server
// spend seconds on one signature check.
const MaxRSABits = 8192

// CSR is a decoded certificate request whose proof of possession has been
// verified and whose key passed the key policy.
type CSR struct {
	Raw             []byte           // DER
	PublicKey       crypto.PublicKey // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	PublicKeySHA256 string           // hex SHA-256 of the SubjectPublicKeyInfo DER
	// SignatureAlgorithm as named by crypto/x509 ("SHA256-RSA", "MD5-RSA", ...).
	SignatureAlgorithm string
	Subject            string // RFC 2253 form of the requested subject
	DNSNames           []string
	// The names the request carries, which Sign checks against the
	// device, and a short description of its key.
	CommonName     string
	IPAddresses    []net.IP
	EmailAddresses []string
	URIs           []string
	KeyAlgorithm   string // "RSA-2048", "ECDSA-P256", "Ed25519"
	// Legacy is true when the signature used MD5 or SHA-1 and was accepted
	// under Policy.Legacy.
	Legacy bool

	rawSPKI []byte
}

var (
	oidSigMD5RSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 4}
	oidSigMD2RSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 2}
)

// ParseCSR decodes a certificate request (DER; PEM or base64 input is passed
// through DecodeCSR first), applies the key policy, refuses signature
// algorithms the policy does not allow and verifies the request's signature
// (proof of possession). It does not check names: Sign does, against the
// device.
func ParseCSR(der []byte, p Policy) (*CSR, error) {
	if len(der) == 0 || der[0] != 0x30 {
		d, err := DecodeCSR(der)
		if err != nil {
			return nil, err
		}
		der = d
	}
	if len(der) > MaxCSRSize {
		return nil, errorf(ErrMalformedCSR, "certificate request is %d bytes, more than %d", len(der), MaxCSRSize)
	}
	// crypto/x509 parses requests signed with any algorithm (MD5 included);
	// it only refuses to verify MD5, which is done below over the raw TBS.
	// (certificate-transparency-go's request parser was considered for
	// seed-era encodings; it treats the same problems as fatal, so it would
	// add nothing here.)
	req, err := x509.ParseCertificateRequest(der)
	if err != nil {
		if strings.Contains(err.Error(), "unsupported") {
			// a request crypto/x509 reads but whose key it does not
			// support ("x509: unsupported elliptic curve": secp256k1, …)
			return nil, errorf(ErrKeyPolicy, "certificate request: %v", err)
		}
		return nil, errorf(ErrMalformedCSR, "certificate request: %v", err)
	}
	csr := csrFromStd(req)
	if csr.rawSPKI == nil {
		return nil, errorf(ErrMalformedCSR, "certificate request has no public key")
	}
	csr.Raw = der
	sum := sha256.Sum256(csr.rawSPKI)
	csr.PublicKeySHA256 = hex.EncodeToString(sum[:])

	if csr.KeyAlgorithm, err = checkKey(csr.PublicKey, p); err != nil {
		return nil, err
	}
	// One key, one encoding: crypto/x509 ignores bytes after an RSA key in
	// its BIT STRING, so one key would have many hashes (request ids, the
	// compromised-key check), and a certificate, which carries the DER
	// encoding, could never be signed for such a request.
	if canon, err := x509.MarshalPKIXPublicKey(csr.PublicKey); err != nil || !bytes.Equal(canon, csr.rawSPKI) {
		return nil, errorf(ErrMalformedCSR, "certificate request: public key not in its DER encoding")
	}

	if err := checkCSRSignature(csr, req, der, p); err != nil {
		return nil, err
	}
	return csr, nil
}

// checkCSRSignature refuses the signature algorithms p does not allow and
// verifies the request's signature (proof of possession). crypto/x509
// will not verify MD5 or SHA-1, so those are verified here over the raw
// TBS. It sets csr.SignatureAlgorithm, and csr.Legacy for an MD5 or SHA-1
// signature.
func checkCSRSignature(csr *CSR, req *x509.CertificateRequest, der []byte, p Policy) error {
	tbs, sig := req.RawTBSCertificateRequest, req.Signature
	switch req.SignatureAlgorithm {
	case x509.MD5WithRSA:
		csr.SignatureAlgorithm = "MD5-RSA"
		if !p.Legacy {
			return errorf(ErrLegacyAlgorithm, "CSR signed with MD5-RSA; enable the legacy policy to accept it")
		}
		pub, ok := csr.PublicKey.(*rsa.PublicKey)
		if !ok {
			return errorf(ErrUnsupportedAlgorithm, "CSR signed with MD5-RSA but its key is %s", csr.KeyAlgorithm)
		}
		h := md5.Sum(tbs)
		if err := rsa.VerifyPKCS1v15(pub, crypto.MD5, h[:], sig); err != nil {
			return errorf(ErrBadSignature, "CSR signature (MD5-RSA) does not verify: the requester does not hold the private key, or the request was altered")
		}
		csr.Legacy = true
	case x509.SHA1WithRSA, x509.ECDSAWithSHA1:
		name := "SHA1-RSA"
		if req.SignatureAlgorithm == x509.ECDSAWithSHA1 {
			name = "ECDSA-SHA1"
		}
		csr.SignatureAlgorithm = name
		if !p.Legacy {
			return errorf(ErrLegacyAlgorithm, "CSR signed with %s; enable the legacy policy to accept it", name)
		}
		h := sha1.Sum(tbs)
		var verr error
		switch pub := csr.PublicKey.(type) {
		case *rsa.PublicKey:
			if name != "SHA1-RSA" {
				return errorf(ErrUnsupportedAlgorithm, "CSR signed with %s but its key is %s", name, csr.KeyAlgorithm)
			}
			verr = rsa.VerifyPKCS1v15(pub, crypto.SHA1, h[:], sig)
		case *ecdsa.PublicKey:
			if name != "ECDSA-SHA1" {
				return errorf(ErrUnsupportedAlgorithm, "CSR signed with %s but its key is %s", name, csr.KeyAlgorithm)
			}
			if !ecdsa.VerifyASN1(pub, h[:], sig) {
				verr = errBadSig
			}
		default:
			return errorf(ErrUnsupportedAlgorithm, "CSR signed with %s but its key is %s", name, csr.KeyAlgorithm)
		}
		if verr != nil {
			return errorf(ErrBadSignature, "CSR signature (%s) does not verify: the requester does not hold the private key, or the request was altered", name)
		}
		csr.Legacy = true
	case x509.MD2WithRSA:
		return errorf(ErrUnsupportedAlgorithm, "CSR signed with MD2-RSA, which is never accepted")
	case x509.UnknownSignatureAlgorithm, x509.DSAWithSHA1, x509.DSAWithSHA256:
		oid := "unknown"
		if _, o, _, err := splitSigned(der); err == nil {
			if o.Equal(oidSigMD2RSA) {
				return errorf(ErrUnsupportedAlgorithm, "CSR signed with MD2-RSA, which is never accepted")
			}
			oid = o.String()
		}
		if req.SignatureAlgorithm != x509.UnknownSignatureAlgorithm {
			oid = req.SignatureAlgorithm.String()
		}
		return errorf(ErrUnsupportedAlgorithm, "CSR signature algorithm %s is not supported", oid)
	default:
		csr.SignatureAlgorithm = req.SignatureAlgorithm.String()
		if err := req.CheckSignature(); err != nil {
			if isAlgMismatch(req.SignatureAlgorithm, csr.PublicKey) {
				return errorf(ErrUnsupportedAlgorithm, "CSR signature algorithm %s does not match its %s key", req.SignatureAlgorithm, csr.KeyAlgorithm)
			}
			return errorf(ErrBadSignature, "CSR signature (%s) does not verify: the requester does not hold the private key, or the request was altered", req.SignatureAlgorithm)
		}
	}
	return nil
}

var errBadSig = fmt.Errorf("signature mismatch")

func isAlgMismatch(alg x509.SignatureAlgorithm, pub crypto.PublicKey) bool {
	switch pub.(type) {
	case *rsa.PublicKey:
		switch alg {
		case x509.SHA256WithRSA, x509.SHA384WithRSA, x509.SHA512WithRSA, x509.SHA256WithRSAPSS, x509.SHA384WithRSAPSS, x509.SHA512WithRSAPSS:
			return false
		}
	case *ecdsa.PublicKey:
		switch alg {
		case x509.ECDSAWithSHA256, x509.ECDSAWithSHA384, x509.ECDSAWithSHA512:
			return false
		}
	case ed25519.PublicKey:
		return alg != x509.PureEd25519
	}
	return true
}

func csrFromStd(r *x509.CertificateRequest) *CSR {
	c := &CSR{
		PublicKey:      r.PublicKey,
		Subject:        r.Subject.String(),
		CommonName:     r.Subject.CommonName,
		DNSNames:       r.DNSNames,
		IPAddresses:    r.IPAddresses,
		EmailAddresses: r.EmailAddresses,
		rawSPKI:        r.RawSubjectPublicKeyInfo,
	}
	for _, u := range r.URIs {
		c.URIs = append(c.URIs, u.String())
	}
	return c
}

// checkKey applies the key policy and returns a short key description.
func checkKey(pub crypto.PublicKey, p Policy) (string, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		bits := k.N.BitLen()
		desc := fmt.Sprintf("RSA-%d", bits)
		minBits := p.MinRSABits
		if minBits == 0 {
			minBits = 2048
		}
		switch {
		case bits < 1024:
			return desc, errorf(ErrKeyPolicy, "%s key refused: RSA keys shorter than 1024 bits are never accepted (factorable)", desc)
		case bits > MaxRSABits:
			return desc, errorf(ErrKeyPolicy, "%s key refused: RSA keys longer than %d bits are not accepted", desc, MaxRSABits)
		case bits < minBits && !(p.AllowRSA1024 && bits >= 1024):
			if bits < 2048 {
				return desc, errorf(ErrKeyPolicy, "%s key refused: below the %d-bit minimum (allow RSA-1024 keys in the CA's policy, allow_rsa1024, for seed-era devices)", desc, minBits)
			}
			return desc, errorf(ErrKeyPolicy, "%s key refused: below the %d-bit minimum", desc, minBits)
		}
		if k.E < 3 || k.E%2 == 0 {
			return desc, errorf(ErrKeyPolicy, "%s key refused: invalid public exponent %d", desc, k.E)
		}
		// CA/Browser Forum: SHOULD be at least 2^16+1; small exponents
		// (3, 17) make lax PKCS#1 v1.5 verifiers forgeable. Seed-era
		// devices may have them: the legacy policy takes any odd one.
		if k.E < 65537 && !p.Legacy {
			return desc, errorf(ErrKeyPolicy, "%s key refused: public exponent %d is below 65537; enable the legacy policy to accept it", desc, k.E)
		}
		return desc, nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return "ECDSA-P256", nil
		case elliptic.P384():
			return "ECDSA-P384", nil
		case elliptic.P521():
			if p.AllowP521 {
				return "ECDSA-P521", nil
			}
			return "ECDSA-P521", errorf(ErrKeyPolicy, "ECDSA P-521 key refused: enable the AllowP521 policy to accept it")
		}
		name := "unknown"
		if k.Curve != nil && k.Curve.Params() != nil {
			name = k.Curve.Params().Name
		}
		return "ECDSA-" + name, errorf(ErrKeyPolicy, "ECDSA key on curve %s refused (accepted: P-256, P-384)", name)
	case ed25519.PublicKey:
		return "Ed25519", nil
	case nil:
		return "none", errorf(ErrKeyPolicy, "certificate request has an unsupported public key algorithm")
	}
	return fmt.Sprintf("%T", pub), errorf(ErrKeyPolicy, "%s key refused (accepted: RSA, ECDSA P-256/P-384, Ed25519)", keyTypeName(pub))
}

func keyTypeName(pub crypto.PublicKey) string {
	t := fmt.Sprintf("%T", pub)
	switch {
	case strings.HasSuffix(t, "dsa.PublicKey"):
		return "DSA"
	case strings.Contains(t, "ecdh."):
		return "ECDH"
	}
	return t
}

// DecodeCSR turns what a device sent into request DER. It accepts DER, PEM
// ("CERTIFICATE REQUEST" or "NEW CERTIFICATE REQUEST"), and base64 in the
// forms seen on the wire: with line breaks, spaces or indentation, with or
// without '=' padding, in the URL-safe alphabet ('-' and '_'), with '+'
// turned into ' ' by form decoding, or with leftover %XX escapes. Input and
// output are bounded by MaxCSRSize. The result is one complete DER SEQUENCE;
// whether it is a valid request is ParseCSR's business.
func DecodeCSR(b []byte) ([]byte, error) {
	if len(b) > MaxCSRSize {
		return nil, errorf(ErrMalformedCSR, "certificate request input is %d bytes, more than %d", len(b), MaxCSRSize)
	}
	if len(b) > 0 && b[0] == 0x30 {
		if isDERSequence(b) {
			return bytes.Clone(b), nil
		}
		return nil, errorf(ErrMalformedCSR, "certificate request: invalid DER")
	}
	// Spaces at the ends may be '+' signs that form decoding turned into
	// spaces (base64 can end in '+'): keep them for decodeLenientBase64.
	s := strings.Trim(string(b), "\r\n\t\v\f")
	if strings.TrimSpace(s) == "" {
		return nil, errorf(ErrMalformedCSR, "empty certificate request")
	}
	if i := strings.Index(s, "-----BEGIN"); i >= 0 {
		body, err := pemBody(s[i:])
		if err != nil {
			return nil, err
		}
		s = body
	}
	if strings.IndexByte(s, '%') >= 0 {
		if u, err := url.PathUnescape(s); err == nil {
			s = u
		}
	}
	if der, ok := decodeLenientBase64(s); ok {
		return der, nil
	}
	return nil, errorf(ErrMalformedCSR, "certificate request is neither DER, PEM nor base64 of a DER request")
}

// pemBody extracts the base64 body of the first request PEM block, leaving
// whitespace handling to decodeLenientBase64 (the body may have been through
// form decoding, which pem.Decode would reject).
func pemBody(s string) (string, error) {
	lines := strings.Split(strings.ReplaceAll(s, "\r", "\n"), "\n")
	var body []string
	in := false
	for _, ln := range lines {
		t := strings.TrimSpace(ln)
		if strings.HasPrefix(t, "-----BEGIN") {
			typ := strings.TrimSuffix(strings.TrimPrefix(t, "-----BEGIN "), "-----")
			if typ != "CERTIFICATE REQUEST" && typ != "NEW CERTIFICATE REQUEST" {
				return "", errorf(ErrMalformedCSR, "PEM block %q is not a certificate request", typ)
			}
			in = true
			continue
		}
		if !in {
			continue
		}
		if strings.HasPrefix(t, "-----END") {
			return strings.Join(body, "\n"), nil
		}
		if strings.Contains(t, ": ") {
			continue // RFC 1421 header
		}
		body = append(body, ln)
	}
	return "", errorf(ErrMalformedCSR, "PEM certificate request without END line")
}

// decodeLenientBase64 tries the interpretations of s in order of likelihood
// and returns the first that yields one complete DER SEQUENCE (so a wrong
// guess cannot pass unnoticed: the DER length must match exactly).
func decodeLenientBase64(s string) ([]byte, bool) {
	lines := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	joined := strings.Join(lines, "")
	// 1: every space is a '+' turned into ' ' by form decoding (including at
	// the start or end of a line).
	if der, ok := b64DER(strings.ReplaceAll(joined, " ", "+")); ok {
		return der, true
	}
	// 2: leading/trailing blanks of each line are indentation, interior
	// spaces are form-decoded '+'.
	trimmed := make([]string, len(lines))
	for i, ln := range lines {
		trimmed[i] = strings.Trim(ln, " \t")
	}
	if der, ok := b64DER(strings.ReplaceAll(strings.Join(trimmed, ""), " ", "+")); ok {
		return der, true
	}
	// 3: all spaces are formatting.
	if der, ok := b64DER(strings.ReplaceAll(joined, " ", "")); ok {
		return der, true
	}
	return nil, false
}

func b64DER(s string) ([]byte, bool) {
	s = strings.Map(func(r rune) rune {
		switch r {
		case '\t':
			return -1
		case '-':
			return '+'
		case '_':
			return '/'
		}
		return r
	}, s)
	s = strings.TrimRight(s, "=")
	if s == "" || base64.RawStdEncoding.DecodedLen(len(s)) > MaxCSRSize {
		return nil, false
	}
	// RawStdEncoding is not Strict: non-canonical trailing bits are accepted.
	der, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		return nil, false
	}
	if !isDERSequence(der) {
		return nil, false
	}
	return der, true
}

// isDERSequence reports whether b is exactly one ASN.1 SEQUENCE element.
func isDERSequence(b []byte) bool {
	in := cryptobyte.String(b)
	var seq cryptobyte.String
	return in.ReadASN1(&seq, cbasn1.SEQUENCE) && in.Empty()
}
