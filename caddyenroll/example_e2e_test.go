package caddyenroll_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/enrollclient"
	"github.com/clearinghouse-dev/caddy-clearinghouse/internal/testutil"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

// Caddyfile.example runs offline as shipped (in a copy of the repo's files,
// so the test leaves the checkout alone) and enrolls the demo account's
// device at https://localhost:8443/.
func TestCaddyfileExampleAsShipped(t *testing.T) {
	dir := t.TempDir()
	root := testutil.RepoRoot()
	copyFile(t, filepath.Join(root, "examples", "clearinghouse.conf"), filepath.Join(dir, "examples", "clearinghouse.conf"))
	b, err := os.ReadFile(filepath.Join(root, "Caddyfile.example"))
	if err != nil {
		t.Fatal(err)
	}
	c := testutil.StartCaddy(t, dir, string(b), "localhost:2019", "localhost:8443")
	pem := testutil.InternalRootPEM(t, filepath.Join(dir, ".data", "example"))
	cl := &enrollclient.Client{
		ServerURL: "https://localhost:8443/", RootCAPEM: pem, TrustOnFirstUse: true,
		DeviceName: "device6.isp.com", DeviceID: "134217728", Customer: "0",
		Username: "demo", Password: "demo-password", Dir: t.TempDir(), MaxWait: 10 * time.Second,
	}
	var res *enrollclient.Result
	waitFor(t, "an enrollment", func() bool {
		res, err = cl.Enroll(context.Background())
		return err == nil
	})
	if res.Certificate.Subject.CommonName != "device6.isp.com" {
		t.Fatalf("certificate for %q", res.Certificate.Subject.CommonName)
	}
	conf, _ := os.ReadFile(filepath.Join(dir, "examples", "clearinghouse.conf"))
	if !strings.Contains(string(conf), "crypto 'modern:p256:sha256:") {
		t.Fatal("the example configuration file does not name the generated CA")
	}
	_ = c
}

// Two Caddy instances sharing one storage (and configuration file) act as
// one server: a request made on one is approved through the other's admin
// API and retrieved from the first.
func TestTwoInstancesShareState(t *testing.T) {
	a := startServer(t, serverOpts{approval: "manual"})
	// the second instance: same storage, same configuration file
	admin := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	tlsAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	cf, _ := os.ReadFile(a.Config)
	second := strings.NewReplacer(a.AdminAddr, admin, a.tlsAddr, tlsAddr, a.httpAddr, fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))).Replace(string(cf))
	bdir := t.TempDir()
	bc := testutil.StartCaddy(t, bdir, second, admin, tlsAddr)
	b := &server{Caddy: bc, t: t, https: "https://" + tlsAddr + "/", conf: a.conf, tlsAddr: tlsAddr, client: a.client}
	b.waitTLS()

	if !a.getCACert().Equal(b.getCACert()) {
		t.Fatal("the instances serve different operational CAs")
	}
	key, csr := p256CSR(t, "device4.com")
	if ans := a.do(enrollReq(wire.OpRequest, t, csr)); ans.Status != wire.StatusPending {
		t.Fatalf("request on A: %d", ans.Status)
	}
	p := b.pending()
	if len(p) != 1 {
		t.Fatalf("B sees %d pending requests", len(p))
	}
	if code, body := b.Admin("POST", "/enroll/approve/"+p[0].ID, ""); code != 200 {
		t.Fatalf("approve on B: %d %s", code, body)
	}
	ans := a.do(enrollReq(wire.OpRetrieve, t, csr))
	if ans.Status != wire.StatusOK {
		t.Fatalf("retrieve on A: %d %s", ans.Status, ans.Error)
	}
	checkIssued(t, ans.Certificate, a.getCACert(), "device4.com", key)
	// a nonce used on A is refused on B
	r := enrollReq(wire.OpRequest, t, csr)
	if x := a.do(r); x.Status != wire.StatusOK {
		t.Fatalf("repeat on A: %d", x.Status)
	}
	_, other := p256CSR(t, "device4.com") // another key of the device
	r2 := enrollReq(wire.OpRequest, t, other)
	r2.Nonce = r.Nonce
	if x := b.do(r2); x.Status != wire.StatusNonceReused {
		t.Fatalf("nonce replayed on B: status %d", x.Status)
	}
}
