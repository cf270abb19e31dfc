package caddyenroll

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/configfile"
	"github.com/clearinghouse-dev/caddy-clearinghouse/osp"
)

// reportUsage posts one usage record of call-1 (1404 → 1405) of
// transaction tx in role from the address from, and returns the record
// stored for it (by transaction, reporter and role).
func reportUsage(t *testing.T, h *OSPHandler, from, reporter, role string, tx uint64) CDR {
	t.Helper()
	ind := &osp.UsageIndication{MessageID: "7", Usages: []osp.Usage{{ComponentID: "8", Timestamp: time.Now().UTC(),
		Role: role, TransactionID: tx, CallID: []byte("call-1"), SourceInfo: []osp.Info{{Type: "e164", Value: "1404"}},
		DestinationInfo: []osp.Info{{Type: "e164", Value: "1405"}}, Duration: time.Second}}}
	body, err := ind.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	cnf, err := osp.ParseUsageConfirmation(postOSP(t, h, body, from))
	if err != nil || len(cnf.Confirmations) != 1 || !cnf.Confirmations[0].Status.OK() {
		t.Fatalf("usage of %s: %+v %v", reporter, cnf, err)
	}
	list, err := h.app.cdrs(context.Background(), dayRange{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range list {
		if r.TransactionID == tx && r.Reporter == reporter && r.Role == role {
			return r
		}
	}
	t.Fatalf("usage of %s as %s of transaction %d: not stored", reporter, role, tx)
	return CDR{}
}

// issuedOf is a record's TransactionIssued as the export writes it.
func issuedOf(r CDR) string {
	if r.TransactionIssued == nil {
		return "empty"
	}
	return strconv.FormatBool(*r.TransactionIssued)
}

// A device the file writes in capitals is the same source wherever its
// transaction id is checked: the id is made for its normal form
// (configfile.DeviceKey), so it extends its own call and its usage
// records name it, as the file writes it. (Tags of the name as written
// left such a device unable to extend its calls, its records not issued
// here.)
func TestTransactionSourceOfCapitalizedDevice(t *testing.T) {
	conf := strings.NewReplacer("device gw1.example", "device GW1.Example", "%s", "enabled").Replace(reauthSourceConf)
	names := []string{"GW1.Example", "gw2.example", "x.example"}
	h := reauthHandler(t, conf, names...)
	from := sourceAddrs(names)
	rsp := authorizeCall(t, h, from["GW1.Example"])
	if !rsp.Status.OK() || len(rsp.Destinations) != 1 {
		t.Fatalf("authorization: %v %+v", rsp.Status, rsp.Destinations)
	}
	if !h.txIDs.For(configfile.DeviceKey("gw1.example")).Issued(rsp.TransactionID) {
		t.Errorf("transaction %d is not made for gw1.example's normal form", rsp.TransactionID)
	}
	for _, c := range []struct {
		who  string
		code int
	}{
		{"GW1.Example", 200},
		{"gw2.example", 401},
	} {
		rr := reauthorize(t, h, rsp.TransactionID, rsp.Destinations[0].Token, from[c.who])
		if rr.Status.Code != c.code {
			t.Errorf("reauthorization by %s: status %v, want %d", c.who, rr.Status, c.code)
		}
	}
	for _, c := range []struct{ who, role string }{{"GW1.Example", "source"}, {"x.example", "destination"}} {
		r := reportUsage(t, h, from[c.who], c.who, c.role, rsp.TransactionID)
		if r.TransactionIssued == nil || !*r.TransactionIssued || r.TransactionSource != "GW1.Example" {
			t.Errorf("usage of %s: issued %s, source %q; want true, GW1.Example", c.who, issuedOf(r), r.TransactionSource)
		}
	}
}

// Two devices whose tags collide (under reauthHandler's key, gw1067 and
// gw3126 share one): a usage record names its reporter when the id is
// made for the reporter, whatever the case of its name; another reporter
// cannot tell which of the two made the transaction, and the record names
// no source (never one picked from the two).
func TestTransactionSourceSharedTag(t *testing.T) {
	const conf = `group acme
device GW1067.Example acme enabled enrolled
device gw3126.example acme enabled enrolled
device x.example acme enabled enrolled
route acme '1405' x.example 1
`
	names := []string{"GW1067.Example", "gw3126.example", "x.example"}
	h := reauthHandler(t, conf, names...)
	if a, b := h.txIDs.Tag(configfile.DeviceKey(names[0])), h.txIDs.Tag(names[1]); a != b {
		t.Fatalf("tags %06x and %06x: the fixture needs two devices sharing a tag", a, b)
	}
	from := sourceAddrs(names)
	for _, src := range names[:2] {
		rsp := authorizeCall(t, h, from[src])
		if !rsp.Status.OK() {
			t.Fatalf("authorization of %s: %+v", src, rsp)
		}
		for _, c := range []struct{ who, role, source string }{
			{src, "source", src},
			{"x.example", "destination", ""},
		} {
			r := reportUsage(t, h, from[c.who], c.who, c.role, rsp.TransactionID)
			if r.TransactionIssued == nil || !*r.TransactionIssued || r.TransactionSource != c.source {
				t.Errorf("usage of %s's call by %s: issued %s, source %q; want true, %q", src, c.who, issuedOf(r), r.TransactionSource, c.source)
			}
		}
	}
}

// An id no maker makes is not issued here, whoever reports it: a report
// without a transaction id (transaction 0, a call not authorized), another
// clearinghouse's id of 64 bits, and one whose random part is 0 (which no
// MAC check is asked about). (Taking these as issued, with no source,
// passed every test.)
func TestUsageOfIdsNoMakerMakes(t *testing.T) {
	names := []string{"gw1.example", "gw2.example", "x.example"}
	h := reauthHandler(t, strings.Replace(reauthSourceConf, "%s", "enabled", 1), names...)
	from := sourceAddrs(names)
	for _, c := range []struct {
		name string
		tx   uint64
	}{
		{"no transaction id", 0},
		{"64 bits", 1<<63 | 12345},
		{"random part 0", 0xabcdef},
	} {
		r := reportUsage(t, h, from["gw1.example"], "gw1.example", "source", c.tx)
		if r.TransactionIssued == nil || *r.TransactionIssued || r.TransactionSource != "" {
			t.Errorf("usage of %s: issued %s, source %q; want false, none", c.name, issuedOf(r), r.TransactionSource)
		}
	}
}
