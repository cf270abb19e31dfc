package ca

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"strings"
	"time"

	ctx509 "github.com/google/certificate-transparency-go/x509"
)

// Profile selects the kind of PKI a CA implements.
type Profile string

const (
	// ProfileModern: ECDSA/Ed25519/RSA CA, SHA-2 signatures, optional intermediate.
	ProfileModern Profile = "modern"
	// ProfileLegacy: RSA CA signing with md5WithRSAEncryption for seed-era
	// OSP Toolkit devices, in its own storage namespace (see doc.go).
	ProfileLegacy Profile = "legacy"
)

// ParseProfile parses a case-insensitive profile name ("" means modern).
func ParseProfile(s string) (Profile, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "modern":
		return ProfileModern, nil
	case "legacy":
		return ProfileLegacy, nil
	}
	return "", fmt.Errorf("ca: unknown profile %q (want modern or legacy)", s)
}

// Policy is the per-request issuance policy.
type Policy struct {
	// Legacy accepts CSRs signed with MD5-RSA or SHA-1 (RSA/ECDSA), and
	// RSA public exponents below 65537 (odd, at least 3). Their signatures
	// are still verified (proof of possession); the issued certificate is
	// signed with the CA's own algorithm.
	Legacy bool
	// AllowRSA1024 lowers the RSA minimum to 1024 bits. Keys below 1024 bits
	// are refused regardless.
	AllowRSA1024 bool
	// MinRSABits is the RSA minimum; 0 means 2048.
	MinRSABits int
	// AllowP521 accepts ECDSA P-521 device keys (P-256 and P-384 always are).
	AllowP521 bool
	// ServerAuth adds the serverAuth extended key usage (clientAuth always).
	ServerAuth bool
	// Validity of the issued certificate; 0 means the CA's Config.Validity.
	// Never extends beyond the issuing CA's notAfter.
	Validity time.Duration
}

// Config describes the CA to open or create.
type Config struct {
	// Name is the storage namespace: keys live under "clearinghouse/ca/<Name>/".
	// Default: the profile name ("modern" or "legacy").
	Name string
	// Profile defaults to modern.
	Profile Profile
	// Algorithm of generated keys: default p256 (modern) or rsa2048 (legacy,
	// which accepts only RSA).
	Algorithm Algorithm
	// CommonName of the CA: default "Clearinghouse Operational CA" (with
	// " (legacy)" appended for the legacy profile). With an intermediate, the
	// root is named CommonName+" Root" and the intermediate CommonName.
	CommonName   string
	Organization string
	// RootValidity: default 10 years (3650 days).
	RootValidity time.Duration
	// IntermediateValidity: default and at most the root's. Nothing makes
	// a new intermediate under a root, so one that ended first would stop
	// issuance while devices still trust the root.
	IntermediateValidity time.Duration
	// Validity of device certificates: default 365 days (legacy: 90 days).
	Validity time.Duration
	// Intermediate generates a root and an issuing intermediate under it, so
	// that the root key can be taken offline (delete root.key from storage
	// once generated; it is not needed to sign). Modern profile only.
	Intermediate bool
	// CertFile and KeyFile name operator-supplied PEM files used instead of
	// generated key material. CertFile holds the issuing CA certificate first,
	// optionally followed by its chain up to the root; KeyFile the issuing CA's
	// private key (PKCS#8, PKCS#1 or SEC 1 PEM, unencrypted).
	CertFile, KeyFile string
	// CRLValidity is the CRL nextUpdate distance: default 7 days.
	CRLValidity time.Duration
	// CRLURLs go into each device certificate as its CRL distribution
	// points, IssuerURLs as the authority information access caIssuers
	// (where relying parties fetch the CRL and the issuing CA's
	// certificate): absolute http or https URLs (CheckPublishURL).
	CRLURLs, IssuerURLs []string
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Rand is the randomness of serial numbers, signatures and CA keys
	// (nil: crypto/rand); calls that share it are serialized. Since Go
	// 1.26 key generation ignores it (see generateKey).
	Rand io.Reader
	// Named, when set, reads what the configuration that names the CAs
	// (the crypto item) says now. Open calls it, under the generate lock,
	// before it generates a CA for an item that named none: a CA of this
	// profile that another process sharing the Store generated and named
	// since the item Open was given was read is adopted (see generateOnce).
	Named func(ctx context.Context) (string, error)
}

const (
	day                 = 24 * time.Hour
	defaultRootValidity = 3650 * day
	defaultValidity     = 365 * day
	defaultLegacyValid  = 90 * day
	defaultCRLValidity  = 7 * day
	// Backdate is how far before "now" notBefore is set, for device clock skew.
	Backdate = 5 * time.Minute
	// storageRoot is the prefix of every key this package writes.
	storageRoot = "clearinghouse/ca"
)

// utcTimeLimit: the OSP Toolkit only reads UTCTime (two-digit years), so no
// legacy-profile date may reach 2050.
var utcTimeLimit = time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC)

func (cfg Config) resolve() (Config, error) {
	var err error
	if cfg.Profile, err = ParseProfile(string(cfg.Profile)); err != nil {
		return cfg, err
	}
	if cfg.Name == "" {
		cfg.Name = string(cfg.Profile)
	}
	if strings.ContainsAny(cfg.Name, "/\\\x00") || cfg.Name == "." || cfg.Name == ".." {
		return cfg, fmt.Errorf("ca: invalid CA name %q", cfg.Name)
	}
	legacy := cfg.Profile == ProfileLegacy
	if cfg.Algorithm == "" {
		cfg.Algorithm = P256
		if legacy {
			cfg.Algorithm = RSA2048
		}
	} else if cfg.Algorithm, err = ParseAlgorithm(string(cfg.Algorithm)); err != nil {
		return cfg, err
	}
	if legacy && !cfg.Algorithm.isRSA() {
		return cfg, fmt.Errorf("ca: the legacy profile needs an RSA algorithm (the OSP Toolkit verifies MD5-RSA only), not %s", cfg.Algorithm)
	}
	if legacy && cfg.Intermediate {
		return cfg, errors.New("ca: the legacy profile cannot use an intermediate: OSP Toolkit devices expect their certificate signed directly by the CA they fetched")
	}
	if cfg.CommonName == "" {
		cfg.CommonName = "Clearinghouse Operational CA"
		if legacy {
			cfg.CommonName += " (legacy)"
		}
	}
	if legacy {
		if !isPrintableString(cfg.CommonName) || !isPrintableString(cfg.Organization) {
			return cfg, errors.New("ca: legacy profile names must be PrintableString characters (letters, digits, space and '()+,-./:=?)")
		}
	}
	if cfg.RootValidity == 0 {
		cfg.RootValidity = defaultRootValidity
	}
	if cfg.IntermediateValidity == 0 {
		cfg.IntermediateValidity = cfg.RootValidity
	}
	if cfg.Validity == 0 {
		cfg.Validity = defaultValidity
		if legacy {
			cfg.Validity = defaultLegacyValid
		}
	}
	if err := CheckPublishURLs(cfg.CRLURLs, cfg.IssuerURLs); err != nil {
		return cfg, err
	}
	if cfg.CRLValidity == 0 {
		cfg.CRLValidity = defaultCRLValidity
	}
	if cfg.RootValidity < 0 || cfg.IntermediateValidity < 0 || cfg.Validity < 0 || cfg.CRLValidity < 0 {
		return cfg, errors.New("ca: negative validity")
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return cfg, errors.New("ca: CertFile and KeyFile must be given together")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Rand = defaultRand(cfg.Rand)
	return cfg, nil
}

// OpenResult reports what Open did.
type OpenResult struct {
	// Created: a new CA is in use: its key material was generated now, or
	// (Adopted) by another process sharing the Store that started together
	// with this one.
	Created bool
	// Adopted: the new CA was generated by another process moments ago.
	Adopted bool
	// ReenrollRequired: the crypto item did not name this CA (absent or not in
	// the documented form), so the caller must clear the `enrolled` flag of
	// every device enrolled under this profile (seed: "all enrolled devices
	// will have to re-enroll").
	ReenrollRequired bool
	// Replaced: the crypto item held a value not in the documented form (e.g.
	// the seed's placeholder 'keys'); it was treated as unknown.
	Replaced bool
	// CryptoParam is what the configuration file's crypto item must now say
	// for this CA.
	CryptoParam string
}

// CA is an operational certificate authority. It is safe for concurrent use.
type CA struct {
	cfg       Config
	st        Store
	params    CryptoParams
	prefix    string // clearinghouse/ca/<Name>/<fingerprint>
	root      *x509.Certificate
	issuer    *x509.Certificate
	chain     []*x509.Certificate
	signer    crypto.Signer // the issuer's private key; never logged
	ctIssue   *ctx509.Certificate
	issuerSKI []byte
	issuerFP  string // SHA-256 of the issuer's certificate (crl.json names it)
	crl       *CRLCache
	revoked   *revokedCache
}

// caMeta is stored as ca.json next to the key material.
type caMeta struct {
	Profile      Profile   `json:"profile"`
	Algorithm    Algorithm `json:"algorithm"`
	CryptoParam  string    `json:"crypto"`
	Created      time.Time `json:"created"`
	Intermediate bool      `json:"intermediate"`
	Operator     bool      `json:"operator_supplied,omitempty"`
}

// Open loads or creates the CA named by cryptoParam (the configuration file's
// crypto item) in st:
//
//   - cryptoParam empty: new key material is generated (or the operator's
//     CertFile/KeyFile adopted); ReenrollRequired is true.
//   - not in the documented form (e.g. 'keys'): the same, and Replaced is true.
//   - documented and matching a CA in storage (or the operator's files): that
//     CA is loaded; ReenrollRequired is false.
//   - documented but no such CA: an error naming the fingerprint.
//   - documented but malformed ("modern:p256:sha256:zz"): a parse error.
//
// See selectCryptoParams for items naming several CAs.
func Open(ctx context.Context, st Store, cfg Config, cryptoParam string) (*CA, OpenResult, error) {
	if st == nil {
		return nil, OpenResult{}, errors.New("ca: nil Store")
	}
	cfg, err := cfg.resolve()
	if err != nil {
		return nil, OpenResult{}, err
	}
	choice, err := selectCryptoParams(cryptoParam, cfg.Profile)
	if err != nil {
		return nil, OpenResult{}, err
	}
	var c *CA
	res := OpenResult{Replaced: choice.replaced}
	switch {
	case cfg.CertFile != "":
		c, err = openOperator(ctx, st, cfg, choice.named)
		res.ReenrollRequired = choice.named == nil
	case choice.named != nil:
		if c, err = load(ctx, st, cfg, *choice.named); err == nil {
			err = c.markNamed(ctx)
		}
	default:
		var generated bool
		c, generated, err = generateOnce(ctx, st, cfg)
		res.Created, res.Adopted = true, !generated
		res.ReenrollRequired = true
	}
	if err != nil {
		return nil, OpenResult{}, err
	}
	if err := c.indexCompromised(ctx); err != nil {
		return nil, OpenResult{}, fmt.Errorf("ca: indexing the keys revoked for key compromise: %w", err)
	}
	res.CryptoParam = c.params.String()
	return c, res, nil
}

func (cfg Config) namespace() string { return storageRoot + "/" + cfg.Name }

// generateOnce generates a CA, unless another process sharing the Store,
// starting together with this one, made one already. Under the generate
// lock it adopts, in this order:
//
//   - the CA of this profile that the configuration names now
//     (Config.Named), when it names one: another process generated or
//     adopted it and named it since this one read the configuration;
//   - the CA that `current` marks as not yet named by any configuration
//     (generated by another process that has not named it yet, or by one
//     that stopped before naming it: no device was given it);
//
// and otherwise generates one, which `current` marks as not yet named
// until MarkNamed. It reports whether it generated.
//
// An unnamed CA of another algorithm, or with an intermediate where the
// configuration says none (or the opposite), is not adopted: the operator
// changed the configuration since it was made. A CA that was named once
// is never adopted this way: an empty item then is an operator asking for
// a new CA.
func generateOnce(ctx context.Context, st Store, cfg Config) (*CA, bool, error) {
	lock := cfg.namespace() + "/" + lockGenerate
	if err := st.Lock(ctx, lock); err != nil {
		return nil, false, fmt.Errorf("ca: locking %s: %w", lock, err)
	}
	defer func() { _ = st.Unlock(context.WithoutCancel(ctx), lock) }()
	if cfg.Named != nil {
		item, err := cfg.Named(ctx)
		if err != nil {
			return nil, false, fmt.Errorf("ca: reading the crypto item again: %w", err)
		}
		choice, err := selectCryptoParams(item, cfg.Profile)
		if err != nil {
			return nil, false, err
		}
		if choice.named != nil {
			c, err := load(ctx, st, cfg, *choice.named)
			return c, false, err
		}
	}
	if p, unnamed, err := loadCurrent(ctx, st, cfg); err != nil {
		return nil, false, err
	} else if unnamed && p.Profile == cfg.Profile && p.Algorithm == cfg.Algorithm {
		c, err := load(ctx, st, cfg, p)
		switch {
		case errors.Is(err, ErrCANotInStorage): // deleted by the operator: make another
		case err == nil && (len(c.Chain()) > 1) != cfg.Intermediate:
			// made as another configuration said (the operator changed it
			// since): make the CA this one says
		default:
			return c, false, err
		}
	}
	c, err := generate(ctx, st, cfg)
	return c, err == nil, err
}

// unnamedMark follows the crypto item in `current` while no configuration
// names that CA yet.
const unnamedMark = "unnamed"

// loadCurrent reads `current`: the CA generated last, and whether it is
// still unnamed. An absent or unreadable value (an earlier version wrote
// the item alone: a named CA) is no CA.
func loadCurrent(ctx context.Context, st Store, cfg Config) (CryptoParams, bool, error) {
	b, err := st.Load(ctx, cfg.namespace()+"/"+keyCurrent)
	if errors.Is(err, fs.ErrNotExist) {
		return CryptoParams{}, false, nil
	}
	if err != nil {
		return CryptoParams{}, false, fmt.Errorf("ca: loading %s: %w", cfg.namespace()+"/"+keyCurrent, err)
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return CryptoParams{}, false, nil
	}
	p, err := ParseCryptoParams(f[0])
	if err != nil {
		return CryptoParams{}, false, nil
	}
	return p, len(f) == 2 && f[1] == unnamedMark, nil
}

// MarkNamed calls name, which must make the configuration name c (write
// its crypto item), under the generate lock of c's namespace, then records
// in the Store that c is named, if `current` still marks it unnamed.
// Processes that generate under that lock thus see either c unnamed or the
// configuration naming it, and adopt it (generateOnce); one that finds it
// named and the configuration empty later makes a new CA. When name fails,
// c stays unnamed. A crash between name and the mark is repaired by the
// next Open of the configuration naming c.
func (c *CA) MarkNamed(ctx context.Context, name func() error) error {
	lock := c.cfg.namespace() + "/" + lockGenerate
	if err := c.st.Lock(ctx, lock); err != nil {
		return fmt.Errorf("ca: locking %s: %w", lock, err)
	}
	defer func() { _ = c.st.Unlock(context.WithoutCancel(ctx), lock) }()
	if err := name(); err != nil {
		return err
	}
	return c.markNamedLocked(ctx)
}

func (c *CA) markNamedLocked(ctx context.Context) error {
	p, unnamed, err := loadCurrent(ctx, c.st, c.cfg)
	if err != nil || !unnamed || p != c.params {
		return err
	}
	if err := c.st.Store(ctx, c.cfg.namespace()+"/"+keyCurrent, []byte(c.params.String()+"\n")); err != nil {
		return fmt.Errorf("ca: marking CA sha256:%s named: %w", c.params.Fingerprint, err)
	}
	return nil
}

// markNamed is MarkNamed for a CA that the configuration names already
// (Open of an item naming it): it repairs the mark a crash left.
func (c *CA) markNamed(ctx context.Context) error {
	if p, unnamed, err := loadCurrent(ctx, c.st, c.cfg); err != nil || !unnamed || p != c.params {
		return err
	}
	return c.MarkNamed(ctx, func() error { return nil })
}

// Storage key names below a CA's prefix.
const (
	keyMeta      = "ca.json"
	keyRootCert  = "root.crt"
	keyRootKey   = "root.key"
	keyIntCert   = "intermediate.crt"
	keyIntKey    = "intermediate.key"
	keyIssued    = "issued"
	keyDevices   = "devices"
	keyRevoked   = "revoked.json"
	keyCRL       = "crl.der"
	keyCRLMeta   = "crl.json"
	keyCurrent   = "current"
	lockStateKey = "state"
	lockGenerate = "generate"
)

func newCA(cfg Config, st Store, chain []*x509.Certificate, signer crypto.Signer) (*CA, error) {
	issuer, root := chain[0], chain[len(chain)-1]
	if !publicKeysEqual(issuer.PublicKey, signer.Public()) {
		return nil, errors.New("ca: private key does not match the issuing CA certificate")
	}
	alg, err := algorithmOf(root.PublicKey)
	if err != nil {
		return nil, err
	}
	ialg, err := algorithmOf(issuer.PublicKey)
	if err != nil {
		return nil, err
	}
	if cfg.Profile == ProfileLegacy && !ialg.isRSA() {
		return nil, errors.New("ca: the legacy profile needs an RSA CA key")
	}
	fp := FingerprintHex(root.Raw)
	c := &CA{
		crl:      new(CRLCache),
		revoked:  new(revokedCache),
		cfg:      cfg,
		st:       st,
		params:   CryptoParams{Profile: cfg.Profile, Algorithm: alg, Fingerprint: fp},
		prefix:   cfg.namespace() + "/" + fp,
		root:     root,
		issuer:   issuer,
		issuerFP: FingerprintHex(issuer.Raw),
		chain:    chain,
		signer:   signer,
	}
	c.issuerSKI = issuer.SubjectKeyId
	if len(c.issuerSKI) == 0 {
		if c.issuerSKI, err = keyID(issuer.RawSubjectPublicKeyInfo); err != nil {
			return nil, err
		}
	}
	if cfg.Profile == ProfileLegacy {
		ct, err := ctx509.ParseCertificate(issuer.Raw)
		if err != nil && ct == nil {
			return nil, fmt.Errorf("ca: parsing legacy CA certificate: %w", err)
		}
		if len(ct.SubjectKeyId) == 0 {
			ct.SubjectKeyId = c.issuerSKI
		}
		c.ctIssue = ct
	}
	return c, nil
}

func (c *CA) key(name string) string { return c.prefix + "/" + name }

// load opens the CA named by p from storage.
func load(ctx context.Context, st Store, cfg Config, p CryptoParams) (*CA, error) {
	prefix := cfg.namespace() + "/" + p.Fingerprint
	rootPEM, err := st.Load(ctx, prefix+"/"+keyRootCert)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errorf(ErrCANotInStorage, "crypto parameters name CA sha256:%s which is not in storage (looked in %s/)", p.Fingerprint, prefix)
		}
		return nil, fmt.Errorf("ca: loading CA sha256:%s: %w", p.Fingerprint, err)
	}
	roots, err := parseCertsPEM(rootPEM)
	if err != nil {
		return nil, fmt.Errorf("ca: %s: %w", prefix+"/"+keyRootCert, err)
	}
	root := roots[0]
	if got := FingerprintHex(root.Raw); got != p.Fingerprint {
		return nil, fmt.Errorf("ca: %s holds a certificate with fingerprint sha256:%s, not sha256:%s (storage tampered with?)", prefix+"/"+keyRootCert, got, p.Fingerprint)
	}
	chain := []*x509.Certificate{root}
	keyName := keyRootKey
	if st.Exists(ctx, prefix+"/"+keyIntCert) {
		b, err := st.Load(ctx, prefix+"/"+keyIntCert)
		if err != nil {
			return nil, fmt.Errorf("ca: loading %s: %w", prefix+"/"+keyIntCert, err)
		}
		ints, err := parseCertsPEM(b)
		if err != nil {
			return nil, fmt.Errorf("ca: %s: %w", prefix+"/"+keyIntCert, err)
		}
		if !ints[0].IsCA || ints[0].CheckSignatureFrom(root) != nil {
			return nil, fmt.Errorf("ca: %s is not a CA certificate signed by root sha256:%s (storage tampered with?)", prefix+"/"+keyIntCert, p.Fingerprint)
		}
		chain = append(ints[:1], root)
		keyName = keyIntKey
	}
	kb, err := st.Load(ctx, prefix+"/"+keyName)
	if err != nil {
		return nil, fmt.Errorf("ca: loading CA sha256:%s private key %s: %w", p.Fingerprint, keyName, err)
	}
	signer, err := parseKeyPEM(kb)
	if err != nil {
		return nil, fmt.Errorf("ca: %s: %w", prefix+"/"+keyName, err)
	}
	c, err := newCA(cfg, st, chain, signer)
	if err != nil {
		return nil, err
	}
	if c.params.Algorithm != p.Algorithm {
		return nil, errorf(ErrBadCryptoParam, "crypto parameters say %s but CA sha256:%s is %s", p.Algorithm, p.Fingerprint, c.params.Algorithm)
	}
	// the legacy and modern CAs never share keys, whatever the names say
	if mb, err := st.Load(ctx, prefix+"/"+keyMeta); err == nil {
		var meta caMeta
		if json.Unmarshal(mb, &meta) == nil && meta.Profile != "" && meta.Profile != cfg.Profile {
			return nil, errorf(ErrBadCryptoParam, "CA sha256:%s is a %s CA, not %s", p.Fingerprint, meta.Profile, cfg.Profile)
		}
	}
	if err := c.checkProfileCert(); err != nil {
		return nil, err
	}
	return c, nil
}

// openOperator adopts operator-supplied PEM files.
func openOperator(ctx context.Context, st Store, cfg Config, named *CryptoParams) (*CA, error) {
	certPEM, err := os.ReadFile(cfg.CertFile)
	if err != nil {
		return nil, fmt.Errorf("ca: reading CA certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("ca: reading CA key file %s: %w", cfg.KeyFile, err)
	}
	if fi, err := os.Stat(cfg.KeyFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("ca: CA key file %s is accessible to group/others (mode %v); chmod 600 it", cfg.KeyFile, fi.Mode().Perm())
	}
	chain, err := parseCertsPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("ca: %s: %w", cfg.CertFile, err)
	}
	for i, ce := range chain {
		if !ce.BasicConstraintsValid || !ce.IsCA {
			return nil, fmt.Errorf("ca: %s: certificate %d (%s) is not a CA certificate", cfg.CertFile, i, ce.Subject)
		}
		if ce.KeyUsage != 0 && ce.KeyUsage&x509.KeyUsageCertSign == 0 {
			return nil, fmt.Errorf("ca: %s: certificate %d (%s) lacks the keyCertSign key usage", cfg.CertFile, i, ce.Subject)
		}
		if i == 0 && ce.KeyUsage != 0 && ce.KeyUsage&x509.KeyUsageCRLSign == 0 {
			return nil, fmt.Errorf("ca: %s: certificate %d (%s) lacks the cRLSign key usage: it could not sign the CRL", cfg.CertFile, i, ce.Subject)
		}
		if i > 0 {
			if err := chain[i-1].CheckSignatureFrom(ce); err != nil && cfg.Profile != ProfileLegacy {
				return nil, fmt.Errorf("ca: %s: certificate %d is not signed by certificate %d: %w", cfg.CertFile, i-1, i, err)
			}
		}
	}
	signer, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("ca: %s: %w", cfg.KeyFile, err)
	}
	c, err := newCA(cfg, st, chain, signer)
	if err != nil {
		return nil, err
	}
	if err := c.checkProfileCert(); err != nil {
		return nil, err
	}
	if named != nil && named.Fingerprint != c.params.Fingerprint {
		return nil, errorf(ErrCANotInStorage, "crypto parameters name CA sha256:%s but the operator-supplied certificate %s is sha256:%s", named.Fingerprint, cfg.CertFile, c.params.Fingerprint)
	}
	if named != nil && named.Algorithm != c.params.Algorithm {
		return nil, errorf(ErrBadCryptoParam, "crypto parameters say %s but the operator-supplied certificate %s is %s", named.Algorithm, cfg.CertFile, c.params.Algorithm)
	}
	meta := caMeta{Profile: cfg.Profile, Algorithm: c.params.Algorithm, CryptoParam: c.params.String(),
		Created: cfg.Now().UTC(), Intermediate: len(chain) > 1, Operator: true}
	if !st.Exists(ctx, c.key(keyMeta)) {
		if err := c.storeNew(ctx, meta, nil, nil, false); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// checkProfileCert enforces what the legacy profile's clients require of the
// CA certificate.
func (c *CA) checkProfileCert() error {
	if c.cfg.Profile != ProfileLegacy {
		return nil
	}
	if len(c.chain) != 1 {
		return errors.New("ca: the legacy profile needs a single self-signed CA certificate (no intermediate)")
	}
	if c.root.SignatureAlgorithm != x509.MD5WithRSA {
		return fmt.Errorf("ca: the legacy profile's CA certificate must be self-signed with md5WithRSAEncryption (the OSP Toolkit verifies nothing else), not %s", c.root.SignatureAlgorithm)
	}
	return checkLegacyRoot(c.root)
}

// storeNew writes a new CA to storage: its keys (PKCS#8 PEM) and
// certificates, if any, then ca.json (meta), then `current`, marking a
// generated CA unnamed. `current` goes last: a crash before it leaves an
// orphan, never `current` naming a CA storage lacks.
func (c *CA) storeNew(ctx context.Context, meta caMeta, keys map[string]crypto.Signer, certs map[string][]byte, unnamed bool) error {
	for name, k := range keys {
		b, err := marshalKeyPEM(k)
		if err != nil {
			return err
		}
		if err := c.st.Store(ctx, c.key(name), b); err != nil {
			return fmt.Errorf("ca: storing %s: %w", c.key(name), err)
		}
	}
	for name, der := range certs {
		if err := c.st.Store(ctx, c.key(name), certPEM(der)); err != nil {
			return fmt.Errorf("ca: storing %s: %w", c.key(name), err)
		}
	}
	mb, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return err
	}
	if err := c.st.Store(ctx, c.key(keyMeta), mb); err != nil {
		return fmt.Errorf("ca: storing %s: %w", c.key(keyMeta), err)
	}
	cur := c.params.String()
	if unnamed {
		cur += " " + unnamedMark
	}
	if err := c.st.Store(ctx, c.cfg.namespace()+"/"+keyCurrent, []byte(cur+"\n")); err != nil {
		return fmt.Errorf("ca: storing %s: %w", c.cfg.namespace()+"/"+keyCurrent, err)
	}
	return nil
}

// randomSerial returns a positive, non-zero 128-bit serial with the top bit
// cleared (127 bits of entropy), so the DER INTEGER is at most 16 bytes.
func randomSerial(r io.Reader) (*big.Int, error) {
	var b [16]byte
	for {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("ca: reading randomness for serial: %w", err)
		}
		b[0] &= 0x7f
		n := new(big.Int).SetBytes(b[:])
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

func randomTag(r io.Reader) (string, error) {
	var b [6]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", err
	}
	return strings.ToUpper(hex.EncodeToString(b[:])), nil
}

// generate creates new key material and stores it.
func generate(ctx context.Context, st Store, cfg Config) (*CA, error) {
	now := cfg.Now().UTC().Truncate(time.Second)
	notBefore := now.Add(-Backdate)
	tag, err := randomTag(cfg.Rand)
	if err != nil {
		return nil, err
	}
	rootKey, err := generateKey(cfg.Algorithm, cfg.Rand)
	if err != nil {
		return nil, fmt.Errorf("ca: generating %s key: %w", cfg.Algorithm, err)
	}
	rootCN := cfg.CommonName
	if cfg.Intermediate {
		rootCN += " Root"
	}
	rootNotAfter := now.Add(cfg.RootValidity)
	var rootDER []byte
	if cfg.Profile == ProfileLegacy {
		if rootNotAfter.After(utcTimeLimit) {
			rootNotAfter = utcTimeLimit
		}
		rootDER, err = legacyRootCert(cfg, rootKey.(*rsa.PrivateKey), rootCN, tag, notBefore, rootNotAfter)
	} else {
		rootDER, err = modernCACert(cfg, rootKey, nil, nil, caName(rootCN, cfg.Organization, tag), notBefore, rootNotAfter, cfg.Intermediate)
	}
	if err != nil {
		return nil, err
	}
	root, err := x509.ParseCertificate(rootDER)
	if err != nil {
		return nil, err
	}
	chain := []*x509.Certificate{root}
	signer := rootKey
	keys := map[string]crypto.Signer{keyRootKey: rootKey}
	certs := map[string][]byte{keyRootCert: rootDER}
	if cfg.Intermediate {
		intKey, err := generateKey(cfg.Algorithm, cfg.Rand)
		if err != nil {
			return nil, fmt.Errorf("ca: generating %s key: %w", cfg.Algorithm, err)
		}
		intNotAfter := now.Add(cfg.IntermediateValidity)
		if intNotAfter.After(root.NotAfter) {
			intNotAfter = root.NotAfter
		}
		intDER, err := modernCACert(cfg, intKey, root, rootKey, caName(cfg.CommonName, cfg.Organization, tag), notBefore, intNotAfter, false)
		if err != nil {
			return nil, err
		}
		inter, err := x509.ParseCertificate(intDER)
		if err != nil {
			return nil, err
		}
		chain = []*x509.Certificate{inter, root}
		signer = intKey
		keys[keyIntKey] = intKey
		certs[keyIntCert] = intDER
	}
	c, err := newCA(cfg, st, chain, signer)
	if err != nil {
		return nil, err
	}
	meta := caMeta{Profile: cfg.Profile, Algorithm: cfg.Algorithm, CryptoParam: c.params.String(), Created: now, Intermediate: cfg.Intermediate}
	if err := c.storeNew(ctx, meta, keys, certs, true); err != nil {
		return nil, err
	}
	return c, nil
}

func caName(cn, org, tag string) pkix.Name {
	n := pkix.Name{CommonName: cn, SerialNumber: tag}
	if org != "" {
		n.Organization = []string{org}
	}
	return n
}

// modernCACert creates a CA certificate with crypto/x509: self-signed when
// parent is nil. A root that will sign an intermediate gets pathLen 1,
// otherwise pathLen 0.
func modernCACert(cfg Config, key crypto.Signer, parent *x509.Certificate, parentKey crypto.Signer, name pkix.Name, notBefore, notAfter time.Time, signsIntermediate bool) ([]byte, error) {
	serial, err := randomSerial(cfg.Rand)
	if err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, err
	}
	ski, err := keyID(spki)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               name,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		SubjectKeyId:          ski,
	}
	if signsIntermediate {
		tmpl.MaxPathLen, tmpl.MaxPathLenZero = 1, false
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(cfg.Rand, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return nil, fmt.Errorf("ca: creating CA certificate: %w", err)
	}
	return der, nil
}

// Root returns the root certificate: what devices must trust (the answer to
// getcacert).
func (c *CA) Root() *x509.Certificate { return c.root }

// Issuer returns the certificate that signs device certificates (the root,
// or the intermediate when there is one).
func (c *CA) Issuer() *x509.Certificate { return c.issuer }

// Chain returns the issuer's chain, issuer first and root last.
func (c *CA) Chain() []*x509.Certificate {
	return append([]*x509.Certificate(nil), c.chain...)
}

// Algorithm returns the key algorithm of the CA's root ("" for a key of
// another kind, which an operator-supplied CA may have).
func (c *CA) Algorithm() Algorithm {
	a, _ := algorithmOf(c.root.PublicKey)
	return a
}

// CryptoParam returns the value the configuration file's crypto item must
// hold for this CA.
func (c *CA) CryptoParam() string { return c.params.String() }

// Params returns the parsed crypto parameters of this CA.
func (c *CA) Params() CryptoParams { return c.params }

// Profile returns the CA's profile.
func (c *CA) Profile() Profile { return c.cfg.Profile }

// Validity is how long device certificates are valid unless a Policy says
// otherwise.
func (c *CA) Validity() time.Duration { return c.cfg.Validity }

// Name returns the storage namespace name.
func (c *CA) Name() string { return c.cfg.Name }

// StoragePrefix returns the storage key prefix of this CA's files.
func (c *CA) StoragePrefix() string { return c.prefix }

// DefaultPolicy returns the policy a server would normally use with this CA:
// for the legacy profile, legacy CSR signatures and 1024-bit RSA keys are
// accepted (seed-era devices); for the modern profile, nothing legacy.
func (c *CA) DefaultPolicy() Policy {
	if c.cfg.Profile == ProfileLegacy {
		return Policy{Legacy: true, AllowRSA1024: true}
	}
	return Policy{}
}

// String identifies the CA without revealing key material.
func (c *CA) String() string {
	return fmt.Sprintf("ca.CA{%s %q}", c.params, c.issuer.Subject.CommonName)
}

// GoString is String, so that %#v cannot print the private key either.
func (c *CA) GoString() string { return c.String() }
