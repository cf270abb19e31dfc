package caddyenroll

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

func init() { caddy.RegisterModule(countedStorage{}) }

// countedStorage is Caddy's file storage with its Loads counted (by root,
// in countedStorages), for tests that load the enroll app in-process.
type countedStorage struct {
	Root string `json:"root"`
}

var countedStorages sync.Map // root → *countingStorage

func (countedStorage) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "caddy.storage.enroll_test_counted", New: func() caddy.Module { return new(countedStorage) }}
}

func (m *countedStorage) CertMagicStorage() (certmagic.Storage, error) {
	cs, _ := countedStorages.LoadOrStore(m.Root, &countingStorage{Storage: &certmagic.FileStorage{Path: m.Root}})
	return namedStorage{cs.(*countingStorage)}, nil
}

// namedStorage describes itself as the file storage does.
type namedStorage struct{ *countingStorage }

func (s namedStorage) String() string { return fmt.Sprint(s.Storage) }

// loadEnroll loads a config of only the enroll app into this process (a
// start, or a reload of the running one) and returns the running App.
func loadEnroll(t *testing.T, storageRoot, confFile, approval string) *App {
	t.Helper()
	return loadEnrollApp(t, storageRoot, map[string]any{"config_file": confFile, "approval": approval})
}

// loadEnrollApp is loadEnroll with the enroll app's JSON given.
func loadEnrollApp(t *testing.T, storageRoot string, app map[string]any) *App {
	t.Helper()
	return loadInProcess(t, map[string]any{"module": "enroll_test_counted", "root": storageRoot}, map[string]any{"enroll": app})
}

// loadInProcess loads a config of the apps given (the enroll app among
// them) on the storage given into this process, without admin endpoint,
// and returns the running enroll App.
func loadInProcess(t *testing.T, storage, apps map[string]any) *App {
	t.Helper()
	cfg, err := json.Marshal(map[string]any{
		"admin":   map[string]any{"disabled": true, "config": map[string]any{"persist": false}},
		"storage": storage,
		"apps":    apps,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatal(err)
	}
	running, err := caddy.ActiveContext().App("enroll")
	if err != nil {
		t.Fatal(err)
	}
	return running.(*App)
}

// deviceLoads is how many device records were read from the storage at root.
func deviceLoads(root string) int {
	cs, _ := countedStorages.Load(root)
	_, n := cs.(*countingStorage).counts()
	return n
}

// gw1Config writes, in a new folder, a configuration file naming
// gw1.example enabled and enrolled; it returns the file and the folder.
// Caddy is stopped when the test ends.
func gw1Config(t *testing.T) (conf, dir string) {
	t.Helper()
	dir = t.TempDir()
	conf = filepath.Join(dir, "clearinghouse.conf")
	if err := os.WriteFile(conf, []byte("enroll enabled\ngroup \"\"\ndevice gw1.example \"\" enabled enrolled\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	return conf, dir
}

// issueGW1 issues gw1.example a certificate for a new P-256 key from c.
func issueGW1(t *testing.T, c *ca.CA) *ca.Issued {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "gw1.example"}}, key)
	is, err := c.Issue(context.Background(), csr, "gw1.example", ca.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	return is
}

// A reload on the same storage and CAs keeps the revocation state: its
// refresh reads only the device records that changed, not all of them. A
// revocation made before the reload holds after it; another storage gets
// its own state, and stopping lets go of it. The login limiters and the
// addresses accounts logged in from are kept too.
func TestReloadKeepsRevocations(t *testing.T) {
	ctx := context.Background()
	conf, dir := gw1Config(t)
	storeA, storeB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	// device records left by earlier runs
	const devices = 40
	fs := newStateStore(&certmagic.FileStorage{Path: storeA}, time.Hour)
	for i := range devices {
		if err := fs.putDevice(ctx, &DeviceRecord{Device: fmt.Sprintf("old%02d.example", i), Profile: profileModern, Serial: "1"}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = caddy.Stop() })

	first := loadEnroll(t, storeA, conf, ApprovalAuto)
	state, keyA := first.authz.revocations, first.revocationsKey
	if keyA == "" || !state.scanned {
		t.Fatalf("first start: key %q, scanned %v; want a shared, scanned state", keyA, state.scanned)
	}
	if n := deviceLoads(storeA); n != devices {
		t.Fatalf("the first start read %d device records, want all %d", n, devices)
	}
	// gw1 enrolls, then an administrator revokes its certificate
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "gw1.example"}}, key)
	c := first.cas[profileModern]
	is, err := c.Issue(ctx, csr, "gw1.example", ca.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.state.putDevice(ctx, &DeviceRecord{Device: "gw1.example", Profile: profileModern, Serial: is.Serial}); err != nil {
		t.Fatal(err)
	}
	if err := c.Revoke(ctx, is.Serial, 1); err != nil {
		t.Fatal(err)
	}
	first.noteRevoked(profileModern, "gw1.example", []string{is.Serial}, true)

	// ops logged in from 192.0.2.1: it stays a known address
	knownAt := time.Now()
	lg, ok := first.beginLogin(ctx, "ops", "192.0.2.1", time.Now)
	if !ok {
		t.Fatal("login refused")
	}
	first.loginSucceeded(context.Background(), lg, knownAt)

	before := deviceLoads(storeA)
	second := loadEnroll(t, storeA, conf, ApprovalManual)
	if second == first {
		t.Fatal("the reload did not provision a new App")
	}
	if second.authz.revocations != state {
		t.Fatal("a reload on the same storage and CA started a new revocation state")
	}
	if second.limiter != first.limiter || second.addrLimiter != first.addrLimiter {
		t.Fatal("a reload with the same settings reset the login lockouts")
	}
	if second.known == nil || second.known != first.known || !second.known.has("ops", "ip:192.0.2.1", knownAt) {
		t.Fatal("a reload with the same settings forgot the addresses accounts logged in from")
	}
	if n := deviceLoads(storeA) - before; n > 1 {
		t.Errorf("the reload read %d device records, want at most the one that changed", n)
	}
	if !second.serialRevoked(profileModern, is.Serial) || second.eligible("gw1.example") {
		t.Fatal("the reloaded config forgot a revocation made before the reload")
	}
	if refs, ok := revocationsPool.References(keyA); !ok || refs != 1 {
		t.Fatalf("after the reload the state has %d references (exists %v), want 1", refs, ok)
	}

	// another storage, with a file of its own (the first names its CA)
	confB := filepath.Join(dir, "b.conf")
	if err := os.WriteFile(confB, []byte("enroll enabled\ngroup \"\"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	third := loadEnroll(t, storeB, confB, ApprovalAuto)
	if third.authz.revocations == state || third.revocationsKey == keyA || !third.authz.scanned {
		t.Fatal("another storage shares the revocation state of the first")
	}
	if _, ok := revocationsPool.References(keyA); ok {
		t.Fatal("the first storage's state is still held after no config uses it")
	}
	keyB := third.revocationsKey
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, ok := revocationsPool.References(keyB); ok {
		t.Fatal("the state is still held after Caddy stopped")
	}
	if _, ok := limitersPool.References(third.limitersKey); ok {
		t.Fatal("the login limiters are still held after Caddy stopped")
	}
}

// unnamedStorage is a storage that does not describe itself.
type unnamedStorage struct{ certmagic.Storage }

func TestRevocationsKey(t *testing.T) {
	ctx := context.Background()
	st := &certmagic.FileStorage{Path: t.TempDir()}
	c1, _, err := ca.Open(ctx, st, ca.Config{Name: "modern"}, "")
	if err != nil {
		t.Fatal(err)
	}
	other := &certmagic.FileStorage{Path: t.TempDir()}
	c2, _, err := ca.Open(ctx, other, ca.Config{Name: "modern"}, "")
	if err != nil {
		t.Fatal(err)
	}
	base := revocationsKey(st, map[string]*ca.CA{profileModern: c1})
	tests := []struct {
		name string
		st   certmagic.Storage
		cas  map[string]*ca.CA
		want func(string) bool
	}{
		{"same storage and CA", &certmagic.FileStorage{Path: st.Path}, map[string]*ca.CA{profileModern: c1}, func(k string) bool { return k == base }},
		{"another CA", st, map[string]*ca.CA{profileModern: c2}, func(k string) bool { return k != "" && k != base }},
		{"another storage", other, map[string]*ca.CA{profileModern: c1}, func(k string) bool { return k != "" && k != base }},
		{"one more CA", st, map[string]*ca.CA{profileModern: c1, profileLegacy: c2}, func(k string) bool { return k != "" && k != base }},
		{"storage without a name", unnamedStorage{st}, map[string]*ca.CA{profileModern: c1}, func(k string) bool { return k == "" }},
	}
	if base == "" {
		t.Fatal("file storage gives no key")
	}
	for _, tc := range tests {
		if got := revocationsKey(tc.st, tc.cas); !tc.want(got) {
			t.Errorf("%s: key %q (base %q)", tc.name, got, base)
		}
	}
}

// Revocations made by another instance sharing the storage are picked up
// even when the file is not watched (watch_interval negative).
func TestRefreshWithoutWatching(t *testing.T) {
	old := revokedRefreshInterval
	revokedRefreshInterval = 50 * time.Millisecond
	t.Cleanup(func() { revokedRefreshInterval = old })
	ctx := context.Background()
	conf, dir := gw1Config(t)
	store := filepath.Join(dir, "data")
	app := loadEnrollApp(t, store, map[string]any{"config_file": conf, "watch_interval": int64(-time.Second)})

	// gw1 enrolled here; "another instance" revokes its certificate
	is := issueGW1(t, app.cas[profileModern])
	if err := app.state.putDevice(ctx, &DeviceRecord{Device: "gw1.example", Profile: profileModern, Serial: is.Serial}); err != nil {
		t.Fatal(err)
	}
	app.noteRevoked(profileModern, "gw1.example", nil, false)
	other, _, err := ca.Open(ctx, &certmagic.FileStorage{Path: store}, ca.Config{Name: "modern"}, app.cas[profileModern].CryptoParam())
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Revoke(ctx, is.Serial, 1); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for app.eligible("gw1.example") {
		if time.Now().After(deadline) {
			t.Fatal("a revocation by another instance was not picked up without watching the file")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// the pending gauge follows the shared index: two requests another
	// instance stored, none of them counted here
	metrics.pending.Set(-1)
	for _, id := range []string{"p1", "p2"} {
		other := newStateStore(&certmagic.FileStorage{Path: store}, time.Hour)
		if err := other.putRequest(ctx, &Request{ID: id, Device: "gw1.example", State: statePending}); err != nil {
			t.Fatal(err)
		}
	}
	for promtest.ToFloat64(metrics.pending) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("pending gauge %v, want the index's 2", promtest.ToFloat64(metrics.pending))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop cancels the background work's context and waits for it to end, so a
// stopped config no longer touches the storage.
func TestStopWaitsForBackgroundWork(t *testing.T) {
	a := &App{stop: make(chan struct{}), stopOnce: new(sync.Once), bg: new(backgroundWork), log: zap.NewNop()}
	a.bgCtx, a.bgCancel = context.WithCancel(context.Background())
	var ended atomic.Bool
	started := make(chan struct{})
	a.background(func() {
		close(started)
		<-a.bgCtx.Done() // a storage call that only the cancel ends
		time.Sleep(20 * time.Millisecond)
		ended.Store(true)
	})
	<-started
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	if !ended.Load() {
		t.Fatal("Stop returned before the background work ended")
	}
	// work begun once stopping is not waited for, and does not panic
	done := make(chan struct{})
	a.background(func() { close(done) })
	<-done
}

// `caddy validate` provisions the apps without starting them: it must not
// edit the configuration file (a file without a crypto item used to get
// one naming a CA of the validating storage, and lose its enrolled flags).
// Start records the CA and clears the flags, as the seed says.
func TestValidateLeavesTheFileAlone(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "ch.conf")
	orig := "enroll enabled\ngroup \"\"\ndevice d1.example \"\" enabled enrolled\n"
	if err := os.WriteFile(conf, []byte(orig), 0o640); err != nil {
		t.Fatal(err)
	}
	cfg, err := json.Marshal(map[string]any{
		"admin":   map[string]any{"disabled": true, "config": map[string]any{"persist": false}},
		"storage": map[string]any{"module": "enroll_test_counted", "root": filepath.Join(dir, "validate-storage")},
		"apps":    map[string]any{"enroll": map[string]any{"config_file": conf, "approval": "auto"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var c caddy.Config
	if err := json.Unmarshal(cfg, &c); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(&c); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(conf); string(got) != orig {
		t.Fatalf("validate edited the file:\n%s", got)
	}
	if backups, _ := filepath.Glob(conf + ".~*"); len(backups) != 0 {
		t.Fatalf("validate left backups %v", backups)
	}

	a := loadEnroll(t, filepath.Join(dir, "storage"), conf, "auto")
	t.Cleanup(func() { caddy.Stop() })
	f, err := configfile.ParseFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if f.Crypto != a.cas[profileModern].CryptoParam() {
		t.Fatalf("after start the file names %q, want %q", f.Crypto, a.cas[profileModern].CryptoParam())
	}
	if d, _ := f.Device("d1.example"); d == nil || d.Enrolled {
		t.Fatal("a new CA's start kept the enrolled flag")
	}
}

// A configuration that opened a CA for a file without a crypto item, and
// finds the file naming another CA when it records its own (an operator's
// edit, or an instance of an earlier version that generated without
// looking), refuses to start rather than replace that CA in the file and
// serve another. (Instances starting together agree on one CA:
// TestStartTogetherAgreeOnOneCA.)
func TestCAOtherThanTheFileNamesIsRefused(t *testing.T) {
	c := newStartCluster(t, "", 1, nil)
	if err := c.load(0); err != nil {
		t.Fatal(err)
	}
	if err := c.open(0); err != nil {
		t.Fatal(err)
	}
	other, _, err := ca.Open(context.Background(), ca.NewMemStore(), ca.Config{Name: profileModern}, "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(c.conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.conf, append(b, "crypto "+other.CryptoParam()+"\n"...), 0o640); err != nil {
		t.Fatal(err)
	}
	err = c.record(0)
	if err == nil || !strings.Contains(err.Error(), "reload") {
		t.Fatalf("the instance recorded its CA over another: %v", err)
	}
	f, err := configfile.ParseFile(c.conf)
	if err != nil {
		t.Fatal(err)
	}
	if f.Crypto != other.CryptoParam() {
		t.Fatalf("the file names %q, want %q", f.Crypto, other.CryptoParam())
	}
}

// The CRL served is one across a reload: a revocation that the previous
// config makes after the reload (its last requests, a disabled device's
// delayed revocation) shows at once in the CRL the new config serves, not
// once the cached one is 30 s old.
func TestReloadSharesServedCRL(t *testing.T) {
	t.Run("same CAs", func(t *testing.T) { testReloadSharesServedCRL(t, nil) })
	// the revocation state is another then, not the modern CA's CRL
	t.Run("legacy CA added", func(t *testing.T) {
		testReloadSharesServedCRL(t, map[string]any{"modern": nil, "legacy": nil})
	})
}

func testReloadSharesServedCRL(t *testing.T, authorities map[string]any) {
	ctx := context.Background()
	conf, dir := gw1Config(t)
	root := filepath.Join(dir, "storage")
	first := loadEnroll(t, root, conf, ApprovalAuto)
	is := issueGW1(t, first.cas[profileModern])
	app := map[string]any{"config_file": conf, "approval": ApprovalManual}
	if authorities != nil {
		app["authorities"] = authorities
	}
	second := loadEnrollApp(t, root, app)
	listed := func() bool {
		der, err := second.cas[profileModern].CachedCRL(ctx)
		if err != nil {
			t.Fatal(err)
		}
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range crl.RevokedCertificateEntries {
			if e.SerialNumber.Text(16) == is.Serial {
				return true
			}
		}
		return false
	}
	if listed() {
		t.Fatal("listed before its revocation")
	}
	if err := first.cas[profileModern].Revoke(ctx, is.Serial, ca.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	if !listed() {
		t.Fatal("a revocation through the previous config is missing from the CRL the new config serves")
	}
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, key := range second.crlKeys {
		if _, ok := crlPool.References(key); ok {
			t.Fatal("a CRL is still held after Caddy stopped")
		}
	}
}

// A mark that the previous config writes after a reload (its last
// enrollment) is in force in the new config at once, also when the new
// one does not watch the file: else the device stayed unenrolled there
// (refused by call authorization) until the next reload.
func TestReloadSeesPreviousConfigsMark(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	conf := filepath.Join(dir, "clearinghouse.conf")
	if err := os.WriteFile(conf, []byte("enroll enabled\ngroup \"\"\ndevice gw1.example \"\" enabled\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "storage")
	t.Cleanup(func() { _ = caddy.Stop() })
	app := map[string]any{"config_file": conf, "watch_interval": int64(-time.Second)}
	first := loadEnrollApp(t, root, app)
	second := loadEnrollApp(t, root, app)
	if err := first.markEnrolled(ctx, "gw1.example", "", profileModern, false); err != nil {
		t.Fatal(err)
	}
	if f, err := configfile.ParseFile(conf); err != nil {
		t.Fatal(err)
	} else if d, ok := f.Device("gw1.example"); !ok || !d.Enrolled {
		t.Fatal("the previous config did not mark the device")
	}
	if !second.cfg.device("gw1.example").Enrolled {
		t.Fatal("the new config does not see the mark the previous config wrote after the reload")
	}
	if !second.usable(second.router.Load(), "gw1.example") {
		t.Fatal("the new config's route table does not take the device marked by the previous config")
	}
}

// A mark that the previous config defers after a reload (its last
// enrollment found the file unavailable) is applied by the new config's
// watcher once the file can take it, also when the new config already
// applied the marks it found at its start.
func TestReloadAppliesPreviousConfigsDeferredMark(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	conf := filepath.Join(dir, "clearinghouse.conf")
	if err := os.WriteFile(conf, []byte("enroll enabled\ngroup \"\"\n"+
		"device gw0.example \"\" enabled\ndevice gw1.example \"\" enabled\ndevice gw2.example \"\" enabled\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "storage")
	keep := func(device string) {
		t.Helper()
		st := newStateStore(&certmagic.FileStorage{Path: root}, time.Hour)
		if err := st.storeJSON(ctx, deferredMarkKey(device), mark{Device: device}); err != nil {
			t.Fatal(err)
		}
	}
	marked := func(device string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			if f, err := configfile.ParseFile(conf); err == nil {
				if d, ok := f.Device(device); ok && d.Enrolled {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("deferred mark of %s never applied", device)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	// the first config does not watch: it applies the kept marks once, at start
	keep("gw0.example")
	first := loadEnrollApp(t, root, map[string]any{"config_file": conf, "watch_interval": int64(-time.Second)})
	marked("gw0.example")
	// kept meanwhile: the new config applies it at its start, and with it
	// every mark it knew of
	keep("gw1.example")
	loadEnrollApp(t, root, map[string]any{"config_file": conf, "watch_interval": int64(20 * time.Millisecond)})
	marked("gw1.example")
	if err := first.deferMark(ctx, mark{Device: "gw2.example"}, errFileUnavailable); err != nil {
		t.Fatal(err)
	}
	marked("gw2.example")
}

// uncancelledStorage is a storage whose calls end whether their context is
// cancelled or not (as the file storage's Load does).
type uncancelledStorage struct{ certmagic.Storage }

func (s uncancelledStorage) List(_ context.Context, prefix string, recursive bool) ([]string, error) {
	return s.Storage.List(context.Background(), prefix, recursive)
}

// A count of pending requests that a stopped config finishes (its start's,
// or a refresh under way) leaves the process's gauge to the config that
// replaced it.
func TestStoppedConfigLeavesPendingGauge(t *testing.T) {
	ctx := context.Background()
	st := uncancelledStorage{&certmagic.FileStorage{Path: t.TempDir()}}
	a := &App{log: zap.NewNop(), authz: &authz{revocations: new(revocations)}, state: newStateStore(st, time.Hour), cas: map[string]*ca.CA{}}
	a.bgCtx, a.bgCancel = context.WithCancel(ctx)
	if err := a.state.putRequest(ctx, &Request{ID: "p1", Device: "gw1.example", State: statePending}); err != nil {
		t.Fatal(err)
	}
	initMetrics()
	old := promtest.ToFloat64(metrics.pending)
	t.Cleanup(func() { metrics.pending.Set(old) })
	a.refreshOnce()
	if n := promtest.ToFloat64(metrics.pending); n != 1 {
		t.Fatalf("pending gauge %v, want 1", n)
	}
	metrics.pending.Set(7) // the new config's count
	a.bgCancel()           // this config stopped
	a.refreshOnce()
	if n := promtest.ToFloat64(metrics.pending); n != 7 {
		t.Fatalf("a stopped config set the pending gauge to %v over the running config's 7", n)
	}
}

// A reload that adds or drops a CA makes another revocation state; a
// revocation the previous config makes after the reload (a disabled
// device's delayed revocation, an administrator's revoke under way) must
// still reach the new config's call authorization at once, not at its
// next refresh of the CRLs.
func TestReloadWithAnotherCASeesPreviousConfigsRevocations(t *testing.T) {
	modern := map[string]any{"modern": nil}
	both := map[string]any{"modern": nil, "legacy": nil}
	byAdmin := func(body string) func(*testing.T, *App, string) {
		return func(t *testing.T, first *App, serial string) {
			code, msg, _ := adminDoBody(t, &adminAPI{app: first, log: zap.NewNop()}, "POST", "/enroll/revoke",
				strings.ReplaceAll(body, "SERIAL", serial))
			if code != 200 {
				t.Fatalf("revoke: %d %s", code, msg)
			}
		}
	}
	for _, tc := range []struct {
		name          string
		before, after map[string]any
		revoke        func(t *testing.T, first *App, serial string)
	}{
		{"legacy added, disabled device", modern, both, func(t *testing.T, first *App, _ string) {
			first.revokeDisabled([]string{"gw1.example"}, time.Now()) // the old config's revocation of a device disabled in the file
		}},
		{"legacy added, revoke by serial", modern, both, byAdmin(`{"serial": "SERIAL"}`)},
		{"legacy dropped, revoke by device", both, modern, byAdmin(`{"device": "gw1.example"}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			conf, dir := gw1Config(t)
			root := filepath.Join(dir, "storage")
			app := func(authorities map[string]any) map[string]any {
				return map[string]any{"config_file": conf, "watch_interval": int64(-time.Second), "authorities": authorities}
			}
			first := loadEnrollApp(t, root, app(tc.before))
			is := issueGW1(t, first.cas[profileModern])
			if err := first.state.putDevice(ctx, &DeviceRecord{Device: "gw1.example", Profile: profileModern, Serial: is.Serial}); err != nil {
				t.Fatal(err)
			}
			second := loadEnrollApp(t, root, app(tc.after))
			if second.authz.revocations == first.authz.revocations {
				t.Fatal("another set of CAs shares the revocation state: the test tests nothing")
			}
			if second.serialRevoked(profileModern, is.Serial) || !second.eligible("gw1.example") {
				t.Fatal("revoked before its revocation")
			}
			tc.revoke(t, first, is.Serial)
			if !second.serialRevoked(profileModern, is.Serial) {
				t.Error("the new config takes a certificate the previous config revoked after the reload")
			}
			if second.eligible("gw1.example") {
				t.Error("the new config offers a device whose current certificate the previous config revoked after the reload")
			}
		})
	}
}
