package caddyenroll

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
	"github.com/clearinghouse-dev/caddy-clearinghouse/osp"
)

// holdingWriter holds, while armed, every log write that contains msg
// until release is closed, after telling entered.
type holdingWriter struct {
	armed   atomic.Bool
	msg     string
	entered chan struct{}
	release chan struct{}
}

func (w *holdingWriter) Write(p []byte) (int, error) {
	if w.armed.Load() && bytes.Contains(p, []byte(w.msg)) {
		w.armed.Store(false)
		close(w.entered)
		<-w.release
	}
	return len(p), nil
}

func (w *holdingWriter) Sync() error { return nil }

// routeAuthBody is an authorization request to called.
func routeAuthBody(t *testing.T, called string) []byte {
	t.Helper()
	b, err := (&osp.AuthorizationRequest{MessageID: "1", ComponentID: "2", Timestamp: time.Now().UTC(),
		CallIDs: [][]byte{[]byte("call")}, SourceInfo: []osp.Info{{Type: "e164", Value: "1404"}},
		DestinationInfo: []osp.Info{{Type: "e164", Value: called}}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func routePost(h *OSPHandler, body []byte, remote string) (int, string) {
	r := httptest.NewRequest(http.MethodPost, "/osp", bytes.NewReader(body))
	r.RemoteAddr = remote
	w := httptest.NewRecorder()
	err := h.ServeHTTP(w, r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil }))
	if he, ok := err.(caddyhttp.HandlerError); ok {
		return he.StatusCode, he.Error()
	}
	return w.Code, w.Body.String()
}

// README: "The table is rebuilt atomically on every change of the file;
// lookups never wait for it". The rebuild runs under the configuration's
// write lock; an authorization must not wait for it (it read the device's
// file spelling under that lock: ~0.34 s per change with 1M routes). Here
// the rebuild is held in its last step (the WARN it logs for a device
// without an address) while an authorization is sent.
func TestAuthorizationDoesNotWaitForRouteRebuild(t *testing.T) {
	text := "routing enabled\ngroup \"\"\n" +
		"device gw1.example \"\" enabled enrolled\n" +
		"device gw2.example \"\" enabled enrolled\n" +
		"device 'GW 3' \"\" enabled enrolled\n" + // no address OSP can send: each rebuild logs a WARN
		"route \"\" \"\" gw2.example 1\n"
	cs, path, dir := testConfigState(t, text)
	hw := &holdingWriter{msg: "devices without an address OSP can send", entered: make(chan struct{}), release: make(chan struct{})}
	var released atomic.Bool
	release := func() {
		if released.CompareAndSwap(false, true) {
			close(hw.release)
		}
	}
	t.Cleanup(release)
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), hw, zap.DebugLevel))
	a := &App{cfg: cs, log: log, authz: &authz{revocations: new(revocations)}, crypto: new(cryptoRecords)}
	var err error
	cs.read(func(f *configfile.File) { err = a.rebuildRoutes(f) })
	if err != nil {
		t.Fatal(err)
	}
	a.followFileChanges()
	initMetrics()
	h := &OSPHandler{Tokens: TokensUnsigned, Profile: profileModern, app: a, log: zap.NewNop(),
		bySource: map[netip.Addr]string{netip.MustParseAddr("192.0.2.1"): "gw1.example"}}
	body := routeAuthBody(t, "14045550100")
	if code, ans := routePost(h, body, "192.0.2.1:5060"); code != 200 || !strings.Contains(ans, "gw2.example") {
		t.Fatalf("before the change: HTTP %d %.300s", code, ans)
	}

	// a new version of the file (renamed into place, so taken at once)
	// with a new device: a change of the devices re-indexes them and logs
	// the unaddressable ones again (a change of routes alone would not)
	tmp := filepath.Join(dir, "new.conf")
	if err := os.WriteFile(tmp, []byte(text+"device gw4.example \"\" enabled enrolled\nroute \"\" '+44...' gw2.example 1\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	hw.armed.Store(true)
	reloaded := make(chan struct{})
	go func() {
		defer close(reloaded)
		_, _ = cs.reload()
	}()
	select {
	case <-hw.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the reload did not rebuild the route table")
	}

	// the rebuild is in progress; the table in force answers lookups
	answered := make(chan int, 1)
	go func() {
		code, _ := routePost(h, body, "192.0.2.1:5060")
		answered <- code
	}()
	select {
	case code := <-answered:
		if code != 200 {
			t.Errorf("authorization during a rebuild: HTTP %d", code)
		}
		release()
	case <-time.After(2 * time.Second):
		t.Error("an authorization waited for the route table's rebuild (identify → fileName → configState.device takes the read lock the rebuild holds for writing)")
		release()
		select { // let the waiting authorization end with the test
		case <-answered:
		case <-time.After(10 * time.Second):
		}
	}
	<-reloaded
}

// A device whose DNS name is longer than an answer's NetworkID takes
// (osp.MaxNumber, 131 bytes) is never offered, like one without an
// address: offered, it failed the whole authorization (OSP 500) for every
// call over its route.
func TestLongDeviceNameDoesNotFailTheCall(t *testing.T) {
	long := strings.Repeat("a", 60) + "." + strings.Repeat("b", 60) + ".carrier.example" // 137 characters, a host name
	cs, _, _ := testConfigState(t, "routing enabled\ngroup \"\"\n"+
		"device gw1.example \"\" enabled enrolled\n"+
		"device gw2.example \"\" enabled enrolled\n"+
		"device "+long+" \"\" enabled enrolled\n"+
		"route \"\" \"\" "+long+" 1 gw2.example 0\n")
	a := &App{cfg: cs, log: zap.NewNop(), authz: &authz{revocations: new(revocations)}}
	var err error
	cs.read(func(f *configfile.File) { err = a.rebuildRoutes(f) })
	if err != nil {
		t.Fatal(err)
	}
	// not offered (listed, and warned of), so that the call goes on with
	// the route's other devices
	if u := a.router.Load().Unaddressable(); len(u) != 1 || u[0] != long {
		t.Fatalf("unaddressable: %v, want the long name", u)
	}
	initMetrics()
	h := &OSPHandler{Tokens: TokensUnsigned, Profile: profileModern, app: a, log: zap.NewNop(),
		bySource: map[netip.Addr]string{netip.MustParseAddr("192.0.2.1"): "gw1.example"}}
	code, ans := routePost(h, routeAuthBody(t, "14045550100"), "192.0.2.1:5060")
	rsp, err := osp.ParseAuthorisationResponse([]byte(ans))
	if code != 200 || err != nil {
		t.Fatalf("HTTP %d %v: %.300s", code, err, ans)
	}
	if !rsp.Status.OK() || len(rsp.Destinations) != 1 || rsp.Destinations[0].NetworkID != "gw2.example" {
		t.Errorf("a route naming a device of a %d-character DNS name: %.400s", len(long), ans)
	}
}

// README: a gateway identified by its source_address may present a
// certificate of its own (test_app sends a foreign, expired one); with
// `verifier enroll` off the handshake passes, and the address identifies
// it (it was refused as soon as any certificate was presented).
func TestSourceAddressWithForeignCertificate(t *testing.T) {
	cs, _, _ := testConfigState(t, "routing enabled\ngroup \"\"\n"+
		"device gw1.example \"\" enabled enrolled\n"+
		"device gw2.example \"\" enabled enrolled\n"+
		"route \"\" \"\" gw2.example 1\n")
	a := &App{cfg: cs, log: zap.NewNop(), authz: &authz{revocations: new(revocations)}}
	var err error
	cs.read(func(f *configfile.File) { err = a.rebuildRoutes(f) })
	if err != nil {
		t.Fatal(err)
	}
	h := &OSPHandler{Tokens: TokensUnsigned, Profile: profileModern, app: a, log: zap.NewNop(),
		bySource: map[netip.Addr]string{netip.MustParseAddr("192.0.2.1"): "gw1.example"}}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "test_app"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "/osp", nil)
	r.RemoteAddr = "192.0.2.1:40000"
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{foreign}}
	if d, why := h.identify(r); d != "gw1.example" {
		t.Errorf("a gateway at its source_address presenting a certificate of its own: identified as %q (%s), want gw1.example", d, why)
	}
}
