package caddyenroll

import (
	"testing"

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
