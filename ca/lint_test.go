package ca

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"
)

// Lint sources not applied, with the reason. This CA is a private
// operational PKI for IP-telephony devices: its certificates are never
// presented to browsers or public trust stores, so the rules of the CA/Browser
// Forum and of the root programs do not bind it (they demand, for example,
// certificate policies, AIA and CRL distribution points, an organization and
// country in every CA name, RSA/ECDSA only). Everything from the RFCs
// (5280, 3279, 5480, 5891, 8813, ...) and zlint's community lints is applied.
var excludedLintSources = []struct {
	source lint.LintSource
	reason string
}{
	{lint.CABFBaselineRequirements, "CA/Browser Forum TLS BRs: publicly-trusted WebPKI only"},
	{lint.CABFEVGuidelines, "CA/Browser Forum EV guidelines: publicly-trusted WebPKI only"},
	{lint.CABFSMIMEBaselineRequirements, "CA/Browser Forum S/MIME BRs: publicly-trusted e-mail certificates only"},
	{lint.CABFCSBaselineRequirements, "CA/Browser Forum code-signing BRs: not code signing"},
	{lint.MozillaRootStorePolicy, "Mozilla root store policy: public roots only"},
	{lint.AppleRootStorePolicy, "Apple root/CT policy: public roots only"},
	{lint.ChromeRootStorePolicy, "Chrome root store policy: public roots only"},
	{lint.EtsiEsi, "ETSI qualified certificates: EU trust services only"},
	{lint.RFC6962, "Certificate Transparency: private certificates are not logged"},
}

// Individual lints accepted despite firing, with the reason, per kind of
// certificate. Empty for everything but the legacy profile: the modern
// profile passes every applied lint.
var acceptedLints = map[string]map[string]string{
	"legacy root": {
		// Only with the full registry (CABF is excluded above): the legacy
		// profile's purpose is MD5 for OSP Toolkit clients, see doc.go.
		"e_signature_algorithm_not_supported": "md5WithRSAEncryption is what OSP Toolkit devices verify (hard-coded); documented risk, legacy profile only",
	},
}

var lintRegistry = func() lint.Registry {
	var srcs lint.SourceList
	for _, s := range excludedLintSources {
		srcs = append(srcs, s.source)
	}
	r, err := lint.GlobalRegistry().Filter(lint.FilterOptions{ExcludeSources: srcs})
	if err != nil {
		panic(err)
	}
	return r
}()

func lintFindings(rs *zlint.ResultSet, accepted map[string]string) (bad []string, passed int) {
	for name, r := range rs.Results {
		switch r.Status {
		case lint.Pass:
			passed++
		case lint.Warn, lint.Error, lint.Fatal:
			if _, ok := accepted[name]; !ok {
				bad = append(bad, fmt.Sprintf("%s %s: %s", r.Status, name, r.Details))
			}
		}
	}
	sort.Strings(bad)
	return bad, passed
}

func lintCert(t *testing.T, kind string, der []byte) {
	t.Helper()
	c, err := zx509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("%s: zcrypto parse: %v", kind, err)
	}
	bad, passed := lintFindings(zlint.LintCertificateEx(c, lintRegistry), acceptedLints[kind])
	if len(bad) > 0 {
		t.Errorf("%s: zlint:\n  %s", kind, strings.Join(bad, "\n  "))
	}
	if passed < 20 {
		t.Errorf("%s: only %d lints passed; are lints registered?", kind, passed)
	}
}

func lintCRL(t *testing.T, kind string, der []byte) {
	t.Helper()
	r, err := zx509.ParseRevocationList(der)
	if err != nil {
		t.Fatalf("%s: zcrypto parse: %v", kind, err)
	}
	bad, passed := lintFindings(zlint.LintRevocationListEx(r, lintRegistry), acceptedLints[kind])
	if len(bad) > 0 {
		t.Errorf("%s: zlint:\n  %s", kind, strings.Join(bad, "\n  "))
	}
	if passed == 0 {
		t.Errorf("%s: no CRL lint passed; are lints registered?", kind)
	}
}

// TestZlint lints every kind of certificate and CRL the package issues.
func TestZlint(t *testing.T) {
	ctx := context.Background()
	for _, alg := range Algorithms {
		for _, withInt := range []bool{false, true} {
			name := string(alg)
			if withInt {
				name += "+intermediate"
			}
			t.Run(name, func(t *testing.T) {
				c := sharedCA(t, Config{Algorithm: alg, Intermediate: withInt})
				lintCert(t, "root", c.Root().Raw)
				if withInt {
					lintCert(t, "intermediate", c.Issuer().Raw)
				}
				for _, k := range []string{"p256", "p384", "ed25519", "rsa2048", "rsa1024"} {
					for _, pol := range []Policy{{AllowRSA1024: true}, {AllowRSA1024: true, ServerAuth: true}} {
						for _, dev := range []string{"device1.itsp.com", "192.0.2.7"} {
							is, err := c.Sign(makeCSR(t, testKey(t, k), csrOpts{}), dev, pol)
							if err != nil {
								t.Fatal(err)
							}
							lintCert(t, fmt.Sprintf("leaf %s serverAuth=%v %s", k, pol.ServerAuth, dev), is.DER)
						}
					}
				}
			})
		}
	}
	t.Run("crl", func(t *testing.T) {
		for _, alg := range []Algorithm{P256, Ed25519, RSA2048} {
			c, _ := openCA(t, NewMemStore(), Config{Algorithm: alg, Intermediate: alg == P256}, "")
			der, err := c.CRL(ctx)
			if err != nil {
				t.Fatal(err)
			}
			lintCRL(t, "empty CRL "+string(alg), der)
			for i, is := range issueN(t, c, "device1.itsp.com", 3) {
				reason := []int{ReasonUnspecified, ReasonSuperseded, ReasonKeyCompromise}[i]
				if err := c.Revoke(ctx, is.Serial, reason); err != nil {
					t.Fatal(err)
				}
			}
			der, err = c.CRL(ctx)
			if err != nil {
				t.Fatal(err)
			}
			lintCRL(t, "CRL "+string(alg), der)
		}
	})
	t.Run("legacy", func(t *testing.T) {
		c := openLegacy(t, NewMemStore())
		lintCert(t, "legacy root", c.Root().Raw)
		for _, f := range []string{"openssl-rsa1024-md5", "openssl-rsa2048-md5"} {
			is, err := c.Issue(ctx, readPEMFile(t, "testdata/"+f+".csr.pem"), "device1.itsp.com", c.DefaultPolicy())
			if err != nil {
				t.Fatal(err)
			}
			lintCert(t, "legacy leaf", is.DER)
			if err := c.Revoke(ctx, is.Serial, ReasonSuperseded); err != nil {
				t.Fatal(err)
			}
		}
		der, err := c.CRL(ctx)
		if err != nil {
			t.Fatal(err)
		}
		lintCRL(t, "legacy CRL", der)

		// With the full registry, the MD5 lint is the one failure of the
		// legacy root (and the leaf, a clientAuth certificate, has none that
		// is not from an excluded source).
		zc, _ := zx509.ParseCertificate(c.Root().Raw)
		rs := zlint.LintCertificate(zc)
		if r := rs.Results["e_signature_algorithm_not_supported"]; r == nil || r.Status != lint.Error {
			t.Errorf("MD5 lint did not fire on the legacy root: %+v", r)
		}
	})
}

// TestZlintFullRegistry documents which lints fire when nothing is excluded:
// each must come from an excluded source (or be accepted above).
func TestZlintFullRegistry(t *testing.T) {
	excluded := map[lint.LintSource]bool{}
	for _, s := range excludedLintSources {
		excluded[s.source] = true
	}
	c := sharedCA(t, Config{Algorithm: Ed25519, Intermediate: true})
	is, err := c.Sign(makeCSR(t, testKey(t, "rsa2048"), csrOpts{}), "device1.itsp.com", Policy{ServerAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	for kind, der := range map[string][]byte{"root": c.Root().Raw, "intermediate": c.Issuer().Raw, "leaf": is.DER} {
		zc, _ := zx509.ParseCertificate(der)
		for name, r := range zlint.LintCertificate(zc).Results {
			if r.Status != lint.Warn && r.Status != lint.Error && r.Status != lint.Fatal {
				continue
			}
			l := lint.GlobalRegistry().ByName(name)
			if !excluded[l.Source] {
				t.Errorf("%s: %s %s from applied source %s: %s", kind, r.Status, name, l.Source, r.Details)
			}
		}
	}
}
