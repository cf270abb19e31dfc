package caddyenroll

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

// An expired certificate this clearinghouse issued and never revoked no
// longer identifies its device (with client_auth mode request, as the
// legacy profile needs, TLS checks no dates), whether the identity was
// cached while it was valid or not.
func TestIdentifyRefusesExpiredCertificate(t *testing.T) {
	f := newRefreshFixture(t)
	// the CA and the app share the fixture's clock, moved by hand
	cached := f.cert(f.issue(f.local, "gw1.example", time.Hour))
	uncached := f.cert(f.issue(f.local, "gw2.example", time.Hour))
	if d, _, err := f.app.identifyByCertificate(f.ctx, cached); err != nil || d != "gw1.example" {
		t.Fatalf("a valid certificate: %q, %v", d, err)
	}
	f.clock.add(time.Hour + time.Second)
	for name, c := range map[string]*x509.Certificate{"cached": cached, "not cached": uncached} {
		if d, _, err := f.app.identifyByCertificate(f.ctx, c); err == nil || !strings.Contains(err.Error(), "not now") {
			t.Errorf("%s expired certificate: identified as %q (%v)", name, d, err)
		}
	}
}

// A stored token signer whose key is not its certificate's (a crash or
// another instance between the two writes) is not loaded: it is renewed.
func TestLoadSignerRefusesMismatch(t *testing.T) {
	f := newRefreshFixture(t)
	pemOf := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	key1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	key2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key1.Public(), key1)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		key  *ecdsa.PrivateKey
		ok   bool
	}{{"matching", key1, true}, {"another key", key2, false}} {
		der, _ := x509.MarshalPKCS8PrivateKey(c.key)
		if err := f.app.storage.Store(f.ctx, "k", pemOf("PRIVATE KEY", der)); err != nil {
			t.Fatal(err)
		}
		if err := f.app.storage.Store(f.ctx, "c", pemOf("CERTIFICATE", certDER)); err != nil {
			t.Fatal(err)
		}
		if _, err := loadSigner(f.ctx, f.app, "k", "c"); (err == nil) != c.ok {
			t.Errorf("%s: loadSigner error %v", c.name, err)
		}
	}
}

// A reauthorization finds the devices at its token's address however the
// file or the Caddyfile spells that address: tokens carry it normalized.
// Devices sharing one address are all found.
func TestDevicesAtTokenAddress(t *testing.T) {
	f, err := configfile.Parse("t.conf", []byte(`group ""
device gw6.example "" enabled enrolled
device gwm.example "" enabled enrolled
device gwdot.example.com. "" enabled enrolled
device 2001:DB8:0::5 "" enabled enrolled
device a.example "" enabled enrolled
device b.example "" enabled enrolled
`))
	if err != nil {
		t.Fatal(err)
	}
	a := &App{authz: &authz{revocations: new(revocations)}, DeviceAddresses: map[string]string{
		"gw6.example": "[2001:DB8:0:0::1]:5060",
		"gwm.example": "::ffff:192.0.2.20",
		"A.Example":   "192.0.2.30:5070", // another spelling of the file's a.example
		"b.example":   "[192.0.2.30]:5070",
	}}
	if err := a.rebuildRoutes(f); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		token string // as osp.issue writes it
		want  []string
	}{
		{"[2001:db8::1]:5060", []string{"gw6.example"}},
		{"[192.0.2.20]:5060", []string{"gwm.example"}},
		{"gwdot.example.com:5060", []string{"gwdot.example.com."}},
		{"[2001:db8::5]:5060", []string{"2001:DB8:0::5"}},
		{"[192.0.2.30]:5070", []string{"a.example", "b.example"}},
		{"[192.0.2.99]:5060", nil},
	} {
		got := a.devicesAt(c.token)
		slices.Sort(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("devices at %s: %v, want %v", c.token, got, c.want)
		}
	}
}

// A device is identified as the file writes it, whatever the spelling of
// the source_address naming it (or of the certificate's normal form).
func TestIdentifyAsTheFileWritesIt(t *testing.T) {
	cs, _, _ := testConfigState(t, "group \"\"\ndevice device1.itsp.com \"\" enabled enrolled\ndevice '2001:DB8::1' \"\" enabled enrolled\n")
	h := &OSPHandler{app: &App{cfg: cs}, bySource: map[netip.Addr]string{
		netip.MustParseAddr("192.0.2.10"): "Device1.ITSP.com",
		netip.MustParseAddr("192.0.2.11"): "2001:db8::1",
	}}
	for addr, want := range map[string]string{"192.0.2.10:5060": "device1.itsp.com", "192.0.2.11:5060": "2001:DB8::1"} {
		r := httptest.NewRequest("POST", "/osp", nil)
		r.RemoteAddr = addr
		if got, why := h.identify(r); got != want {
			t.Errorf("from %s: %q (%s), want %q", addr, got, why, want)
		}
	}
}

// A client certificate of the legacy CA (MD5-RSA, which Go's TLS stack
// cannot verify: the legacy OSP site uses client_auth mode request)
// identifies its device as a modern one does: byte for byte a certificate
// this clearinghouse issued.
func TestIdentifyLegacyCertificate(t *testing.T) {
	f := newRefreshFixture(t)
	legacy, _, err := ca.Open(f.ctx, f.app.storage, ca.Config{Name: "legacy", Profile: ca.ProfileLegacy, Now: f.clock.Now}, "")
	if err != nil {
		t.Fatal(err)
	}
	f.app.cas[profileLegacy] = legacy
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "gw9.example"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	is, err := legacy.Issue(f.ctx, csr, "gw9.example", ca.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	if is.Cert.SignatureAlgorithm != x509.MD5WithRSA {
		t.Fatalf("legacy certificate signed with %v", is.Cert.SignatureAlgorithm)
	}
	d, profile, err := f.app.identifyByCertificate(f.ctx, is.Cert)
	if err != nil || d != "gw9.example" || profile != profileLegacy {
		t.Fatalf("legacy certificate: %q %q %v", d, profile, err)
	}
	// a certificate with the same names that this clearinghouse did not
	// issue (its bytes differ) identifies nobody
	forged := *is.Cert
	forged.Raw = append(append([]byte(nil), is.Cert.Raw...), 0)
	if d, _, err := f.app.identifyByCertificate(f.ctx, &forged); err == nil {
		t.Fatalf("a certificate not issued here identified %q", d)
	}
}

// Signed tokens need a CA without an intermediate: gateways verify a token
// with PKCS7_NOCHAIN against the CA certificate enrollment gave them (the
// root), so a signer the intermediate issued would fail every check there.
func TestTokenSignerRefusesIntermediate(t *testing.T) {
	f := newRefreshFixture(t)
	withIntermediate, _, err := ca.Open(f.ctx, ca.NewMemStore(), ca.Config{Name: "modern", Intermediate: true}, "")
	if err != nil {
		t.Fatal(err)
	}
	f.app.cas[profileModern] = withIntermediate
	if _, err := f.app.tokenSigner(f.ctx, profileModern); err == nil || !strings.Contains(err.Error(), "intermediate") {
		t.Fatalf("token signer under an intermediate: %v", err)
	}
	f.app.cas[profileModern] = f.local
	f.app.log = zap.NewNop()
	if _, err := f.app.tokenSigner(f.ctx, profileModern); err != nil {
		t.Fatalf("token signer of a root CA: %v", err)
	}
}

// Nor does a certificate before its NotBefore (an instance whose clock ran
// ahead issued it, or the host's clock was set back): TLS with client_auth
// mode request checks no dates.
func TestIdentifyRefusesNotYetValidCertificate(t *testing.T) {
	f := newRefreshFixture(t)
	rec, err := f.local.Lookup(f.ctx, f.issue(f.local, "gw1.example", time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(rec.DER)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.add(c.NotBefore.Sub(f.clock.Now()) - time.Second)
	if d, _, err := f.app.identifyByCertificate(f.ctx, c); err == nil || !strings.Contains(err.Error(), "not now") {
		t.Errorf("a certificate before its NotBefore: identified as %q (%v)", d, err)
	}
	f.clock.add(2 * time.Second)
	if d, _, err := f.app.identifyByCertificate(f.ctx, c); err != nil || d != "gw1.example" {
		t.Errorf("the certificate from its NotBefore: %q, %v", d, err)
	}
}
