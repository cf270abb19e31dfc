package ca

import (
	"bytes"
	"crypto"
	"crypto/md5"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"net"
	"time"

	ctx509 "github.com/google/certificate-transparency-go/x509"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// The legacy profile exists for OSP Toolkit clients (see doc.go). Their
// certificate code (src/ospx509.c, src/ospasn1parse.c, src/ospcryptowrap.c):
//   - verifies every signature with RSA and MD5 hard-coded;
//   - finds a certificate's issuer by byte-comparing its issuer Name with the
//     CA's subject Name, then checks the CA is self-signed the same way;
//   - parses Name attribute values as PrintableString only (the parse table
//     lists T61String and IA5String too, but only its first rule is tried);
//   - reads validity dates as 13-character UTCTime only (no GeneralizedTime);
//   - compares the certificate's SubjectPublicKeyInfo byte for byte with the
//     one in its certificate request.
// crypto/x509 refuses to sign with MD5, so these certificates are produced
// with certificate-transparency-go's x509 fork, which still does.

var (
	oidCommonName   = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidSerialNumber = asn1.ObjectIdentifier{2, 5, 4, 5}
	oidOrganization = asn1.ObjectIdentifier{2, 5, 4, 10}
)

// isPrintableString reports whether s uses only the ASN.1 PrintableString
// alphabet.
func isPrintableString(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == ' ', c == '\'', c == '(', c == ')', c == '+', c == ',', c == '-', c == '.', c == '/', c == ':', c == '=', c == '?':
		default:
			return false
		}
	}
	return true
}

type rdn struct {
	oid asn1.ObjectIdentifier
	val string
}

// printableName encodes a Name whose attribute values are all PrintableString,
// one attribute per RDN, in the given order.
func printableName(attrs ...rdn) ([]byte, error) {
	var b cryptobyte.Builder
	var err error
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, a := range attrs {
			if a.val == "" {
				continue
			}
			if !isPrintableString(a.val) {
				err = fmt.Errorf("ca: name value %q is not a PrintableString", a.val)
				return
			}
			b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(a.oid)
					b.AddASN1(cbasn1.PrintableString, func(b *cryptobyte.Builder) {
						b.AddBytes([]byte(a.val))
					})
				})
			})
		}
	})
	if err != nil {
		return nil, err
	}
	return b.Bytes()
}

func legacyRootCert(cfg Config, key *rsa.PrivateKey, cn, tag string, notBefore, notAfter time.Time) ([]byte, error) {
	serial, err := randomSerial(cfg.Rand)
	if err != nil {
		return nil, err
	}
	name, err := printableName(rdn{oidOrganization, cfg.Organization}, rdn{oidCommonName, cn}, rdn{oidSerialNumber, tag})
	if err != nil {
		return nil, err
	}
	spki, err := ctx509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	ski, err := keyID(spki)
	if err != nil {
		return nil, err
	}
	tmpl := &ctx509.Certificate{
		SerialNumber:          serial,
		RawSubject:            name,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              ctx509.KeyUsageCertSign | ctx509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		SubjectKeyId:          ski,
		SignatureAlgorithm:    ctx509.MD5WithRSA,
	}
	der, err := ctx509.CreateCertificate(cfg.Rand, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("ca: creating legacy CA certificate: %w", err)
	}
	if err := verifyMD5Cert(der, &key.PublicKey); err != nil {
		return nil, err
	}
	return der, nil
}

// signLegacy issues a device certificate signed with md5WithRSAEncryption.
func (c *CA) signLegacy(t *leafTemplate) ([]byte, error) {
	if t.notAfter.After(utcTimeLimit) {
		t.notAfter = utcTimeLimit
	}
	cn := t.device
	subject, err := printableName(rdn{oidCommonName, cn})
	if err != nil {
		return nil, errorf(ErrBadDeviceName, "device name %q cannot be encoded as a PrintableString, which legacy clients require", cn)
	}
	eku := []ctx509.ExtKeyUsage{ctx509.ExtKeyUsageClientAuth}
	if t.serverAuth {
		eku = append(eku, ctx509.ExtKeyUsageServerAuth)
	}
	tmpl := &ctx509.Certificate{
		SerialNumber:          t.serial,
		RawSubject:            subject,
		NotBefore:             t.notBefore,
		NotAfter:              t.notAfter,
		KeyUsage:              ctx509.KeyUsage(t.keyUsage),
		ExtKeyUsage:           eku,
		BasicConstraintsValid: true,
		SubjectKeyId:          t.ski,
		SignatureAlgorithm:    ctx509.MD5WithRSA,
		CRLDistributionPoints: c.cfg.CRLURLs,
		IssuingCertificateURL: c.cfg.IssuerURLs,
	}
	if t.ip != nil {
		tmpl.IPAddresses = []net.IP{t.ip}
	} else {
		tmpl.DNSNames = []string{t.device}
	}
	der, err := ctx509.CreateCertificate(c.cfg.Rand, tmpl, c.ctIssue, t.pub, c.signer)
	if err != nil {
		return nil, fmt.Errorf("ca: creating legacy certificate: %w", err)
	}
	if err := verifyMD5Cert(der, c.issuer.PublicKey); err != nil {
		return nil, err
	}
	return der, nil
}

// splitSigned splits a SIGNED{} structure (certificate, CSR, CRL) into its
// to-be-signed bytes, signature algorithm OID and signature.
func splitSigned(der []byte) (tbs []byte, algOID asn1.ObjectIdentifier, sig []byte, err error) {
	in := cryptobyte.String(der)
	var outer, alg cryptobyte.String
	var tbsRaw cryptobyte.String
	var bits asn1.BitString
	var oid asn1.ObjectIdentifier
	if !in.ReadASN1(&outer, cbasn1.SEQUENCE) || !in.Empty() ||
		!outer.ReadASN1Element(&tbsRaw, cbasn1.SEQUENCE) ||
		!outer.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&oid) ||
		!outer.ReadASN1BitString(&bits) || !outer.Empty() || bits.BitLength%8 != 0 {
		return nil, nil, nil, errors.New("malformed signed structure")
	}
	return tbsRaw, oid, bits.Bytes, nil
}

// verifyMD5Cert checks an MD5-RSA signature (crypto/x509 refuses to), so a
// faulty signer can never hand a device a certificate it will reject.
func verifyMD5Cert(der []byte, pub crypto.PublicKey) error {
	rpub, ok := pub.(*rsa.PublicKey)
	if !ok {
		return errors.New("ca: legacy CA key is not RSA")
	}
	tbs, _, sig, err := splitSigned(der)
	if err != nil {
		return fmt.Errorf("ca: self-check of legacy certificate: %w", err)
	}
	h := md5.Sum(tbs)
	if err := rsa.VerifyPKCS1v15(rpub, crypto.MD5, h[:], sig); err != nil {
		return fmt.Errorf("ca: self-check of legacy certificate signature failed: %w", err)
	}
	return nil
}

// sameBytes is bytes.Equal; named for the SPKI self-check's intent.
func sameBytes(a, b []byte) bool { return bytes.Equal(a, b) }

// checkLegacyRoot checks what the OSP Toolkit's enroll requires of the CA
// certificate getcacert hands it (an operator's certificate may lack it;
// generated ones have it): self-issued and self-signed (it checks both by
// itself), names of PrintableString values only, UTCTime dates.
func checkLegacyRoot(root *x509.Certificate) error {
	if !bytes.Equal(root.RawSubject, root.RawIssuer) {
		return errors.New("ca: the legacy profile's CA certificate must be self-issued (its issuer name equal to its subject name)")
	}
	if err := verifyMD5Cert(root.Raw, root.PublicKey); err != nil {
		return fmt.Errorf("ca: the legacy profile's CA certificate must be self-signed: %w", err)
	}
	for _, n := range []struct {
		what string
		raw  []byte
	}{{"subject", root.RawSubject}, {"issuer", root.RawIssuer}} {
		if err := checkPrintableName(n.raw); err != nil {
			return fmt.Errorf("ca: the legacy profile's CA certificate %s: %w (the OSP Toolkit reads PrintableString only; with openssl req, set string_mask = nombstr)", n.what, err)
		}
	}
	for _, t := range []time.Time{root.NotBefore, root.NotAfter} {
		if t.Year() < 1950 || t.After(utcTimeLimit) {
			return fmt.Errorf("ca: the legacy profile's CA certificate is valid %s to %s: the OSP Toolkit reads UTCTime dates only (1950 to 2049)",
				root.NotBefore.UTC().Format(time.DateOnly), root.NotAfter.UTC().Format(time.DateOnly))
		}
	}
	if err := checkUTCTimeValidity(root.RawTBSCertificate); err != nil {
		return fmt.Errorf("ca: the legacy profile's CA certificate: %w (the OSP Toolkit reads validity dates as 13-character UTCTime YYMMDDHHMMSSZ only)", err)
	}
	return nil
}

// checkUTCTimeValidity reports a validity date of a DER TBSCertificate that
// is not a 13-character UTCTime (YYMMDDHHMMSSZ): crypto/x509 also parses
// GeneralizedTime, UTCTime without seconds and with a UTC offset, none of
// which the OSP Toolkit reads.
func checkUTCTimeValidity(tbs []byte) error {
	in := cryptobyte.String(tbs)
	var body, validity cryptobyte.String
	if !in.ReadASN1(&body, cbasn1.SEQUENCE) ||
		!body.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!body.SkipASN1(cbasn1.INTEGER) || !body.SkipASN1(cbasn1.SEQUENCE) || !body.SkipASN1(cbasn1.SEQUENCE) ||
		!body.ReadASN1(&validity, cbasn1.SEQUENCE) {
		return errors.New("malformed validity")
	}
	for _, what := range []string{"notBefore", "notAfter"} {
		var v cryptobyte.String
		var tag cbasn1.Tag
		if !validity.ReadAnyASN1(&v, &tag) {
			return errors.New("malformed validity")
		}
		if tag != cbasn1.UTCTime {
			return fmt.Errorf("its %s is not a UTCTime (ASN.1 tag %d)", what, tag)
		}
		if len(v) != 13 || v[12] != 'Z' {
			return fmt.Errorf("its %s %q is not a UTCTime of the form YYMMDDHHMMSSZ", what, string(v))
		}
	}
	return nil
}

// checkPrintableName reports an attribute value of a DER Name that is not a
// PrintableString.
func checkPrintableName(raw []byte) error {
	in := cryptobyte.String(raw)
	var rdns cryptobyte.String
	if !in.ReadASN1(&rdns, cbasn1.SEQUENCE) || !in.Empty() {
		return errors.New("malformed name")
	}
	for !rdns.Empty() {
		var set cryptobyte.String
		if !rdns.ReadASN1(&set, cbasn1.SET) {
			return errors.New("malformed name")
		}
		for !set.Empty() {
			var atv, val cryptobyte.String
			var oid asn1.ObjectIdentifier
			var tag cbasn1.Tag
			if !set.ReadASN1(&atv, cbasn1.SEQUENCE) || !atv.ReadASN1ObjectIdentifier(&oid) || !atv.ReadAnyASN1(&val, &tag) {
				return errors.New("malformed name")
			}
			if tag != cbasn1.PrintableString {
				return fmt.Errorf("attribute %s is not a PrintableString (ASN.1 tag %d)", oid, tag)
			}
		}
	}
	return nil
}
