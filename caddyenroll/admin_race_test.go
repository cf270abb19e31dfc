package caddyenroll

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
)

// adminAnswer is an admin request's status and body, for goroutines (it
// does not fail the test: an error the handler returns is a 500).
func adminAnswer(ad *adminAPI, method, uri, body string) (int, string) {
	rec := httptest.NewRecorder()
	if err := ad.serve(rec, httptest.NewRequest(method, uri, strings.NewReader(body))); err != nil {
		return 500, err.Error()
	}
	return rec.Code, rec.Body.String()
}

// Administrators' decisions racing each other. An approval and a
// rejection of one pending request sent at once: one wins (200), the other
// is refused (409), the request ends in the winner's state, and a
// certificate exists exactly when the approval won. An approval racing a
// revocation of the device by name: the new certificate is revoked exactly
// when the revocation's answer names it (it came after the issuance), and
// the device is marked enrolled in the file exactly when it is not.
func TestAdminDecisionsRace(t *testing.T) {
	h, _ := approvingApp(t)
	ad := &adminAPI{app: h.app, log: zap.NewNop()}
	ctx := context.Background()
	c := h.app.cas[profileModern]
	for i := range 6 {
		dev := fmt.Sprintf("race%d.example", i)
		req := requestPending(t, h, dev)
		var codes [2]int
		var bodies [2]string
		var wg sync.WaitGroup
		wg.Go(func() { codes[0], bodies[0] = adminAnswer(ad, "POST", "/enroll/approve/"+req.ID, "") })
		wg.Go(func() { codes[1], bodies[1] = adminAnswer(ad, "POST", "/enroll/reject/"+req.ID, "") })
		wg.Wait()
		approved := codes[0] == 200
		if codes[0]+codes[1] != 200+409 {
			t.Fatalf("%s: approve %d %s, reject %d %s; want one 200 and one 409", dev, codes[0], bodies[0], codes[1], bodies[1])
		}
		r, err := h.app.state.request(ctx, req.ID)
		if err != nil || r == nil {
			t.Fatalf("%s: request %s: %v", dev, req.ID, err)
		}
		recs, err := c.Records(ctx, dev)
		if err != nil {
			t.Fatal(err)
		}
		want := map[bool]string{true: stateIssued, false: stateRejected}[approved]
		if r.State != want || approved != (len(recs) == 1) {
			t.Errorf("%s: approval won %v, but the request is %s with %d certificate(s)", dev, approved, r.State, len(recs))
		}
	}

	for i := range 6 {
		dev := fmt.Sprintf("revoked%d.example", i)
		code, body := adminAnswer(ad, "POST", "/enroll/approve/"+requestPending(t, h, dev).ID, "")
		if code != 200 {
			t.Fatalf("%s: first approval: %d %s", dev, code, body)
		}
		req := requestPending(t, h, dev)
		var approveCode, revokeCode int
		var approveBody, revokeBody string
		var wg sync.WaitGroup
		wg.Go(func() { approveCode, approveBody = adminAnswer(ad, "POST", "/enroll/approve/"+req.ID, "") })
		wg.Go(func() { revokeCode, revokeBody = adminAnswer(ad, "POST", "/enroll/revoke", `{"device": "`+dev+`"}`) })
		wg.Wait()
		var issued RequestInfo
		var revoked struct {
			Revoked []string `json:"revoked"`
		}
		if approveCode != 200 || json.Unmarshal([]byte(approveBody), &issued) != nil ||
			revokeCode != 200 || json.Unmarshal([]byte(revokeBody), &revoked) != nil {
			t.Fatalf("%s: approve %d %s, revoke %d %s; want both done", dev, approveCode, approveBody, revokeCode, revokeBody)
		}
		rec, err := c.Lookup(ctx, issued.Serial)
		if err != nil {
			t.Fatal(err)
		}
		named := slices.Contains(revoked.Revoked, issued.Serial)
		if rec.Revoked != named {
			t.Errorf("%s: certificate %s revoked %v, but the revocation's answer %v names it: %v", dev, issued.Serial, rec.Revoked, revoked.Revoked, named)
		}
		deadline := time.Now().Add(2 * time.Second)
		for h.app.cfg.device(dev).Enrolled != !rec.Revoked && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if d := h.app.cfg.device(dev); d.Enrolled != !rec.Revoked {
			t.Errorf("%s: marked enrolled %v with its certificate revoked %v", dev, d.Enrolled, rec.Revoked)
		}
	}
}
