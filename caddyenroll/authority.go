package caddyenroll

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
)

// CA profiles.
const (
	profileModern = "modern"
	profileLegacy = "legacy"
)

// RFC 5280 revocation reasons used here.
const (
	reasonKeyCompromise        = 1
	reasonSuperseded           = 4
	reasonCessationOfOperation = 5
)

// Authority configures an operational CA: the CA that signs device
// certificates, separate from the server's own TLS identity.
type Authority struct {
	// Key algorithm of a generated CA: p256 (default for modern), p384,
	// ed25519, rsa2048 (default for legacy), rsa3072, rsa4096.
	Algorithm string `json:"algorithm,omitempty"`
	// Validity of device certificates. Default 365 days (legacy: 90 days);
	// at least 1m.
	Validity caddy.Duration `json:"validity,omitempty"`
	// Validity of a generated root. Default 10 years; at least 1m.
	RootValidity caddy.Duration `json:"root_validity,omitempty"`
	// Issue from an intermediate under the root, so the root key can be
	// kept offline; it is valid as long as the root. Not available for the
	// legacy profile.
	Intermediate bool `json:"intermediate,omitempty"`
	// PEM file of an operator-supplied CA certificate, used instead of a
	// generated CA (with key_file; algorithm, root_validity, intermediate,
	// common_name and organization are then refused). A keyUsage
	// extension, if present, must allow keyCertSign and cRLSign. Legacy
	// profile: one self-signed MD5-RSA certificate with PrintableString
	// names and dates from 1950 to 2049 (what the OSP Toolkit reads).
	CertFile string `json:"cert_file,omitempty"`
	// PEM file of the private key of cert_file's certificate (with
	// cert_file); it must be mode 0600.
	KeyFile string `json:"key_file,omitempty"`
	// Common name of a generated CA.
	CommonName string `json:"common_name,omitempty"`
	// Organization of a generated CA.
	Organization string `json:"organization,omitempty"`
	// Accept CSRs signed with MD5-RSA or SHA-1 and RSA public exponents
	// below 65537 (seed-era devices). Default off for modern, on for legacy.
	LegacyCSR *bool `json:"legacy_csr,omitempty"`
	// Accept RSA-1024 device keys. RSA keys under 1024 bits are always refused.
	AllowRSA1024 bool `json:"allow_rsa1024,omitempty"`
	// Add the serverAuth extended key usage, for devices that also serve TLS.
	ServerAuth bool `json:"server_auth,omitempty"`
	// How long a CRL is valid (its next-update). Default 7 days; at least
	// 1m.
	CRLValidity caddy.Duration `json:"crl_validity,omitempty"`
	// URLs written into each device certificate as its CRL distribution
	// points: where relying parties fetch the CRL, which the enroll
	// handler serves at …/ca.crl of its sites (e.g.
	// http://enroll.example.com/ca.crl; plain http, as RFC 5280 wants,
	// needs a site that answers it: `plain_getcacert` under `ssl
	// enabled`). Absolute http or https URLs; default none.
	CRLURLs []string `json:"crl_urls,omitempty"`
	// URLs written into each device certificate as its authority
	// information access caIssuers: where the issuing CA's certificate is
	// fetched (…/ca.crt of the enroll handler's sites). Default none.
	IssuerURLs []string `json:"issuer_urls,omitempty"`
}

func (au *Authority) validate(profile string) error {
	switch au.Algorithm {
	case "", "p256", "p384", "ed25519", "rsa2048", "rsa3072", "rsa4096":
	default:
		return fmt.Errorf("unknown algorithm %q (want p256, p384, ed25519, rsa2048, rsa3072 or rsa4096)", au.Algorithm)
	}
	if profile == profileLegacy {
		if au.Algorithm != "" && au.Algorithm[:3] != "rsa" {
			return fmt.Errorf("the legacy profile signs with MD5-RSA and needs an RSA key, not %q", au.Algorithm)
		}
		if au.Intermediate {
			return fmt.Errorf("the legacy profile cannot use an intermediate: seed-era clients accept only certificates signed by the CA they fetched")
		}
	}
	if err := ca.CheckPublishURLs(au.CRLURLs, au.IssuerURLs); err != nil {
		return err
	}
	if (au.CertFile == "") != (au.KeyFile == "") {
		return fmt.Errorf("cert_file and key_file go together")
	}
	if au.CertFile != "" {
		// settings of a generated CA would be ignored without a word
		var ignored []string
		for name, set := range map[string]bool{"algorithm": au.Algorithm != "", "root_validity": au.RootValidity != 0,
			"intermediate": au.Intermediate, "common_name": au.CommonName != "", "organization": au.Organization != ""} {
			if set {
				ignored = append(ignored, name)
			}
		}
		if len(ignored) > 0 {
			slices.Sort(ignored)
			return fmt.Errorf("cert_file supplies the CA: %s apply only to a generated CA (remove them)", strings.Join(ignored, ", "))
		}
	}
	for _, d := range []struct {
		name string
		v    caddy.Duration
	}{{"validity", au.Validity}, {"root_validity", au.RootValidity}, {"crl_validity", au.CRLValidity}} {
		if d.v < 0 {
			return fmt.Errorf("%s must not be negative (0 means the default), not %v", d.name, time.Duration(d.v))
		}
		if d.v != 0 && d.v < caddy.Duration(time.Minute) {
			return fmt.Errorf("%s must be at least 1m (0 means the default), not %v%s", d.name, time.Duration(d.v), jsonNanoseconds)
		}
	}
	return nil
}

// unappliedSettings lists the settings of a generated CA that c, a CA
// generated before (the file's crypto item names it), does not have: they
// apply only when a CA is generated, so changing them changes nothing.
func (au *Authority) unappliedSettings(c *ca.CA) []string {
	if au.CertFile != "" {
		return nil // refused with cert_file (validate)
	}
	var out []string
	if au.Algorithm != "" && ca.Algorithm(au.Algorithm) != c.Algorithm() {
		out = append(out, fmt.Sprintf("algorithm %s (the CA's is %s)", au.Algorithm, c.Algorithm()))
	}
	if has := len(c.Chain()) > 1; au.Intermediate != has {
		out = append(out, fmt.Sprintf("intermediate %v (the CA has %s)", au.Intermediate, map[bool]string{true: "one", false: "none"}[has]))
	}
	// the issuer's: with an intermediate, the root is named "<common_name> Root"
	if cn := c.Issuer().Subject.CommonName; au.CommonName != "" && au.CommonName != cn {
		out = append(out, fmt.Sprintf("common_name %q (the CA's is %q)", au.CommonName, cn))
	}
	if org := c.Root().Subject.Organization; au.Organization != "" && !slices.Equal(org, []string{au.Organization}) {
		out = append(out, fmt.Sprintf("organization %q (the CA's is %q)", au.Organization, strings.Join(org, ", ")))
	}
	return out
}

func (au *Authority) config(profile string) ca.Config {
	return ca.Config{
		Name:         profile,
		Profile:      ca.Profile(profile),
		Algorithm:    ca.Algorithm(au.Algorithm),
		CommonName:   au.CommonName,
		Organization: au.Organization,
		RootValidity: time.Duration(au.RootValidity),
		Validity:     time.Duration(au.Validity),
		Intermediate: au.Intermediate,
		CertFile:     au.CertFile,
		KeyFile:      au.KeyFile,
		CRLValidity:  time.Duration(au.CRLValidity),
		CRLURLs:      au.CRLURLs,
		IssuerURLs:   au.IssuerURLs,
	}
}

// policy is the signing policy of this authority.
func (au *Authority) policy(profile string) ca.Policy {
	legacy := profile == profileLegacy
	if au.LegacyCSR != nil {
		legacy = *au.LegacyCSR
	}
	return ca.Policy{
		Legacy:       legacy,
		AllowRSA1024: au.AllowRSA1024,
		ServerAuth:   au.ServerAuth,
		Validity:     time.Duration(au.Validity),
	}
}
