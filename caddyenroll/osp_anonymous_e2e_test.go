package caddyenroll_test

import (
	"crypto/x509"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/osp"
)

// A call without caller id through a real Caddy: the gateways send an
// empty calling number (Asterisk, FreeSWITCH, OpenSIPS, Kamailio), and the
// clearinghouse routes it with tokens whose calling number is empty, which
// the terminating side's Go verifier accepts for the call's empty calling
// number; the reauthorization extends it, and the usage reports are stored
// and exported with an empty calling number. An empty called number is
// still refused (489).
func TestOSPEmptyCallingNumber(t *testing.T) {
	s := startOSPServer(t)
	caCert := s.getCACert()
	origin, _, _ := s.enrolledDevice("device4.carrier.com")
	terminating, _, _ := s.enrolledDevice("device1.itsp.com")
	const called = "+1 404 555 0100"
	anonymous := []osp.Info{{Type: "e164", Value: ""}}
	callID := []byte("call-anonymous")

	ask := func(calling, called string) *osp.AuthorisationResponse {
		t.Helper()
		req := &osp.AuthorizationRequest{MessageID: "1", ComponentID: "2", Timestamp: time.Now().UTC(),
			CallIDs: [][]byte{callID}, SourceInfo: []osp.Info{{Type: "e164", Value: calling}},
			DestinationInfo: []osp.Info{{Type: "e164", Value: called}}, MaxDestinations: 5}
		b, err := req.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		rsp, err := osp.ParseAuthorisationResponse(s.ask(origin, b))
		if err != nil {
			t.Fatal(err)
		}
		return rsp
	}
	if rsp := ask("", ""); rsp.Status.Code != 489 || len(rsp.Destinations) != 0 {
		t.Fatalf("empty calling and called numbers: %+v", rsp.Status)
	}
	rsp := ask("", called)
	if rsp.Status.Code != 200 || len(rsp.Destinations) != 2 {
		t.Fatalf("empty calling number: status %v, %d destinations", rsp.Status, len(rsp.Destinations))
	}
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	dest := rsp.Destinations[0]
	call := osp.Call{Calling: "", Called: called, CallID: callID, Destination: dest.SignalAddress}
	if info, err := (&osp.Verifier{Roots: roots}).Verify(dest.Token, call); err != nil || info.SourceInfo.Value != "" {
		t.Fatalf("token for the call without caller id: %v %+v", err, info)
	}

	// the reauthorization carries the empty SourceInfo and the first token
	re := &osp.ReauthorizationRequest{MessageID: "5", ComponentID: "6", Timestamp: time.Now().UTC(),
		Role: "source", CallID: callID, TransactionID: rsp.TransactionID, Duration: 30 * time.Second,
		SourceInfo: anonymous, DestinationInfo: []osp.Info{{Type: "e164", Value: called}}, Tokens: [][]byte{dest.Token}}
	b, err := re.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	ext, err := osp.ParseReauthorizationResponse(s.ask(origin, b))
	if err != nil || ext.Status.Code != 200 || ext.Destination == nil {
		t.Fatalf("reauthorization: %v %+v", err, ext)
	}
	if _, err := (&osp.Verifier{Roots: roots}).Verify(ext.Destination.Token, call); err != nil {
		t.Fatalf("reauthorization token: %v", err)
	}

	// both ends report usage with the empty calling number
	for _, c := range []struct {
		role   string
		client *http.Client
	}{{"source", origin}, {"destination", terminating}} {
		ind := &osp.UsageIndication{MessageID: "7", Usages: []osp.Usage{{
			ComponentID: "8", Timestamp: time.Now().UTC(), Role: c.role, TransactionID: rsp.TransactionID,
			CallID: callID, SourceInfo: anonymous, DestinationInfo: []osp.Info{{Type: "e164", Value: called}},
			Duration: 42 * time.Second, StartTime: time.Now().UTC().Add(-time.Minute), EndTime: time.Now().UTC(),
		}}}
		b, err := ind.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		cnf, err := osp.ParseUsageConfirmation(s.ask(c.client, b))
		if err != nil || len(cnf.Confirmations) != 1 || cnf.Confirmations[0].Status.Code != 200 {
			t.Fatalf("usage confirmation (%s): %+v %v", c.role, cnf, err)
		}
	}
	_, body := s.Admin("GET", "/enroll/cdrs", "")
	var cdrs []struct {
		TransactionID uint64  `json:"transaction_id,string"`
		Role          string  `json:"role"`
		Calling       *string `json:"calling"`
		Called        string  `json:"called"`
	}
	if err := json.Unmarshal([]byte(body), &cdrs); err != nil || len(cdrs) != 2 {
		t.Fatalf("CDRs (want one per role): %v %s", err, body)
	}
	for _, c := range cdrs {
		if c.TransactionID != rsp.TransactionID || c.Calling == nil || *c.Calling != "" || c.Called != called {
			t.Fatalf("CDR %+v (calling %v)", c, c.Calling)
		}
	}
	_, csvBody := s.Admin("GET", "/enroll/cdrs?format=csv", "")
	rows, err := csv.NewReader(strings.NewReader(csvBody)).ReadAll()
	if err != nil || len(rows) != 3 {
		t.Fatalf("CSV export: %v\n%s", err, csvBody)
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	for _, row := range rows[1:] {
		// the export quotes a leading '+' for spreadsheets
		if row[col["calling"]] != "" || row[col["called"]] != "'"+called {
			t.Fatalf("CSV row %q: want an empty calling number, called '%s", row, called)
		}
	}
}
