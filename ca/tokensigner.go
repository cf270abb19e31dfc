package ca

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"time"
)

// IssueTokenSigner issues the certificate of the clearinghouse's own key
// that signs OSP authorization tokens (CMS SignedData). Gateways check a
// signed token with OpenSSL's PKCS7_verify(..., PKCS7_NOCHAIN): the signer
// certificate embedded in the token must chain directly to the CA
// certificate they hold (this CA's issuer) and pass the S/MIME signing
// purpose, so it carries digitalSignature and no extended key usage.
//
// Both profiles sign it with SHA-256 (ECDSA or RSA): OpenSSL 3 refuses MD5
// in chains, and the toolkit's token check is OpenSSL's, not its own MD5
// code. The certificate is not recorded as a device's.
func (c *CA) IssueTokenSigner(pub crypto.PublicKey, name string, validity time.Duration) (*Issued, error) {
	now := c.cfg.Now().UTC().Truncate(time.Second)
	if err := c.checkIssuerValid(now); err != nil {
		return nil, err
	}
	if validity <= 0 {
		validity = 90 * 24 * time.Hour
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("ca: token signer key: %w", err)
	}
	ski, err := keyID(spki)
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial(c.cfg.Rand)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-Backdate),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		SubjectKeyId:          ski,
		AuthorityKeyId:        c.issuerSKI,
	}
	if tmpl.NotBefore.Before(c.issuer.NotBefore) {
		tmpl.NotBefore = c.issuer.NotBefore
	}
	if tmpl.NotAfter.After(c.issuer.NotAfter) {
		tmpl.NotAfter = c.issuer.NotAfter
	}
	if _, isRSA := c.signer.Public().(interface{ Size() int }); isRSA {
		tmpl.SignatureAlgorithm = x509.SHA256WithRSA
	}
	der, err := x509.CreateCertificate(c.cfg.Rand, tmpl, c.issuer, pub, c.signer)
	if err != nil {
		return nil, fmt.Errorf("ca: creating token signer certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Issued{DER: der, Cert: cert, Serial: serial.Text(16), Device: name,
		Fingerprint: FingerprintHex(der), NotBefore: cert.NotBefore, NotAfter: cert.NotAfter}, nil
}

// TokenSigningKey returns the CA's issuing key and certificate, for OSP
// tokens the CA signs itself (osp.TokenSigner's CASigned form): such a
// token embeds no certificate, which keeps it within the 1024 bytes the
// OpenSIPS and Kamailio OSP modules can send, and gateways find the CA
// certificate they hold as its signer. The key stays in this process, as
// for every certificate the CA issues.
func (c *CA) TokenSigningKey() (crypto.Signer, *x509.Certificate) { return c.signer, c.issuer }
