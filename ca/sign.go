package ca

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"
)

// Issued is a freshly signed device certificate.
type Issued struct {
	DER             []byte
	Cert            *x509.Certificate
	Serial          string // lower-case hex, no leading zeros
	Device          string // the device name as put in the certificate
	Fingerprint     string // SHA-256 of DER, lower-case hex
	PublicKeySHA256 string // SHA-256 of the SubjectPublicKeyInfo DER, lower-case hex
	NotBefore       time.Time
	NotAfter        time.Time
	IssuedAt        time.Time // when it was signed (NotBefore is backdated)
}

// PEM returns the certificate as PEM.
func (is *Issued) PEM() []byte { return certPEM(is.DER) }

// leafTemplate is what both signing paths need.
type leafTemplate struct {
	serial              *big.Int
	device              string
	ip                  net.IP
	notBefore, notAfter time.Time
	keyUsage            x509.KeyUsage
	serverAuth          bool
	ski                 []byte
	pub                 crypto.PublicKey
}

// NormalizeDevice validates a device name and returns its canonical form: an
// IP literal (brackets allowed, IPv4-mapped forms reduced) or a DNS name
// (LDH labels, at most 253 characters, trailing dot dropped). Case is kept;
// comparisons are case-insensitive.
func NormalizeDevice(device string) (name string, ip net.IP, err error) {
	d := strings.TrimSpace(device)
	if strings.HasPrefix(d, "[") && strings.HasSuffix(d, "]") {
		d = d[1 : len(d)-1]
	}
	// "1.2.3.4." is the address, not a DNS name
	if ip := net.ParseIP(strings.TrimSuffix(d, ".")); ip != nil {
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		return ip.String(), ip, nil
	}
	d = strings.TrimSuffix(d, ".")
	if d == "" || len(d) > 253 {
		return "", nil, errorf(ErrBadDeviceName, "device name %s is not a DNS name or IP address", quoted(device))
	}
	labels := strings.Split(d, ".")
	for _, label := range labels {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", nil, errorf(ErrBadDeviceName, "device name %s is not a DNS name or IP address", quoted(device))
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return "", nil, errorf(ErrBadDeviceName, "device name %s is not a DNS name or IP address (character %q)", quoted(device), c)
			}
		}
	}
	// no top-level domain is all digits (RFC 3696 section 2): such a name
	// is an address that resolvers read as one ("127.1" is 127.0.0.1 to
	// inet_aton) but a certificate would carry as a DNS name
	if last := labels[len(labels)-1]; strings.Trim(last, "0123456789") == "" {
		return "", nil, errorf(ErrBadDeviceName, "device name %s is neither a DNS name (its last label is all digits) nor an IP address in full form", quoted(device))
	}
	return d, nil, nil
}

// CheckDeviceName reports whether the CA can issue a certificate for
// device: a name NormalizeDevice accepts whose normal form fits a
// certificate's common name.
func CheckDeviceName(device string) error {
	name, _, err := NormalizeDevice(device)
	if err != nil {
		return err
	}
	return fitsCommonName(name)
}

// fitsCommonName refuses a device name longer than a common name holds.
func fitsCommonName(name string) error {
	if len(name) > maxCommonName {
		return errorf(ErrBadDeviceName, "device name %q is %d characters; a certificate's common name holds at most %d", name, len(name), maxCommonName)
	}
	return nil
}

// deviceKey is the storage form of a device name: lower case; an IP keeps
// its canonical text with ':' escaped.
func deviceKey(name string) string {
	return strings.ReplaceAll(strings.ToLower(name), ":", "%3A")
}

// maxCommonName is the upper bound of a common name (RFC 5280
// ub-common-name), which carries the device's name.
const maxCommonName = 64

// checkNames refuses a request whose subject CN or SANs name anything but
// the device. Empty names are fine: the CA decides what the certificate says.
func checkNames(csr *CSR, device string, ip net.IP) error {
	if err := fitsCommonName(device); err != nil {
		return err
	}
	matches := func(n string) bool {
		n = strings.TrimSpace(n)
		if ip != nil {
			if nip := net.ParseIP(strings.Trim(n, "[]")); nip != nil {
				return nip.Equal(ip)
			}
			return false
		}
		return strings.EqualFold(strings.TrimSuffix(n, "."), device)
	}
	if csr.CommonName != "" && !matches(csr.CommonName) {
		return errorf(ErrNameMismatch, "CSR names %s, device is %s", csr.CommonName, device)
	}
	for _, n := range csr.DNSNames {
		if !matches(n) {
			return errorf(ErrNameMismatch, "CSR names %s, device is %s", n, device)
		}
	}
	for _, a := range csr.IPAddresses {
		if ip == nil || !a.Equal(ip) {
			return errorf(ErrNameMismatch, "CSR names %s, device is %s", a, device)
		}
	}
	for _, e := range csr.EmailAddresses {
		return errorf(ErrNameMismatch, "CSR names email:%s, device is %s", e, device)
	}
	for _, u := range csr.URIs {
		return errorf(ErrNameMismatch, "CSR names URI:%s, device is %s", u, device)
	}
	return nil
}

// Sign verifies csrDER (proof of possession, key and algorithm policy, names)
// and issues a certificate for device. The certificate's subject CN and its
// DNS SAN (IP SAN for an IP literal) are the device name; everything else the
// request asks for (subject attributes, extensions, CA bit, key usages) is
// ignored. Sign does not persist anything: call Record (or use Issue).
func (c *CA) Sign(csrDER []byte, device string, p Policy) (*Issued, error) {
	name, ip, err := NormalizeDevice(device)
	if err != nil {
		return nil, err
	}
	csr, err := ParseCSR(csrDER, p)
	if err != nil {
		return nil, err
	}
	if err := checkNames(csr, name, ip); err != nil {
		return nil, err
	}
	return c.signParsed(csr, name, ip, p)
}

// SignCSR issues a certificate for an already parsed request (see Sign).
func (c *CA) SignCSR(csr *CSR, device string, p Policy) (*Issued, error) {
	name, ip, err := NormalizeDevice(device)
	if err != nil {
		return nil, err
	}
	if err := checkNames(csr, name, ip); err != nil {
		return nil, err
	}
	return c.signParsed(csr, name, ip, p)
}

// CheckNames reports whether SignCSR would accept csr's names for device:
// device is a DNS name or IP address, and every name the CSR carries is
// that device (ErrBadDeviceName, ErrNameMismatch otherwise).
func CheckNames(csr *CSR, device string) error {
	name, ip, err := NormalizeDevice(device)
	if err != nil {
		return err
	}
	return checkNames(csr, name, ip)
}

func (c *CA) signParsed(csr *CSR, name string, ip net.IP, p Policy) (*Issued, error) {
	issuedAt := c.cfg.Now().UTC()
	now := issuedAt.Truncate(time.Second)
	if err := c.checkIssuerValid(now); err != nil {
		return nil, err
	}
	if err := c.checkConstraints(name, ip); err != nil {
		return nil, err
	}
	validity := p.Validity
	if validity <= 0 {
		validity = c.cfg.Validity
	}
	t := &leafTemplate{
		device:     name,
		ip:         ip,
		notBefore:  now.Add(-Backdate),
		notAfter:   now.Add(validity),
		keyUsage:   x509.KeyUsageDigitalSignature,
		serverAuth: p.ServerAuth,
		pub:        csr.PublicKey,
	}
	if t.notBefore.Before(c.issuer.NotBefore) {
		t.notBefore = c.issuer.NotBefore
	}
	if t.notAfter.After(c.issuer.NotAfter) {
		t.notAfter = c.issuer.NotAfter
	}
	// keyEncipherment only where it can be used: RSA key transport is a TLS
	// server's business. RFC 5280 section 4.2.1.12 allows clientAuth with
	// digitalSignature and/or keyAgreement only (zlint
	// e_key_usage_and_extended_key_usage_inconsistent), and a TLS client
	// proves its RSA key with a signature.
	if _, ok := csr.PublicKey.(*rsa.PublicKey); ok && p.ServerAuth {
		t.keyUsage |= x509.KeyUsageKeyEncipherment
	}
	var err error
	if t.serial, err = randomSerial(c.cfg.Rand); err != nil {
		return nil, err
	}
	if t.ski, err = keyID(csr.rawSPKI); err != nil {
		return nil, err
	}
	var der []byte
	if c.cfg.Profile == ProfileLegacy {
		der, err = c.signLegacy(t)
	} else {
		der, err = c.signModern(t)
	}
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca: parsing issued certificate: %w", err)
	}
	if !sameBytes(cert.RawSubjectPublicKeyInfo, csr.rawSPKI) {
		// OSP Toolkit clients compare these byte for byte.
		return nil, fmt.Errorf("ca: issued certificate's public key encoding differs from the request's")
	}
	sum := sha256.Sum256(der)
	return &Issued{
		DER:             der,
		Cert:            cert,
		Serial:          t.serial.Text(16),
		Device:          name,
		Fingerprint:     hex.EncodeToString(sum[:]),
		PublicKeySHA256: csr.PublicKeySHA256,
		NotBefore:       cert.NotBefore,
		NotAfter:        cert.NotAfter,
		IssuedAt:        issuedAt,
	}, nil
}

// checkIssuerValid refuses to sign at now outside the issuer's validity
// (ErrExpired).
func (c *CA) checkIssuerValid(now time.Time) error {
	if now.Before(c.issuer.NotBefore) || !now.Before(c.issuer.NotAfter) {
		return errorf(ErrExpired, "issuing CA %q is valid from %s to %s, now is %s",
			c.issuer.Subject.CommonName, c.issuer.NotBefore.Format(time.RFC3339), c.issuer.NotAfter.Format(time.RFC3339), now.Format(time.RFC3339))
	}
	return nil
}

func (c *CA) signModern(t *leafTemplate) ([]byte, error) {
	tmpl := &x509.Certificate{
		SerialNumber:          t.serial,
		Subject:               pkix.Name{CommonName: t.device},
		NotBefore:             t.notBefore,
		NotAfter:              t.notAfter,
		KeyUsage:              t.keyUsage,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		SubjectKeyId:          t.ski,
		AuthorityKeyId:        c.issuerSKI,
		CRLDistributionPoints: c.cfg.CRLURLs,
		IssuingCertificateURL: c.cfg.IssuerURLs,
	}
	if t.serverAuth {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if t.ip != nil {
		tmpl.IPAddresses = []net.IP{t.ip}
	} else {
		tmpl.DNSNames = []string{t.device}
	}
	der, err := x509.CreateCertificate(c.cfg.Rand, tmpl, c.issuer, t.pub, c.signer)
	if err != nil {
		return nil, fmt.Errorf("ca: creating certificate: %w", err)
	}
	return der, nil
}

// Record is the stored audit record of one issued certificate.
type Record struct {
	Serial          string    `json:"serial"`
	Device          string    `json:"device"`
	Fingerprint     string    `json:"fingerprint_sha256"`
	PublicKeySHA256 string    `json:"public_key_sha256"`
	NotBefore       time.Time `json:"not_before"`
	NotAfter        time.Time `json:"not_after"`
	// IssuedAt is when the certificate was signed (zero in records of
	// earlier versions).
	IssuedAt  time.Time `json:"issued_at,omitzero"`
	Revoked   bool      `json:"revoked,omitempty"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	Reason    int       `json:"reason,omitempty"`
	DER       []byte    `json:"der"`
}

// PEM returns the recorded certificate as PEM.
func (r *Record) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.DER})
}

// Record stores the issuance record of is (serial, device, fingerprints,
// validity, DER) for audit and revocation. Records are keyed by serial, so
// concurrent Record calls need no lock. When the record cannot be stored,
// the device index entry written first is deleted again: the certificate
// is not handed out.
func (c *CA) Record(ctx context.Context, is *Issued) error {
	if is == nil || is.Serial == "" {
		return fmt.Errorf("ca: Record of an empty issuance")
	}
	rec := Record{
		Serial:          is.Serial,
		Device:          is.Device,
		Fingerprint:     is.Fingerprint,
		PublicKeySHA256: is.PublicKeySHA256,
		NotBefore:       is.NotBefore.UTC(),
		NotAfter:        is.NotAfter.UTC(),
		IssuedAt:        is.IssuedAt.UTC(),
		DER:             is.DER,
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	// The device index first: a record without index entry would be invisible
	// to RevokeDevice, an index entry without record is skipped.
	if err := c.st.Store(ctx, c.deviceIndexKey(is.Device, is.Serial), []byte(is.Serial)); err != nil {
		return fmt.Errorf("ca: recording issuance %s: %w", is.Serial, err)
	}
	if err := c.st.Store(ctx, c.issuedKey(is.Serial), b); err != nil {
		// the certificate is not handed out: its entry goes too (skipped,
		// it stayed for good, as PruneDeviceIndex reads the expiry from
		// the record, and every Records of the device looked it up; a
		// full disk left one at each retry). Only a crash leaves one.
		_ = c.st.Delete(context.WithoutCancel(ctx), c.deviceIndexKey(is.Device, is.Serial))
		return fmt.Errorf("ca: recording issuance %s: %w", is.Serial, err)
	}
	return nil
}

// Issue is Sign followed by Record.
func (c *CA) Issue(ctx context.Context, csrDER []byte, device string, p Policy) (*Issued, error) {
	is, err := c.Sign(csrDER, device, p)
	if err != nil {
		return nil, err
	}
	if err := c.Record(ctx, is); err != nil {
		return nil, err
	}
	return is, nil
}

func (c *CA) issuedKey(serial string) string {
	return c.prefix + "/" + keyIssued + "/" + serial + ".json"
}

func (c *CA) deviceIndexKey(device, serial string) string {
	return c.prefix + "/" + keyDevices + "/" + deviceKey(device) + "/" + serial
}
