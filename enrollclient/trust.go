package enrollclient

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/md5"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
)

// Fingerprint is the SHA-256 of the certificate's DER in colon-separated
// upper-case hex ("AB:CD:…"), the form an operator reads out of band.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return formatFingerprint(sum[:])
}

func formatFingerprint(b []byte) string {
	const hexd = "0123456789ABCDEF"
	out := make([]byte, 0, 3*len(b))
	for i, c := range b {
		if i > 0 {
			out = append(out, ':')
		}
		out = append(out, hexd[c>>4], hexd[c&15])
	}
	return string(out)
}

// ParseFingerprint reads a SHA-256 fingerprint given out of band: 64 hex
// digits, upper or lower case, with or without ':' (or space) separators,
// optionally prefixed "sha256:" / "SHA-256=". It returns the canonical
// colon-hex upper-case form.
func ParseFingerprint(s string) (string, error) {
	t := strings.TrimSpace(s)
	for _, p := range []string{"sha256:", "sha-256:", "sha256=", "sha-256="} {
		if len(t) > len(p) && strings.EqualFold(t[:len(p)], p) {
			t = t[len(p):]
			break
		}
	}
	t = strings.NewReplacer(":", "", " ", "").Replace(t)
	b, err := hex.DecodeString(t)
	if err != nil || len(b) != sha256.Size {
		return "", configErr("CA fingerprint %q is not a SHA-256 fingerprint (64 hex digits, colons optional)", s)
	}
	return formatFingerprint(b), nil
}

// CheckCA makes the trust decision of Fig. 3B step 340 for the CA
// certificate the server sent, before any key is generated or sent:
//
//   - with CAFingerprint set (or a pin carried over from a saved pending
//     request or ca.pem, see Enroll), the certificate must match it, else
//     *FingerprintMismatchError;
//   - without a pin, TrustOnFirstUse accepts it, else Confirm is asked; with
//     neither, or when Confirm says no, *UntrustedCAError carries the
//     fingerprint to verify out of band.
//
// It also refuses a certificate that is not a CA or is outside its validity.
func (c *Client) CheckCA(ca *x509.Certificate) error {
	pin := ""
	if c.CAFingerprint != "" {
		p, err := ParseFingerprint(c.CAFingerprint)
		if err != nil {
			return err
		}
		pin = p
	}
	return c.checkCA(ca, pin)
}

func (c *Client) checkCA(ca *x509.Certificate, pin string) error {
	fp := Fingerprint(ca)
	if pin != "" {
		if fp != pin {
			return &FingerprintMismatchError{Want: pin, Got: fp}
		}
	} else if !c.TrustOnFirstUse {
		if c.Confirm == nil {
			return &UntrustedCAError{Fingerprint: fp, Subject: ca.Subject.String()}
		}
		if !c.Confirm(fp, ca) {
			return &UntrustedCAError{Fingerprint: fp, Subject: ca.Subject.String(), Refused: true}
		}
	}
	if err := usableCA(ca, c.now()); err != nil {
		return fmt.Errorf("%w: CA certificate %s (SHA-256 %s): %v", ErrProtocol, printable(ca.Subject.String()), fp, err)
	}
	return nil
}

func usableCA(ca *x509.Certificate, now time.Time) error {
	if ca.Version >= 3 && !(ca.BasicConstraintsValid && ca.IsCA) {
		return errors.New("not a CA certificate (basic constraints)")
	}
	if ca.KeyUsage != 0 && ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		return errors.New("not allowed to sign certificates (key usage)")
	}
	if now.After(ca.NotAfter) {
		return fmt.Errorf("expired on %s", ca.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(ca.NotBefore) {
		return fmt.Errorf("not valid before %s", ca.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}

// VerifyIssued checks a certificate the server issued before anything is
// saved: its public key is the device key's; it names the device (CN or
// SAN); it chains to ca — x509 Verify with ca as the only root and
// ExtKeyUsageClientAuth, or, when that fails, ca is its direct issuer
// (issuer name = CA subject, signature by the CA key, CA allowed to sign,
// certificate usable for client auth); and it is valid now. The
// direct-issuer path also accepts MD5/SHA-1 signatures, which crypto/x509
// refuses and legacy clearinghouse CAs still make; trust does not rest on
// that signature but on the pinned CA fetched over verified TLS. Errors are
// *CertificateError.
//
// A certificate that passes every check but the last — not yet valid, or
// expired, at now — is the right certificate seen through a wrong clock
// (most likely): its error has NotValidNow set and matches ErrNotValidNow
// as well as ErrBadCertificate. The chain is then checked as of the
// certificate's NotBefore, so that a wrong CA is still told apart.
func VerifyIssued(cert *x509.Certificate, pub crypto.PublicKey, ca *x509.Certificate, deviceName string, now time.Time) error {
	if !samePublicKey(pub, cert.PublicKey) {
		return &CertificateError{Reason: "its public key is not this device's key"}
	}
	if deviceName != "" && !namesDevice(cert, deviceName) {
		return &CertificateError{Reason: fmt.Sprintf("it does not name the device %q (subject %s)", deviceName, printable(cert.Subject.String()))}
	}
	validNow := !now.After(cert.NotAfter) && !now.Before(cert.NotBefore)
	at := now
	if !validNow {
		at = cert.NotBefore
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	_, verr := cert.Verify(x509.VerifyOptions{
		Roots:       roots,
		CurrentTime: at,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if verr != nil {
		if err := directIssuer(cert, ca, at); err != nil {
			return &CertificateError{Reason: "it does not chain to the CA certificate (SHA-256 " + Fingerprint(ca) + ")", Err: errors.Join(verr, err)}
		}
	}
	if !validNow {
		return &CertificateError{NotValidNow: true, Reason: fmt.Sprintf("it is not valid now, %s by this device's clock (valid %s to %s)",
			now.UTC().Format(time.RFC3339), cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))}
	}
	return nil
}

func namesDevice(cert *x509.Certificate, name string) bool {
	norm := func(s string) string { return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s), ".")) }
	n := norm(name)
	if norm(cert.Subject.CommonName) == n {
		return true
	}
	if slices.ContainsFunc(cert.DNSNames, func(d string) bool { return norm(d) == n }) {
		return true
	}
	if ip := net.ParseIP(name); ip != nil {
		return slices.ContainsFunc(cert.IPAddresses, ip.Equal)
	}
	return false
}

func directIssuer(cert, ca *x509.Certificate, now time.Time) error {
	if !bytes.Equal(cert.RawIssuer, ca.RawSubject) {
		return fmt.Errorf("issuer %q is not the CA %q", cert.Issuer, ca.Subject)
	}
	if err := usableCA(ca, now); err != nil {
		return fmt.Errorf("CA: %v", err)
	}
	if len(cert.ExtKeyUsage) > 0 && !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) &&
		!slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageAny) {
		return errors.New("certificate is not usable for client authentication (extended key usage)")
	}
	if err := cert.CheckSignatureFrom(ca); err == nil {
		return nil
	} else if !legacySignature(cert.SignatureAlgorithm) {
		return err
	}
	return checkLegacySignature(cert, ca.PublicKey)
}

func legacySignature(a x509.SignatureAlgorithm) bool {
	return a == x509.MD5WithRSA || a == x509.SHA1WithRSA || a == x509.ECDSAWithSHA1
}

// checkLegacySignature verifies MD5/SHA-1 signatures that crypto/x509
// refuses to check.
func checkLegacySignature(cert *x509.Certificate, pub crypto.PublicKey) error {
	var (
		h      crypto.Hash
		digest []byte
	)
	switch cert.SignatureAlgorithm {
	case x509.MD5WithRSA:
		s := md5.Sum(cert.RawTBSCertificate)
		h, digest = crypto.MD5, s[:]
	default:
		s := sha1.Sum(cert.RawTBSCertificate)
		h, digest = crypto.SHA1, s[:]
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if cert.SignatureAlgorithm == x509.ECDSAWithSHA1 {
			return errors.New("signature algorithm does not match the CA key")
		}
		return rsa.VerifyPKCS1v15(k, h, digest, cert.Signature)
	case *ecdsa.PublicKey:
		if cert.SignatureAlgorithm != x509.ECDSAWithSHA1 || !ecdsa.VerifyASN1(k, digest, cert.Signature) {
			return errors.New("ECDSA signature verification failed")
		}
		return nil
	}
	return fmt.Errorf("unsupported CA key %T", pub)
}
