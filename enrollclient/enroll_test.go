package enrollclient

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/enrollclient/enrolltest"
	"github.com/clearinghouse-dev/caddy-clearinghouse/wire"
)

func TestEnrollAutoIssue(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{})
	c := newClient(t, srv, nil)
	res, err := c.Enroll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := srv.Ops(); !reflect.DeepEqual(got, []string{"getcacert", "request"}) {
		t.Fatalf("ops = %v", got)
	}
	if res.Certificate.Subject.CommonName != "gw1.example.com" || res.Attempts != 1 || res.Resumed {
		t.Fatalf("result %+v", res)
	}
	if res.CAFingerprint != srv.CAFingerprint() {
		t.Fatalf("CA fingerprint %s", res.CAFingerprint)
	}
	for name, mode := range map[string]os.FileMode{KeyFile: 0o600, CertFile: 0o644, CAFile: 0o644} {
		fi, err := os.Stat(filepath.Join(c.Dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s mode %04o, want %04o", name, fi.Mode().Perm(), mode)
		}
	}
	if exists(c.Dir, PendingFile) {
		t.Error("pending.json left behind")
	}
	if got := names(snapshot(t, c.Dir)); !reflect.DeepEqual(got, []string{CAFile, CertFile, KeyFile}) {
		t.Errorf("files = %v (temporaries left?)", got)
	}
	keyPEM, _ := os.ReadFile(filepath.Join(c.Dir, KeyFile))
	if !bytes.HasPrefix(keyPEM, []byte("-----BEGIN PRIVATE KEY-----")) {
		t.Errorf("key is not PKCS#8 PEM: %.40s", keyPEM)
	}
	k, err := parseKeyPEM(keyPEM)
	if err != nil || !samePublicKey(k.Public(), res.Certificate.PublicKey) {
		t.Fatalf("saved key does not match certificate: %v", err)
	}
	if KeyDescription(k.Public()) != "ECDSA P-256" {
		t.Errorf("default key %s", KeyDescription(k.Public()))
	}
	// the request carried a CSR with CN and DNS SAN = device name
	m := srv.Messages()[1]
	csr, err := x509.ParseCertificateRequest(m.Request.CSR)
	if err != nil {
		t.Fatal(err)
	}
	if csr.Subject.CommonName != "gw1.example.com" || !reflect.DeepEqual(csr.DNSNames, []string{"gw1.example.com"}) {
		t.Errorf("CSR subject %s, SANs %v", csr.Subject, csr.DNSNames)
	}
	if m.Request.Device != "134217728" || m.Request.Customer != "0" || m.Request.Username != "user" ||
		m.Request.Password != "pass" || len(m.Request.Nonce) != 32 || m.Request.CSRField != wire.CSRFieldRequest {
		t.Errorf("request %+v", m.Request)
	}
	st, err := c.Status()
	if err != nil || st.State != StateIssued || st.Cert.CAFingerprint != srv.CAFingerprint() || !st.Cert.KeyMatches ||
		st.Cert.DaysLeft < 364 || st.Cert.KeyMode != 0o600 || len(st.Problems) != 0 {
		t.Fatalf("status %+v %+v %v", st, st.Cert, err)
	}
}

func TestKeyTypes(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{})
	for _, kt := range []KeyType{KeyP384, KeyRSA2048} {
		c := newClient(t, srv, nil)
		c.KeyType = kt
		res, err := c.Enroll(context.Background())
		if err != nil {
			t.Fatal(kt, err)
		}
		want := map[KeyType]string{KeyP384: "ECDSA P-384", KeyRSA2048: "RSA 2048"}[kt]
		if got := KeyDescription(res.Certificate.PublicKey); got != want {
			t.Errorf("%s: %s", kt, got)
		}
	}
	for in, want := range map[string]KeyType{"P-256": KeyP256, "ecdsa-p384": KeyP384, "RSA4096": KeyRSA4096, "rsa-3072": KeyRSA3072} {
		if got, err := ParseKeyType(in); err != nil || got != want {
			t.Errorf("ParseKeyType(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseKeyType("dsa"); !errors.Is(err, ErrConfig) {
		t.Error("dsa accepted")
	}
}

func TestCertReqField(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{})
	c := newClient(t, srv, nil)
	c.CSRField = wire.CSRFieldCertReq
	if _, err := c.Enroll(context.Background()); err != nil {
		t.Fatal(err)
	}
	m := srv.Messages()[1]
	if m.Request.CSRField != wire.CSRFieldCertReq || !bytes.Contains(m.Body, []byte("&certreq=")) {
		t.Fatalf("body %s", m.Body)
	}
}

func TestPendingThenApproved(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{PendingPolls: 3})
	clk := newClock()
	c := newClient(t, srv, clk)
	var progress []int
	var nexts []time.Duration
	c.Progress = func(attempt int, next time.Duration, _ error) {
		progress = append(progress, attempt)
		nexts = append(nexts, next)
	}
	res, err := c.Enroll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ops := srv.Ops()
	if !reflect.DeepEqual(ops, []string{"getcacert", "request", "retrieve", "retrieve", "retrieve", "retrieve"}) {
		t.Fatalf("ops = %v", ops)
	}
	if res.Attempts != 5 {
		t.Errorf("attempts %d", res.Attempts)
	}
	want := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second}
	if !reflect.DeepEqual(clk.waits(), want) || !reflect.DeepEqual(nexts, want) || !reflect.DeepEqual(progress, []int{1, 2, 3, 4}) {
		t.Fatalf("waits %v, progress %v %v", clk.waits(), progress, nexts)
	}
	// same CSR and nonce every time (seed 001: a retrieve "only differs in
	// the 'operation' parameter")
	msgs := srv.Messages()[1:]
	for _, m := range msgs {
		if !bytes.Equal(m.Request.CSR, msgs[0].Request.CSR) {
			t.Fatal("CSR changed between request and retrieve")
		}
		if !bytes.Equal(m.Request.Nonce, msgs[0].Request.Nonce) {
			t.Fatalf("%s nonce %s, request's %s", m.Operation, m.Request.Nonce, msgs[0].Request.Nonce)
		}
		if m.ContentType != "text/html" {
			t.Errorf("content type %q", m.ContentType)
		}
	}
	if exists(c.Dir, PendingFile) {
		t.Error("pending.json left after issue")
	}
}

func TestBackoffCapAndMaxWait(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{Manual: true})
	clk := newClock()
	c := newClient(t, srv, clk)
	c.InitialBackoff, c.MaxBackoff, c.MaxWait = 10*time.Second, 30*time.Second, 100*time.Second
	_, err := c.Enroll(context.Background())
	if !errors.Is(err, ErrPendingTimeout) {
		t.Fatalf("err = %v", err)
	}
	want := []time.Duration{10 * time.Second, 20 * time.Second, 30 * time.Second, 30 * time.Second, 10 * time.Second}
	if !reflect.DeepEqual(clk.waits(), want) {
		t.Fatalf("waits %v, want %v", clk.waits(), want)
	}
	if n := countOps(srv.Ops(), "retrieve"); n != 5 {
		t.Errorf("%d retrieves", n)
	}
	if !exists(c.Dir, PendingFile) || exists(c.Dir, KeyFile) {
		t.Fatal("pending state not saved, or key installed")
	}
	fi, _ := os.Stat(filepath.Join(c.Dir, PendingFile))
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("pending.json mode %04o", fi.Mode().Perm())
	}
	st, _ := c.Status()
	if st.State != StatePending || st.Pending.DeviceName != "gw1.example.com" || !st.Pending.Submitted || st.Pending.Polls != 6 ||
		st.Pending.ServerNonce == "" || st.Pending.CAFingerprint != srv.CAFingerprint() {
		t.Fatalf("status %+v %+v", st, st.Pending)
	}
}

// A pending request survives the process: a new Client with the same Dir
// resumes it with retrieve and the saved key, without a new request.
func TestPendingResume(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{Manual: true})
	clk := newClock()
	c := newClient(t, srv, clk)
	c.MaxWait = time.Second
	if _, err := c.Enroll(context.Background()); !errors.Is(err, ErrPendingTimeout) {
		t.Fatalf("err = %v", err)
	}
	saved, err := c.loadPending()
	if err != nil || saved == nil {
		t.Fatal(saved, err)
	}

	// resuming with other ids is refused before anything is sent, and the
	// saved request is kept (the server binds the nonce to the ids)
	for _, other := range []*Client{
		{HTTPClient: srv.HTTP.Client(), Password: "pass", Dir: c.Dir, DeviceID: "999"},
		{HTTPClient: srv.HTTP.Client(), Password: "pass", Dir: c.Dir, Customer: "999"},
	} {
		before := len(srv.Messages())
		if _, err := other.Poll(context.Background()); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "saved in") {
			t.Fatalf("resume with other ids: %v", err)
		}
		if len(srv.Messages()) != before || !exists(c.Dir, PendingFile) {
			t.Fatal("resume with other ids sent a message or dropped the saved request")
		}
	}

	// Poll: one retrieve, still pending
	c2 := &Client{HTTPClient: srv.HTTP.Client(), Password: "pass", Dir: c.Dir}
	if _, err := c2.Poll(context.Background()); !errors.Is(err, ErrPending) {
		t.Fatalf("poll: %v", err)
	}
	srv.Approve()
	n := len(srv.Messages())
	res, err := c2.Enroll(context.Background()) // everything else from pending.json
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resumed {
		t.Error("not marked resumed")
	}
	ops := srv.Ops()[n:]
	if !reflect.DeepEqual(ops, []string{"getcacert", "retrieve"}) {
		t.Fatalf("resume ops = %v", ops)
	}
	if !samePublicKey(res.Certificate.PublicKey, saved.key.Public()) {
		t.Fatal("resume made a new key")
	}
	last := srv.Messages()[len(srv.Messages())-1]
	if !bytes.Equal(last.Request.CSR, saved.csrDER) || last.Request.Device != "134217728" || last.Request.Username != "user" {
		t.Fatalf("retrieve %+v", last.Request)
	}
	if exists(c.Dir, PendingFile) {
		t.Error("pending.json left")
	}
	// Poll with nothing pending
	if _, err := c2.Poll(context.Background()); !errors.Is(err, ErrNoPending) {
		t.Fatalf("poll: %v", err)
	}
}

// The request's nonce is saved with it: the retrieves of later processes
// repeat it; a pending.json without one gets one, kept from then on; a new
// request (new key) gets a new nonce.
func TestNonceKeptAcrossRetrieves(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{Manual: true})
	c := newClient(t, srv, newClock())
	c.MaxWait = -1 // one message
	if _, err := c.Enroll(context.Background()); !errors.Is(err, ErrPending) {
		t.Fatalf("err = %v", err)
	}
	for range 2 {
		c2 := &Client{HTTPClient: srv.HTTP.Client(), Password: "pass", Dir: c.Dir}
		if _, err := c2.Poll(context.Background()); !errors.Is(err, ErrPending) {
			t.Fatalf("poll: %v", err)
		}
	}
	nonces := func() (ops []string, seen map[string]bool) {
		seen = map[string]bool{}
		for _, m := range srv.Messages() {
			if m.Operation != wire.OpGetCACert {
				ops = append(ops, m.Operation)
				seen[string(m.Request.Nonce)] = true
			}
		}
		return ops, seen
	}
	ops, seen := nonces()
	if !reflect.DeepEqual(ops, []string{"request", "retrieve", "retrieve"}) || len(seen) != 1 {
		t.Fatalf("ops %v, nonces %v", ops, seen)
	}

	// a pending.json written before the nonce was kept
	p, _ := c.loadPending()
	first := p.Nonce
	p.Nonce = ""
	if err := c.savePending(p); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(filepath.Join(c.Dir, PendingFile)); bytes.Contains(data, []byte(`"nonce"`)) {
		t.Fatalf("nonce still saved: %s", data)
	}
	for range 2 {
		if _, err := c.Poll(context.Background()); !errors.Is(err, ErrPending) {
			t.Fatalf("poll: %v", err)
		}
	}
	p, _ = c.loadPending()
	if p.Nonce == "" || p.Nonce == first {
		t.Fatalf("nonce %q (was %q)", p.Nonce, first)
	}
	msgs := srv.Messages()
	if a, b := msgs[len(msgs)-1], msgs[len(msgs)-3]; a.Operation != "retrieve" || string(a.Request.Nonce) != p.Nonce ||
		!bytes.Equal(a.Request.Nonce, b.Request.Nonce) {
		t.Fatalf("retrieves after the upgrade: %q, %q; saved %q", b.Request.Nonce, a.Request.Nonce, p.Nonce)
	}

	// issued; a renewal is a new request with a new nonce
	srv.Approve()
	if _, err := c.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv.Update(func(cfg *enrolltest.Config) { cfg.Manual = false })
	if _, _, err := c.Renew(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if ops, seen := nonces(); ops[len(ops)-1] != "request" || len(seen) != 3 {
		t.Fatalf("ops %v, nonces %v", ops, seen)
	}
}

func TestResumeOtherDeviceRefused(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{Manual: true})
	c := newClient(t, srv, newClock())
	c.MaxWait = time.Second
	c.Enroll(context.Background())
	c.DeviceName = "other.example.com"
	if _, err := c.Enroll(context.Background()); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "gw1.example.com") {
		t.Fatalf("err = %v", err)
	}
}

func TestApprovedDuringPolling(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{Manual: true})
	clk := newClock()
	clk.onWait = func(n int) {
		if n == 3 {
			srv.Approve()
		}
	}
	c := newClient(t, srv, clk)
	if _, err := c.Enroll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := countOps(srv.Ops(), "retrieve"); n != 3 {
		t.Fatalf("%d retrieves", n)
	}
}

func TestRejected(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{RejectStatus: wire.StatusBadCredentials, RejectReason: "bad username or password"})
	c := newClient(t, srv, nil)
	_, err := c.Enroll(context.Background())
	var re *RejectedError
	if !errors.As(err, &re) || re.Status != 3 || re.Op != "request" || re.Reason != "bad username or password" {
		t.Fatalf("err = %#v", err)
	}
	if !strings.Contains(err.Error(), "status 3 (bad credentials)") || re.Name() != "BadCredentials" {
		t.Errorf("message %q", err)
	}
	// credentials may be fixed: the key is kept for the retry
	if !exists(c.Dir, PendingFile) {
		t.Error("pending state dropped for a correctable refusal")
	}
	srv.Update(func(cfg *enrolltest.Config) { cfg.RejectStatus = 0 })
	saved, _ := c.loadPending()
	res, err := c.Enroll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !samePublicKey(res.Certificate.PublicKey, saved.key.Public()) {
		t.Error("retry made a new key")
	}
}

func TestRejectedByAdministratorWhilePending(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{Manual: true})
	clk := newClock()
	clk.onWait = func(n int) {
		if n == 2 {
			srv.Reject()
		}
	}
	c := newClient(t, srv, clk)
	_, err := c.Enroll(context.Background())
	var re *RejectedError
	if !errors.As(err, &re) || re.Status != wire.StatusRejected || re.Op != "retrieve" {
		t.Fatalf("err = %v", err)
	}
	if exists(c.Dir, PendingFile) || exists(c.Dir, KeyFile) {
		t.Error("state left after a final rejection")
	}
}

// A retrieve whose nonce the server refuses (its request is not the one the
// server bound the nonce to any more, say after the operator respelled the
// device's line) ends the request: kept, the same nonce would be refused
// on every later run.
func TestNonceRefusedWhilePending(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{Manual: true})
	clk := newClock()
	clk.onWait = func(n int) {
		if n == 2 {
			srv.Update(func(c *enrolltest.Config) {
				c.RejectStatus, c.RejectReason = wire.StatusNonceReused, "nonce was already used with another request"
			})
		}
	}
	c := newClient(t, srv, clk)
	_, err := c.Enroll(context.Background())
	var re *RejectedError
	if !errors.As(err, &re) || re.Status != wire.StatusNonceReused || re.Op != "retrieve" {
		t.Fatalf("err = %v", err)
	}
	if exists(c.Dir, PendingFile) || exists(c.Dir, KeyFile) {
		t.Error("the refused request was kept")
	}
}

// Fig. 3B step 345: a CA that does not match the pin ends the enrollment
// before a key is generated or anything but getcacert is sent.
func TestWrongFingerprintStopsBeforeKey(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{})
	c := newClient(t, srv, nil)
	c.CAFingerprint = strings.Repeat("ab", 32)
	_, err := c.Enroll(context.Background())
	var fm *FingerprintMismatchError
	if !errors.Is(err, ErrFingerprintMismatch) || !errors.As(err, &fm) || fm.Got != srv.CAFingerprint() ||
		fm.Want != strings.TrimSuffix(strings.Repeat("AB:", 32), ":") {
		t.Fatalf("err = %v", err)
	}
	if srv.Saw("request") || srv.Saw("retrieve") || !reflect.DeepEqual(srv.Ops(), []string{"getcacert"}) {
		t.Fatalf("ops = %v", srv.Ops())
	}
	if got := names(snapshot(t, c.Dir)); len(got) != 0 {
		t.Fatalf("files written: %v", got)
	}
}

func TestFingerprintForms(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{})
	fp := srv.CAFingerprint()
	for _, form := range []string{fp, strings.ToLower(fp), strings.ReplaceAll(fp, ":", ""), "sha256:" + strings.ToLower(strings.ReplaceAll(fp, ":", "")), " " + fp + "\n"} {
		c := newClient(t, srv, nil)
		c.CAFingerprint = form
		if _, err := c.Enroll(context.Background()); err != nil {
			t.Fatalf("%q: %v", form, err)
		}
	}
	for _, bad := range []string{"AB:CD", strings.Repeat("zz", 32), strings.Repeat("ab", 33)} {
		if _, err := ParseFingerprint(bad); !errors.Is(err, ErrConfig) {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestUntrustedCA(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{})
	c := newClient(t, srv, nil)
	c.CAFingerprint = ""
	_, err := c.Enroll(context.Background())
	var ue *UntrustedCAError
	if !errors.Is(err, ErrUntrustedCA) || !errors.As(err, &ue) || ue.Fingerprint != srv.CAFingerprint() || ue.Refused {
		t.Fatalf("err = %v", err)
	}
	if srv.Saw("request") || len(snapshot(t, c.Dir)) != 0 {
		t.Fatal("request sent or files written without a trust decision")
	}

	var asked string
	c.Confirm = func(fp string, cert *x509.Certificate) bool { asked = fp; return false }
	if _, err := c.Enroll(context.Background()); !errors.As(err, &ue) || !ue.Refused || asked != srv.CAFingerprint() {
		t.Fatalf("err = %v, asked %q", err, asked)
	}
	c.Confirm = func(string, *x509.Certificate) bool { return true }
	if _, err := c.Enroll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if srv.Saw("retrieve") {
		t.Fatal("unexpected retrieve")
	}
}

// Trust on first use pins the CA saved in ca.pem for later runs.
func TestTOFUPinsSavedCA(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{})
	c := newClient(t, srv, nil)
	c.CAFingerprint, c.TrustOnFirstUse = "", true
	if _, err := c.Enroll(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, c.Dir)
	impostor := enrolltest.New(t, enrolltest.Config{}) // another CA
	c.ServerURL, c.HTTPClient = impostor.URL, impostor.HTTP.Client()
	if _, err := c.Enroll(context.Background()); !errors.Is(err, ErrFingerprintMismatch) {
		t.Fatalf("err = %v", err)
	}
	if impostor.Saw("request") {
		t.Fatal("key sent to a server whose CA differs from the saved one")
	}
	sameFiles(t, before, snapshot(t, c.Dir))
}

func TestServerCertNotTrusted(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{})
	otherRoot, _, err := enrolltest.NewCA("Some Other Root")
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*Client{
		"system roots": {ServerURL: srv.URL},
		"other root":   {ServerURL: srv.URL, RootCAPEM: certPEM(otherRoot.Raw)},
	} {
		c.CAFingerprint, c.DeviceName, c.DeviceID, c.Customer, c.Username, c.Password, c.Dir =
			srv.CAFingerprint(), "gw1.example.com", "1", "0", "user", "pass", t.TempDir()
		_, err := c.Enroll(context.Background())
		var te *ServerTrustError
		if !errors.Is(err, ErrServerNotTrusted) || !errors.As(err, &te) || !strings.HasPrefix(err.Error(), "server certificate not trusted: ") {
			t.Fatalf("%s: err = %v", name, err)
		}
		if len(snapshot(t, c.Dir)) != 0 {
			t.Fatalf("%s: files written", name)
		}
	}
	if len(srv.Messages()) != 0 {
		t.Fatalf("server received %v", srv.Ops())
	}
	// the operator-given root makes it work, without an HTTPClient override
	c := &Client{ServerURL: srv.URL, RootCAPEM: srv.RootPEM(), CAFingerprint: srv.CAFingerprint(),
		DeviceName: "gw1.example.com", DeviceID: "1", Customer: "0", Username: "user", Password: "pass", Dir: t.TempDir()}
	if _, err := c.Enroll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := (&Client{ServerURL: srv.URL, RootCAPEM: []byte("junk")}).GetCACert(context.Background()); !errors.Is(err, ErrConfig) {
		t.Fatalf("junk root: %v", err)
	}
}

func TestPlainHTTP(t *testing.T) {
	srv := enrolltest.NewHTTP(t, enrolltest.Config{})
	c := newClient(t, srv, nil)
	if _, err := c.Enroll(context.Background()); !errors.Is(err, ErrHTTPNotAllowed) {
		t.Fatalf("err = %v", err)
	}
	if len(srv.Messages()) != 0 {
		t.Fatal("sent over plain HTTP")
	}
	// refused before anything is made in Dir
	fresh := *c
	fresh.Dir = filepath.Join(t.TempDir(), "new")
	if _, err := fresh.Enroll(context.Background()); !errors.Is(err, ErrHTTPNotAllowed) {
		t.Fatalf("err = %v", err)
	}
	if _, _, err := fresh.Renew(context.Background(), true); !errors.Is(err, ErrHTTPNotAllowed) {
		t.Fatalf("renew: err = %v", err)
	}
	if _, err := os.Stat(fresh.Dir); !os.IsNotExist(err) {
		t.Fatalf("a refused http:// URL made %s: %v", fresh.Dir, err)
	}
	c.AllowHTTP = true
	if _, err := c.Enroll(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestBrokenCertificateLeavesFilesUntouched(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*enrolltest.Config)
		want string
	}{
		{"wrong key", func(c *enrolltest.Config) { c.WrongKey = true }, "public key"},
		{"other CA", func(c *enrolltest.Config) { c.OtherCA = true }, "does not chain"},
		// outside its validity too: still discarded, not taken for a clock problem
		{"other CA, not yet valid", func(c *enrolltest.Config) { c.OtherCA, c.Age = true, -time.Hour }, "does not chain"},
		{"wrong key, expired", func(c *enrolltest.Config) { c.WrongKey, c.Lifetime, c.Age = true, time.Hour, 2*time.Hour }, "public key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := enrolltest.New(t, enrolltest.Config{})
			c := newClient(t, srv, nil)
			if _, err := c.Enroll(context.Background()); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, c.Dir)
			srv.Update(tc.set)
			renewed, _, err := c.Renew(context.Background(), true)
			if renewed || !errors.Is(err, ErrBadCertificate) || errors.Is(err, ErrNotValidNow) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("renewed %v, err = %v", renewed, err)
			}
			sameFiles(t, before, snapshot(t, c.Dir))
			st, _ := c.Status()
			if st.State != StateIssued {
				t.Fatalf("state %s %v", st.State, st.Problems)
			}
		})
	}
}

// A certificate that is not valid by the device's clock is the server's
// certificate for the new key all the same (issued, and superseding the
// previous one): the key is kept, and the next run with the clock right
// retrieves and installs the same certificate.
func TestWrongClockKeepsIssuedKey(t *testing.T) {
	day := 24 * time.Hour
	for _, tc := range []struct {
		name string
		skew time.Duration
		want string
	}{
		{"behind", -10 * time.Minute, "not valid now"}, // the server backdates 5 minutes
		{"ahead", 400 * day, "not valid now"},          // past the 365-day lifetime
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := enrolltest.New(t, enrolltest.Config{Age: 5 * time.Minute})
			clk := newClock()
			c := newClient(t, srv, clk)
			if _, err := c.Enroll(context.Background()); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, c.Dir)
			clk.set(time.Now().Add(tc.skew))
			renewed, _, err := c.Renew(context.Background(), true)
			if renewed || !errors.Is(err, ErrNotValidNow) || !errors.Is(err, ErrBadCertificate) ||
				!strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "check this device's clock") {
				t.Fatalf("renewed %v, err = %v", renewed, err)
			}
			if !exists(c.Dir, PendingFile) {
				t.Fatal("pending.json (the only copy of the certified key) removed")
			}
			after := snapshot(t, c.Dir)
			delete(after, PendingFile)
			sameFiles(t, before, after)
			saved, err := c.loadPending()
			if err != nil || !saved.Submitted {
				t.Fatalf("saved %+v, %v", saved, err)
			}

			clk.set(time.Now())
			n := len(srv.Messages())
			renewed, res, err := c.Renew(context.Background(), false)
			if err != nil || !renewed {
				t.Fatalf("renewed %v, err = %v", renewed, err)
			}
			if ops := srv.Ops()[n:]; !reflect.DeepEqual(ops, []string{"getcacert", "retrieve"}) {
				t.Fatalf("ops %v", ops)
			}
			issued := srv.Issued()
			if len(issued) != 2 || !bytes.Equal(res.Certificate.Raw, issued[1]) || !samePublicKey(res.Certificate.PublicKey, saved.key.Public()) {
				t.Fatal("not the certificate issued for the saved key")
			}
			if exists(c.Dir, PendingFile) {
				t.Error("pending.json left")
			}
		})
	}
}

// An interrupted installation (journaled certificate) is finished once the
// clock is right, and its journal is kept until then.
func TestWrongClockKeepsJournal(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{Age: 5 * time.Minute})
	clk := newClock()
	c := newClient(t, srv, clk)
	if _, err := c.Enroll(context.Background()); err != nil {
		t.Fatal(err)
	}
	issued := snapshot(t, c.Dir)
	p := &pendingState{Version: pendingVersion, DeviceName: c.DeviceName, Key: string(issued[KeyFile]),
		CSR: string(csrPEM([]byte{0x30})), CACert: string(issued[CAFile]), Certificate: string(issued[CertFile]), Submitted: true}
	if err := c.savePending(p); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(c.Dir, KeyFile))
	srv.HTTP.Close()
	clk.set(time.Now().Add(-10 * time.Minute))
	if _, err := c.Enroll(context.Background()); !errors.Is(err, ErrNotValidNow) || !strings.Contains(err.Error(), "clock") {
		t.Fatalf("err = %v", err)
	}
	if !exists(c.Dir, PendingFile) {
		t.Fatal("journal removed")
	}
	clk.set(time.Now())
	if _, err := c.Enroll(context.Background()); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, issued, snapshot(t, c.Dir))
}

func TestRenewWindow(t *testing.T) {
	day := 24 * time.Hour
	srv := enrolltest.New(t, enrolltest.Config{Lifetime: 90 * day, Age: 10 * day})
	c := newClient(t, srv, nil)
	if _, err := c.Enroll(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, c.Dir)
	renewed, res, err := c.Renew(context.Background(), false)
	if err != nil || renewed {
		t.Fatalf("renewed %v err %v", renewed, err)
	}
	wantAt := res.Certificate.NotAfter.Add(-30 * day)
	if d := res.RenewAt.Sub(wantAt); d < -time.Second || d > time.Second {
		t.Fatalf("renew at %v, want %v", res.RenewAt, wantAt)
	}
	sameFiles(t, before, snapshot(t, c.Dir))
	if n := countOps(srv.Ops(), "request"); n != 1 {
		t.Fatalf("renew contacted the server: %v", srv.Ops())
	}

	// 70 of 90 days gone: inside the last third
	srv.Update(func(cfg *enrolltest.Config) { cfg.Age = 70 * day })
	c.Renew(context.Background(), true) // install an old-looking certificate
	oldKey := snapshot(t, c.Dir)[KeyFile]
	srv.Update(func(cfg *enrolltest.Config) { cfg.Age = time.Minute })
	renewed, res, err = c.Renew(context.Background(), false)
	if err != nil || !renewed {
		t.Fatalf("renewed %v err %v", renewed, err)
	}
	if bytes.Equal(oldKey, snapshot(t, c.Dir)[KeyFile]) {
		t.Fatal("renewal reused the key")
	}
	if time.Until(res.Certificate.NotAfter) < 89*day {
		t.Fatal("new certificate not installed")
	}

	// a wider window makes it due again
	c.RenewWindow = 1 // the whole lifetime
	if renewed, _, err := c.Renew(context.Background(), false); err != nil || !renewed {
		t.Fatalf("window 1: renewed %v err %v", renewed, err)
	}
	// DeviceName defaults to the certificate's
	c.DeviceName = ""
	if renewed, res, err := c.Renew(context.Background(), true); err != nil || !renewed || res.Certificate.Subject.CommonName != "gw1.example.com" {
		t.Fatalf("forced renewal without device name: %v %v", renewed, err)
	}
}

// Renew keeps the algorithm and size of the key it replaces unless KeyType
// says otherwise: a gateway that loads only RSA keys stays on RSA.
func TestRenewKeepsKeyType(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{})
	c := newClient(t, srv, nil)
	c.KeyType = KeyRSA2048
	if _, err := c.Enroll(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.KeyType = ""
	oldKey := snapshot(t, c.Dir)[KeyFile]
	renewed, res, err := c.Renew(context.Background(), true)
	if err != nil || !renewed {
		t.Fatalf("renewed %v, err = %v", renewed, err)
	}
	if got := KeyDescription(res.Certificate.PublicKey); got != "RSA 2048" {
		t.Fatalf("renewed with %s, want RSA 2048", got)
	}
	if bytes.Equal(oldKey, snapshot(t, c.Dir)[KeyFile]) {
		t.Fatal("renewal reused the key")
	}
	c.KeyType = KeyP384 // explicit wins
	if _, res, err = c.Renew(context.Background(), true); err != nil || KeyDescription(res.Certificate.PublicKey) != "ECDSA P-384" {
		t.Fatalf("explicit p384: %v", err)
	}
	c.KeyType = ""
	if _, res, err = c.Renew(context.Background(), true); err != nil || KeyDescription(res.Certificate.PublicKey) != "ECDSA P-384" {
		t.Fatalf("kept p384: %v", err)
	}

	// a key this client cannot make: asked to choose, nothing sent
	k521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gw1.example.com"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k521.Public(), k521)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(c.Dir, CertFile), certPEM(der), 0o644)
	n := len(srv.Messages())
	if _, _, err := c.Renew(context.Background(), true); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "ECDSA P-521") {
		t.Fatalf("P-521: %v", err)
	}
	if len(srv.Messages()) != n {
		t.Fatal("sent a request")
	}
}

func TestRenewNotEnrolled(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{})
	c := newClient(t, srv, nil)
	if _, _, err := c.Renew(context.Background(), false); !errors.Is(err, ErrNotEnrolled) {
		t.Fatalf("err = %v", err)
	}
}

// A renewal that goes pending keeps the old certificate and resumes later.
func TestRenewPendingKeepsOldCertificate(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{})
	clk := newClock()
	c := newClient(t, srv, clk)
	c.MaxWait = time.Second
	if _, err := c.Enroll(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv.Update(func(cfg *enrolltest.Config) { cfg.Manual = true })
	if _, _, err := c.Renew(context.Background(), true); !errors.Is(err, ErrPendingTimeout) {
		t.Fatalf("err = %v", err)
	}
	st, _ := c.Status()
	if st.State != StateIssued || st.Pending == nil {
		t.Fatalf("status %s pending %v", st.State, st.Pending)
	}
	srv.Approve()
	n := len(srv.Messages())
	renewed, _, err := c.Renew(context.Background(), false) // not due, but a renewal is pending
	if err != nil || !renewed {
		t.Fatalf("renewed %v err %v", renewed, err)
	}
	if ops := srv.Ops()[n:]; !reflect.DeepEqual(ops, []string{"getcacert", "retrieve"}) {
		t.Fatalf("ops %v", ops)
	}
}

// A crash between installing files leaves pending.json with the verified
// certificate; the next run finishes without the server.
func TestInterruptedCommitFinishesOffline(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{Manual: true})
	c := newClient(t, srv, newClock())
	c.MaxWait = time.Second
	c.Enroll(context.Background())
	srv.Approve()
	// simulate: certificate received and journaled, then a crash
	p, _ := c.loadPending()
	if _, err := c.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	issued := snapshot(t, c.Dir)
	// put the journal back and break the installed files
	p.Certificate = string(issued[CertFile])
	if err := c.savePending(p); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(c.Dir, KeyFile), []byte("garbage"), 0o600)
	srv.HTTP.Close()
	res, err := c.Enroll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resumed {
		t.Error("not resumed")
	}
	after := snapshot(t, c.Dir)
	if string(after[KeyBackupFile]) != "garbage" {
		t.Errorf("%s = %q, want the replaced key.pem", KeyBackupFile, after[KeyBackupFile])
	}
	delete(after, KeyBackupFile)
	sameFiles(t, issued, after)
}

// Installing over a working set (renew, enroll --force) keeps the replaced
// key and certificate as key.pem.bak (0600) and cert.pem.bak; an
// installation finished after a crash does not overwrite them with the
// files it had already renamed.
func TestReplacedFilesKept(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{})
	clk := newClock()
	c := newClient(t, srv, clk)
	if _, err := c.Enroll(context.Background()); err != nil {
		t.Fatal(err)
	}
	a := snapshot(t, c.Dir)
	if _, _, err := c.Renew(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	b := snapshot(t, c.Dir)
	if got := names(b); !reflect.DeepEqual(got, []string{CAFile, CertFile, CertBackupFile, KeyFile, KeyBackupFile}) {
		t.Fatalf("files = %v", got)
	}
	if !bytes.Equal(b[KeyBackupFile], a[KeyFile]) || !bytes.Equal(b[CertBackupFile], a[CertFile]) || bytes.Equal(b[KeyFile], a[KeyFile]) {
		t.Fatal("backups are not the replaced files")
	}
	for name, mode := range map[string]os.FileMode{KeyBackupFile: 0o600, CertBackupFile: 0o644} {
		if fi, err := os.Stat(filepath.Join(c.Dir, name)); err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v %v, want mode %04o", name, fi, err, mode)
		}
	}

	// a crash after cert.pem was renamed, before key.pem
	srv.Update(func(cfg *enrolltest.Config) { cfg.Manual = true })
	c.MaxWait = time.Second
	if _, _, err := c.Renew(context.Background(), true); !errors.Is(err, ErrPendingTimeout) {
		t.Fatal(err)
	}
	p, _ := c.loadPending()
	srv.Approve()
	if _, err := c.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	d := snapshot(t, c.Dir)
	p.Certificate = string(d[CertFile])
	if err := c.savePending(p); err != nil {
		t.Fatal(err)
	}
	// as after the crash: the old key.pem, the new cert.pem, the backups of the old set
	os.WriteFile(filepath.Join(c.Dir, KeyFile), b[KeyFile], 0o600)
	os.WriteFile(filepath.Join(c.Dir, KeyBackupFile), b[KeyFile], 0o600)
	os.WriteFile(filepath.Join(c.Dir, CertBackupFile), b[CertFile], 0o644)
	if _, err := c.Enroll(context.Background()); err != nil {
		t.Fatal(err)
	}
	e := snapshot(t, c.Dir)
	if !bytes.Equal(e[KeyFile], d[KeyFile]) || !bytes.Equal(e[CertFile], d[CertFile]) {
		t.Fatal("installation not finished")
	}
	if !bytes.Equal(e[KeyBackupFile], b[KeyFile]) || !bytes.Equal(e[CertBackupFile], b[CertFile]) {
		t.Fatal("the finished installation overwrote a backup with the new file")
	}
}

func TestCancelWhilePending(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{Manual: true})
	clk := newClock()
	ctx, cancel := context.WithCancel(context.Background())
	clk.onWait = func(n int) {
		if n == 2 {
			cancel()
		}
	}
	c := newClient(t, srv, clk)
	_, err := c.Enroll(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if !exists(c.Dir, PendingFile) {
		t.Fatal("pending state lost on cancel")
	}
}

func TestTransientErrorsWhilePolling(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{Manual: true})
	clk := newClock()
	clk.onWait = func(n int) {
		switch n {
		case 1:
			srv.Update(func(c *enrolltest.Config) { c.HTTPStatus = http.StatusServiceUnavailable })
		case 3:
			srv.Update(func(c *enrolltest.Config) { c.HTTPStatus = 0 })
			srv.Approve()
		}
	}
	c := newClient(t, srv, clk)
	if _, err := c.Enroll(context.Background()); err != nil {
		t.Fatal(err)
	}
	// a non-200 outside polling is an error
	srv.Update(func(c *enrolltest.Config) { c.HTTPStatus = http.StatusNotFound })
	if _, err := c.GetCACert(context.Background()); !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "404") {
		t.Fatalf("err = %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{})
	for name, mod := range map[string]func(*Client){
		"no server":      func(c *Client) { c.ServerURL = "" },
		"ftp":            func(c *Client) { c.ServerURL = "ftp://x/" },
		"no device":      func(c *Client) { c.DeviceName = "" },
		"bad device":     func(c *Client) { c.DeviceName = "gw one" },
		"no password":    func(c *Client) { c.Password = "" },
		"device digits":  func(c *Client) { c.DeviceID = "12a" },
		"bad field":      func(c *Client) { c.CSRField = "csr" },
		"bad key":        func(c *Client) { c.KeyType = "ed448" },
		"bad window":     func(c *Client) { c.RenewWindow = 1.5 },
		"bad pin format": func(c *Client) { c.CAFingerprint = "1234" },
	} {
		c := newClient(t, srv, nil)
		mod(c)
		if _, err := c.Enroll(context.Background()); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if len(srv.Messages()) != 0 {
		t.Errorf("messages sent with a bad configuration: %v", srv.Ops())
	}
}

func TestIPAddressDevice(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{})
	c := newClient(t, srv, nil)
	c.DeviceName = "192.0.2.10"
	res, err := c.Enroll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Certificate.IPAddresses) != 1 || res.Certificate.IPAddresses[0].String() != "192.0.2.10" {
		t.Fatalf("IPs %v", res.Certificate.IPAddresses)
	}
}

func TestDirLock(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{})
	c := newClient(t, srv, nil)
	unlock, err := c.lockDir()
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if _, err := c.Enroll(context.Background()); !errors.Is(err, ErrBusy) {
		t.Fatalf("err = %v", err)
	}
}

func TestStatusStates(t *testing.T) {
	c := &Client{Dir: t.TempDir()}
	st, err := c.Status()
	if err != nil || st.State != StateNone {
		t.Fatalf("%+v %v", st, err)
	}
	srv := enrolltest.New(t, enrolltest.Config{})
	c = newClient(t, srv, nil)
	if _, err := c.Enroll(context.Background()); err != nil {
		t.Fatal(err)
	}
	other := newClient(t, srv, nil)
	if _, err := other.Enroll(context.Background()); err != nil {
		t.Fatal(err)
	}
	// swap in a foreign key
	k, _ := os.ReadFile(filepath.Join(other.Dir, KeyFile))
	os.WriteFile(filepath.Join(c.Dir, KeyFile), k, 0o600)
	os.Chmod(filepath.Join(c.Dir, KeyFile), 0o644)
	st, _ = c.Status()
	if st.State != StateInvalid || st.Cert.KeyMatches || len(st.Problems) != 2 {
		t.Fatalf("%s %v", st.State, st.Problems)
	}
}

// A certificate that ends when its CA does is not renewed: the server cuts
// every certificate at the CA's end, so near it each renewal made a
// shorter certificate than the last, superseding (revoking) it, and none
// lasted longer. Forced, or with a new CA pinned, it still renews.
func TestRenewStopsAtTheCAsEnd(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{Lifetime: 20 * 365 * 24 * time.Hour})
	c := newClient(t, srv, nil)
	res, err := c.Enroll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !res.Certificate.NotAfter.Equal(srv.CA.NotAfter) {
		t.Fatalf("certificate ends %v, CA %v: the test server did not cut it", res.Certificate.NotAfter, srv.CA.NotAfter)
	}
	c.RenewWindow = 1 // due by its age
	renewed, res, err := c.Renew(context.Background(), false)
	if err != nil || renewed || !res.EndsWithCA {
		t.Fatalf("renewed %v (ends with CA %v), err %v; want no renewal", renewed, res != nil && res.EndsWithCA, err)
	}
	if n := countOps(srv.Ops(), "request"); n != 1 {
		t.Fatalf("renew contacted the server: %v", srv.Ops())
	}
	if renewed, _, err := c.Renew(context.Background(), true); err != nil || !renewed {
		t.Fatalf("forced: renewed %v err %v", renewed, err)
	}
}

// With the fingerprint of another CA given (the operator renewed the CA),
// a certificate ending with the old CA is renewed under the new pin.
func TestRenewAtTheCAsEndWithANewPin(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{Lifetime: 20 * 365 * 24 * time.Hour})
	c := newClient(t, srv, nil)
	if _, err := c.Enroll(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.RenewWindow = 1
	c.CAFingerprint = strings.Repeat("AB", 32) // not the pinned CA's
	_, res, err := c.Renew(context.Background(), false)
	if res != nil && res.EndsWithCA {
		t.Fatal("a new CA pinned, the certificate ending with the old one was not renewed")
	}
	if !errors.Is(err, ErrFingerprintMismatch) { // the test server still serves the old CA
		t.Fatalf("err %v, want the new pin checked against the server's CA", err)
	}
}

// Progress says why there was no answer when the last retrieve failed, and
// passes nil only after a pending answer.
func TestProgressLastError(t *testing.T) {
	for name, tc := range map[string]struct {
		fail    func(srv *enrolltest.Server) // after the first wait
		wantErr func(error) bool
	}{
		"unreachable": {
			fail:    func(srv *enrolltest.Server) { srv.HTTP.Close() },
			wantErr: func(err error) bool { return strings.Contains(err.Error(), "connection refused") },
		},
		"HTTP 503": {
			fail: func(srv *enrolltest.Server) {
				srv.Update(func(c *enrolltest.Config) { c.HTTPStatus = http.StatusServiceUnavailable })
			},
			wantErr: func(err error) bool { return errors.Is(err, ErrProtocol) && strings.Contains(err.Error(), "503") },
		},
		"status 14": {
			fail: func(srv *enrolltest.Server) {
				srv.Update(func(c *enrolltest.Config) { c.RejectStatus = wire.StatusServerError })
			},
			wantErr: func(err error) bool {
				var re *RejectedError
				return errors.As(err, &re) && re.Status == wire.StatusServerError
			},
		},
	} {
		t.Run(name, func(t *testing.T) {
			srv := enrolltest.New(t, enrolltest.Config{Manual: true})
			clk := newClock()
			clk.onWait = func(n int) {
				if n == 1 {
					tc.fail(srv)
				}
			}
			c := newClient(t, srv, clk)
			c.InitialBackoff, c.MaxBackoff, c.MaxWait = time.Second, time.Second, 3*time.Second
			var errs []error
			c.Progress = func(attempt int, next time.Duration, lastErr error) {
				if attempt != len(errs)+1 {
					t.Errorf("attempt %d, want %d", attempt, len(errs)+1)
				}
				errs = append(errs, lastErr)
			}
			_, err := c.Enroll(context.Background())
			if !errors.Is(err, ErrPendingTimeout) {
				t.Fatalf("err = %v", err)
			}
			if len(errs) != 3 || errs[0] != nil {
				t.Fatalf("progress errors %v: want nil (pending), then the failures", errs)
			}
			for _, e := range errs[1:] {
				if e == nil || !tc.wantErr(e) {
					t.Fatalf("progress after a failed retrieve: %v", e)
				}
			}
		})
	}
}

// A refusal that keeps the request (a wrong password, a disabled device)
// is saved with it, so that Status says why it waits, until the server
// answers pending.
func TestRefusalKeptInStatus(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg    enrolltest.Config
		status int
		reason string
		fix    func(c *Client, srv *enrolltest.Server)
	}{
		"bad credentials": {
			cfg: enrolltest.Config{Manual: true}, status: wire.StatusBadCredentials, reason: "bad username or password",
			fix: func(c *Client, _ *enrolltest.Server) { c.Password = "pass" },
		},
		"device disabled": {
			cfg:    enrolltest.Config{Manual: true, RejectStatus: wire.StatusDeviceDisabled, RejectReason: "device is disabled"},
			status: wire.StatusDeviceDisabled, reason: "device is disabled",
			fix: func(_ *Client, srv *enrolltest.Server) {
				srv.Update(func(cfg *enrolltest.Config) { cfg.RejectStatus = 0 })
			},
		},
	} {
		t.Run(name, func(t *testing.T) {
			srv := enrolltest.New(t, tc.cfg)
			c := newClient(t, srv, newClock())
			c.MaxWait = -1
			if tc.status == wire.StatusBadCredentials {
				c.Password = "wrong"
			}
			var re *RejectedError
			if _, err := c.Enroll(context.Background()); !errors.As(err, &re) || re.Status != tc.status {
				t.Fatalf("err = %v", err)
			}
			st, err := c.Status()
			if err != nil || st.State != StatePending || st.Pending == nil {
				t.Fatalf("status %+v %v", st, err)
			}
			r := st.Pending.Refused
			if r == nil || r.Op != wire.OpRequest || r.Status != tc.status || r.Reason != tc.reason || st.Pending.Polls != 1 || st.Pending.LastPoll.IsZero() {
				t.Fatalf("refusal %+v, polls %d, last %v", r, st.Pending.Polls, st.Pending.LastPoll)
			}
			tc.fix(c, srv)
			if _, err := c.Poll(context.Background()); !errors.Is(err, ErrPending) {
				t.Fatalf("after the fix: %v", err)
			}
			if st, _ := c.Status(); st.Pending == nil || st.Pending.Refused != nil || !st.Pending.Submitted {
				t.Fatalf("after a pending answer: %+v", st.Pending)
			}
		})
	}
}

// Temporaries of the atomic writer that a killed run left (one holding a
// private key) are removed by the next run under the lock; nothing else is.
func TestStaleTempsRemoved(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{})
	c := newClient(t, srv, nil)
	dir := c.Dir
	var stale []string
	for _, name := range []string{KeyFile, CertFile, CAFile, PendingFile, KeyBackupFile, CertBackupFile} {
		tmp, err := stageFile(dir, name, []byte("left by kill -9"), 0o600)
		if err != nil {
			t.Fatal(err)
		}
		stale = append(stale, filepath.Base(tmp))
	}
	keep := []string{".key.pem.tmp-", ".key.pem.tmp-12a", ".key.pem.tmp--1", "key.pem.tmp-123", ".key.pem.tmp-123.keep",
		".other.pem.tmp-123", "..key.pem.tmp-123", ".key.pem.bak.old.tmp-1", "notes.txt"}
	for _, name := range keep {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("mine"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// a directory and a symbolic link with the pattern's names are not the writer's
	if err := os.Mkdir(filepath.Join(dir, ".cert.pem.tmp-77"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("notes.txt", filepath.Join(dir, ".ca.pem.tmp-88")); err != nil {
		t.Fatal(err)
	}
	keep = append(keep, ".cert.pem.tmp-77", ".ca.pem.tmp-88")

	if _, err := c.Status(); err != nil { // reads only, takes no lock: removes nothing
		t.Fatal(err)
	}
	for _, name := range stale {
		if !exists(dir, name) {
			t.Fatalf("Status removed %s", name)
		}
	}
	if _, err := c.Enroll(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, name := range stale {
		if exists(dir, name) {
			t.Errorf("stale %s left", name)
		}
	}
	for _, name := range keep {
		if _, err := os.Lstat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s removed: %v", name, err)
		}
	}
	if !exists(dir, KeyFile) || !exists(dir, CertFile) || !exists(dir, CAFile) {
		t.Fatal("enrollment not installed")
	}
}

// A temporary refusal (rate limited) is not kept as the request's refusal:
// status would say it was refused (exit 4) while enroll said pending.
func TestTemporaryRefusalNotKept(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{Manual: true, RejectStatus: wire.StatusRateLimited, RejectReason: "too many requests"})
	c := newClient(t, srv, newClock())
	c.MaxWait = -1
	var re *RejectedError
	if _, err := c.Enroll(context.Background()); !errors.As(err, &re) || re.Status != wire.StatusRateLimited {
		t.Fatalf("err = %v", err)
	}
	st, err := c.Status()
	if err != nil || st.State != StatePending || st.Pending == nil || st.Pending.Refused != nil || st.Pending.Polls != 1 {
		t.Fatalf("status %+v (%v), want pending without a refusal", st.Pending, err)
	}
}

// A pending.json that cannot be read back (damaged outside the client: it
// is only ever replaced atomically) stops Enroll, Renew and Poll alike:
// the error names the file in Dir and what to do, not a bare
// "pending.json: unexpected end of JSON input".
func TestDamagedPendingNamed(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{})
	c := newClient(t, srv, nil)
	path := filepath.Join(c.Dir, PendingFile)
	if err := os.WriteFile(path, []byte(`{"version":1,`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := c.Enroll(context.Background())
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "remove it") {
		t.Fatalf("err = %v", err)
	}
	if srv.Saw("request") {
		t.Fatal("a request was sent")
	}
}

// A certificate whose key is lost (key.pem removed, or another key
// restored alone) is renewed at once: the device cannot use the pair, and
// "not yet due" would leave it so until the renewal window.
func TestRenewWithoutTheKey(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{})
	c := newClient(t, srv, nil)
	if _, err := c.Enroll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if renewed, _, err := c.Renew(context.Background(), false); err != nil || renewed {
		t.Fatalf("with its key: renewed %v, err %v; want not yet due", renewed, err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(other)
	// in this order: the first renewal leaves a key.pem.bak behind, which
	// the second (key lost) must not keep beside its cert.pem.bak
	for _, tc := range []struct {
		name     string
		breakKey func() error
	}{
		{"another key", func() error {
			return os.WriteFile(filepath.Join(c.Dir, KeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
		}},
		{"no key", func() error { return os.Remove(filepath.Join(c.Dir, KeyFile)) }},
		{"damaged key", func() error { return os.WriteFile(filepath.Join(c.Dir, KeyFile), []byte("-----BEGIN PRIVATE"), 0o600) }},
	} {
		name := tc.name
		if _, ok := snapshot(t, c.Dir)[KeyBackupFile]; !ok && name == "no key" {
			t.Fatalf("no %s before the renewal without key: the test checks nothing", KeyBackupFile)
		}
		if err := tc.breakKey(); err != nil {
			t.Fatal(err)
		}
		renewed, _, err := c.Renew(context.Background(), false)
		if err != nil || !renewed {
			t.Fatalf("%s: renewed %v, err %v; want renewed at once", name, renewed, err)
		}
		st, err := c.Status()
		if err != nil || st.State != StateIssued || st.Cert == nil || !st.Cert.KeyMatches {
			t.Fatalf("%s: after the renewal: %+v, %v", name, st, err)
		}
		// the backups never pair a certificate with another key
		files := snapshot(t, c.Dir)
		if kb, ok := files[KeyBackupFile]; ok && name == "no key" {
			t.Fatalf("%s: %s kept (%d bytes) for a certificate whose key was lost", name, KeyBackupFile, len(kb))
		}
	}
}

// An enrollment into a directory whose key.pem and cert.pem were removed
// (the device enrolls afresh) replaces no certificate: the key.pem.bak and
// cert.pem.bak of an earlier renewal are a pair, kept as they are.
func TestEnrollAfreshKeepsTheBackupPair(t *testing.T) {
	srv := enrolltest.New(t, enrolltest.Config{})
	c := newClient(t, srv, nil)
	if _, err := c.Enroll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if renewed, _, err := c.Renew(context.Background(), true); err != nil || !renewed {
		t.Fatalf("forced renewal: renewed %v, err %v", renewed, err)
	}
	before := snapshot(t, c.Dir)
	if before[KeyBackupFile] == nil || before[CertBackupFile] == nil {
		t.Fatal("no backup pair after the renewal")
	}
	for _, f := range []string{KeyFile, CertFile} {
		if err := os.Remove(filepath.Join(c.Dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Enroll(context.Background()); err != nil {
		t.Fatal(err)
	}
	after := snapshot(t, c.Dir)
	for _, f := range []string{KeyBackupFile, CertBackupFile} {
		if !bytes.Equal(after[f], before[f]) {
			t.Errorf("%s changed or removed (%d bytes, was %d) by an enrollment that replaced no certificate", f, len(after[f]), len(before[f]))
		}
	}
}
