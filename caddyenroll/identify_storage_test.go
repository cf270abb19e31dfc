package caddyenroll

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

type innerStore = ca.Store

// failingRecordStore fails Loads of issuance records while fail is set (a
// storage hiccup: a timeout, a backend briefly unreachable).
type failingRecordStore struct {
	innerStore
	fail atomic.Bool
}

func (s *failingRecordStore) Load(ctx context.Context, key string) ([]byte, error) {
	if s.fail.Load() && strings.Contains(key, "/issued/") {
		return nil, errors.New("storage unavailable")
	}
	return s.innerStore.Load(ctx, key)
}

// README (Call authorization over OSP): "one presenting a certificate of
// ours that has expired or is revoked is refused whatever its address".
// An error of CA.Lookup other than "no such serial" is not "not issued by
// this clearinghouse" (errForeignCertificate): taken for it, a revoked
// certificate of ours was passed by its source_address while the storage
// failed to read its record.
func TestRevokedOwnCertificateNotPassedOnStorageError(t *testing.T) {
	ctx := context.Background()
	st := &failingRecordStore{innerStore: ca.NewMemStore()}
	c, _, err := ca.Open(ctx, st, ca.Config{Name: "modern"}, "")
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "gw1.example"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	is, err := c.Issue(ctx, csr, "gw1.example", ca.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Revoke(ctx, is.Serial, ca.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(is.DER)
	if err != nil {
		t.Fatal(err)
	}
	cs, _, _ := testConfigState(t, "routing enabled\ngroup \"\"\n"+
		"device gw1.example \"\" enabled enrolled\n"+
		"route \"\" \"\" gw1.example 1\n")
	a := &App{cfg: cs, log: zap.NewNop(), authz: &authz{revocations: new(revocations)},
		cas: map[string]*ca.CA{profileModern: c}}
	cs.read(func(f *configfile.File) { err = a.rebuildRoutes(f) })
	if err != nil {
		t.Fatal(err)
	}
	h := &OSPHandler{Tokens: TokensUnsigned, Profile: profileModern, app: a, log: zap.NewNop(),
		bySource: map[netip.Addr]string{netip.MustParseAddr("192.0.2.1"): "gw1.example"}}
	req := func() *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/osp", nil)
		r.RemoteAddr = "192.0.2.1:40000"
		r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}
		return r
	}
	if d, why := h.identify(req()); d != "" {
		t.Fatalf("storage fine: the revoked certificate identified %q (%s)", d, why)
	}
	st.fail.Store(true)
	if d, why := h.identify(req()); d != "" {
		t.Errorf("the record of our revoked certificate unreadable: identified as %q by its source_address (%s); want refused", d, why)
	}
}

// A foreign certificate with a serial no CA of ours gives (zero, as some
// test certificates have) is foreign, not a storage error: its gateway
// is still identified by its source_address.
func TestForeignCertificateWithZeroSerial(t *testing.T) {
	c, _, err := ca.Open(context.Background(), ca.NewMemStore(), ca.Config{Name: "modern"}, "")
	if err != nil {
		t.Fatal(err)
	}
	a := &App{cas: map[string]*ca.CA{profileModern: c}, authz: &authz{revocations: new(revocations)}}
	cert := &x509.Certificate{SerialNumber: big.NewInt(0), Raw: []byte("foreign"),
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	if _, _, err := a.identifyByCertificate(context.Background(), cert); !errors.Is(err, errForeignCertificate) {
		t.Fatalf("serial 0: %v, want a foreign certificate", err)
	}
}
