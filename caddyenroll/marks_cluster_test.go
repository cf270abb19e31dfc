package caddyenroll

import (
	"context"
	"path"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/clearinghouse-dev/caddy-clearinghouse/ca"
)

// A mark kept while the file could not be edited no longer holds once
// another instance sharing the storage revoked the device's certificate,
// before this instance's memory learns of it (its refresh, every 30 s):
// applied, it marked the device enrolled after the revocation by name had
// found the flag clear (the mark still kept) and left it so, a device
// without a valid certificate marked enrolled (seen in TestSoakCluster).
func TestKeptMarkAfterAnotherInstancesRevocation(t *testing.T) {
	f := newRefreshFixture(t)
	serial := f.enroll(f.local, "x.example")
	f.refresh() // this instance knows the device's current certificate
	f.revoke(f.other, serial, ca.ReasonUnspecified)
	if !f.app.eligible("x.example") {
		t.Fatal("the fixture's memory learned of the other instance's revocation: the test shows nothing")
	}
	if f.app.markHolds(f.ctx, mark{Device: "x.example", Profile: profileModern}) {
		t.Error("the kept mark of a device whose current certificate another instance revoked still holds")
	}
	// its certificate good, the mark holds
	f.enroll(f.local, "y.example")
	if !f.app.markHolds(f.ctx, mark{Device: "y.example", Profile: profileModern}) {
		t.Error("the kept mark of a device with a valid current certificate does not hold")
	}
}

// A kept unmark of a device another instance revoked by name holds until
// this one's memory learns of the revocation: it was dropped as if the
// device had enrolled again, and the revoked device stayed marked enrolled.
func TestKeptUnmarkAfterAnotherInstancesRevocation(t *testing.T) {
	f := newRefreshFixture(t)
	serial := f.enroll(f.local, "x.example")
	f.refresh()
	f.revoke(f.other, serial, ca.ReasonUnspecified)
	if f.app.serialRevoked(profileModern, serial) {
		t.Fatal("the fixture's memory learned of the other instance's revocation: the test shows nothing")
	}
	if !f.app.markHolds(f.ctx, mark{Device: "x.example", Unmark: true}) {
		t.Error("the kept unmark of a device whose current certificate another instance revoked no longer holds")
	}
	// enrolled again (its certificate good), the unmark is moot
	f.enroll(f.local, "y.example")
	if f.app.markHolds(f.ctx, mark{Device: "y.example", Unmark: true}) {
		t.Error("the kept unmark of a device with a valid current certificate still holds")
	}
}

// pauseAfterLoad pauses the first Load of key once armed, after reading
// it, until resume is closed.
type pauseAfterLoad struct {
	certmagic.Storage
	key            string
	armed          atomic.Bool
	loaded, resume chan struct{}
}

func (s *pauseAfterLoad) Load(ctx context.Context, key string) ([]byte, error) {
	b, err := s.Storage.Load(ctx, key)
	if key == s.key && s.armed.CompareAndSwap(true, false) {
		close(s.loaded)
		<-s.resume
	}
	return b, err
}

// sharedInstance is another instance on the file and storage of b (a
// process of its own: its own edit lock), whose edits tell locking when
// they wait for the file's storage lock.
func sharedInstance(t *testing.T, b *App, c *ca.CA, file string) (a *App, locking chan struct{}) {
	t.Helper()
	st := b.storage
	b.cfg.lockFile = configFileLock(st, file)
	b.cfg.settle = 0
	cs, err := loadConfigState(file, -1)
	if err != nil {
		t.Fatal(err)
	}
	cs.edits = new(sync.Mutex)
	cs.settle = 0
	lock, once := configFileLock(st, file), new(sync.Once)
	locking = make(chan struct{})
	cs.lockFile = func(ctx context.Context) (func(), error) {
		once.Do(func() { close(locking) })
		return lock(ctx)
	}
	return fileEditingApp(cs, st, c), locking
}

// Instance B applies a kept unmark of gw1.example and has read its record
// under the file's lock (no valid certificate) when instance A records a
// new certificate for it: A's mark found the file marking the device and
// skipped its edit (marksMayWait knows A's process's kept marks only), and
// B's unmark, written next, left a device holding a valid certificate not
// marked enrolled. A's mark now sees the kept mark in storage and waits
// for the file's lock.
func TestKeptUnmarkOfAnotherInstanceDuringAnIssuance(t *testing.T) {
	ctx := context.Background()
	b, c, file := revokedWhileInvalid(t)
	was := marksDeferred.Swap(false) // A's process keeps none, applies none
	defer marksDeferred.Store(was)
	a, locking := sharedInstance(t, b, c, file)

	keys, err := b.state.list(ctx, path.Join(statePrefix, "unmarked"))
	if err != nil || len(keys) != 1 {
		t.Fatalf("kept marks %v %v", keys, err)
	}
	batch, _, _, _ := b.loadDeferredMarks(ctx, keys) // B's process counts its application, not A's
	if len(batch) != 1 || !batch[0].Unmark {
		t.Fatalf("loaded %+v", batch)
	}
	ps := &pauseAfterLoad{Storage: b.storage, key: deviceKey("gw1.example"), loaded: make(chan struct{}), resume: make(chan struct{})}
	b.storage = ps
	ps.armed.Store(true)
	bDone := make(chan struct{})
	var outcomes []markOutcome
	var errs []error
	go func() {
		defer close(bDone)
		outcomes, errs = b.applyMarkBatch(batch)
	}()
	<-ps.loaded // B holds the file's lock, the old record read

	reenroll(t, a, c)
	aDone := make(chan error, 1)
	go func() { aDone <- a.markEnrolled(ctx, "gw1.example", "", profileModern, false) }()
	var aErr error
	aWaits := false
	select {
	case aErr = <-aDone: // skipped its edit
	case <-locking: // waits for B's
		aWaits = true
	}
	close(ps.resume)
	<-bDone
	if aWaits {
		aErr = <-aDone
	}
	if aErr != nil {
		t.Fatal(aErr)
	}
	if errs[0] != nil || outcomes[0] != markWritten {
		t.Fatalf("B's kept unmark: %v %v, want it written (the record read before the issuance)", outcomes[0], errs[0])
	}
	if !enrolledIn(t, file, "gw1.example") {
		t.Fatal("gw1.example holds a valid certificate, but B's kept unmark, written after A's issuance, cleared its flag")
	}
}

// A revocation by name of a device the file does not mark enrolled edits
// the file all the same while storage holds a kept mark of the device
// (another instance's, which it may be writing): its enrolled mark, read
// before the revocation, would set the flag after the unmark had found it
// clear.
func TestUnmarkWaitsForAnotherInstancesKeptMark(t *testing.T) {
	ctx := context.Background()
	const text = "group \"\"\ndevice gw1.example \"\" enabled\n"
	b, c, is, file := fileAppIssuing(t, text, "gw1.example")
	if err := b.state.putDevice(ctx, &DeviceRecord{Device: "gw1.example", Profile: profileModern, Serial: is.Serial}); err != nil {
		t.Fatal(err)
	}
	was := marksDeferred.Swap(false)
	defer marksDeferred.Store(was)
	a, locking := sharedInstance(t, b, c, file)
	ad := &adminAPI{app: a, log: zap.NewNop()}
	for _, kept := range []bool{false, true} {
		if kept {
			if err := b.state.storeJSON(ctx, deferredMarkKey("gw1.example"), mark{Device: "gw1.example", Profile: profileModern}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := ad.unmarkRevoked(ctx, "gw1.example", a.cfg.device("gw1.example")); err != nil {
			t.Fatal(err)
		}
		edited := false
		select {
		case <-locking:
			edited = true
		default:
		}
		if edited != kept {
			t.Errorf("another instance's mark kept %v: the unmark edited the file %v, want %v", kept, edited, kept)
		}
	}
}
