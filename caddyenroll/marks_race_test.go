package caddyenroll

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"os"
	"path"
	"testing"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
)

// revokedWhileInvalid is an app whose file lists gw1.example enabled and
// enrolled, whose certificate an administrator revoked while the file did
// not parse: the unmark waits in storage, and the file parses again.
func revokedWhileInvalid(t *testing.T) (a *App, c *ca.CA, file string) {
	t.Helper()
	ctx := context.Background()
	const good = "group \"\"\ndevice gw1.example \"\" enabled enrolled\n"
	a, c, is, file := fileAppIssuing(t, good, "gw1.example")
	if err := a.state.putDevice(ctx, &DeviceRecord{Device: "gw1.example", Profile: profileModern, Serial: is.Serial}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("group \"\"\ndevice gw1.example nogroup enabled enrolled\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	ad := &adminAPI{app: a, log: zap.NewNop()}
	if code, msg, _ := adminDoBody(t, ad, "POST", "/enroll/revoke", `{"device": "gw1.example"}`); code != 200 {
		t.Fatalf("revoke: %d %s", code, msg)
	}
	if err := os.WriteFile(file, []byte(good), 0o640); err != nil {
		t.Fatal(err)
	}
	return a, c, file
}

// reenroll records a new certificate of c as gw1.example's current one,
// as an issuance does before it marks the device (completeIssue).
func reenroll(t *testing.T, a *App, c *ca.CA) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "gw1.example"}}, key)
	is, err := c.Issue(context.Background(), csr, "gw1.example", ca.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.state.putDevice(context.Background(), &DeviceRecord{Device: "gw1.example", Profile: profileModern, Serial: is.Serial}); err != nil {
		t.Fatal(err)
	}
	a.noteRevoked(profileModern, "gw1.example", nil, false)
}

func enrolledIn(t *testing.T, file, device string) bool {
	t.Helper()
	f, err := configfile.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := f.Device(device)
	return d.Enrolled
}

// A kept unmark read while the device's certificate was revoked, then
// written after the device enrolled again (its issuance found the file
// still marking it, and skipped its mark), cleared the flag of a device
// holding a valid certificate (seen in the race soak). The batch checks
// each mark again when it writes the file.
func TestKeptUnmarkMootOnceTheDeviceEnrolledAgain(t *testing.T) {
	ctx := context.Background()
	a, c, file := revokedWhileInvalid(t)
	keys, err := a.state.list(ctx, path.Join(statePrefix, "unmarked"))
	if err != nil || len(keys) != 1 {
		t.Fatalf("kept marks %v %v", keys, err)
	}
	applyingDeferredMarks.Add(1)
	defer applyingDeferredMarks.Add(-1)
	batch, _, _, _ := a.loadDeferredMarks(ctx, keys)
	if len(batch) != 1 || !batch[0].Unmark {
		t.Fatalf("loaded %+v", batch)
	}
	reenroll(t, a, c) // meanwhile
	if err := a.markEnrolled(ctx, "gw1.example", "", profileModern, false); err != nil {
		t.Fatal(err)
	}
	outcomes, errs := a.applyMarkBatch(batch)
	if errs[0] != nil || outcomes[0] != markMoot {
		t.Fatalf("the kept unmark: %v %v, want markMoot", outcomes[0], errs[0])
	}
	if !enrolledIn(t, file, "gw1.example") {
		t.Fatal("gw1.example enrolled again, but the kept unmark cleared its flag")
	}
}

// While kept marks are being applied, an issuance's mark is written under
// the file's lock even when the version in force marks the device
// already: it skipped the edit, and the unmark written next cleared the
// flag. A revocation's unmark likewise.
func TestShortcutsOffWhileKeptMarksApply(t *testing.T) {
	was := marksDeferred.Swap(false) // the process's: no marks kept
	defer marksDeferred.Store(was)
	for _, applying := range []bool{false, true} {
		cs, _, _ := testConfigState(t, "group \"\"\ndevice gw1.example \"\" enabled enrolled\ndevice gw2.example \"\" enabled\n")
		writes := 0
		st := localLocks{&certmagic.FileStorage{Path: t.TempDir()}} // no kept mark
		a := &App{cfg: cs, storage: st, log: zap.NewNop()}
		a.marks = &markBatcher{apply: func(batch []mark) []error { writes++; return make([]error, len(batch)) }}
		if applying {
			applyingDeferredMarks.Add(1)
		}
		err := a.markEnrolled(context.Background(), "gw1.example", "", profileModern, false)
		if applying {
			applyingDeferredMarks.Add(-1)
		}
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{false: 0, true: 1}[applying]; writes != want {
			t.Errorf("applying kept marks %v: %d edits for a device marked already, want %d", applying, writes, want)
		}
	}
}

// A kept mark replaced in storage while the one read was applied (the
// device revoked, or enrolled, while the file was unavailable again) is
// not deleted with it.
func TestKeptMarkReplacedMeanwhileIsKept(t *testing.T) {
	ctx := context.Background()
	a, _, _ := revokedWhileInvalid(t)
	key := deferredMarkKey("gw1.example")
	read, err := a.storage.Load(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.storage.Store(ctx, key, []byte(`{"device":"gw1.example","profile":"modern"}`)); err != nil {
		t.Fatal(err)
	}
	if a.deleteIfUnchanged(ctx, key, read) {
		t.Fatal("a kept mark replaced meanwhile was deleted")
	}
	if _, err := a.storage.Load(ctx, key); err != nil {
		t.Fatalf("the newer kept mark is gone: %v", err)
	}
	now, _ := a.storage.Load(ctx, key)
	if !a.deleteIfUnchanged(ctx, key, now) || a.storage.Exists(ctx, key) {
		t.Fatal("the kept mark applied is not deleted")
	}
}

// A device the file marks enrolled with no certificate from this server
// (imported from an older clearinghouse), revoked by name while the file
// did not parse, is unmarked once it parses: its kept unmark was dropped
// as if the device had enrolled again (nothing revoked in memory).
func TestKeptUnmarkOfADeviceWithoutCertificate(t *testing.T) {
	ctx := context.Background()
	a, _, file := revokedWhileInvalid(t)
	const good = "group \"\"\ndevice gw1.example \"\" enabled enrolled\ndevice gw9.example \"\" enabled enrolled\n"
	if err := os.WriteFile(file, []byte(good), 0o640); err != nil {
		t.Fatal(err)
	}
	a.cfg.settle = 0
	if _, err := a.cfg.reload(); err != nil { // the version in force lists it
		t.Fatal(err)
	}
	if d := a.cfg.device("gw9.example"); !d.Known {
		t.Fatal("the version in force lacks gw9.example")
	}
	if err := os.WriteFile(file, []byte("group \"\"\ndevice gw9.example nogroup enabled enrolled\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	ad := &adminAPI{app: a, log: zap.NewNop()}
	if code, msg, _ := adminDoBody(t, ad, "POST", "/enroll/revoke", `{"device": "gw9.example"}`); code != 200 {
		t.Fatalf("revoke: %d %s", code, msg)
	}
	if err := os.WriteFile(file, []byte(good), 0o640); err != nil {
		t.Fatal(err)
	}
	if !a.applyDeferredMarks(ctx) {
		t.Fatal("kept marks left once the file parses")
	}
	if enrolledIn(t, file, "gw9.example") {
		t.Fatal("gw9.example, revoked by name, is still marked enrolled")
	}
}

// Applying the kept marks with the file unwatched (watch_interval
// negative: at start only) clears marksDeferred once none is left, as the
// watcher does: it stayed set, and every issuance of a device the file
// marks already took the file's lock to find nothing to write.
func TestKeptMarksAppliedClearTheFlag(t *testing.T) {
	was := marksDeferred.Load()
	defer marksDeferred.Store(was)
	a, _, file := revokedWhileInvalid(t)
	a.bgCtx = context.Background()
	marksDeferred.Store(true)
	a.applyKeptMarks()
	if marksDeferred.Load() {
		t.Fatal("marksDeferred still set once every kept mark was applied")
	}
	if enrolledIn(t, file, "gw1.example") {
		t.Fatal("the kept unmark was not applied")
	}
	if err := os.WriteFile(file, []byte("group \"\"\ndevice gw1.example nogroup\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := a.deferMark(context.Background(), mark{Device: "gw2.example", Add: true}, errFileUnavailable); err != nil {
		t.Fatal(err)
	}
	a.applyKeptMarks()
	if !marksDeferred.Load() {
		t.Fatal("marksDeferred cleared with a kept mark left (the file does not parse)")
	}
}
