package ca

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	ctx509 "github.com/google/certificate-transparency-go/x509"
	"github.com/google/certificate-transparency-go/x509util"
)

// Fingerprint returns the SHA-256 of der in colon-separated upper-case hex
// ("AB:CD:..."), the form people compare over the phone (seed Fig. 3B, step
// 340: the device's administrator verifies the CA certificate).
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	const hexdig = "0123456789ABCDEF"
	b := make([]byte, 0, len(sum)*3-1)
	for i, x := range sum {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, hexdig[x>>4], hexdig[x&0xf])
	}
	return string(b)
}

// FingerprintHex returns the SHA-256 of der as lower-case hex without colons.
func FingerprintHex(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// Describe returns a human-readable dump of a certificate, certificate
// request or CRL, given as DER or PEM (a request may also be base64, see
// DecodeCSR). Certificates and CRLs are printed by certificate-transparency-go's
// x509util, whose parser also reads what crypto/x509 rejects (MD5 signatures,
// odd encodings of seed-era devices).
func Describe(der []byte) (string, error) {
	if len(der) == 0 {
		return "", errors.New("ca: Describe: empty input")
	}
	if i := bytes.Index(der, []byte("-----BEGIN")); i >= 0 {
		blk, _ := pem.Decode(der[i:])
		if blk == nil {
			return "", errors.New("ca: Describe: malformed PEM")
		}
		der = blk.Bytes
	} else if der[0] != 0x30 {
		d, err := DecodeCSR(der)
		if err != nil {
			return "", errors.New("ca: Describe: input is neither DER, PEM nor base64")
		}
		der = d
	}
	if cert, err := ctx509.ParseCertificate(der); cert != nil && (err == nil || isNonFatal(err)) {
		return x509util.CertificateToString(cert) + fingerprintLine(der), nil
	}
	if req, err := ctx509.ParseCertificateRequest(der); req != nil && (err == nil || isNonFatal(err)) {
		return csrToString(req) + fingerprintLine(der), nil
	}
	if crl, err := ctx509.ParseCertificateListDER(der); crl != nil && err == nil {
		return x509util.CRLToString(crl) + fingerprintLine(der), nil
	}
	return "", errors.New("ca: Describe: not a certificate, certificate request or CRL")
}

func isNonFatal(err error) bool {
	var nfe ctx509.NonFatalErrors
	return errors.As(err, &nfe)
}

func fingerprintLine(der []byte) string {
	return "\n    SHA-256 Fingerprint: " + Fingerprint(der) + "\n"
}

// csrToString renders a request in the style of x509util.CertificateToString
// (which has no request counterpart in certificate-transparency-go v1.4).
func csrToString(r *ctx509.CertificateRequest) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Certificate Request:\n")
	fmt.Fprintf(&b, "    Data:\n")
	fmt.Fprintf(&b, "        Version: %d (%#x)\n", r.Version+1, r.Version)
	fmt.Fprintf(&b, "        Subject: %s\n", x509util.NameToString(r.Subject))
	fmt.Fprintf(&b, "        Subject Public Key Info:\n")
	fmt.Fprintf(&b, "            Public Key Algorithm: %s\n", r.PublicKeyAlgorithm)
	switch k := r.PublicKey.(type) {
	case *rsa.PublicKey:
		fmt.Fprintf(&b, "                Public Key: (%d bit)\n", k.N.BitLen())
		fmt.Fprintf(&b, "                Exponent: %d (%#x)\n", k.E, k.E)
	case *ecdsa.PublicKey:
		fmt.Fprintf(&b, "                Public Key: (%d bit)\n", k.Curve.Params().BitSize)
		fmt.Fprintf(&b, "                NIST CURVE: %s\n", k.Curve.Params().Name)
	case ed25519.PublicKey:
		fmt.Fprintf(&b, "                Public Key: (256 bit)\n")
	}
	if len(r.RawSubjectPublicKeyInfo) > 0 {
		sum := sha256.Sum256(r.RawSubjectPublicKeyInfo)
		fmt.Fprintf(&b, "                SPKI SHA-256: %s\n", hex.EncodeToString(sum[:]))
	}
	//lint:ignore SA1019 the dump lists every attribute the CSR has (challengePassword too), not only its extensions
	attrs := r.Attributes
	if len(attrs) > 0 {
		fmt.Fprintf(&b, "        Attributes:\n")
		for _, a := range attrs {
			fmt.Fprintf(&b, "            %s\n", a.Type)
		}
	}
	var names []string
	for _, n := range r.DNSNames {
		names = append(names, "DNS:"+n)
	}
	for _, n := range r.IPAddresses {
		names = append(names, "IP Address:"+n.String())
	}
	for _, n := range r.EmailAddresses {
		names = append(names, "email:"+n)
	}
	for _, n := range r.URIs {
		names = append(names, "URI:"+n.String())
	}
	if len(names) > 0 || len(r.Extensions) > 0 {
		fmt.Fprintf(&b, "        Requested Extensions:\n")
		for _, e := range r.Extensions {
			crit := ""
			if e.Critical {
				crit = " critical"
			}
			fmt.Fprintf(&b, "            %s%s\n", e.Id, crit)
		}
		if len(names) > 0 {
			fmt.Fprintf(&b, "            X509v3 Subject Alternative Name:\n                %s\n", strings.Join(names, ", "))
		}
	}
	fmt.Fprintf(&b, "    Signature Algorithm: %s\n", r.SignatureAlgorithm)
	return b.String()
}
